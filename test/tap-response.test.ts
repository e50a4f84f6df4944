import { describe, expect, test } from "bun:test";
import * as zlib from "node:zlib";
import { ResponseTap, gzipHeaderLength, tapEncoding } from "../src/metering/tap-response.ts";
import type { TapEncoding, TapOptions } from "../src/metering/tap-response.ts";
import type { Dialect, Usage } from "../src/metering/usage.ts";
import { concatBytes } from "./helpers/bytes.ts";
import { mulberry32 } from "./helpers/random.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// --- deterministic chunking ------------------------------------------------------------------

function split(b: Uint8Array, sizes: () => number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < b.length; ) {
    const n = Math.max(1, Math.min(b.length - i, sizes()));
    parts.push(b.subarray(i, i + n));
    i += n;
  }
  return parts;
}

/** Whole, one byte per chunk, and random chunkings (small and large) of the same bytes. */
function chunkings(b: Uint8Array, seed = 1, random = 12): { name: string; parts: Uint8Array[] }[] {
  const out = [
    { name: "whole", parts: [b.slice()] },
    { name: "1 byte", parts: split(b, () => 1) },
  ];
  const r = mulberry32(seed);
  for (let k = 0; k < random; k++) {
    const max = k % 2 === 0 ? 1 + Math.floor(r() * 40) : 1 + Math.floor(r() * 4096);
    out.push({ name: `random#${k} (max ${max})`, parts: split(b, () => 1 + Math.floor(r() * max)) });
  }
  return out;
}

interface Fed {
  tap: ResponseTap;
  out: Uint8Array;
  identical: boolean; // every push() returned the very object it was given
}

function feed(opts: TapOptions, parts: Uint8Array[]): Fed {
  const tap = new ResponseTap(opts);
  const outs: Uint8Array[] = [];
  let identical = true;
  for (const p of parts) {
    const r = tap.push(p);
    if (r !== p) identical = false;
    outs.push(r);
  }
  outs.push(tap.end());
  return { tap, out: concatBytes(outs), identical };
}

// --- realistic provider streams ---------------------------------------------------------------

interface OpenaiStreamOpts {
  includeUsage: boolean;
  pieces?: string[];
  crlf?: boolean;
  spaces?: number; // spaces after "data:"
  obfuscation?: boolean; // OpenAI's 2025 padding member after "usage"
  usageFirst?: boolean; // render "usage":null as the first member instead of the last
  model?: string;
}

const OPENAI_USAGE =
  '{"prompt_tokens":1200,"completion_tokens":48,"total_tokens":1248,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}';
const OPENAI_EXPECTED: Usage = { input: 176, output: 48, cacheRead: 1024, cacheWrite: 0, reasoning: 0 };

/**
 * Render an OpenAI Chat Completions stream as the provider sends it, with or without
 * `stream_options.include_usage`: with it, every chunk carries `"usage":null` and a
 * `choices:[]` usage chunk precedes `[DONE]`.
 */
function openaiStream(o: OpenaiStreamOpts): string {
  const model = o.model ?? "gpt-4o-mini-2024-07-18";
  const eol = o.crlf ? "\r\n" : "\n";
  const data = "data:" + " ".repeat(o.spaces ?? 1);
  const pieces = o.pieces ?? ["Hello", "!", " How", " can", " I", " help", " you", " today", "?", ' He said "hi"\n', " é ✓"];
  let n = 0;
  const chunk = (choices: string, usage: string | null): string => {
    const members = [
      `"id":"chatcmpl-AbC123"`,
      `"object":"chat.completion.chunk"`,
      `"created":1730000000`,
      `"model":"${model}"`,
      `"service_tier":"default"`,
      `"system_fingerprint":"fp_0ba0d124f1"`,
      `"choices":${choices}`,
    ];
    if (usage !== null) {
      if (o.usageFirst) members.unshift(`"usage":${usage}`);
      else members.push(`"usage":${usage}`);
    }
    if (o.obfuscation) members.push(`"obfuscation":"${"ab1Cd2"[n++ % 6]!.repeat(3)}"`);
    return `${data}{${members.join(",")}}${eol}${eol}`;
  };
  const nullUsage = o.includeUsage ? "null" : null;
  let s = chunk('[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]', nullUsage);
  for (const p of pieces) s += chunk(`[{"index":0,"delta":{"content":${JSON.stringify(p)}},"logprobs":null,"finish_reason":null}]`, nullUsage);
  s += chunk('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]', nullUsage);
  if (o.includeUsage) s += chunk("[]", OPENAI_USAGE);
  s += `${data}[DONE]${eol}${eol}`;
  return s;
}

