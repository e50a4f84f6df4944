// End to end, dialect translation without streaming (SPEC §12): a real gateway between the official SDKs (maxRetries 0)
// or raw fetch and the recording mocks, with aliases whose target speaks the other dialect. Both directions: an OpenAI
// SDK client reaching an Anthropic Messages target (the mock receives an Anthropic request at /v1/messages with the
// pool key in x-api-key) and an Anthropic SDK client reaching an OpenAI-wire target (openai, groq). Pins what the
// target receives (system, text, multi-turn, images, tools and tool_choice, tool calls and results with their ids,
// max_tokens and its 4096 default, stop sequences, temperature/top_p, user ↔ metadata.user_id), what the client gets
// back in its own dialect (text, tool calls with valid JSON arguments, finish/stop reasons, usage with cache tokens),
// `x-beyond-dropped-params`, the `ai.usage` line (the provider's exact counts, translated: true, the route, the cost at
// the provider's counts), and mixed chains (the client's dialect decides per target; a failing target falls back
// across dialects). Streams: e2e-translate-stream.test.ts; errors and bad input: e2e-translate-errors.test.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import type { Gateway } from "./helpers/gateway.ts";
import { usageLine } from "./helpers/gateway.ts";
import {
  MOCK_ANTHROPIC_MODEL,
  MOCK_OPENAI_MODEL,
  MOCK_TEXT,
  MOCK_USAGE,
  type MockProvider,
  SCRIPTED_ARGS,
  SCRIPTED_ARGS2,
  SCRIPTED_BEFORE_STOP,
  SCRIPTED_TOOL_IDS,
  SCRIPTED_TOOL_PREAMBLE,
  SCRIPTED_TRUNCATED,
  SCRIPTED_USAGE,
} from "./helpers/mock-provider.ts";
import { tracked } from "./helpers/tracked.ts";
import {
  ANTHROPIC_TOOLS,
  anthropicSdk,
  attemptsAcross,
  bodyOf,
  CLAUDE_T_PRICE,
  droppedOf,
  IMAGE_URL,
  type Json,
  normalisedMessages,
  OPENAI_TOOLS,
  openaiSdk,
  PNG_1x1,
  rawPost,
  rid,
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
/** Anthropic sampling fields (the API's; not in this SDK version's types, so spread in). */
const SAMPLING = { temperature: 0.2, top_p: 0.8 };

/** The one upstream request a test id caused on `mock` (fails when there were more or none). */
function onlyAttempt(id: string, mock: MockProvider): Json {
  const reqs = attemptsOf(id, mock);
  expect(reqs).toHaveLength(1);
  return bodyOf(reqs[0]);
}

/** An OpenAI message's function tool calls as {id, name, args (parsed)}; throws on arguments that are not JSON. */
function openaiCalls(msg: object | undefined): Array<{ id: string; name: string; args: unknown }> {
  const calls = ((msg as { tool_calls?: Json[] | null } | undefined)?.tool_calls ?? []) as Json[];
  return calls.map((c) => {
    const fn = c["function"] as { name: string; arguments: string };
    expect(c["type"]).toBe("function");
    return { id: String(c["id"]), name: fn.name, args: JSON.parse(fn.arguments) as unknown };
  });
}

describe("OpenAI SDK → Anthropic target (alias claude → anthropic/claude-t)", () => {
  test("plain text: the mock gets POST /v1/messages with the pool key in x-api-key, anthropic-version 2023-06-01, model claude-t, max_tokens 4096; the client gets a chat.completion", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw)
      .chat.completions.create({ model: "claude", messages: HI }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]?.message.role).toBe("assistant");
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(data.choices[0]?.finish_reason).toBe("stop");
    const u = MOCK_USAGE.anthropicJson;
    expect(data.usage).toMatchObject({ prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens, total_tokens: u.input_tokens + u.output_tokens });
    expect(droppedOf(response)).toBeNull();

    const reqs = attemptsOf(id, ant);
    expect(reqs.map(seen)).toEqual([{ path: "/v1/messages", model: "claude-t", key: poolKeyOf("anthropic") }]);
    const r = reqs[0];
    expect(r?.method).toBe("POST");
    expect(r?.headers["x-api-key"]).toBe(poolKeyOf("anthropic"));
    expect(r?.headers["authorization"]).toBeUndefined();
    expect(r?.headers["anthropic-version"]).toBe("2023-06-01");
    // The body is the translator's JSON, sent with its exact length.
    expect(r?.headers["content-length"]).toBe(String(r?.body.length));
    const body = bodyOf(r);
    expect(body["max_tokens"]).toBe(4096);
    expect(body["stream"] === undefined || body["stream"] === false).toBe(true);
    expect(normalisedMessages(body)).toEqual([{ role: "user", content: [{ type: "text", text: "hi" }] }]);
    expect(attemptsOf(id, oai)).toHaveLength(0);

    const line = await usageLine(gw, rid(response));
    expect(line).toMatchObject({
      route: "claude",
      provider: "anthropic",
      model: MOCK_ANTHROPIC_MODEL,
      requested_model: "claude",
      translated: true,
      stream: false,
      status: 200,
      input_tokens: u.input_tokens,
      output_tokens: u.output_tokens,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
    });
  });

  test("system and developer messages join into Anthropic `system`; temperature, top_p, max_completion_tokens, stop and user carried; the echo reply shows the client what the mock received", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw)
      .chat.completions.create(
        {
          model: "claude",
          messages: [
            { role: "system", content: "You are terse." },
            { role: "developer", content: "Answer in French." },
            { role: "user", content: "Bonjour" },
          ],
          temperature: 0.3,
          top_p: 0.9,
          max_completion_tokens: 77,
          stop: ["END", "STOP"],
          user: "user-42",
        },
        { headers: { "x-test-id": id, "x-mock-reply": "echo" } },
      )
      .withResponse();
    const body = onlyAttempt(id, ant);
    const system = textOf(body["system"]);
    expect(system).toContain("You are terse.");
    expect(system).toContain("Answer in French.");
    expect(system.indexOf("You are terse.")).toBeLessThan(system.indexOf("Answer in French."));
    expect(normalisedMessages(body)).toEqual([{ role: "user", content: [{ type: "text", text: "Bonjour" }] }]);
    expect(body).toMatchObject({ model: "claude-t", temperature: 0.3, top_p: 0.9, max_tokens: 77, stop_sequences: ["END", "STOP"], metadata: { user_id: "user-42" } });
    // Nothing of the other dialect leaks through.
    for (const k of ["max_completion_tokens", "stop", "user"]) expect(body[k]).toBeUndefined();
    // The echo: the reply's text is the JSON the mock received, relayed to the client verbatim inside its own dialect.
    expect(JSON.parse(data.choices[0]?.message.content ?? "null")).toEqual(body);
    expect(droppedOf(response)).toBeNull();
  });

  test("multi-turn: user, assistant, user keep their order, roles and texts; a string stop becomes a one-element stop_sequences", async () => {
    const id = newTestId();
    await openaiSdk(gw).chat.completions.create(
      {
        model: "claude",
        messages: [
          { role: "user", content: "What is 2+2?" },
          { role: "assistant", content: "4" },
          { role: "user", content: [{ type: "text", text: "And 3+3?" }] },
        ],
        stop: "END",
      },
      { headers: { "x-test-id": id } },
    );
    const body = onlyAttempt(id, ant);
    expect(normalisedMessages(body)).toEqual([
      { role: "user", content: [{ type: "text", text: "What is 2+2?" }] },
      { role: "assistant", content: [{ type: "text", text: "4" }] },
      { role: "user", content: [{ type: "text", text: "And 3+3?" }] },
    ]);
    expect(body["stop_sequences"]).toEqual(["END"]);
  });

  test("tools and tool_choice required: the mock gets input_schema tools and {type: any}; the tool call comes back as tool_calls with the provider's id and valid JSON arguments, finish_reason tool_calls", async () => {
    const id = newTestId();
    const { data } = await openaiSdk(gw)
      .chat.completions.create(
        { model: "claude", messages: [{ role: "user", content: "Weather in Paris?" }], tools: OPENAI_TOOLS, tool_choice: "required" },
        { headers: { "x-test-id": id, "x-mock-reply": "tool-call" } },
      )
      .withResponse();
    const body = onlyAttempt(id, ant);
    expect(body["tools"]).toEqual(ANTHROPIC_TOOLS);
    expect(body["tool_choice"]).toMatchObject({ type: "any" });
    const choice = data.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    expect(choice?.message.content).toBe(SCRIPTED_TOOL_PREAMBLE.join(""));
    expect(openaiCalls(choice?.message)).toEqual([{ id: SCRIPTED_TOOL_IDS.anthropic[0], name: "get_weather", args: SCRIPTED_ARGS }]);
  });

  test("tool_choice auto, none and a named function map to {type: auto}, {type: none}, {type: tool, name}", async () => {
    const cases: Array<[unknown, Json]> = [
      ["auto", { type: "auto" }],
      ["none", { type: "none" }],
      [{ type: "function", function: { name: "get_time" } }, { type: "tool", name: "get_time" }],
    ];
    for (const [choice, expected] of cases) {
      const id = newTestId();
      const r = await rawPost(gw, "/v1/chat/completions", JSON.stringify({ model: "claude", messages: HI, tools: OPENAI_TOOLS, tool_choice: choice }), { id });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      expect(onlyAttempt(id, ant)["tool_choice"]).toMatchObject(expected);
    }
  });

  test("two parallel tool calls come back as two tool_calls in order, each with its id, name and arguments", async () => {
    const id = newTestId();
    const data = await openaiSdk(gw).chat.completions.create(
      { model: "claude", messages: [{ role: "user", content: "Weather and time in Paris?" }], tools: OPENAI_TOOLS },
      { headers: { "x-test-id": id, "x-mock-reply": "two-tool-calls" } },
    );
    expect(data.choices[0]?.finish_reason).toBe("tool_calls");
    expect(openaiCalls(data.choices[0]?.message)).toEqual([
      { id: SCRIPTED_TOOL_IDS.anthropic[0], name: "get_weather", args: SCRIPTED_ARGS },
      { id: SCRIPTED_TOOL_IDS.anthropic[1], name: "get_time", args: SCRIPTED_ARGS2 },
    ]);
  });

  test("tool result round trip: the assistant's tool_calls become tool_use blocks (id kept, arguments parsed into input) and the tool messages one user turn of tool_result blocks with the same ids", async () => {
    const id = newTestId();
    await openaiSdk(gw).chat.completions.create(
      {
        model: "claude",
        tools: OPENAI_TOOLS,
        messages: [
          { role: "user", content: "Weather and time in Paris?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "call_abc", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
              { id: "call_def", type: "function", function: { name: "get_time", arguments: '{"city":"Paris"}' } },
            ],
          },
          { role: "tool", tool_call_id: "call_abc", content: "18C and sunny" },
          { role: "tool", tool_call_id: "call_def", content: "14:05" },
        ],
      },
      { headers: { "x-test-id": id } },
    );
    const msgs = normalisedMessages(onlyAttempt(id, ant));
    expect(msgs).toHaveLength(3);
    expect(msgs[1]?.["role"]).toBe("assistant");
    const uses = (msgs[1]?.["content"] as Json[]).filter((b) => b["type"] === "tool_use");
    expect(uses).toEqual([
      { type: "tool_use", id: "call_abc", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "call_def", name: "get_time", input: { city: "Paris" } },
    ]);
    expect(msgs[2]?.["role"]).toBe("user");
    const results = msgs[2]?.["content"] as Json[];
    expect(results.map((b) => [b["type"], b["tool_use_id"], textOf(b["content"])])).toEqual([
      ["tool_result", "call_abc", "18C and sunny"],
      ["tool_result", "call_def", "14:05"],
    ]);
  });

  test("images: a data URL becomes a base64 image source with its media type, an http URL a url source; the text part stays beside them", async () => {
    const id = newTestId();
    await openaiSdk(gw).chat.completions.create(
      {
        model: "claude",
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Compare these." },
              { type: "image_url", image_url: { url: `data:image/png;base64,${PNG_1x1}` } },
              { type: "image_url", image_url: { url: IMAGE_URL } },
            ],
          },
        ],
      },
      { headers: { "x-test-id": id } },
    );
    expect(normalisedMessages(onlyAttempt(id, ant))).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "Compare these." },
          { type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1x1 } },
          { type: "image", source: { type: "url", url: IMAGE_URL } },
        ],
      },
    ]);
  });

  test("stop reasons: max_tokens → finish_reason length (and the client's max_tokens is the target's), stop_sequence → stop", async () => {
    const id = newTestId();
    const cut = await openaiSdk(gw).chat.completions.create({ model: "claude", messages: HI, max_tokens: 5 }, { headers: { "x-test-id": id, "x-mock-reply": "max-tokens" } });
    expect(cut.choices[0]?.finish_reason).toBe("length");
    expect(cut.choices[0]?.message.content).toBe(SCRIPTED_TRUNCATED.join(""));
    expect(onlyAttempt(id, ant)["max_tokens"]).toBe(5);

    const id2 = newTestId();
    const stopped = await openaiSdk(gw).chat.completions.create(
      { model: "claude", messages: HI, stop: ["4"] },
      { headers: { "x-test-id": id2, "x-mock-reply": "stop-sequence" } },
    );
    expect(stopped.choices[0]?.finish_reason).toBe("stop");
    expect(stopped.choices[0]?.message.content).toBe(SCRIPTED_BEFORE_STOP.join(""));
    expect(onlyAttempt(id2, ant)["stop_sequences"]).toEqual(["4"]);
  });

  test("cache usage: prompt_tokens = input + cache read + cache write, cached_tokens = cache read; ai.usage has the provider's own four counts and the cost at them", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw)
      .chat.completions.create({ model: "claude", messages: HI }, { headers: { "x-test-id": id, "x-mock-reply": "cache-usage" } })
      .withResponse();
    const u = SCRIPTED_USAGE.anthropicCache;
    const prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
    expect(data.usage?.prompt_tokens).toBe(prompt);
    expect(data.usage?.completion_tokens).toBe(u.output_tokens);
    expect(data.usage?.total_tokens).toBe(prompt + u.output_tokens);
    expect(data.usage?.prompt_tokens_details?.cached_tokens).toBe(u.cache_read_input_tokens);
    const line = await usageLine(gw, rid(response));
    expect(line).toMatchObject({
      route: "claude",
      provider: "anthropic",
      translated: true,
      input_tokens: u.input_tokens,
      output_tokens: u.output_tokens,
      cache_read_tokens: u.cache_read_input_tokens,
      cache_write_tokens: u.cache_creation_input_tokens,
    });
    const micros =
      u.input_tokens * CLAUDE_T_PRICE.input +
      u.output_tokens * CLAUDE_T_PRICE.output +
      u.cache_read_input_tokens * CLAUDE_T_PRICE.cache_read +
      u.cache_creation_input_tokens * CLAUDE_T_PRICE.cache_write;
    expect(line["cost_usd_micros"]).toBe(Math.floor(micros + 0.5));
  });

  test("x-beyond-dropped-params names every OpenAI field with no Anthropic counterpart, and none of them reaches the target", async () => {
    const id = newTestId();
    const dropped = ["frequency_penalty", "logit_bias", "presence_penalty", "seed"];
    const { response } = await openaiSdk(gw)
      .chat.completions.create(
        { model: "claude", messages: HI, frequency_penalty: 0.5, presence_penalty: 0.25, seed: 7, logit_bias: { "50256": -100 }, temperature: 0.5 },
        { headers: { "x-test-id": id } },
      )
      .withResponse();
    expect(droppedOf(response)).toEqual(dropped);
    const body = onlyAttempt(id, ant);
    for (const k of dropped) expect(body[k]).toBeUndefined();
    expect(body["temperature"]).toBe(0.5);
  });

  test("path alias /claude/v1/chat/completions: the body's own model is replaced by the target's; requested_model is the body's", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw, { pathAlias: "claude" })
      .chat.completions.create({ model: "anything-the-app-says", messages: HI }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(attemptsOf(id, ant).map(seen)).toEqual([{ path: "/v1/messages", model: "claude-t", key: poolKeyOf("anthropic") }]);
    expect(await usageLine(gw, rid(response))).toMatchObject({ route: "claude", requested_model: "anything-the-app-says", translated: true });
  });

  test("raw fetch: a JSON chat.completion with x-beyond-request-id; an anthropic-version the client sent itself is kept", async () => {
    const id = newTestId();
    const r = await rawPost(gw, "/v1/chat/completions", JSON.stringify({ model: "claude", messages: HI }), { id, headers: { "anthropic-version": "2023-01-01" } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type") ?? "").toContain("application/json");
    expect(rid(r)).not.toBe("");
    const j = (await r.json()) as Json;
    expect(j).toMatchObject({ object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: MOCK_TEXT }, finish_reason: "stop" }] });
    expect(typeof j["id"]).toBe("string");
    expect(typeof j["created"]).toBe("number");
    expect(attemptsOf(id, ant)[0]?.headers["anthropic-version"]).toBe("2023-01-01");
    expect((await gw.accessLog(rid(r)))["status"]).toBe(200);
  });
});

