// End to end, dialect translation of streams (SPEC §12): the official SDKs (maxRetries 0), their own stream
// accumulators (openai `chat.completions.stream(…).finalChatCompletion()`, anthropic `messages.stream(…).finalMessage()`)
// and raw fetch, through a real gateway to the recording mocks' SSE. Both directions: an OpenAI client on an Anthropic
// target (chat.completion.chunk events, one role chunk, tool-call argument deltas, finish_reason, and the final
// `choices: []` usage chunk only when the client asked for include_usage) and an Anthropic client on an OpenAI-wire
// target (message_start … message_stop, tool_use blocks with input_json_delta, stop_reason and usage in message_delta;
// the target is always asked for include_usage). Also: the commit point is unchanged on translated streams (an
// in-band error before content is retried and the client sees one clean stream), fallback across dialects, and the
// usage line's exact provider counts. First, the mock's scripted streams are read by the SDKs directly, so a failure
// below is the gateway's.
import { beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { Gateway } from "./helpers/gateway.ts";
import { usageLine } from "./helpers/gateway.ts";
import {
  MOCK_DELTAS,
  MOCK_TEXT,
  MOCK_USAGE,
  type MockProvider,
  SCRIPTED_ARGS,
  SCRIPTED_ARGS2,
  SCRIPTED_ARGS_FRAGMENTS,
  SCRIPTED_BEFORE_STOP,
  SCRIPTED_TOOL_IDS,
  SCRIPTED_TOOL_PREAMBLE,
  SCRIPTED_TRUNCATED,
  SCRIPTED_USAGE,
} from "./helpers/mock-provider.ts";
import { collectChatStream } from "./helpers/sdk.ts";
import { tracked } from "./helpers/tracked.ts";
import {
  ANTHROPIC_TOOLS,
  anthropicSdk,
  attemptsAcross,
  bodyOf,
  capture,
  droppedOf,
  type Json,
  normalisedMessages,
  OPENAI_TOOLS,
  openaiSdk,
  parseSse,
  rawPost,
  rid,
  sseJson,
  startTranslateRig,
  textOf,
} from "./helpers/translate.ts";
import { attemptsOf, newTestId, poolKeyOf, seen } from "./helpers/virtual-models.ts";

const t = tracked();
let gw: Gateway;
let oai: MockProvider;
let ant: MockProvider;
beforeAll(async () => {
  ({ gw, oai, ant } = await startTranslateRig(t));
});

const HI = [{ role: "user" as const, content: "hi" }];

/** Tool calls of a final OpenAI message as {id, name, args (parsed: throws when not valid JSON)}. */
function openaiCalls(msg: object | undefined): Array<{ id: string; name: string; args: unknown }> {
  const calls = ((msg as { tool_calls?: Json[] | null } | undefined)?.tool_calls ?? []) as Json[];
  return calls.map((c) => {
    const fn = c["function"] as { name: string; arguments: string };
    return { id: String(c["id"]), name: fn.name, args: JSON.parse(fn.arguments) as unknown };
  });
}

describe("the mock's scripted streams, read by the official SDKs directly (no gateway)", () => {
  test("Anthropic mock: MessageStream accumulates the tool-call reply into the documented message (text, tool_use input, stop_reason, usage)", async () => {
    const client = new Anthropic({ apiKey: "sk-direct", baseURL: ant.url, maxRetries: 0 });
    const msg = await client.messages.stream({ model: "m", max_tokens: 64, messages: HI, tools: ANTHROPIC_TOOLS }, { headers: { "x-mock-reply": "tool-call" } }).finalMessage();
    expect(msg.content).toEqual([
      expect.objectContaining({ type: "text", text: SCRIPTED_TOOL_PREAMBLE.join("") }),
      expect.objectContaining({ type: "tool_use", id: SCRIPTED_TOOL_IDS.anthropic[0], name: "get_weather", input: SCRIPTED_ARGS }),
    ]);
    expect(msg.stop_reason).toBe("tool_use");
    expect(msg.usage).toMatchObject({ input_tokens: SCRIPTED_USAGE.anthropic.input_tokens, output_tokens: SCRIPTED_USAGE.anthropic.output_tokens });
  });

  test("OpenAI mock: ChatCompletionStream accumulates the two-tool-calls reply (ids, names, JSON arguments, finish tool_calls, usage when asked)", async () => {
    const client = new OpenAI({ apiKey: "sk-direct", baseURL: `${oai.url}/v1`, maxRetries: 0 });
    const done = await client.chat.completions
      .stream({ model: "m", messages: HI, tools: OPENAI_TOOLS, stream_options: { include_usage: true } }, { headers: { "x-mock-reply": "two-tool-calls" } })
      .finalChatCompletion();
    expect(openaiCalls(done.choices[0]?.message)).toEqual([
      { id: SCRIPTED_TOOL_IDS.openai[0], name: "get_weather", args: SCRIPTED_ARGS },
      { id: SCRIPTED_TOOL_IDS.openai[1], name: "get_time", args: SCRIPTED_ARGS2 },
    ]);
    expect(done.choices[0]?.finish_reason).toBe("tool_calls");
    expect(done.usage?.prompt_tokens).toBe(SCRIPTED_USAGE.openai.prompt_tokens);
  });
});

describe("OpenAI SDK stream → Anthropic target (alias claude)", () => {
  test("without include_usage: one role chunk, the provider's text deltas in order, finish_reason stop, no usage chunk and no usage on any chunk; ai.usage has the provider's counts", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw)
      .chat.completions.create({ model: "claude", messages: HI, stream: true }, { headers: { "x-test-id": id } })
      .withResponse();
    const { chunks, text } = await collectChatStream(data);
    expect(text).toBe(MOCK_TEXT);
    expect(chunks.filter((c) => c.choices[0]?.delta?.role === "assistant")).toHaveLength(1);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").filter((s) => s !== "")).toEqual([...MOCK_DELTAS]);
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.filter((c) => c.choices.length === 0)).toHaveLength(0);
    expect(chunks.filter((c) => c.usage !== undefined && c.usage !== null)).toHaveLength(0);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe("stop");
    expect(response.headers.get("content-type") ?? "").toContain("text/event-stream");
    expect(droppedOf(response)).toBeNull();

    const reqs = attemptsOf(id, ant);
    expect(reqs.map(seen)).toEqual([{ path: "/v1/messages", model: "claude-t", key: poolKeyOf("anthropic") }]);
    const body = bodyOf(reqs[0]);
    expect(body).toMatchObject({ stream: true, max_tokens: 4096 });
    expect(body["stream_options"]).toBeUndefined();

    const u = MOCK_USAGE.anthropicSse;
    expect(await usageLine(gw, rid(response))).toMatchObject({
      route: "claude",
      provider: "anthropic",
      translated: true,
      stream: true,
      complete: true,
      input_tokens: u.input_tokens,
      output_tokens: u.output_tokens,
    });
  });

  test("with include_usage: the last chunk before [DONE] has choices [] and the usage (cache read and write folded into prompt_tokens, cached_tokens = cache read); the other chunks carry no usage numbers", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw)
      .chat.completions.create(
        { model: "claude", messages: HI, stream: true, stream_options: { include_usage: true } },
        { headers: { "x-test-id": id, "x-mock-reply": "cache-usage" } },
      )
      .withResponse();
    const { chunks, text } = await collectChatStream(data);
    expect(text).toBe(MOCK_TEXT);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    const u = SCRIPTED_USAGE.anthropicCache;
    const prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
    expect(last?.usage).toMatchObject({ prompt_tokens: prompt, completion_tokens: u.output_tokens, total_tokens: prompt + u.output_tokens });
    expect(last?.usage?.prompt_tokens_details?.cached_tokens).toBe(u.cache_read_input_tokens);
    expect(chunks.slice(0, -1).filter((c) => c.usage !== undefined && c.usage !== null)).toHaveLength(0);
    expect(chunks.filter((c) => c.choices.length === 0)).toHaveLength(1);
    expect(bodyOf(attemptsOf(id, ant)[0])["stream_options"]).toBeUndefined();
    expect(await usageLine(gw, rid(response))).toMatchObject({
      translated: true,
      input_tokens: u.input_tokens,
      output_tokens: u.output_tokens,
      cache_read_tokens: u.cache_read_input_tokens,
      cache_write_tokens: u.cache_creation_input_tokens,
    });
  });

  test("a streamed tool call: the argument fragments arrive as several deltas on tool call index 0 (id and name first), and the SDK's finalChatCompletion() parses them as JSON", async () => {
    const id = newTestId();
    const stream = openaiSdk(gw).chat.completions.stream(
      { model: "claude", messages: [{ role: "user", content: "Weather in Paris?" }], tools: OPENAI_TOOLS, tool_choice: "auto" },
      { headers: { "x-test-id": id, "x-mock-reply": "tool-call" } },
    );
    const deltas: Array<{ index: number; id?: string | undefined; name?: string | undefined; args?: string | undefined }> = [];
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) deltas.push({ index: tc.index, id: tc.id, name: tc.function?.name, args: tc.function?.arguments });
    }
    const done = await stream.finalChatCompletion();
    expect(done.choices[0]?.finish_reason).toBe("tool_calls");
    expect(done.choices[0]?.message.content).toBe(SCRIPTED_TOOL_PREAMBLE.join(""));
    expect(openaiCalls(done.choices[0]?.message)).toEqual([{ id: SCRIPTED_TOOL_IDS.anthropic[0], name: "get_weather", args: SCRIPTED_ARGS }]);
    expect(deltas[0]).toMatchObject({ index: 0, id: SCRIPTED_TOOL_IDS.anthropic[0], name: "get_weather" });
    expect(deltas.every((d) => d.index === 0)).toBe(true);
    // Streamed as the provider sent it, not gathered into one piece.
    const pieces = deltas.map((d) => d.args ?? "").filter((s) => s !== "");
    expect(pieces.length).toBeGreaterThanOrEqual(2);
    expect(pieces.join("")).toBe(SCRIPTED_ARGS_FRAGMENTS.join(""));
    expect(bodyOf(attemptsOf(id, ant)[0])["tool_choice"]).toMatchObject({ type: "auto" });
  });

  test("two streamed tool calls: indexes 0 and 1 (the tool-call ordinals, not the Anthropic block indexes), both accumulated with valid JSON arguments", async () => {
    const stream = openaiSdk(gw).chat.completions.stream(
      { model: "claude", messages: [{ role: "user", content: "Weather and time?" }], tools: OPENAI_TOOLS },
      { headers: { "x-mock-reply": "two-tool-calls" } },
    );
    const indexes = new Set<number>();
    for await (const chunk of stream) for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) indexes.add(tc.index);
    const done = await stream.finalChatCompletion();
    expect([...indexes].sort()).toEqual([0, 1]);
    expect(openaiCalls(done.choices[0]?.message)).toEqual([
      { id: SCRIPTED_TOOL_IDS.anthropic[0], name: "get_weather", args: SCRIPTED_ARGS },
      { id: SCRIPTED_TOOL_IDS.anthropic[1], name: "get_time", args: SCRIPTED_ARGS2 },
    ]);
  });

  test("stop reasons streamed: max_tokens → length, stop_sequence → stop", async () => {
    const cut = await collectChatStream(
      await openaiSdk(gw).chat.completions.create({ model: "claude", messages: HI, stream: true, max_tokens: 5 }, { headers: { "x-mock-reply": "max-tokens" } }),
    );
    expect(cut.text).toBe(SCRIPTED_TRUNCATED.join(""));
    expect(cut.chunks.map((c) => c.choices[0]?.finish_reason).filter((f) => f !== null && f !== undefined)).toEqual(["length"]);
    const stopped = await collectChatStream(
      await openaiSdk(gw).chat.completions.create({ model: "claude", messages: HI, stream: true, stop: ["4"] }, { headers: { "x-mock-reply": "stop-sequence" } }),
    );
    expect(stopped.text).toBe(SCRIPTED_BEFORE_STOP.join(""));
    expect(stopped.chunks.map((c) => c.choices[0]?.finish_reason).filter((f) => f !== null && f !== undefined)).toEqual(["stop"]);
  });

  test("the streamed request is translated like the JSON one: system, multi-turn, tool result with its id, stream true", async () => {
    const id = newTestId();
    const stream = await openaiSdk(gw).chat.completions.create(
      {
        model: "claude",
        stream: true,
        tools: OPENAI_TOOLS,
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Weather?" },
          { role: "assistant", content: null, tool_calls: [{ id: "call_s1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }] },
          { role: "tool", tool_call_id: "call_s1", content: "-3C" },
        ],
      },
      { headers: { "x-test-id": id } },
    );
    expect((await collectChatStream(stream)).text).toBe(MOCK_TEXT);
    const body = bodyOf(attemptsOf(id, ant)[0]);
    expect(body["stream"]).toBe(true);
    expect(textOf(body["system"])).toBe("Be brief.");
    const msgs = normalisedMessages(body);
    expect(msgs.map((m) => m["role"])).toEqual(["user", "assistant", "user"]);
    expect((msgs[1]?.["content"] as Json[]).find((b) => b["type"] === "tool_use")).toEqual({ type: "tool_use", id: "call_s1", name: "get_weather", input: { city: "Oslo" } });
    const result = (msgs[2]?.["content"] as Json[])[0];
    expect([result?.["type"], result?.["tool_use_id"], textOf(result?.["content"])]).toEqual(["tool_result", "call_s1", "-3C"]);
  });

  test("raw fetch: text/event-stream of data: lines, each a chat.completion.chunk, ending in data: [DONE]; x-beyond-request-id and x-beyond-dropped-params on the head", async () => {
    const r = await rawPost(gw, "/claude/v1/chat/completions", JSON.stringify({ model: "x", messages: HI, stream: true, seed: 3 }));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type") ?? "").toContain("text/event-stream");
    expect(rid(r)).not.toBe("");
    expect(droppedOf(r)).toEqual(["seed"]);
    const text = await r.text();
    const events = parseSse(text);
    expect(events.at(-1)?.data).toBe("[DONE]");
    expect(events.every((e) => e.event === undefined)).toBe(true);
    const chunks = sseJson(text);
    expect(chunks.length).toBeGreaterThanOrEqual(MOCK_DELTAS.length + 2);
    for (const c of chunks) expect(c).toMatchObject({ object: "chat.completion.chunk" });
    expect(chunks.map((c) => ((c["choices"] as Json[])[0]?.["delta"] as Json | undefined)?.["content"] ?? "").join("")).toBe(MOCK_TEXT);
  });

  test("an in-band overloaded_error before content is retried on the same target (commit point unchanged): the client sees one clean translated stream", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw)
      .chat.completions.create({ model: "inband-claude", messages: HI, stream: true, stream_options: { include_usage: true } }, { headers: { "x-test-id": id } })
      .withResponse();
    const { chunks, text } = await collectChatStream(data);
    expect(text).toBe(MOCK_TEXT);
    expect(chunks.filter((c) => c.choices[0]?.delta?.role === "assistant")).toHaveLength(1);
    expect(chunks.filter((c) => c.choices.length === 0)).toHaveLength(1);
    expect(attemptsOf(id, ant).map((r) => seen(r).model)).toEqual(["inband-overload-once-tc", "inband-overload-once-tc"]);
    expect(await usageLine(gw, rid(response))).toMatchObject({ route: "inband-claude", attempts: 2, translated: true, complete: true });
  });

  test("fallback across dialects, streamed: the OpenAI target 503s (untranslated), the Anthropic one answers (translated)", async () => {
    const id = newTestId();
    const { text, chunks } = await collectChatStream(
      await openaiSdk(gw).chat.completions.create({ model: "fb-oai-first", messages: HI, stream: true }, { headers: { "x-test-id": id } }),
    );
    expect(text).toBe(MOCK_TEXT);
    expect(chunks.filter((c) => c.choices[0]?.delta?.role === "assistant")).toHaveLength(1);
    expect(attemptsAcross(id, oai, ant).map((r) => seen(r).path)).toEqual(["/v1/chat/completions", "/v1/messages"]);
  });
});

