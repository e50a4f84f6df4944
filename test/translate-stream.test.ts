// Streaming translation (SPEC §12) on its own: recorded-style provider streams (test/fixtures/translate/stream/,
// written from the providers' documented event formats) against golden translations, random chunkings against the
// whole-stream feed, and the translated bytes fed to the other official SDK's own stream accumulator
// (ChatCompletionStream / MessageStream through a fetch that answers with them), which must yield the text, valid
// JSON tool arguments, the stop reason and the usage.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { streamTranslator } from "../src/translate/stream.ts";
import type { Dialect, StreamTranslator } from "../src/translate/types.ts";
import { mulberry32 } from "./helpers/random.ts";

const FIXTURES = new URL("./fixtures/translate/stream/", import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

function fixture(name: string): Uint8Array {
  return readFileSync(FIXTURES + name);
}

/** `created` is the translation's clock (OpenAI chunks): goldens hold 0. */
function normalise(s: string): string {
  return s.replace(/"created":\d+/g, '"created":0');
}

function translator(client: Dialect, includeUsage = false, model = "alias-model"): StreamTranslator {
  return streamTranslator(client, { includeUsage, model });
}

/** Feeds chunks; returns each push's output (and end()'s last). */
function feed(t: StreamTranslator, chunks: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunks) out.push(t.push(c));
  out.push(t.end());
  return out;
}

function text(pieces: Uint8Array[]): string {
  let s = "";
  for (const p of pieces) s += dec.decode(p, { stream: true });
  return s + dec.decode();
}

function translateWhole(client: Dialect, input: Uint8Array, includeUsage = false): string {
  return text(feed(translator(client, includeUsage), [input]));
}


/** Random cuts, chunk sizes from 1 byte up to the whole stream (a seed picks the largest size too). */
function randomChunks(bytes: Uint8Array, seed: number): Uint8Array[] {
  const next = mulberry32(seed);
  const max = 1 + Math.floor(next() * bytes.length);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(next() * max);
    chunks.push(bytes.slice(i, i + n));
    i += n;
  }
  return chunks;
}

function aev(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}
function odata(data: Record<string, unknown>): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

/** Parsed client events of a translated stream: [event name ("" for none), data]. */
function events(s: string): [string, string][] {
  const out: [string, string][] = [];
  for (const block of s.split("\n\n")) {
    if (block === "") continue;
    let name = "";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) name = line.slice(7);
      else if (line.startsWith("data: ")) data = line.slice(6);
    }
    out.push([name, data]);
  }
  return out;
}

function sseResponse(pieces: Uint8Array[]): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of pieces) if (p.length > 0) c.enqueue(p);
      c.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
}

/** The official openai SDK's streaming helper over the given bytes (as if the gateway had sent them). */
async function openaiFinal(pieces: Uint8Array[]) {
  const client = new OpenAI({ apiKey: "sk-test", baseURL: "http://translate.invalid/v1", maxRetries: 0, fetch: async () => sseResponse(pieces) });
  const stream = client.chat.completions.stream({
    model: "alias-model",
    messages: [{ role: "user", content: "hi" }],
    stream_options: { include_usage: true },
    tools: [
      { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } } } } },
      { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } },
    ],
  });
  return stream.finalChatCompletion();
}

/** The official Anthropic SDK's MessageStream over the given bytes. */
async function anthropicFinal(pieces: Uint8Array[]) {
  const client = new Anthropic({ apiKey: "sk-ant-test", baseURL: "http://translate.invalid", maxRetries: 0, fetch: async () => sseResponse(pieces) });
  return client.messages.stream({ model: "alias-model", max_tokens: 100, messages: [{ role: "user", content: "hi" }] }).finalMessage();
}