describe("Anthropic SDK → OpenAI-wire target (alias gpt → openai/gpt-t)", () => {
  test("plain text: the mock gets POST /v1/chat/completions with the pool key as Bearer and model gpt-t; the client gets an Anthropic message", async () => {
    const id = newTestId();
    const { data, response } = await anthropicSdk(gw)
      .messages.create({ model: "gpt", max_tokens: 16, messages: HI }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.type).toBe("message");
    expect(data.role).toBe("assistant");
    expect(data.content).toEqual([expect.objectContaining({ type: "text", text: MOCK_TEXT })]);
    expect(data.stop_reason).toBe("end_turn");
    const u = MOCK_USAGE.openaiJson;
    expect(data.usage.input_tokens).toBe(u.prompt_tokens);
    expect(data.usage.output_tokens).toBe(u.completion_tokens);
    expect(droppedOf(response)).toBeNull();

    const reqs = attemptsOf(id, oai);
    expect(reqs.map(seen)).toEqual([{ path: "/v1/chat/completions", model: "gpt-t", key: poolKeyOf("openai") }]);
    expect(reqs[0]?.headers["authorization"]).toBe(`Bearer ${poolKeyOf("openai")}`);
    expect(reqs[0]?.headers["x-api-key"]).toBeUndefined();
    expect(reqs[0]?.headers["content-length"]).toBe(String(reqs[0]?.body.length));
    const body = bodyOf(reqs[0]);
    expect(body["max_tokens"] ?? body["max_completion_tokens"]).toBe(16);
    expect(normalisedMessages(body)).toEqual([{ role: "user", content: [{ type: "text", text: "hi" }] }]);
    expect(attemptsOf(id, ant)).toHaveLength(0);

    expect(await usageLine(gw, rid(response))).toMatchObject({
      route: "gpt",
      provider: "openai",
      model: MOCK_OPENAI_MODEL,
      requested_model: "gpt",
      translated: true,
      stream: false,
      status: 200,
      input_tokens: u.prompt_tokens,
      output_tokens: u.completion_tokens,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
    });
  });

  test("system (string, and as text blocks) becomes a leading system message; temperature, top_p, stop_sequences and metadata.user_id carried; the echo reply shows the client what the mock received", async () => {
    for (const system of ["Be terse.", [{ type: "text" as const, text: "Be terse." }]]) {
      const id = newTestId();
      const data = await anthropicSdk(gw).messages.create(
        // temperature and top_p are not in this SDK version's types, but the API takes them (spread: no excess check).
        { model: "gpt", max_tokens: 32, system, messages: HI, ...SAMPLING, stop_sequences: ["END"], metadata: { user_id: "user-7" } },
        { headers: { "x-test-id": id, "x-mock-reply": "echo" } },
      );
      const body = onlyAttempt(id, oai);
      const msgs = normalisedMessages(body);
      expect(msgs[0]?.["role"]).toBe("system");
      expect(textOf(msgs[0]?.["content"])).toBe("Be terse.");
      expect(msgs.slice(1)).toEqual([{ role: "user", content: [{ type: "text", text: "hi" }] }]);
      expect(body).toMatchObject({ model: "gpt-t", temperature: 0.2, top_p: 0.8, user: "user-7" });
      expect(body["stop"] === "END" || JSON.stringify(body["stop"]) === '["END"]').toBe(true);
      for (const k of ["system", "stop_sequences", "metadata"]) expect(body[k]).toBeUndefined();
      const block = data.content[0];
      expect(JSON.parse(block?.type === "text" ? block.text : "null")).toEqual(body);
    }
  });

  test("multi-turn: user, assistant, user keep their order, roles and texts", async () => {
    const id = newTestId();
    await anthropicSdk(gw).messages.create(
      {
        model: "gpt",
        max_tokens: 16,
        messages: [
          { role: "user", content: "What is 2+2?" },
          { role: "assistant", content: [{ type: "text", text: "4" }] },
          { role: "user", content: "And 3+3?" },
        ],
      },
      { headers: { "x-test-id": id } },
    );
    expect(normalisedMessages(onlyAttempt(id, oai))).toEqual([
      { role: "user", content: [{ type: "text", text: "What is 2+2?" }] },
      { role: "assistant", content: [{ type: "text", text: "4" }] },
      { role: "user", content: [{ type: "text", text: "And 3+3?" }] },
    ]);
  });

  test("tools and tool_choice any: the mock gets function tools with JSON-schema parameters and tool_choice required; the tool call comes back as a tool_use block with the provider's id and parsed input, stop_reason tool_use", async () => {
    const id = newTestId();
    const data = await anthropicSdk(gw).messages.create(
      { model: "gpt", max_tokens: 64, messages: [{ role: "user", content: "Weather in Paris?" }], tools: ANTHROPIC_TOOLS, tool_choice: { type: "any" } },
      { headers: { "x-test-id": id, "x-mock-reply": "tool-call" } },
    );
    const body = onlyAttempt(id, oai);
    expect(body["tools"]).toEqual(OPENAI_TOOLS.map((x) => ({ type: "function", function: x.function })));
    expect(body["tool_choice"]).toBe("required");
    expect(data.stop_reason).toBe("tool_use");
    const uses = data.content.filter((b) => b.type === "tool_use");
    expect(uses).toEqual([expect.objectContaining({ type: "tool_use", id: SCRIPTED_TOOL_IDS.openai[0], name: "get_weather", input: SCRIPTED_ARGS })]);
    // The OpenAI reply had content null: no empty text block is invented.
    expect(data.content.filter((b) => b.type === "text" && b.text === "")).toHaveLength(0);
  });

  test("tool_choice auto, none and tool map to auto, none and a named function", async () => {
    const cases: Array<[Json, unknown]> = [
      [{ type: "auto" }, "auto"],
      [{ type: "none" }, "none"],
      [{ type: "tool", name: "get_time" }, { type: "function", function: { name: "get_time" } }],
    ];
    for (const [choice, expected] of cases) {
      const id = newTestId();
      const r = await rawPost(gw, "/v1/messages", JSON.stringify({ model: "gpt", max_tokens: 8, messages: HI, tools: ANTHROPIC_TOOLS, tool_choice: choice }), { id, anthropic: true });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      expect(onlyAttempt(id, oai)["tool_choice"]).toEqual(expected);
    }
  });

  test("two parallel tool calls come back as two tool_use blocks in order", async () => {
    const id = newTestId();
    const data = await anthropicSdk(gw).messages.create(
      { model: "gpt", max_tokens: 64, messages: [{ role: "user", content: "Weather and time?" }], tools: ANTHROPIC_TOOLS },
      { headers: { "x-test-id": id, "x-mock-reply": "two-tool-calls" } },
    );
    expect(data.stop_reason).toBe("tool_use");
    expect(data.content.filter((b) => b.type === "tool_use").map((b) => (b.type === "tool_use" ? [b.id, b.name, b.input] : []))).toEqual([
      [SCRIPTED_TOOL_IDS.openai[0], "get_weather", SCRIPTED_ARGS],
      [SCRIPTED_TOOL_IDS.openai[1], "get_time", SCRIPTED_ARGS2],
    ]);
  });

  test("tool result round trip: tool_use blocks become tool_calls (id kept, input as JSON text) and tool_result blocks tool messages with the same ids", async () => {
    const id = newTestId();
    await anthropicSdk(gw).messages.create(
      {
        model: "gpt",
        max_tokens: 64,
        tools: ANTHROPIC_TOOLS,
        messages: [
          { role: "user", content: "Weather and time in Paris?" },
          {
            role: "assistant",
            content: [
              { type: "text", text: "Checking." },
              { type: "tool_use", id: "toolu_abc", name: "get_weather", input: { city: "Paris" } },
              { type: "tool_use", id: "toolu_def", name: "get_time", input: { city: "Paris" } },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_abc", content: "18C and sunny" },
              { type: "tool_result", tool_use_id: "toolu_def", content: [{ type: "text", text: "14:05" }] },
            ],
          },
        ],
      },
      { headers: { "x-test-id": id } },
    );
    const msgs = normalisedMessages(onlyAttempt(id, oai));
    const assistant = msgs.find((m) => m["role"] === "assistant");
    expect(textOf(assistant?.["content"])).toBe("Checking.");
    const calls = (assistant?.["tool_calls"] as Json[]).map((c) => {
      const fn = c["function"] as { name: string; arguments: string };
      return [c["id"], c["type"], fn.name, JSON.parse(fn.arguments) as unknown];
    });
    expect(calls).toEqual([
      ["toolu_abc", "function", "get_weather", { city: "Paris" }],
      ["toolu_def", "function", "get_time", { city: "Paris" }],
    ]);
    const tools = msgs.filter((m) => m["role"] === "tool").map((m) => [m["tool_call_id"], textOf(m["content"])]);
    expect(tools).toEqual([
      ["toolu_abc", "18C and sunny"],
      ["toolu_def", "14:05"],
    ]);
    // The tool messages follow the assistant turn directly.
    expect(msgs.map((m) => m["role"])).toEqual(["user", "assistant", "tool", "tool"]);
  });

  test("images: a base64 source becomes a data URL image_url, a url source an http image_url", async () => {
    const id = newTestId();
    await anthropicSdk(gw).messages.create(
      {
        model: "gpt",
        max_tokens: 16,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Compare these." },
              { type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1x1 } },
              { type: "image", source: { type: "url", url: IMAGE_URL } },
            ],
          },
        ],
      },
      { headers: { "x-test-id": id } },
    );
    const parts = normalisedMessages(onlyAttempt(id, oai))[0]?.["content"] as Json[];
    expect(parts.map((p) => [p["type"], p["type"] === "text" ? p["text"] : (p["image_url"] as Json)["url"]])).toEqual([
      ["text", "Compare these."],
      ["image_url", `data:image/png;base64,${PNG_1x1}`],
      ["image_url", IMAGE_URL],
    ]);
  });

  test("stop reasons: finish length → max_tokens, a stop-sequence finish (OpenAI says stop) → end_turn", async () => {
    const cut = await anthropicSdk(gw).messages.create({ model: "gpt", max_tokens: 5, messages: HI }, { headers: { "x-mock-reply": "max-tokens" } });
    expect(cut.stop_reason).toBe("max_tokens");
    expect(cut.content).toEqual([expect.objectContaining({ type: "text", text: SCRIPTED_TRUNCATED.join("") })]);
    const stopped = await anthropicSdk(gw).messages.create({ model: "gpt", max_tokens: 16, messages: HI, stop_sequences: ["4"] }, { headers: { "x-mock-reply": "stop-sequence" } });
    expect(stopped.stop_reason).toBe("end_turn");
  });

  test("cache usage: input_tokens = prompt − cached, cache_read_input_tokens = cached; ai.usage has the provider's counts", async () => {
    const { data, response } = await anthropicSdk(gw)
      .messages.create({ model: "gpt", max_tokens: 16, messages: HI }, { headers: { "x-mock-reply": "cache-usage" } })
      .withResponse();
    const u = SCRIPTED_USAGE.openaiCache;
    expect(data.usage.input_tokens).toBe(u.prompt_tokens - u.cached_tokens);
    expect(data.usage.cache_read_input_tokens).toBe(u.cached_tokens);
    expect(data.usage.output_tokens).toBe(u.completion_tokens);
    expect(await usageLine(gw, rid(response))).toMatchObject({
      route: "gpt",
      provider: "openai",
      translated: true,
      input_tokens: u.prompt_tokens - u.cached_tokens,
      output_tokens: u.completion_tokens,
      cache_read_tokens: u.cached_tokens,
      cache_write_tokens: 0,
    });
  });

  test("x-beyond-dropped-params names every Anthropic field with no OpenAI counterpart (top_k), and it does not reach the target", async () => {
    const id = newTestId();
    const { response } = await anthropicSdk(gw)
      .messages.create({ model: "gpt", max_tokens: 16, messages: HI, ...{ top_k: 40, temperature: 0.5 } }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(droppedOf(response)).toEqual(["top_k"]);
    const body = onlyAttempt(id, oai);
    expect(body["top_k"]).toBeUndefined();
    expect(body["temperature"]).toBe(0.5);
  });

  test("groq target (alias llama, path alias): the mock gets groq's base path /openai/v1/chat/completions with groq's pool key", async () => {
    const id = newTestId();
    const data = await anthropicSdk(gw, { pathAlias: "llama" }).messages.create({ model: "whatever", max_tokens: 16, messages: HI }, { headers: { "x-test-id": id } });
    expect(data.content).toEqual([expect.objectContaining({ type: "text", text: MOCK_TEXT })]);
    expect(attemptsOf(id, oai).map(seen)).toEqual([{ path: "/openai/v1/chat/completions", model: "llama-t", key: poolKeyOf("groq") }]);
  });

  test("raw fetch: a JSON Anthropic message with x-beyond-request-id", async () => {
    const r = await rawPost(gw, "/v1/messages", JSON.stringify({ model: "gpt", max_tokens: 16, messages: HI }), { anthropic: true });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type") ?? "").toContain("application/json");
    expect(rid(r)).not.toBe("");
    const j = (await r.json()) as Json;
    expect(j).toMatchObject({ type: "message", role: "assistant", content: [{ type: "text", text: MOCK_TEXT }], stop_reason: "end_turn" });
    expect(typeof j["id"]).toBe("string");
    expect(j["stop_sequence"] ?? null).toBeNull();
  });
});