const ANTHROPIC_EXPECTED: Usage = { input: 20, output: 15, cacheRead: 12, cacheWrite: 8 };

function anthropicStream(opts: { crlf?: boolean; spaces?: number; textBytes?: number; cut?: boolean } = {}): string {
  const eol = opts.crlf ? "\r\n" : "\n";
  const data = "data:" + " ".repeat(opts.spaces ?? 1);
  const ev = (name: string, json: string): string => `event: ${name}${eol}${data}${json}${eol}${eol}`;
  let s = ev(
    "message_start",
    '{"type":"message_start","message":{"id":"msg_01XFD","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":8,"cache_read_input_tokens":12,"output_tokens":1}}}',
  );
  s += ev("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}');
  s += ev("ping", '{"type": "ping"}');
  let text = 0;
  const target = opts.textBytes ?? 60;
  for (let i = 0; text < target; i++) {
    const piece = `word${i} with "quotes" and ünïcode; `;
    s += ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(piece)}}}`);
    text += piece.length;
  }
  if (opts.cut) return s;
  s += ev("content_block_stop", '{"type":"content_block_stop","index":0}');
  s += ev("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}');
  s += ev("message_stop", '{"type":"message_stop"}');
  return s;
}

const RESPONSES_EXPECTED: Usage = { input: 30, output: 87, cacheRead: 6, cacheWrite: 0, reasoning: 10 };

function responsesStream(opts: { outputText?: string; deltaBytes?: number } = {}): string {
  const text = opts.outputText ?? "Hi there, friend.";
  const deltaBytes = opts.deltaBytes ?? 8;
  const ev = (name: string, obj: unknown): string => `event: ${name}\ndata: ${JSON.stringify(obj)}\n\n`;
  const base = { id: "resp_67ccd", object: "response", created_at: 1741290958, model: "gpt-4.1-2025-04-14", instructions: "Be brief." };
  let s = ev("response.created", { type: "response.created", sequence_number: 0, response: { ...base, status: "in_progress", output: [], usage: null } });
  let seq = 1;
  for (let i = 0; i < text.length; i += deltaBytes) {
    const w = text.slice(i, i + deltaBytes);
    s += ev("response.output_text.delta", { type: "response.output_text.delta", sequence_number: seq++, item_id: "msg_1", output_index: 0, content_index: 0, delta: w });
  }
  s += ev("response.output_text.done", { type: "response.output_text.done", sequence_number: seq++, item_id: "msg_1", output_index: 0, content_index: 0, text });
  s += ev("response.completed", {
    type: "response.completed",
    sequence_number: seq,
    response: {
      ...base,
      status: "completed",
      output: [{ type: "message", id: "msg_1", role: "assistant", content: [{ type: "output_text", text, annotations: [] }] }],
      usage: { input_tokens: 36, input_tokens_details: { cached_tokens: 6 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 10 }, total_tokens: 123 },
      user: null,
      metadata: {},
    },
  });
  return s;
}

interface SseCase {
  name: string;
  dialect: Dialect;
  body: string;
  usage: Usage;
  model: string;
}

const SSE_CASES: SseCase[] = [
  { name: "OpenAI chat with client-requested usage", dialect: "openai", body: openaiStream({ includeUsage: true }), usage: OPENAI_EXPECTED, model: "gpt-4o-mini-2024-07-18" },
  { name: "OpenAI chat, CRLF", dialect: "openai", body: openaiStream({ includeUsage: true, crlf: true }), usage: OPENAI_EXPECTED, model: "gpt-4o-mini-2024-07-18" },
  { name: "OpenAI chat, 5 spaces after data:", dialect: "openai", body: openaiStream({ includeUsage: true, spaces: 5 }), usage: OPENAI_EXPECTED, model: "gpt-4o-mini-2024-07-18" },
  { name: "OpenAI chat, no space after data:", dialect: "openai", body: openaiStream({ includeUsage: true, spaces: 0 }), usage: OPENAI_EXPECTED, model: "gpt-4o-mini-2024-07-18" },
  { name: "Anthropic with cache tokens", dialect: "anthropic", body: anthropicStream(), usage: ANTHROPIC_EXPECTED, model: "claude-sonnet-4-5-20250929" },
  { name: "Anthropic, CRLF", dialect: "anthropic", body: anthropicStream({ crlf: true }), usage: ANTHROPIC_EXPECTED, model: "claude-sonnet-4-5-20250929" },
  { name: "Anthropic, extra spaces", dialect: "anthropic", body: anthropicStream({ spaces: 4 }), usage: ANTHROPIC_EXPECTED, model: "claude-sonnet-4-5-20250929" },
  { name: "OpenAI Responses API", dialect: "openai", body: responsesStream(), usage: RESPONSES_EXPECTED, model: "gpt-4.1-2025-04-14" },
];

const sseOpts = (dialect: Dialect, extra: Partial<TapOptions> = {}): TapOptions => ({ dialect, sse: true, stripUsageChunk: false, ...extra });
const jsonOpts = (dialect: Dialect, extra: Partial<TapOptions> = {}): TapOptions => ({ dialect, sse: false, stripUsageChunk: false, ...extra });

// --- tests ------------------------------------------------------------------------------------

describe("SSE metering", () => {
  for (const c of SSE_CASES) {
    test(`${c.name}: same usage and model at every chunking, 1 byte per chunk included`, () => {
      const b = enc.encode(c.body);
      for (const { name, parts } of chunkings(b, 7)) {
        const { tap, out, identical } = feed(sseOpts(c.dialect), parts);
        expect({ name, usage: tap.usage() }).toEqual({ name, usage: c.usage });
        expect({ name, model: tap.model() }).toEqual({ name, model: c.model });
        expect(tap.usageComplete()).toBe(true);
        expect(tap.bytesSeen).toBe(b.length);
        expect(identical).toBe(true);
        expect(out).toEqual(b);
      }
    });
  }

  test("a stream without any usage gives undefined, never zeros", () => {
    const b = enc.encode(openaiStream({ includeUsage: false }));
    for (const { parts } of chunkings(b, 3, 4)) {
      const { tap } = feed(sseOpts("openai"), parts);
      expect(tap.usage()).toBeUndefined();
      expect(tap.usageComplete()).toBe(false);
      expect(tap.model()).toBe("gpt-4o-mini-2024-07-18");
    }
  });

  test("an Anthropic stream read with the OpenAI dialect gives undefined and flags the mismatch", () => {
    const { tap } = feed(sseOpts("openai"), [enc.encode(anthropicStream())]);
    expect(tap.usage()).toBeUndefined();
    expect(tap.dialectMismatch()).toBe(true);
  });

  test("an OpenAI stream read with the Anthropic dialect gives undefined", () => {
    const { tap } = feed(sseOpts("anthropic"), [enc.encode(openaiStream({ includeUsage: true }))]);
    expect(tap.usage()).toBeUndefined();
    expect(tap.dialectMismatch()).toBe(true);
  });

  test("a 600 KiB Anthropic stream keeps input and cache from message_start", () => {
    const body = enc.encode(anthropicStream({ textBytes: 600 * 1024 }));
    expect(body.length).toBeGreaterThan(600 * 1024);
    for (const { parts } of chunkings(body, 11, 2)) {
      const { tap } = feed(sseOpts("anthropic"), parts);
      expect(tap.usage()).toEqual(ANTHROPIC_EXPECTED);
      expect(tap.retainedBytes()).toBeLessThan(200 * 1024);
    }
  });

  test("a Responses API response.completed line over 64 KiB is metered from its tail", () => {
    const body = enc.encode(responsesStream({ outputText: "lorem ipsum ".repeat(8_000), deltaBytes: 4096 }));
    expect(body.length).toBeGreaterThan(3 * 64 * 1024);
    for (const { parts } of chunkings(body, 5, 2)) {
      const tap = new ResponseTap(sseOpts("openai"));
      let maxRetained = 0;
      for (const p of parts) {
        tap.push(p);
        maxRetained = Math.max(maxRetained, tap.retainedBytes());
      }
      // The long line's buffer is released once the line is done.
      expect(tap.retainedBytes()).toBeLessThanOrEqual(16 * 1024);
      tap.end();
      expect(tap.usage()).toEqual(RESPONSES_EXPECTED);
      expect(maxRetained).toBeLessThanOrEqual(128 * 1024);
    }
  });

  test("a last event without a trailing newline is still metered at end()", () => {
    const s = 'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}';
    const { tap } = feed(sseOpts("openai"), split(enc.encode(s), () => 3));
    expect(tap.usage()).toEqual({ input: 5, output: 9, cacheRead: 0, cacheWrite: 0 });
  });

  test("Azure's first chunk with an empty model does not hide the real model", () => {
    const s =
      'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}\n\n' +
      openaiStream({ includeUsage: true, model: "gpt-4o-2024-11-20" });
    const { tap } = feed(sseOpts("openai"), [enc.encode(s)]);
    expect(tap.model()).toBe("gpt-4o-2024-11-20");
    expect(tap.usage()).toEqual(OPENAI_EXPECTED);
  });
});

describe("stripUsageChunk (gateway-injected include_usage)", () => {
  const variants: { name: string; o: Omit<OpenaiStreamOpts, "includeUsage"> }[] = [
    { name: "plain", o: {} },
    { name: "with obfuscation after usage", o: { obfuscation: true } },
    { name: "usage as first member", o: { usageFirst: true } },
    { name: "CRLF", o: { crlf: true } },
    { name: "no space after data:", o: { spaces: 0 } },
    { name: "long tool-call-like content", o: { pieces: ["x".repeat(5000), '{\\"usage\\":null}', "y".repeat(300)] } },
  ];
  for (const v of variants) {
    test(`${v.name}: the client gets exactly the stream without include_usage, and usage is still metered`, () => {
      const withUsage = enc.encode(openaiStream({ ...v.o, includeUsage: true }));
      const without = openaiStream({ ...v.o, includeUsage: false });
      for (const { name, parts } of chunkings(withUsage, 13)) {
        const { tap, out } = feed(sseOpts("openai", { stripUsageChunk: true }), parts);
        expect({ name, out: dec.decode(out) }).toEqual({ name, out: without });
        expect(tap.usage()).toEqual(OPENAI_EXPECTED);
        expect(tap.model()).toBe("gpt-4o-mini-2024-07-18");
      }
    });
  }

  test("a final line without a newline is released by end(), usage:null cut", () => {
    const full = openaiStream({ includeUsage: true, pieces: ["a", "b"] });
    const cutAt = full.indexOf('"content":"b"');
    const s = full.slice(0, full.indexOf("\n", cutAt));
    const expected = openaiStream({ includeUsage: false, pieces: ["a", "b"] });
    for (const { parts } of chunkings(enc.encode(s), 23, 4)) {
      const { out } = feed(sseOpts("openai", { stripUsageChunk: true }), parts);
      expect(dec.decode(out)).toBe(expected.slice(0, expected.indexOf("\n", expected.indexOf('"content":"b"'))));
    }
  });

  test("only the incomplete trailing line is held back: complete events come out at once", () => {
    const s = openaiStream({ includeUsage: true });
    const events = s.split("\n\n").filter((e) => e.length > 0);
    const tap = new ResponseTap(sseOpts("openai", { stripUsageChunk: true }));
    // First event complete plus half of the second: the first must come out now.
    const first = events[0]! + "\n\n";
    const half = events[1]!.slice(0, 40);
    const out1 = dec.decode(tap.push(enc.encode(first + half)));
    expect(out1).toBe(first.replace(',"usage":null', ""));
    const out2 = dec.decode(tap.push(enc.encode(events[1]!.slice(40) + "\n\n")));
    expect(out2).toBe((events[1]! + "\n\n").replace(',"usage":null', ""));
  });

  test("an upstream that ignored the injection (no usage members) passes through unchanged, same objects", () => {
    const b = enc.encode(openaiStream({ includeUsage: false }));
    // Boundaries on event ends: nothing to hold, nothing to cut.
    const events = dec.decode(b).split(/(?<=\n\n)/).map((e) => enc.encode(e));
    const { out, identical } = feed(sseOpts("openai", { stripUsageChunk: true }), events);
    expect(identical).toBe(true);
    expect(out).toEqual(b);
  });

  test("a usage carried on a content chunk (not choices:[]) is metered and the chunk is kept", () => {
    const s =
      'data: {"id":"x","model":"deepseek-chat","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_cache_hit_tokens":4}}\n\ndata: [DONE]\n\n';
    const { tap, out } = feed(sseOpts("openai", { stripUsageChunk: true }), [enc.encode(s)]);
    expect(dec.decode(out)).toBe(s);
    expect(tap.usage()).toEqual({ input: 6, output: 2, cacheRead: 4, cacheWrite: 0 });
  });

  test("a nested usage:null (not top level) is left alone", () => {
    const s = 'data: {"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"a"},"meta":{"usage":null}}],"usage":null}\n\n';
    const { out } = feed(sseOpts("openai", { stripUsageChunk: true }), split(enc.encode(s), () => 2));
    expect(dec.decode(out)).toBe('data: {"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"a"},"meta":{"usage":null}}]}\n\n');
  });

  test("a line longer than 64 KiB passes through and the following events are still stripped", () => {
    const huge = "z".repeat(100 * 1024);
    const withUsage = openaiStream({ includeUsage: true, pieces: ["a", huge, "b"] });
    const without = openaiStream({ includeUsage: false, pieces: ["a", huge, "b"] });
    // Split across pushes, the oversized line cannot be held, so it keeps its "usage":null
    // (documented limit); whole in one push it is stripped like any line. Everything else matches.
    const hugeWithout = `"content":${JSON.stringify(huge)}},"logprobs":null,"finish_reason":null}]}`;
    const kept = without.replace(hugeWithout, hugeWithout.slice(0, -1) + ',"usage":null}');
    expect(kept).not.toBe(without);
    for (const { name, parts } of chunkings(enc.encode(withUsage), 17, 4)) {
      const tap = new ResponseTap(sseOpts("openai", { stripUsageChunk: true }));
      const outs: Uint8Array[] = [];
      let maxRetained = 0;
      for (const p of parts) {
        outs.push(tap.push(p));
        maxRetained = Math.max(maxRetained, tap.retainedBytes());
      }
      outs.push(tap.end());
      expect(dec.decode(concatBytes(outs))).toBe(name === "whole" ? without : kept);
      expect(tap.usage()).toEqual(OPENAI_EXPECTED);
      expect(maxRetained).toBeLessThanOrEqual(128 * 1024);
    }
  });
});

describe("client-requested usage (stripUsageChunk false)", () => {
  test("the stream passes byte-identical and push returns the same Uint8Array objects", () => {
    const b = enc.encode(openaiStream({ includeUsage: true, obfuscation: true }));
    for (const { parts } of chunkings(b, 21)) {
      const tap = new ResponseTap(sseOpts("openai"));
      for (const p of parts) expect(tap.push(p)).toBe(p);
      expect(tap.end().length).toBe(0);
      expect(tap.usage()).toEqual(OPENAI_EXPECTED);
    }
  });

  test("stripUsageChunk is ignored for Anthropic: bytes and objects pass untouched", () => {
    const b = enc.encode(anthropicStream());
    const { out, identical, tap } = feed(sseOpts("anthropic", { stripUsageChunk: true }), split(b, () => 50));
    expect(identical).toBe(true);
    expect(out).toEqual(b);
    expect(tap.usage()).toEqual(ANTHROPIC_EXPECTED);
  });
});

describe("JSON responses", () => {
  test("a small OpenAI body is metered at end(), with the root model", () => {
    const body = enc.encode(
      JSON.stringify({
        id: "chatcmpl-1",
        object: "chat.completion",
        model: "gpt-4o-2024-08-06",
        choices: [{ index: 0, message: { role: "assistant", content: "Hello" } }],
        usage: { prompt_tokens: 12, completion_tokens: 34, prompt_tokens_details: { cached_tokens: 4 } },
      }),
    );
    for (const { parts } of chunkings(body, 2, 4)) {
      const { tap, out, identical } = feed(jsonOpts("openai"), parts);
      expect(tap.usage()).toEqual({ input: 8, output: 34, cacheRead: 4, cacheWrite: 0 });
      expect(tap.model()).toBe("gpt-4o-2024-08-06");
      expect(identical).toBe(true);
      expect(out).toEqual(body);
    }
  });

  test("usage() is not guessed before end() for JSON", () => {
    const tap = new ResponseTap(jsonOpts("anthropic"));
    tap.push(enc.encode('{"model":"claude","usage":{"input_tokens":1,"output_tokens":2}}'));
    expect(tap.usage()).toBeUndefined();
    tap.end();
    expect(tap.usage()).toEqual({ input: 1, output: 2, cacheRead: 0, cacheWrite: 0 });
  });

  test("a 1 MiB JSON response (huge content, usage at the end) is metered from the tail, model from the head", () => {
    const body = enc.encode(
      JSON.stringify({
        id: "msg_1",
        type: "message",
        role: "assistant",
        model: "claude-opus-4-1-20250805",
        content: [{ type: "text", text: 'a "usage": {"input_tokens": 9} '.repeat(34_000) }],
        stop_reason: "end_turn",
        usage: { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 10, cache_creation_input_tokens: 7 },
      }),
    );
    expect(body.length).toBeGreaterThan(1024 * 1024);
    for (const { parts } of chunkings(body, 4, 2)) {
      const tap = new ResponseTap(jsonOpts("anthropic"));
      let maxRetained = 0;
      for (const p of parts) {
        tap.push(p);
        maxRetained = Math.max(maxRetained, tap.retainedBytes());
      }
      tap.end();
      expect(tap.usage()).toEqual({ input: 100, output: 50, cacheRead: 10, cacheWrite: 7 });
      expect(tap.model()).toBe("claude-opus-4-1-20250805");
      expect(maxRetained).toBeLessThanOrEqual(128 * 1024);
    }
  });

  test("a large embeddings body (usage last, over 64 KiB) is metered", () => {
    const data = Array.from({ length: 40 }, (_, i) => ({ object: "embedding", index: i, embedding: Array.from({ length: 256 }, (_, j) => Math.sin(i + j)) }));
    const body = enc.encode(JSON.stringify({ object: "list", data, model: "text-embedding-3-small", usage: { prompt_tokens: 812, total_tokens: 812 } }));
    expect(body.length).toBeGreaterThan(128 * 1024);
    const { tap } = feed(jsonOpts("openai"), split(body, () => 16384));
    expect(tap.usage()).toEqual({ input: 812, output: 0, cacheRead: 0, cacheWrite: 0 });
  });

  test("a JSON body without usage is undefined; a body in the other dialect is undefined", () => {
    expect(feed(jsonOpts("openai"), [enc.encode('{"error":{"message":"bad"}}')]).tap.usage()).toBeUndefined();
    expect(feed(jsonOpts("openai"), [enc.encode('{"usage":{"input_tokens":1,"output_tokens":2}}')]).tap.usage()).toBeUndefined();
    expect(feed(jsonOpts("anthropic"), [enc.encode('{"usage":{"prompt_tokens":1,"completion_tokens":2}}')]).tap.usage()).toBeUndefined();
  });
});

describe("compressed responses", () => {
  const jsonBody = enc.encode(
    JSON.stringify({
      id: "chatcmpl-9",
      model: "gpt-4o-2024-08-06",
      choices: [{ message: { content: "compress me ".repeat(2000) } }],
      usage: { prompt_tokens: 12, completion_tokens: 34, prompt_tokens_details: { cached_tokens: 4 } },
    }),
  );
  const sseBody = enc.encode(openaiStream({ includeUsage: true, pieces: Array.from({ length: 400 }, (_, i) => ` token${i}`) }));
  const anthBody = enc.encode(anthropicStream({ textBytes: 200 * 1024 }));

  const compressors: { name: string; encoding: TapEncoding; fn: (b: Uint8Array) => Uint8Array }[] = [
    { name: "gzip", encoding: "gzip", fn: (b) => zlib.gzipSync(b) },
    // Quality 5, as servers use for dynamic content (11 is slow to compress in a test).
    { name: "br", encoding: "br", fn: (b) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }) },
    { name: "deflate (zlib-wrapped)", encoding: "deflate", fn: (b) => zlib.deflateSync(b) },
    { name: "deflate (raw)", encoding: "deflate", fn: (b) => zlib.deflateRawSync(b) },
    { name: "zstd", encoding: "zstd", fn: (b) => Bun.zstdCompressSync(b) },
  ];

  for (const c of compressors) {
    test(`${c.name}: JSON and SSE are metered as plain and pass through untouched`, () => {
      const cases: { opts: TapOptions; body: Uint8Array }[] = [
        { opts: jsonOpts("openai", { encoding: c.encoding }), body: jsonBody },
        { opts: sseOpts("openai", { encoding: c.encoding }), body: sseBody },
        { opts: sseOpts("anthropic", { encoding: c.encoding }), body: anthBody },
      ];
      for (const { opts, body } of cases) {
        const plain = feed({ ...opts, encoding: null }, [body]).tap;
        const z = c.fn(body);
        for (const { name, parts } of chunkings(z, 9, 4)) {
          const { tap, out, identical } = feed(opts, parts);
          expect({ name, usage: tap.usage() }).toEqual({ name, usage: plain.usage() });
          expect(tap.usage()).toBeDefined();
          expect(tap.model()).toBe(plain.model()!);
          expect(tap.bytesSeen).toBe(body.length);
          expect(identical).toBe(true);
          expect(out).toEqual(z);
        }
      }
    });
  }

  test("stripUsageChunk never applies to a compressed stream: bytes pass untouched and usage is metered", () => {
    const z = zlib.gzipSync(sseBody);
    const { tap, out, identical } = feed(sseOpts("openai", { encoding: "gzip", stripUsageChunk: true }), split(z, () => 100));
    expect(identical).toBe(true);
    expect(out).toEqual(z);
    expect(tap.usage()).toEqual(OPENAI_EXPECTED);
  });

  test("a corrupt gzip body passes through, meters nothing and raises nothing later", async () => {
    const junk = enc.encode("this is not gzip data, though the header says so ".repeat(10));
    const { tap, out, identical } = feed(sseOpts("openai", { encoding: "gzip" }), split(junk, () => 7));
    expect(identical).toBe(true);
    expect(out).toEqual(junk);
    expect(tap.usage()).toBeUndefined();
    // A destroyed zlib stream would emit 'error' on a later tick; give it the chance to.
    await new Promise((r) => setTimeout(r, 20));
    expect(tap.retainedBytes()).toBe(0);
  });

  test("gzip members with FEXTRA, FNAME, FCOMMENT and FHCRC headers decode at any chunking", () => {
    const flg = 4 | 8 | 16 | 2;
    const header = concatBytes([
      new Uint8Array([0x1f, 0x8b, 8, flg, 0, 0, 0, 0, 0, 3]),
      new Uint8Array([3, 0, 0xaa, 0xbb, 0xcc]), // FEXTRA: XLEN 3
      enc.encode("stream.sse\0"),
      enc.encode("a comment\0"),
      new Uint8Array([0x12, 0x34]), // header CRC16 (not checked)
    ]);
    expect(gzipHeaderLength(header, 0, header.length)).toBe(header.length);
    expect(gzipHeaderLength(header, 0, header.length - 1)).toBe(-1);
    expect(gzipHeaderLength(enc.encode("{\"id\":1}"), 0, 8)).toBe(-2);
    const member = concatBytes([header, zlib.deflateRawSync(sseBody), new Uint8Array(8)]);
    for (const { parts } of chunkings(member, 31, 4)) {
      const { tap } = feed(sseOpts("openai", { encoding: "gzip" }), parts);
      expect(tap.usage()).toEqual(OPENAI_EXPECTED);
      expect(tap.bytesSeen).toBe(sseBody.length);
    }
  });

  test("a multi-member gzip body is decoded across members", () => {
    const cut = Math.floor(jsonBody.length / 3);
    const z = concatBytes([zlib.gzipSync(jsonBody.subarray(0, cut)), zlib.gzipSync(jsonBody.subarray(cut))]);
    for (const { parts } of chunkings(z, 41, 4)) {
      const { tap } = feed(jsonOpts("openai", { encoding: "gzip" }), parts);
      expect(tap.usage()).toEqual({ input: 8, output: 34, cacheRead: 4, cacheWrite: 0 });
      expect(tap.bytesSeen).toBe(jsonBody.length);
    }
  });

  test("a gzip body with trailing junk keeps the usage metered before the junk", () => {
    const z = concatBytes([zlib.gzipSync(jsonBody), enc.encode("trailing junk")]);
    const { tap } = feed(jsonOpts("openai", { encoding: "gzip" }), split(z, () => 333));
    expect(tap.usage()).toEqual({ input: 8, output: 34, cacheRead: 4, cacheWrite: 0 });
  });

  test("an unsupported encoding passes untouched and meters nothing (no garbage parse)", () => {
    const z = zlib.gzipSync(jsonBody);
    const { tap, out, identical } = feed(jsonOpts("openai", { encoding: "unsupported" }), [z]);
    expect(identical).toBe(true);
    expect(out).toEqual(z);
    expect(tap.usage()).toBeUndefined();
  });

  test("tapEncoding maps Content-Encoding values", () => {
    expect(tapEncoding(null)).toBeNull();
    expect(tapEncoding("identity")).toBeNull();
    expect(tapEncoding(" GZIP ")).toBe("gzip");
    expect(tapEncoding("x-gzip")).toBe("gzip");
    expect(tapEncoding("br")).toBe("br");
    expect(tapEncoding("deflate")).toBe("deflate");
    expect(tapEncoding("zstd")).toBe("zstd");
    expect(tapEncoding("gzip, br")).toBe("unsupported");
    expect(tapEncoding("compress")).toBe("unsupported");
  });
});

describe("bounded memory", () => {
  const MiB = 1024 * 1024;

  test("retainedBytes stays under 200 KiB through 50 MiB of JSON, and the usage at its end is found", () => {
    const tap = new ResponseTap(jsonOpts("openai"));
    tap.push(enc.encode('{"id":"x","model":"gpt-4o","choices":[{"message":{"content":"'));
    const filler = enc.encode("0123456789abcdef".repeat(4096)); // 64 KiB
    let max = 0;
    for (let sent = 0; sent < 50 * MiB; sent += filler.length) {
      tap.push(filler);
      max = Math.max(max, tap.retainedBytes());
    }
    tap.push(enc.encode('"}}],"usage":{"prompt_tokens":7,"completion_tokens":3}}'));
    max = Math.max(max, tap.retainedBytes());
    tap.end();
    expect(max).toBeLessThan(200 * 1024);
    expect(tap.bytesSeen).toBeGreaterThan(50 * MiB);
    expect(tap.usage()).toEqual({ input: 7, output: 3, cacheRead: 0, cacheWrite: 0 });
    expect(tap.model()).toBe("gpt-4o");
  });

  test("retainedBytes stays under 200 KiB through 50 MiB of SSE, with message_start kept", () => {
    const tap = new ResponseTap(sseOpts("anthropic"));
    tap.push(enc.encode('event: message_start\ndata: {"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":20,"cache_read_input_tokens":12,"cache_creation_input_tokens":8}}}\n\n'));
    const events: string[] = [];
    for (let i = 0; i < 256; i++) events.push(`event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"chunk ${i} ${"w".repeat(200)}"}}\n\n`);
    const block = enc.encode(events.join(""));
    // Shift boundaries so lines are held across pushes too.
    const parts = split(block, (() => { const r = mulberry32(99); return () => 1 + Math.floor(r() * 9000); })());
    let max = 0;
    for (let sent = 0; sent < 50 * MiB; ) {
      for (const p of parts) {
        tap.push(p);
        sent += p.length;
      }
      max = Math.max(max, tap.retainedBytes());
    }
    tap.push(enc.encode('event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":15}}\n\n'));
    tap.end();
    expect(max).toBeLessThan(200 * 1024);
    expect(tap.usage()).toEqual(ANTHROPIC_EXPECTED);
  });

  test("a gzip SSE stream of 8 MiB stays bounded too", () => {
    const content = openaiStream({ includeUsage: true, pieces: Array.from({ length: 50 }, (_, i) => ` t${i}`) });
    const tailStart = content.indexOf('"choices":[],"usage":{');
    const events = content.slice(0, content.lastIndexOf("data: ", tailStart));
    const body = enc.encode(events.repeat(Math.ceil((8 * MiB) / events.length)) + content.slice(content.lastIndexOf("data: ", tailStart)));
    const z = zlib.gzipSync(body);
    const tap = new ResponseTap(sseOpts("openai", { encoding: "gzip" }));
    let max = 0;
    for (const p of split(z, () => 16 * 1024)) {
      tap.push(p);
      max = Math.max(max, tap.retainedBytes());
    }
    tap.end();
    expect(max).toBeLessThan(200 * 1024);
    expect(tap.usage()).toEqual(OPENAI_EXPECTED);
    expect(tap.bytesSeen).toBe(body.length);
  });

  test("end() releases the held buffers", () => {
    const tap = new ResponseTap(jsonOpts("openai"));
    tap.push(enc.encode('{"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}'));
    expect(tap.retainedBytes()).toBeGreaterThan(0);
    tap.end();
    expect(tap.retainedBytes()).toBe(0);
  });
});

describe("cut-short estimate", () => {
  test("an OpenAI stream cut mid-way gives a non-zero output estimate from the text seen", () => {
    const full = openaiStream({ includeUsage: true, pieces: Array.from({ length: 100 }, () => " word") });
    const cut = enc.encode(full.slice(0, Math.floor(full.length / 2)));
    const { tap } = feed(sseOpts("openai"), split(cut, () => 37));
    expect(tap.usage()).toBeUndefined();
    expect(tap.usageComplete()).toBe(false);
    const e = tap.estimate(5000);
    expect(e.input).toBe(1000);
    expect(e.output).toBeGreaterThan(0);
    // Text only: about 45 " word" deltas of 5 bytes seen, far below the bytes of the whole stream.
    expect(e.output).toBeLessThan(Math.ceil(cut.length / 4.5) / 4);
  });

  test("an Anthropic stream cut mid-way keeps message_start's exact input and cache and estimates output", () => {
    const cut = enc.encode(anthropicStream({ textBytes: 4500, cut: true }));
    const { tap } = feed(sseOpts("anthropic"), split(cut, () => 64));
    expect(tap.usageComplete()).toBe(false);
    const e = tap.estimate(99_999);
    expect(e.input).toBe(20);
    expect(e.cacheRead).toBe(12);
    expect(e.cacheWrite).toBe(8);
    expect(e.output).toBeGreaterThanOrEqual(Math.floor(4500 / 4.5));
  });

  test("a Responses API stream cut before response.completed estimates from its delta strings only", () => {
    const full = responsesStream({ outputText: "abcdefgh".repeat(90) });
    const cut = full.slice(0, full.indexOf("response.output_text.done"));
    const { tap } = feed(sseOpts("openai"), [enc.encode(cut)]);
    expect(tap.estimate(0).output).toBe(Math.ceil(720 / 4.5));
  });

  test("a complete usage is returned as is by estimate()", () => {
    const { tap } = feed(sseOpts("openai"), [enc.encode(openaiStream({ includeUsage: true }))]);
    expect(tap.estimate(123_456)).toEqual(OPENAI_EXPECTED);
  });
});