const GOLDEN: { input: string; client: Dialect; includeUsage: boolean; expected: string }[] = [
  { input: "anthropic-text", client: "openai", includeUsage: true, expected: "anthropic-text.to-openai.sse" },
  { input: "anthropic-text", client: "openai", includeUsage: false, expected: "anthropic-text.to-openai-nousage.sse" },
  { input: "anthropic-tools", client: "openai", includeUsage: true, expected: "anthropic-tools.to-openai.sse" },
  { input: "anthropic-cache-usage", client: "openai", includeUsage: true, expected: "anthropic-cache-usage.to-openai.sse" },
  { input: "anthropic-max-tokens", client: "openai", includeUsage: true, expected: "anthropic-max-tokens.to-openai.sse" },
  { input: "anthropic-stop-sequence", client: "openai", includeUsage: true, expected: "anthropic-stop-sequence.to-openai.sse" },
  { input: "anthropic-error", client: "openai", includeUsage: true, expected: "anthropic-error.to-openai.sse" },
  { input: "openai-text", client: "anthropic", includeUsage: false, expected: "openai-text.to-anthropic.sse" },
  { input: "openai-tools-parallel", client: "anthropic", includeUsage: false, expected: "openai-tools-parallel.to-anthropic.sse" },
  { input: "openai-tools-interleaved", client: "anthropic", includeUsage: false, expected: "openai-tools-interleaved.to-anthropic.sse" },
  { input: "openai-length", client: "anthropic", includeUsage: false, expected: "openai-length.to-anthropic.sse" },
  { input: "openai-error", client: "anthropic", includeUsage: false, expected: "openai-error.to-anthropic.sse" },
];

describe("golden translations of recorded-style provider streams", () => {
  for (const g of GOLDEN) {
    test(`${g.input}.sse → ${g.client} client${g.includeUsage ? " (include_usage)" : ""} equals ${g.expected}`, () => {
      const got = normalise(translateWhole(g.client, fixture(`${g.input}.sse`), g.includeUsage));
      expect(got).toBe(dec.decode(fixture(g.expected)));
    });
  }
});

describe("random chunkings give exactly the whole-stream translation", () => {
  for (const g of GOLDEN) {
    test(`${g.input}.sse → ${g.client}: 1-byte chunks, 150 seeded random chunkings, and CRLF line ends`, () => {
      const input = fixture(`${g.input}.sse`);
      const want = normalise(translateWhole(g.client, input, g.includeUsage));
      const bytes: Uint8Array[] = [];
      for (let i = 0; i < input.length; i++) bytes.push(input.slice(i, i + 1));
      expect(normalise(text(feed(translator(g.client, g.includeUsage), bytes)))).toBe(want);
      for (let seed = 1; seed <= 150; seed++) {
        const got = normalise(text(feed(translator(g.client, g.includeUsage), randomChunks(input, seed))));
        if (got !== want) throw new Error(`seed ${seed}: chunked translation differs`);
      }
      const crlf = enc.encode(dec.decode(input).replace(/\n/g, "\r\n"));
      for (let seed = 1; seed <= 30; seed++) {
        const got = normalise(text(feed(translator(g.client, g.includeUsage), randomChunks(crlf, seed))));
        if (got !== want) throw new Error(`CRLF seed ${seed}: chunked translation differs`);
      }
    });
  }
});