describe("Anthropic SDK stream → OpenAI-wire target (alias gpt)", () => {
  test("plain text: message_start once and first, text deltas, message_delta (end_turn, usage), message_stop last; the target was asked for include_usage; ai.usage has the provider's counts", async () => {
    const id = newTestId();
    const { data, response } = await anthropicSdk(gw)
      .messages.create({ model: "gpt", max_tokens: 16, messages: HI, stream: true }, { headers: { "x-test-id": id } })
      .withResponse();
    const types: string[] = [];
    let text = "";
    let stop: string | null | undefined;
    let outTokens: number | undefined;
    for await (const ev of data) {
      types.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
      if (ev.type === "message_delta") {
        stop = ev.delta.stop_reason;
        outTokens = ev.usage.output_tokens;
      }
    }
    expect(text).toBe(MOCK_TEXT);
    expect(types[0]).toBe("message_start");
    expect(types.filter((x) => x === "message_start")).toHaveLength(1);
    expect(types.at(-1)).toBe("message_stop");
    expect(types.filter((x) => x === "message_delta")).toHaveLength(1);
    expect(types.indexOf("content_block_start")).toBeLessThan(types.indexOf("content_block_delta"));
    expect(types.lastIndexOf("content_block_stop")).toBeLessThan(types.indexOf("message_delta"));
    expect(stop).toBe("end_turn");
    const u = MOCK_USAGE.openaiSse;
    expect(outTokens).toBe(u.completion_tokens);

    const reqs = attemptsOf(id, oai);
    expect(reqs.map(seen)).toEqual([{ path: "/v1/chat/completions", model: "gpt-t", key: poolKeyOf("openai") }]);
    expect(bodyOf(reqs[0])).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(await usageLine(gw, rid(response))).toMatchObject({
      route: "gpt",
      provider: "openai",
      translated: true,
      stream: true,
      complete: true,
      input_tokens: u.prompt_tokens,
      output_tokens: u.completion_tokens,
    });
  });

  test("MessageStream.finalMessage(): the text, stop_reason end_turn and the provider's usage (input from the usage chunk)", async () => {
    const msg = await anthropicSdk(gw).messages.stream({ model: "gpt", max_tokens: 16, messages: HI }).finalMessage();
    expect(msg.content).toEqual([expect.objectContaining({ type: "text", text: MOCK_TEXT })]);
    expect(msg.stop_reason).toBe("end_turn");
    expect(msg.usage.input_tokens).toBe(MOCK_USAGE.openaiSse.prompt_tokens);
    expect(msg.usage.output_tokens).toBe(MOCK_USAGE.openaiSse.completion_tokens);
  });

  test("a streamed tool call: a tool_use block (the provider's id, the name) with several input_json_delta fragments, and finalMessage() has the parsed input; stop_reason tool_use", async () => {
    const cap = capture();
    const stream = anthropicSdk(gw, { cap }).messages.stream(
      { model: "gpt", max_tokens: 64, messages: [{ role: "user", content: "Weather in Paris?" }], tools: ANTHROPIC_TOOLS },
      { headers: { "x-mock-reply": "tool-call" } },
    );
    const fragments: string[] = [];
    stream.on("streamEvent", (ev) => {
      if (ev.type === "content_block_delta" && ev.delta.type === "input_json_delta") fragments.push(ev.delta.partial_json);
    });
    const msg = await stream.finalMessage();
    expect(msg.stop_reason).toBe("tool_use");
    expect(msg.content.filter((b) => b.type === "tool_use")).toEqual([
      expect.objectContaining({ type: "tool_use", id: SCRIPTED_TOOL_IDS.openai[0], name: "get_weather", input: SCRIPTED_ARGS }),
    ]);
    expect(fragments.filter((f) => f !== "").length).toBeGreaterThanOrEqual(2);
    expect(fragments.join("")).toBe(SCRIPTED_ARGS_FRAGMENTS.join(""));
    expect(cap.last().headers.get("content-type") ?? "").toContain("text/event-stream");
  });

  test("two streamed tool calls: two tool_use blocks at distinct indexes, in order, each closed before the next starts", async () => {
    const stream = anthropicSdk(gw).messages.stream(
      { model: "gpt", max_tokens: 64, messages: [{ role: "user", content: "Weather and time?" }], tools: ANTHROPIC_TOOLS },
      { headers: { "x-mock-reply": "two-tool-calls" } },
    );
    const opened: number[] = [];
    let open = -1;
    let overlapped = false;
    stream.on("streamEvent", (ev) => {
      if (ev.type === "content_block_start") {
        if (open !== -1) overlapped = true;
        open = ev.index;
        opened.push(ev.index);
      }
      if (ev.type === "content_block_stop") open = -1;
    });
    const msg = await stream.finalMessage();
    expect(overlapped).toBe(false);
    expect(new Set(opened).size).toBe(opened.length);
    expect(msg.content.filter((b) => b.type === "tool_use").map((b) => (b.type === "tool_use" ? [b.id, b.name, b.input] : []))).toEqual([
      [SCRIPTED_TOOL_IDS.openai[0], "get_weather", SCRIPTED_ARGS],
      [SCRIPTED_TOOL_IDS.openai[1], "get_time", SCRIPTED_ARGS2],
    ]);
  });

  test("cache usage streamed: finalMessage().usage has input = prompt − cached, cache_read = cached, output; ai.usage the provider's counts", async () => {
    const cap = capture();
    const msg = await anthropicSdk(gw, { cap })
      .messages.stream({ model: "gpt", max_tokens: 16, messages: HI }, { headers: { "x-mock-reply": "cache-usage" } })
      .finalMessage();
    const u = SCRIPTED_USAGE.openaiCache;
    expect(msg.usage.input_tokens).toBe(u.prompt_tokens - u.cached_tokens);
    expect(msg.usage.cache_read_input_tokens).toBe(u.cached_tokens);
    expect(msg.usage.output_tokens).toBe(u.completion_tokens);
    expect(await usageLine(gw, rid(cap.last()))).toMatchObject({
      translated: true,
      stream: true,
      input_tokens: u.prompt_tokens - u.cached_tokens,
      output_tokens: u.completion_tokens,
      cache_read_tokens: u.cached_tokens,
    });
  });

  test("stop reasons streamed: length → max_tokens", async () => {
    const msg = await anthropicSdk(gw).messages.stream({ model: "gpt", max_tokens: 5, messages: HI }, { headers: { "x-mock-reply": "max-tokens" } }).finalMessage();
    expect(msg.stop_reason).toBe("max_tokens");
    expect(msg.content).toEqual([expect.objectContaining({ type: "text", text: SCRIPTED_TRUNCATED.join("") })]);
  });

  test("raw fetch: every event's `event:` name equals its data's type; x-beyond-dropped-params names top_k", async () => {
    const r = await rawPost(gw, "/gpt/v1/messages", JSON.stringify({ model: "x", max_tokens: 16, messages: HI, stream: true, top_k: 5 }), { anthropic: true });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type") ?? "").toContain("text/event-stream");
    expect(droppedOf(r)).toEqual(["top_k"]);
    const events = parseSse(await r.text());
    expect(events.length).toBeGreaterThanOrEqual(6);
    for (const e of events) expect((JSON.parse(e.data) as Json)["type"]).toBe(e.event);
    expect(events[0]?.event).toBe("message_start");
    expect(events.at(-1)?.event).toBe("message_stop");
  });

  test("an in-band error in the OpenAI target's stream before content is retried: the client sees exactly one message_start and the text", async () => {
    const id = newTestId();
    const types: string[] = [];
    let text = "";
    const stream = await anthropicSdk(gw).messages.create({ model: "inband-gpt", max_tokens: 16, messages: HI, stream: true }, { headers: { "x-test-id": id } });
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    expect(text).toBe(MOCK_TEXT);
    expect(types.filter((x) => x === "message_start")).toHaveLength(1);
    expect(types).not.toContain("error");
    expect(attemptsOf(id, oai).map((r) => seen(r).model)).toEqual(["inband-overload-once-tg", "inband-overload-once-tg"]);
  });

  test("fallback across dialects, streamed: the Anthropic target 503s (untranslated), the OpenAI one answers (translated)", async () => {
    const id = newTestId();
    const msg = await anthropicSdk(gw)
      .messages.stream({ model: "fb-ant-first", max_tokens: 16, messages: HI }, { headers: { "x-test-id": id } })
      .finalMessage();
    expect(msg.content).toEqual([expect.objectContaining({ type: "text", text: MOCK_TEXT })]);
    expect(attemptsAcross(id, ant, oai).map((r) => seen(r).path)).toEqual(["/v1/messages", "/v1/chat/completions"]);
    expect(bodyOf(attemptsOf(id, oai)[0])).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });
});