describe("mixed chains: the client's dialect decides per target", () => {
  test("Anthropic client on [anthropic, openai]: the Anthropic target is forwarded as today (bytes unchanged but the model), not translated", async () => {
    const id = newTestId();
    const sent = JSON.stringify({ model: "mixed", max_tokens: 16, messages: HI, top_k: 3 });
    const r = await rawPost(gw, "/v1/messages", sent, { id, anthropic: true });
    expect(r.status).toBe(200);
    expect(((await r.json()) as Json)["content"]).toEqual([{ type: "text", text: MOCK_TEXT }]);
    const reqs = attemptsOf(id, ant);
    expect(reqs.map(seen)).toEqual([{ path: "/v1/messages", model: "claude-mix", key: poolKeyOf("anthropic") }]);
    expect(new TextDecoder().decode(reqs[0]?.body)).toBe(sent.replace('"mixed"', '"claude-mix"'));
    expect(droppedOf(r)).toBeNull();
    const line = await usageLine(gw, rid(r));
    expect(line).toMatchObject({ route: "mixed", provider: "anthropic" });
    expect(line["translated"] === undefined || line["translated"] === false).toBe(true);
  });

  test("OpenAI client on [anthropic, openai]: the Anthropic target is translated", async () => {
    const id = newTestId();
    const data = await openaiSdk(gw).chat.completions.create({ model: "mixed", messages: HI }, { headers: { "x-test-id": id } });
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(attemptsOf(id, ant).map(seen)).toEqual([{ path: "/v1/messages", model: "claude-mix", key: poolKeyOf("anthropic") }]);
    expect(bodyOf(attemptsOf(id, ant)[0])["max_tokens"]).toBe(4096);
  });

  test("Anthropic client: the Anthropic target answers 503 (forwarded untranslated), the OpenAI target answers (translated); one clean Anthropic message, fallback_reason 5xx", async () => {
    const id = newTestId();
    const { data, response } = await anthropicSdk(gw)
      .messages.create({ model: "fb-ant-first", max_tokens: 16, messages: HI }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.content).toEqual([expect.objectContaining({ type: "text", text: MOCK_TEXT })]);
    expect(attemptsAcross(id, ant, oai).map(seen)).toEqual([
      { path: "/v1/messages", model: "always-503-fa", key: poolKeyOf("anthropic") },
      { path: "/v1/chat/completions", model: "gpt-fa", key: poolKeyOf("openai") },
    ]);
    expect(bodyOf(attemptsOf(id, ant)[0])["max_tokens"]).toBe(16);
    expect(await usageLine(gw, rid(response))).toMatchObject({ route: "fb-ant-first", provider: "openai", fallback_reason: "5xx", translated: true });
  });

  test("OpenAI client: the OpenAI target answers 503 (untranslated), the Anthropic target answers (translated); one clean chat.completion", async () => {
    const id = newTestId();
    const { data, response } = await openaiSdk(gw)
      .chat.completions.create({ model: "fb-oai-first", messages: HI }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(attemptsAcross(id, oai, ant).map(seen)).toEqual([
      { path: "/v1/chat/completions", model: "always-503-fo", key: poolKeyOf("openai") },
      { path: "/v1/messages", model: "claude-fo", key: poolKeyOf("anthropic") },
    ]);
    expect(await usageLine(gw, rid(response))).toMatchObject({ route: "fb-oai-first", provider: "anthropic", fallback_reason: "5xx", translated: true });
  });

  test("a target that 500s once (one attempt per target) falls over to the next across dialects, both ways", async () => {
    const id = newTestId();
    const a = await openaiSdk(gw).chat.completions.create({ model: "once500-ant", messages: HI }, { headers: { "x-test-id": id } });
    expect(a.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(attemptsAcross(id, ant, oai).map((r) => seen(r).model)).toEqual(["fail-once-500-ta", "gpt-once"]);
    const id2 = newTestId();
    const b = await anthropicSdk(gw).messages.create({ model: "once500-oai", max_tokens: 16, messages: HI }, { headers: { "x-test-id": id2 } });
    expect(b.content).toEqual([expect.objectContaining({ type: "text", text: MOCK_TEXT })]);
    expect(attemptsAcross(id2, oai, ant).map((r) => seen(r).model)).toEqual(["fail-once-500-to", "claude-once"]);
  });
});