describe("Anthropic provider → OpenAI client: what the openai SDK accumulates", () => {
  const chunked = (name: string, seed: number) => feed(translator("openai", true), randomChunks(fixture(name), seed));

  test("text: content, finish_reason stop, usage from message_start input and message_delta output, id and model", async () => {
    const c = await openaiFinal(chunked("anthropic-text.sse", 7));
    expect(c.id).toBe("msg_01XFDUDYJgAACzvnptvVoYEL");
    expect(c.model).toBe("claude-sonnet-4-5-20250929");
    expect(c.choices[0]?.message.content).toBe('Hello, café 😀 — 你好!\n"quoted"');
    expect(c.choices[0]?.finish_reason).toBe("stop");
    expect(c.usage).toEqual({ prompt_tokens: 25, completion_tokens: 15, total_tokens: 40, prompt_tokens_details: { cached_tokens: 0 } });
  });

  test("tools: two tool calls at tool-call indexes 0 and 1 (not block indexes) with valid JSON arguments, thinking dropped, finish_reason tool_calls", async () => {
    const c = await openaiFinal(chunked("anthropic-tools.sse", 11));
    const m = c.choices[0]?.message;
    expect(m?.content).toBe("Okay, let's check the weather.");
    expect(c.choices[0]?.finish_reason).toBe("tool_calls");
    const calls = m?.tool_calls ?? [];
    expect(calls.length).toBe(2);
    const fn = (i: number) => {
      const call = calls[i];
      if (call === undefined || call.type !== "function") throw new Error(`tool call ${i} missing`);
      return { id: call.id, name: call.function.name, args: JSON.parse(call.function.arguments) as unknown };
    };
    expect(fn(0)).toEqual({ id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", args: { location: "San Francisco, CA", unit: "fahrenheit" } });
    expect(fn(1)).toEqual({ id: "toolu_01Vq8Xb2JtLwF5cB3yNhR6sT", name: "get_weather", args: { location: "Zürich", unit: "celsius" } });
    expect(JSON.stringify(c)).not.toContain("The user wants the weather");
    expect(c.usage?.completion_tokens).toBe(89);
  });

  test("cache usage: prompt_tokens = input + cache read + cache write, cached_tokens = cache read", async () => {
    const c = await openaiFinal(chunked("anthropic-cache-usage.sse", 3));
    expect(c.usage).toEqual({ prompt_tokens: 12 + 3000 + 1500, completion_tokens: 42, total_tokens: 4512 + 42, prompt_tokens_details: { cached_tokens: 3000 } });
  });

  test("max_tokens → finish_reason length; stop_sequence → stop", async () => {
    expect((await openaiFinal(chunked("anthropic-max-tokens.sse", 5))).choices[0]?.finish_reason).toBe("length");
    const s = await openaiFinal(chunked("anthropic-stop-sequence.sse", 5));
    expect(s.choices[0]?.finish_reason).toBe("stop");
    expect(s.choices[0]?.message.content).toBe("1, 2, 3, 4");
  });

  test("an Anthropic error event mid-stream: the openai SDK throws an APIError with the provider's message", async () => {
    const pieces = chunked("anthropic-error.sse", 9);
    let caught: unknown;
    try {
      await openaiFinal(pieces);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(OpenAI.APIError);
    expect((caught as InstanceType<typeof OpenAI.APIError>).message).toContain("Overloaded");
    expect(text(pieces)).not.toContain("[DONE]");
    expect(text(pieces)).not.toContain("never seen");
  });
});

describe("OpenAI provider → Anthropic client: what the Anthropic SDK accumulates", () => {
  const chunked = (name: string, seed: number) => feed(translator("anthropic"), randomChunks(fixture(name), seed));

  test("text: one text block, stop_reason end_turn, usage input = prompt − cached and output = completion", async () => {
    const m = await anthropicFinal(chunked("openai-text.sse", 4));
    expect(m.id).toBe("chatcmpl-AbC123text");
    expect(m.model).toBe("gpt-4o-2024-08-06");
    expect(m.content).toEqual([{ type: "text", text: 'Hello, café 😀 — 你好!\n"quoted"' }] as never);
    expect(m.stop_reason).toBe("end_turn");
    expect(m.usage.input_tokens).toBe(19);
    expect(m.usage.output_tokens).toBe(10);
    expect(m.usage.cache_read_input_tokens).toBe(0);
  });

  test("parallel tool calls: two tool_use blocks with ids, names and parsed input objects; cache read from cached_tokens", async () => {
    const m = await anthropicFinal(chunked("openai-tools-parallel.sse", 8));
    expect(m.stop_reason).toBe("tool_use");
    expect(m.content).toEqual([
      { type: "tool_use", id: "call_DdmO9pD3xa9XTPNJ32zg2hcA", name: "get_weather", input: { location: "Paris, France" } },
      { type: "tool_use", id: "call_8fZr2KpQ0wLmN4sTuVxY7aBc", name: "get_time", input: { tz: "Europe/Paris", fmt: ["h", "m"] } },
    ] as never);
    expect(m.usage.input_tokens).toBe(2082 - 1024);
    expect(m.usage.cache_read_input_tokens).toBe(1024);
    expect(m.usage.output_tokens).toBe(48);
  });

  test("tool calls interleaved by index, and finish_reason with usage in one chunk: whole inputs, blocks one after another", async () => {
    const pieces = chunked("openai-tools-interleaved.sse", 2);
    const m = await anthropicFinal(pieces);
    expect(m.content).toEqual([
      { type: "text", text: "Checking both." },
      { type: "tool_use", id: "call_a1", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "call_b2", name: "get_weather", input: { city: "Oslo" } },
      { type: "tool_use", id: "call_c3", name: "get_time", input: {} },
    ] as never);
    expect(m.stop_reason).toBe("tool_use");
    expect(m.usage.input_tokens).toBe(310);
    expect(m.usage.output_tokens).toBe(41);
    // The protocol: a block's deltas come between its start and its stop, and one block is open at a time.
    let open = -1;
    for (const [name, data] of events(text(pieces))) {
      const o = JSON.parse(data) as { index?: number };
      if (name === "content_block_start") {
        expect(open).toBe(-1);
        open = o.index ?? -2;
      } else if (name === "content_block_delta") {
        expect(o.index).toBe(open);
      } else if (name === "content_block_stop") {
        expect(o.index).toBe(open);
        open = -1;
      }
    }
    expect(open).toBe(-1);
  });

  test("finish length → stop_reason max_tokens", async () => {
    const m = await anthropicFinal(chunked("openai-length.sse", 6));
    expect(m.stop_reason).toBe("max_tokens");
    expect(m.content).toEqual([{ type: "text", text: "Once upon a" }] as never);
  });

  test('an OpenAI `data: {"error":…}` mid-stream: the Anthropic SDK throws an APIError with the provider\'s message', async () => {
    const pieces = chunked("openai-error.sse", 1);
    let caught: unknown;
    try {
      await anthropicFinal(pieces);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Anthropic.APIError);
    expect((caught as InstanceType<typeof Anthropic.APIError>).message).toContain("The server had an error");
    expect(text(pieces)).not.toContain("message_stop");
    expect(text(pieces)).not.toContain("never seen");
  });
});

describe("as soon as input arrives", () => {
  test("Anthropic → OpenAI: a text delta pushed comes out of the same push", () => {
    const t = translator("openai", true);
    t.push(enc.encode(aev("message_start", { message: { id: "msg_1", model: "m", usage: { input_tokens: 1, output_tokens: 1 } } })));
    t.push(enc.encode(aev("content_block_start", { index: 0, content_block: { type: "text", text: "" } })));
    const out = dec.decode(t.push(enc.encode(aev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "first" } }))));
    expect(out).toContain('"delta":{"content":"first"}');
  });

  test("OpenAI → Anthropic: the first content chunk gives message_start, the block start and its delta in that push", () => {
    const t = translator("anthropic");
    const role = dec.decode(t.push(enc.encode(odata({ id: "c1", model: "m", choices: [{ index: 0, delta: { role: "assistant", content: "" } }] }))));
    expect(events(role).map((e) => e[0])).toEqual(["message_start"]);
    const out = dec.decode(t.push(enc.encode(odata({ id: "c1", model: "m", choices: [{ index: 0, delta: { content: "first" } }] }))));
    expect(events(out).map((e) => e[0])).toEqual(["content_block_start", "content_block_delta"]);
    expect(out).toContain('"text":"first"');
  });

  test("a tool argument fragment of the open tool call comes out of the same push", () => {
    const t = translator("anthropic");
    t.push(enc.encode(odata({ id: "c1", model: "m", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] } }] })));
    const out = dec.decode(t.push(enc.encode(odata({ id: "c1", model: "m", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a"' } }] } }] }))));
    expect(out).toContain('"partial_json":"{\\"a\\""');
  });

  test("half an event gives nothing yet; its other half gives the translation", () => {
    const t = translator("openai");
    const ev = enc.encode(aev("message_start", { message: { id: "msg_1", model: "m", usage: {} } }));
    expect(t.push(ev.subarray(0, 30)).length).toBe(0);
    expect(dec.decode(t.push(ev.subarray(30)))).toContain('"role":"assistant"');
  });
});

describe("Anthropic provider → OpenAI client: details", () => {
  const start = aev("message_start", { message: { id: "msg_1", type: "message", role: "assistant", content: [], model: "claude-x", usage: { input_tokens: 10, cache_read_input_tokens: 5, output_tokens: 1 } } });

  test("message_delta's cumulative usage wins over message_start's where present; message_start's stands elsewhere", () => {
    const s =
      start +
      aev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { input_tokens: 11, cache_creation_input_tokens: 7, output_tokens: 30 } }) +
      aev("message_stop", {});
    const out = translateWhole("openai", enc.encode(s), true);
    const usage = (JSON.parse(events(out).at(-2)?.[1] ?? "{}") as { usage: unknown }).usage;
    expect(usage).toEqual({ prompt_tokens: 11 + 5 + 7, completion_tokens: 30, total_tokens: 53, prompt_tokens_details: { cached_tokens: 5 } });
  });

  test("without include_usage: no usage chunk and no usage field on any chunk", () => {
    const out = translateWhole("openai", fixture("anthropic-cache-usage.sse"), false);
    expect(out).not.toContain("usage");
    expect(out.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  test("every chunk carries the message id, chat.completion.chunk, one created and the model; the model falls back to the alias's when message_start names none", () => {
    const s = aev("message_start", { message: { id: "msg_9", usage: { input_tokens: 1 } } }) + aev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }) + aev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "x" } }) + aev("message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 2 } }) + aev("message_stop", {});
    const out = translateWhole("openai", enc.encode(s), true);
    const chunks = events(out).filter((e) => e[1] !== "[DONE]").map((e) => JSON.parse(e[1]) as Record<string, unknown>);
    expect(chunks.length).toBe(4);
    const created = chunks[0]?.["created"];
    expect(typeof created).toBe("number");
    for (const c of chunks) {
      expect(c["id"]).toBe("msg_9");
      expect(c["object"]).toBe("chat.completion.chunk");
      expect(c["created"]).toBe(created as number);
      expect(c["model"]).toBe("alias-model");
    }
  });

  test("stop reasons: end_turn/stop_sequence → stop, max_tokens → length, tool_use → tool_calls, refusal → content_filter", () => {
    const finish = (stop: string): unknown => {
      const out = translateWhole("openai", enc.encode(start + aev("message_delta", { delta: { stop_reason: stop }, usage: { output_tokens: 1 } })), false);
      const chunk = JSON.parse(events(out).at(-2)?.[1] ?? "{}") as { choices: { finish_reason: unknown }[] };
      return chunk.choices[0]?.finish_reason;
    };
    expect([finish("end_turn"), finish("stop_sequence"), finish("max_tokens"), finish("tool_use"), finish("refusal")]).toEqual(["stop", "stop", "length", "tool_calls", "content_filter"]);
  });

  test("ping events and empty events give nothing", () => {
    const t = translator("openai");
    t.push(enc.encode(start));
    expect(t.push(enc.encode('event: ping\ndata: {"type": "ping"}\n\nevent: ping\n\n: comment\n\n')).length).toBe(0);
  });

  test("a stream that ends after its stop reason but without message_stop still ends with [DONE]; one cut before it gets no [DONE]", () => {
    const finished = translateWhole("openai", enc.encode(start + aev("message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 2 } })), true);
    expect(finished.endsWith('"prompt_tokens_details":{"cached_tokens":5}}}\n\ndata: [DONE]\n\n')).toBe(true);
    const cut = translateWhole("openai", enc.encode(start + aev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }) + aev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "par" } })), true);
    expect(cut).toContain('"content":"par"');
    expect(cut).not.toContain("[DONE]");
    expect(cut).not.toContain("finish_reason\":\"");
  });

  test("content before message_start still opens with the role chunk", () => {
    const out = translateWhole("openai", enc.encode(aev("content_block_start", { index: 0, content_block: { type: "text", text: "hi" } })), false);
    const first = JSON.parse(events(out)[0]?.[1] ?? "{}") as { id: string; model: string; choices: { delta: unknown }[] };
    expect(first.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
    expect(first.model).toBe("alias-model");
    expect(events(out)[1]?.[1]).toContain('"content":"hi"');
  });

  test("redacted_thinking and server tool blocks are dropped; deltas to them give nothing", () => {
    const s =
      start +
      aev("content_block_start", { index: 0, content_block: { type: "redacted_thinking", data: "abc" } }) +
      aev("content_block_stop", { index: 0 }) +
      aev("content_block_start", { index: 1, content_block: { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} } }) +
      aev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"query":"x"}' } }) +
      aev("content_block_stop", { index: 1 });
    const out = translateWhole("openai", enc.encode(s), false);
    expect(events(out).length).toBe(1); // the role chunk only
  });

  test("a provider event that is not JSON ends the stream with an OpenAI error chunk", () => {
    const t = translator("openai", true);
    const out = text([t.push(enc.encode(start + "event: content_block_delta\ndata: {not json\n\n" + aev("message_stop", {}))), t.end()]);
    const last = events(out).at(-1)?.[1] ?? "";
    expect(JSON.parse(last)).toEqual({ error: { message: "the provider sent a stream event that is not a JSON object", type: "server_error", param: null, code: "api_error" } });
    expect(out).not.toContain("[DONE]");
  });

  test("error types: invalid_request_error stays, rate_limit_error stays, overloaded_error and api_error become server_error (the Anthropic type in code)", () => {
    const err = (type: string) => {
      const out = translateWhole("openai", enc.encode(start + aev("error", { error: { type, message: "m" } })), false);
      return JSON.parse(events(out).at(-1)?.[1] ?? "{}") as { error: { type: string; code: string } };
    };
    expect(err("invalid_request_error").error).toEqual({ message: "m", type: "invalid_request_error", param: null, code: "invalid_request_error" } as never);
    expect(err("rate_limit_error").error.type).toBe("rate_limit_error");
    expect(err("overloaded_error").error).toMatchObject({ type: "server_error", code: "overloaded_error" });
    expect(err("api_error").error.type).toBe("server_error");
  });

  test("bytes after [DONE] or an error are ignored", () => {
    const t = translator("openai");
    t.push(fixture("anthropic-text.sse"));
    expect(t.push(enc.encode(aev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "late" } }))).length).toBe(0);
    expect(t.end().length).toBe(0);
  });

  test("an event over the size limit ends the stream with an error chunk", () => {
    const t = translator("openai");
    t.push(enc.encode(start));
    const huge = new Uint8Array(17 * 1024 * 1024).fill(120);
    huge.set(enc.encode("data: "));
    const out = dec.decode(t.push(huge));
    expect(out).toContain('"message":"the provider sent a stream event over the size limit"');
    expect(t.push(enc.encode("\n\n")).length).toBe(0);
  });
});

describe("OpenAI provider → Anthropic client: details", () => {
  const role = odata({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-x", choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
  const content = (s: string) => odata({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-x", choices: [{ index: 0, delta: { content: s }, finish_reason: null }] });
  const finish = (f: string) => odata({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-x", choices: [{ index: 0, delta: {}, finish_reason: f }] });
  const usage = odata({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-x", choices: [], usage: { prompt_tokens: 50, completion_tokens: 7, total_tokens: 57, prompt_tokens_details: { cached_tokens: 20 } } });

  const messageDelta = (out: string) => JSON.parse(events(out).find((e) => e[0] === "message_delta")?.[1] ?? "null") as { delta: { stop_reason: unknown }; usage: Record<string, number> } | null;

  test("message_delta waits for the usage chunk after finish_reason, then carries both; message_stop follows", () => {
    const t = translator("anthropic");
    t.push(enc.encode(role + content("hi")));
    const atFinish = dec.decode(t.push(enc.encode(finish("stop"))));
    expect(events(atFinish).map((e) => e[0])).toEqual(["content_block_stop"]);
    const atUsage = dec.decode(t.push(enc.encode(usage)));
    expect(events(atUsage).map((e) => e[0])).toEqual(["message_delta", "message_stop"]);
    expect(messageDelta(atUsage)).toEqual({
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { input_tokens: 30, cache_creation_input_tokens: 0, cache_read_input_tokens: 20, output_tokens: 7 },
    } as never);
    expect(dec.decode(t.push(enc.encode("data: [DONE]\n\n")))).toBe("");
  });

  test("usage that never came: message_delta at [DONE] with zero counts", () => {
    const out = translateWhole("anthropic", enc.encode(role + content("hi") + finish("stop") + "data: [DONE]\n\n"));
    expect(messageDelta(out)?.usage).toEqual({ input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 0 });
    expect(events(out).at(-1)?.[0]).toBe("message_stop");
  });

  test("a stream that ends after finish_reason without usage or [DONE] gets its message_delta and message_stop; one cut before finish_reason gets neither", () => {
    const ended = translateWhole("anthropic", enc.encode(role + content("hi") + finish("length")));
    expect(messageDelta(ended)?.delta.stop_reason).toBe("max_tokens");
    expect(events(ended).at(-1)?.[0]).toBe("message_stop");
    const cut = translateWhole("anthropic", enc.encode(role + content("hi")));
    expect(events(cut).map((e) => e[0])).toEqual(["message_start", "content_block_start", "content_block_delta"]);
  });

  test("[DONE] without any finish_reason: blocks closed, stop_reason null", () => {
    const out = translateWhole("anthropic", enc.encode(role + content("hi") + "data: [DONE]\n\n"));
    expect(messageDelta(out)?.delta.stop_reason).toBeNull();
    expect(events(out).map((e) => e[0])).toEqual(["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]);
  });

  test("finish reasons: stop → end_turn, length → max_tokens, tool_calls → tool_use, content_filter → refusal", () => {
    const stop = (f: string) => messageDelta(translateWhole("anthropic", enc.encode(role + finish(f) + usage)))?.delta.stop_reason;
    expect([stop("stop"), stop("length"), stop("tool_calls"), stop("content_filter")]).toEqual(["end_turn", "max_tokens", "tool_use", "refusal"]);
  });

  test("message_start: the chunk's id and model, usage zero (input is known only at the end)", () => {
    const out = translateWhole("anthropic", enc.encode(role));
    expect(JSON.parse(events(out)[0]?.[1] ?? "{}")).toEqual({
      type: "message_start",
      message: { id: "chatcmpl-1", type: "message", role: "assistant", model: "gpt-x", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } },
    });
  });

  test("text after a tool call closes the tool block and opens a new text block at the next index", () => {
    const tc = odata({ id: "c", model: "m", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }] } }] });
    const out = translateWhole("anthropic", enc.encode(role + content("a") + tc + content("b") + finish("stop") + usage));
    const starts = events(out).filter((e) => e[0] === "content_block_start").map((e) => JSON.parse(e[1]) as { index: number; content_block: { type: string } });
    expect(starts.map((s) => [s.index, s.content_block.type])).toEqual([
      [0, "text"],
      [1, "tool_use"],
      [2, "text"],
    ]);
  });

  test("a waiting tool call's id and name may come after its first fragment", () => {
    const frag = (tcs: unknown[]) => odata({ id: "c", model: "m", choices: [{ index: 0, delta: { tool_calls: tcs } }] });
    const s =
      role +
      frag([{ index: 0, id: "call_a", type: "function", function: { name: "f", arguments: '{"x":' } }]) +
      frag([{ index: 1, function: { arguments: '{"y":' } }]) +
      frag([{ index: 1, id: "call_b", function: { name: "g" } }]) +
      frag([{ index: 0, function: { arguments: "1}" } }]) +
      frag([{ index: 1, function: { arguments: "2}" } }]) +
      finish("tool_calls") +
      usage;
    const out = translateWhole("anthropic", enc.encode(s));
    const starts = events(out).filter((e) => e[0] === "content_block_start").map((e) => (JSON.parse(e[1]) as { content_block: unknown }).content_block);
    expect(starts).toEqual([
      { type: "tool_use", id: "call_a", name: "f", input: {} },
      { type: "tool_use", id: "call_b", name: "g", input: {} },
    ]);
  });

  test("error events: `event: error` and `data: {\"error\":…}` both become Anthropic error events with mapped types", () => {
    const err = (s: string) => JSON.parse(events(translateWhole("anthropic", enc.encode(s))).at(-1)?.[1] ?? "{}") as unknown;
    expect(err(role + odata({ error: { message: "slow down", type: "requests", param: null, code: "rate_limit_exceeded" } }))).toEqual({ type: "error", error: { type: "rate_limit_error", message: "slow down" } });
    expect(err(role + `event: error\ndata: ${JSON.stringify({ error: { message: "bad", type: "invalid_request_error" } })}\n\n`)).toEqual({ type: "error", error: { type: "invalid_request_error", message: "bad" } });
    expect(err(odata({ error: { message: "boom", type: "server_error" } }))).toEqual({ type: "error", error: { type: "api_error", message: "boom" } });
  });

  test("a provider event that is not JSON ends the stream with an Anthropic error event", () => {
    const out = translateWhole("anthropic", enc.encode(role + "data: {oops\n\n" + content("later")));
    expect(events(out).map((e) => e[0])).toEqual(["message_start", "error"]);
    expect(JSON.parse(events(out)[1]?.[1] ?? "{}")).toEqual({ type: "error", error: { type: "api_error", message: "the provider sent a stream event that is not a JSON object" } });
  });

  test("refusal deltas arrive as text; reasoning_content is dropped; choices other than index 0 are ignored", () => {
    const s =
      role +
      odata({ id: "c", model: "m", choices: [{ index: 0, delta: { reasoning_content: "thinking..." } }] }) +
      odata({ id: "c", model: "m", choices: [{ index: 0, delta: { refusal: "I can't help with that." } }, { index: 1, delta: { content: "other choice" } }] }) +
      finish("stop") +
      usage;
    const out = translateWhole("anthropic", enc.encode(s));
    expect(out).toContain('"text":"I can\'t help with that."');
    expect(out).not.toContain("thinking...");
    expect(out).not.toContain("other choice");
  });

  test("every Anthropic event carries its event: name matching its data type (the Anthropic SDK skips unnamed events)", () => {
    for (const name of ["openai-text.sse", "openai-tools-parallel.sse", "openai-tools-interleaved.sse", "openai-error.sse"]) {
      for (const [event, data] of events(translateWhole("anthropic", fixture(name)))) {
        expect(event).not.toBe("");
        expect((JSON.parse(data) as { type: string }).type).toBe(event);
      }
    }
  });
});
