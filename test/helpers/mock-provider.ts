// A mock LLM provider for end-to-end tests: a plain-HTTP Bun.serve on 127.0.0.1 that records every
// request exactly as it arrived and answers in the providers' real wire formats (OpenAI chat JSON/SSE,
// Responses API, embeddings, models; Anthropic messages JSON/SSE, count_tokens). Behaviour can be changed
// per request (header `x-mock-mode`, which the gateway forwards like any other header) or per test
// (setMode / queue), so one mock can serve a whole describe block.
// Streams can be paced like a real provider's (setPacing, or header `x-mock-pace`): every SSE event in its own
// write with a delay between writes, optionally each event split at a byte offset into two writes.
// Failure modes (SPEC §10 tests): per pool key, by the credential's prefix (`sk-r429-…` always 429 with retry-after 30,
// `sk-401-…` always 401, `sk-quota-…` always an insufficient_quota 429); per model, by the body's `model` prefix
// (`fail-once-503…`, `always-503…`, `status-400…`, `context-length-400…`, `inband-overload-once…`,
// `reset-after-content…`, `slow-head-<ms>…`, … see MODEL_FAILURES and modelFailureOf); and at random for benches (`setChaos`, or header `x-mock-chaos: 429=0.2,503=0.05`). Every failure
// answer is in the request's dialect (Anthropic for `/messages` paths, OpenAI otherwise).
// Scripted replies (dialect translation tests): header `x-mock-reply: tool-call | two-tool-calls | max-tokens |
// stop-sequence | cache-usage | echo | error-400 | error-429 | error-500` picks a fixed chat/messages answer, JSON or
// SSE, in the mock's dialect, with the known token counts of SCRIPTED_USAGE (see scriptFor and MOCK_REPLIES).
import { createHash } from "node:crypto";
import { brotliCompressSync } from "node:zlib";
import type { Server } from "bun";

export interface RecordedRequest {
  /** 0-based arrival order since the last reset(). */
  seq: number;
  /** Arrival order across every mock of the test process (seq counts per mock): orders one request's attempts when
   * they reach two mocks within the same millisecond. */
  arrival: number;
  method: string;
  /** Path plus query exactly as the mock saw it (origin removed). */
  path: string;
  /** Header names lower-cased, as Bun exposes them (duplicates joined by ", "). */
  headers: Record<string, string>;
  /** The whole request body (for `stream-in`, filled in once the body has been read to the end, and left
   * empty above STREAM_IN_KEEP_BYTES). */
  body: Uint8Array;
  bodySha256: string;
  /** Body bytes read so far: grows while a `stream-in` request is still arriving. */
  bytesReceived: number;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: unknown;
  receivedAt: number;
  /** Set once the caller (the gateway) went away before the mock finished its answer. */
  closedEarlyAt: number | null;
  /** Resolves when the caller disconnects before the response body is complete. */
  closedEarly: Promise<void>;
  /** True once the mock wrote the last byte of its answer. */
  finished: boolean;
  /** How this request's SSE answer is paced (null: unpaced). */
  pacing: Pacing | null;
}

export type MockMode =
  /** Choose the answer from the path and body (the default). */
  | { kind: "auto"; headers?: Record<string, string> }
  /** Status N with a JSON error body (or `body`), and extra headers. */
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  /** A body of `size` deterministic bytes (patternBytes(size, seed)), streamed in `chunkSize` pieces. */
  | { kind: "bytes"; size: number; seed?: number; chunkSize?: number }
  /** The auto answer compressed with `encoding` when the request accepts it, identity otherwise. */
  | { kind: "compressed"; encoding: "gzip" | "br" }
  /** JSON {size, sha256} of the request body the mock received. */
  | { kind: "echo-size" }
  /** Like echo-size, but the request is recorded on arrival and its body read incrementally
   * (bytesReceived grows as bytes arrive), so a test can see an upload reach the provider while still in flight.
   * Only selectable through the `x-mock-mode: stream-in` header, since it changes how the body is read. */
  | { kind: "stream-in" }
  /** Wait `ms` before sending the response head, then answer with `then` (auto by default). */
  | { kind: "delay"; ms: number; then?: MockMode }
  /** Send the head and a few body bytes, then kill the connection. */
  | { kind: "reset" }
  /** SSE: event i is sent once gates[i] (if any) resolves; the stream ends after the last one. */
  | { kind: "sse"; events: string[]; gates?: Array<Promise<void> | undefined>; headers?: Record<string, string> }
  /** SSE that sends `data: {"n":i}` every intervalMs forever (until the caller goes away). */
  | { kind: "drip"; intervalMs: number };

/**
 * How SSE answers go out on the wire. Without pacing every event is enqueued at once and Bun may coalesce them (the
 * whole stream then often reaches the gateway in one read). Paced, each piece is its own chunked write with `delayMs`
 * between writes, the way a real provider's tokens arrive: Bun writes a piece as soon as it is enqueued, and the
 * await between pieces lets the write go out before the next exists (test/mock-pacing.test.ts reads them back one by
 * one on a raw socket).
 */
export interface Pacing {
  /** Delay before every write but the first (the head goes out with the first write). */
  delayMs: number;
  /** Split every event at this byte offset into two writes (an event no longer than the offset stays whole). */
  splitAt?: number;
}

/** `x-mock-pace: MS` or `MS/SPLIT` (SPLIT: the byte offset each event is split at). */
export function parsePaceHeader(value: string): Pacing | undefined {
  const [ms, split] = value.split("/", 2).map((s) => Number(s.trim()));
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined;
  if (split === undefined) return { delayMs: ms };
  return Number.isInteger(split) && split > 0 ? { delayMs: ms, splitAt: split } : undefined;
}

/** The writes a paced stream makes for `events`: each event whole, or in two pieces at `splitAt`. */
export function pacedPieces(events: readonly string[], pacing: Pacing | null): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const e of events) {
    const bytes = enc.encode(e);
    const k = pacing?.splitAt;
    if (k !== undefined && k > 0 && k < bytes.byteLength) out.push(bytes.subarray(0, k), bytes.subarray(k));
    else out.push(bytes);
  }
  return out;
}

export interface Gate {
  promise: Promise<void>;
  open(): void;
}

/** A promise the test resolves by hand, to pace a streaming answer. */
export function createGate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Token counts the mock reports, mirroring the seed gateway's mock. */
export const MOCK_USAGE = {
  openaiJson: { prompt_tokens: 11, completion_tokens: 7 },
  openaiSse: { prompt_tokens: 5, completion_tokens: 9 },
  anthropicJson: { input_tokens: 13, output_tokens: 7 },
  anthropicSse: { input_tokens: 13, output_tokens: 7 },
  responses: { input_tokens: 17, output_tokens: 9 },
} as const;
export const MOCK_OPENAI_MODEL = "gpt-4o-2024-08-06";
export const MOCK_ANTHROPIC_MODEL = "claude-opus-4-8";
export const MOCK_TEXT = "Hello from mock";
/** The deltas a streamed answer is split into; they join to MOCK_TEXT. */
export const MOCK_DELTAS = ["Hello", " from", " mock"] as const;

const enc = new TextEncoder();

/** Deterministic pseudo-random bytes, so both ends of a transfer can compute the expected digest. */
export function patternBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, size >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    // xorshift32: fast, and not compressible, so no layer can shortcut the bytes.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < size; i++) out[i] = i & 0xff;
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Parses the `x-mock-mode` header grammar: `status:N`, `bytes:N`, `gzip`, `br`, `echo-size`,
 * `delay:MS`, `reset`, `drip:MS`, `stream-in`, `spoof-id` (auto answer that also sets x-beyond-request-id). */
export function parseModeHeader(value: string): MockMode | undefined {
  const [name, arg] = value.split(":", 2).map((s) => s.trim());
  const n = arg === undefined ? NaN : Number(arg);
  switch (name) {
    case "status":
      return Number.isInteger(n) ? { kind: "status", status: n } : undefined;
    case "bytes":
      return Number.isInteger(n) ? { kind: "bytes", size: n } : undefined;
    case "gzip":
    case "br":
      return { kind: "compressed", encoding: name };
    case "echo-size":
      return { kind: "echo-size" };
    case "stream-in":
      return { kind: "stream-in" };
    case "delay":
      return Number.isFinite(n) ? { kind: "delay", ms: n } : undefined;
    case "reset":
      return { kind: "reset" };
    case "drip":
      return { kind: "drip", intervalMs: Number.isFinite(n) ? n : 100 };
    case "spoof-id":
      return { kind: "auto", headers: { "x-beyond-request-id": "spoofed-by-provider" } };
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Wire formats. Field sets follow the real APIs closely enough for the official SDKs to parse them.

function nowSecs(): number {
  return Math.floor(Date.now() / 1000);
}

export function openaiChatJson(model = MOCK_OPENAI_MODEL): string {
  const u = MOCK_USAGE.openaiJson;
  return JSON.stringify({
    id: "chatcmpl-mock",
    object: "chat.completion",
    created: nowSecs(),
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: MOCK_TEXT, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: {
      prompt_tokens: u.prompt_tokens,
      completion_tokens: u.completion_tokens,
      total_tokens: u.prompt_tokens + u.completion_tokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: "default",
    system_fingerprint: "fp_mock",
  });
}

/** OpenAI chat SSE events (each a complete `data: …\n\n`). As real OpenAI does, `"usage":null` on every
 * chunk and the final `choices:[]` usage chunk appear only when the request asked for include_usage. */
export function openaiChatSseEvents(includeUsage: boolean, model = MOCK_OPENAI_MODEL): string[] {
  const created = nowSecs();
  const base = { id: "chatcmpl-mock", object: "chat.completion.chunk", created, model, service_tier: "default", system_fingerprint: "fp_mock" };
  const chunk = (delta: Record<string, unknown>, finish: string | null): string => {
    const c: Record<string, unknown> = { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
    if (includeUsage) c["usage"] = null;
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  const events = [chunk({ role: "assistant", content: "", refusal: null }, null)];
  for (const d of MOCK_DELTAS) events.push(chunk({ content: d }, null));
  events.push(chunk({}, "stop"));
  if (includeUsage) {
    const u = MOCK_USAGE.openaiSse;
    const usage = {
      prompt_tokens: u.prompt_tokens,
      completion_tokens: u.completion_tokens,
      total_tokens: u.prompt_tokens + u.completion_tokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    events.push(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
  }
  events.push("data: [DONE]\n\n");
  return events;
}

export function anthropicMessageJson(model = MOCK_ANTHROPIC_MODEL): string {
  const u = MOCK_USAGE.anthropicJson;
  return JSON.stringify({
    id: "msg_mock",
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text: MOCK_TEXT }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: {
      input_tokens: u.input_tokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: u.output_tokens,
      service_tier: "standard",
    },
  });
}

/** Anthropic SSE in the real event order: message_start, content_block_start, ping, deltas,
 * content_block_stop, message_delta (with usage), message_stop. */
export function anthropicSseEvents(model = MOCK_ANTHROPIC_MODEL): string[] {
  const u = MOCK_USAGE.anthropicSse;
  const ev = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const events = [
    ev("message_start", {
      type: "message_start",
      message: {
        id: "msg_mock",
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: u.input_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1, service_tier: "standard" },
      },
    }),
    ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    ev("ping", { type: "ping" }),
  ];
  for (const d of MOCK_DELTAS) {
    events.push(ev("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: d } }));
  }
  events.push(
    ev("content_block_stop", { type: "content_block_stop", index: 0 }),
    ev("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: u.output_tokens } }),
    ev("message_stop", { type: "message_stop" }),
  );
  return events;
}

// ---------------------------------------------------------------------------------------------
// Scripted replies (dialect translation tests, SPEC §12): a request header `x-mock-reply: <name>` picks a fixed
// answer shape for `/chat/completions` and `/messages`, JSON or SSE as the request asks, in the mock's dialect.
// Shapes follow the providers' documented formats: Anthropic Messages streaming (message_start, content_block_start
// with a `tool_use` block whose `input` is `{}`, `input_json_delta` fragments starting with an empty `partial_json`,
// message_delta with stop_reason and cumulative output usage, message_stop; docs.anthropic.com "Streaming Messages")
// and OpenAI chat.completion.chunk (the first tool-call delta carries index, id, type and name with empty arguments,
// later ones only index and an arguments fragment; finish_reason on its own chunk; with include_usage, `"usage":null`
// on every chunk and a last `choices: []` chunk with the usage; platform.openai.com "The chat completion chunk object").
// Token counts are the constants below, so a test can assert them exactly on both sides of a translation.

/** The names `x-mock-reply` accepts. */
/** The process-wide arrival counter behind RecordedRequest.arrival. */
let arrivals = 0;

export const MOCK_REPLIES = ["tool-call", "two-tool-calls", "max-tokens", "stop-sequence", "cache-usage", "echo", "error-400", "error-429", "error-500"] as const;
export type MockReply = (typeof MOCK_REPLIES)[number];

export function parseReplyHeader(value: string): MockReply | undefined {
  const v = value.trim();
  return (MOCK_REPLIES as readonly string[]).includes(v) ? (v as MockReply) : undefined;
}

/** Token counts of every scripted (non-error) reply, JSON and SSE alike. `cache-usage` uses the `*Cache` ones. */
export const SCRIPTED_USAGE = {
  anthropic: { input_tokens: 21, output_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  anthropicCache: { input_tokens: 21, output_tokens: 12, cache_creation_input_tokens: 300, cache_read_input_tokens: 1200 },
  /** `cached_tokens` is `prompt_tokens_details.cached_tokens`. */
  openai: { prompt_tokens: 31, completion_tokens: 14, cached_tokens: 0 },
  openaiCache: { prompt_tokens: 1531, completion_tokens: 14, cached_tokens: 1024 },
} as const;

/** The tool call ids the scripted replies use, per dialect, in order. */
export const SCRIPTED_TOOL_IDS = {
  anthropic: ["toolu_mock_01", "toolu_mock_02"],
  openai: ["call_mock_01", "call_mock_02"],
} as const;
/** The first tool call's arguments, streamed as these fragments (cut inside keys and values, never on a token edge). */
export const SCRIPTED_ARGS_FRAGMENTS = ['{"ci', 'ty": "Pa', 'ris", "un', 'it": "cel', 'sius"}'] as const;
export const SCRIPTED_ARGS = { city: "Paris", unit: "celsius" } as const;
/** The second tool call's arguments (two-tool-calls), and its fragments. */
export const SCRIPTED_ARGS2_FRAGMENTS = ['{"city', '": "Lon', 'don"}'] as const;
export const SCRIPTED_ARGS2 = { city: "London" } as const;
/** The tool name used when the request named no tools. */
export const SCRIPTED_DEFAULT_TOOL = "get_weather";
/** Text of the Anthropic tool replies' leading text block (Anthropic's documented tool-use stream starts with one;
 * the OpenAI tool replies have `content: null`, as OpenAI's do). */
export const SCRIPTED_TOOL_PREAMBLE = ["Let me", " check."] as const;
/** max-tokens: the text cut short. */
export const SCRIPTED_TRUNCATED = ["Once upon", " a time"] as const;
/** stop-sequence: the text before the stop sequence. */
export const SCRIPTED_BEFORE_STOP = ["Counting: 1,", " 2, 3"] as const;
/** The stop sequence the Anthropic stop-sequence reply names when the request gave none. */
export const SCRIPTED_DEFAULT_STOP = "END";

type StopKind = "end" | "length" | "stop_sequence" | "tool";

/** One scripted answer, dialect-neutral; rendered by the four functions below. */
export interface Script {
  /** Text deltas (joined: the text); empty: no text block. */
  text: readonly string[];
  tools: ReadonlyArray<{ id: string; name: string; fragments: readonly string[] }>;
  stop: StopKind;
  /** Anthropic `stop_sequence` (only with stop "stop_sequence"). */
  stopSequence?: string;
  cache: boolean;
}

function toolNamesOf(body: Record<string, unknown>, dialect: Dialect): string[] {
  const tools = Array.isArray(body["tools"]) ? (body["tools"] as unknown[]) : [];
  const names: string[] = [];
  for (const t of tools) {
    if (t === null || typeof t !== "object") continue;
    const o = t as Record<string, unknown>;
    const fn = o["function"] as Record<string, unknown> | undefined;
    const name = dialect === "anthropic" ? o["name"] : fn?.["name"];
    if (typeof name === "string") names.push(name);
  }
  return names;
}

/** Code-point pieces of `s` (about `n` of them), so a streamed echo never cuts a surrogate pair. */
function splitText(s: string, n: number): string[] {
  const cps = Array.from(s);
  const size = Math.max(1, Math.ceil(cps.length / n));
  const out: string[] = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(""));
  return out.length > 0 ? out : [""];
}

/** The script a reply name gives for this request (undefined for the error replies). */
export function scriptFor(reply: MockReply, dialect: Dialect, body: Record<string, unknown>): Script | undefined {
  const names = toolNamesOf(body, dialect);
  const ids = SCRIPTED_TOOL_IDS[dialect];
  const first = names[0] ?? SCRIPTED_DEFAULT_TOOL;
  const lead = dialect === "anthropic" ? SCRIPTED_TOOL_PREAMBLE : [];
  switch (reply) {
    case "tool-call":
      return { text: lead, tools: [{ id: ids[0], name: first, fragments: SCRIPTED_ARGS_FRAGMENTS }], stop: "tool", cache: false };
    case "two-tool-calls":
      return {
        text: lead,
        tools: [
          { id: ids[0], name: first, fragments: SCRIPTED_ARGS_FRAGMENTS },
          { id: ids[1], name: names[1] ?? first, fragments: SCRIPTED_ARGS2_FRAGMENTS },
        ],
        stop: "tool",
        cache: false,
      };
    case "max-tokens":
      return { text: SCRIPTED_TRUNCATED, tools: [], stop: "length", cache: false };
    case "stop-sequence": {
      const seqs = dialect === "anthropic" ? body["stop_sequences"] : body["stop"];
      const named = Array.isArray(seqs) ? seqs[0] : seqs;
      return { text: SCRIPTED_BEFORE_STOP, tools: [], stop: "stop_sequence", stopSequence: typeof named === "string" ? named : SCRIPTED_DEFAULT_STOP, cache: false };
    }
    case "cache-usage":
      return { text: MOCK_DELTAS, tools: [], stop: "end", cache: true };
    case "echo":
      return { text: splitText(JSON.stringify(body), 3), tools: [], stop: "end", cache: false };
    default:
      return undefined;
  }
}

const ANTHROPIC_STOP: Record<StopKind, string> = { end: "end_turn", length: "max_tokens", stop_sequence: "stop_sequence", tool: "tool_use" };
const OPENAI_FINISH: Record<StopKind, string> = { end: "stop", length: "length", stop_sequence: "stop", tool: "tool_calls" };

function anthropicScriptUsage(s: Script): Record<string, number | string> {
  const u = s.cache ? SCRIPTED_USAGE.anthropicCache : SCRIPTED_USAGE.anthropic;
  return {
    input_tokens: u.input_tokens,
    cache_creation_input_tokens: u.cache_creation_input_tokens,
    cache_read_input_tokens: u.cache_read_input_tokens,
    output_tokens: u.output_tokens,
    service_tier: "standard",
  };
}

function openaiScriptUsage(s: Script): Record<string, unknown> {
  const u = s.cache ? SCRIPTED_USAGE.openaiCache : SCRIPTED_USAGE.openai;
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.prompt_tokens + u.completion_tokens,
    prompt_tokens_details: { cached_tokens: u.cached_tokens, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

export function anthropicScriptJson(s: Script, model = MOCK_ANTHROPIC_MODEL): string {
  const content: unknown[] = [];
  if (s.text.length > 0) content.push({ type: "text", text: s.text.join("") });
  for (const t of s.tools) content.push({ type: "tool_use", id: t.id, name: t.name, input: JSON.parse(t.fragments.join("")) as unknown });
  return JSON.stringify({
    id: "msg_mock_scripted",
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: ANTHROPIC_STOP[s.stop],
    stop_sequence: s.stop === "stop_sequence" ? (s.stopSequence ?? SCRIPTED_DEFAULT_STOP) : null,
    usage: anthropicScriptUsage(s),
  });
}

export function anthropicScriptSse(s: Script, model = MOCK_ANTHROPIC_MODEL): string[] {
  const ev = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const usage = anthropicScriptUsage(s);
  const events = [
    ev("message_start", {
      type: "message_start",
      message: { id: "msg_mock_scripted", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } },
    }),
  ];
  let index = 0;
  if (s.text.length > 0) {
    events.push(ev("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }), ev("ping", { type: "ping" }));
    for (const d of s.text) events.push(ev("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: d } }));
    events.push(ev("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  for (const t of s.tools) {
    events.push(ev("content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id: t.id, name: t.name, input: {} } }));
    for (const f of ["", ...t.fragments]) {
      events.push(ev("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: f } }));
    }
    events.push(ev("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  events.push(
    ev("message_delta", {
      type: "message_delta",
      delta: { stop_reason: ANTHROPIC_STOP[s.stop], stop_sequence: s.stop === "stop_sequence" ? (s.stopSequence ?? SCRIPTED_DEFAULT_STOP) : null },
      usage: { output_tokens: usage["output_tokens"] },
    }),
    ev("message_stop", { type: "message_stop" }),
  );
  return events;
}

export function openaiScriptJson(s: Script, model = MOCK_OPENAI_MODEL): string {
  const message: Record<string, unknown> = { role: "assistant", content: s.text.length > 0 ? s.text.join("") : null, refusal: null, annotations: [] };
  if (s.tools.length > 0) {
    message["tool_calls"] = s.tools.map((t) => ({ id: t.id, type: "function", function: { name: t.name, arguments: t.fragments.join("") } }));
  }
  return JSON.stringify({
    id: "chatcmpl-mock-scripted",
    object: "chat.completion",
    created: nowSecs(),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: OPENAI_FINISH[s.stop] }],
    usage: openaiScriptUsage(s),
    service_tier: "default",
    system_fingerprint: "fp_mock",
  });
}

export function openaiScriptSse(s: Script, includeUsage: boolean, model = MOCK_OPENAI_MODEL): string[] {
  const base = { id: "chatcmpl-mock-scripted", object: "chat.completion.chunk", created: nowSecs(), model, service_tier: "default", system_fingerprint: "fp_mock" };
  const chunk = (delta: Record<string, unknown>, finish: string | null): string => {
    const c: Record<string, unknown> = { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
    if (includeUsage) c["usage"] = null;
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  const events = [chunk({ role: "assistant", content: s.text.length > 0 ? "" : null, refusal: null }, null)];
  for (const d of s.text) events.push(chunk({ content: d }, null));
  s.tools.forEach((t, i) => {
    events.push(chunk({ tool_calls: [{ index: i, id: t.id, type: "function", function: { name: t.name, arguments: "" } }] }, null));
    for (const f of t.fragments) events.push(chunk({ tool_calls: [{ index: i, function: { arguments: f } }] }, null));
  });
  events.push(chunk({}, OPENAI_FINISH[s.stop]));
  if (includeUsage) events.push(`data: ${JSON.stringify({ ...base, choices: [], usage: openaiScriptUsage(s) })}\n\n`);
  events.push("data: [DONE]\n\n");
  return events;
}

function responsesObject(status: "in_progress" | "completed", model: string): Record<string, unknown> {
  const u = MOCK_USAGE.responses;
  const done = status === "completed";
  return {
    id: "resp_mock",
    object: "response",
    created_at: nowSecs(),
    status,
    error: null,
    incomplete_details: null,
    instructions: null,
    model,
    output: done
      ? [
          {
            type: "message",
            id: "msg_mock",
            status: "completed",
            role: "assistant",
            content: [{ type: "output_text", text: MOCK_TEXT, annotations: [] }],
          },
        ]
      : [],
    parallel_tool_calls: true,
    tool_choice: "auto",
    tools: [],
    usage: done
      ? {
          input_tokens: u.input_tokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: u.output_tokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: u.input_tokens + u.output_tokens,
        }
      : null,
  };
}

export function responsesJson(model = MOCK_OPENAI_MODEL): string {
  return JSON.stringify(responsesObject("completed", model));
}

export function responsesSseEvents(model = MOCK_OPENAI_MODEL): string[] {
  const ev = (name: string, data: Record<string, unknown>, seq: number): string =>
    `event: ${name}\ndata: ${JSON.stringify({ type: name, sequence_number: seq, ...data })}\n\n`;
  const events = [ev("response.created", { response: responsesObject("in_progress", model) }, 0)];
  let seq = 1;
  for (const d of MOCK_DELTAS) {
    events.push(ev("response.output_text.delta", { item_id: "msg_mock", output_index: 0, content_index: 0, delta: d }, seq++));
  }
  events.push(ev("response.completed", { response: responsesObject("completed", model) }, seq));
  return events;
}

function embeddingsJson(model: string): string {
  return JSON.stringify({
    object: "list",
    data: [{ object: "embedding", index: 0, embedding: [0.0023, -0.0091, 0.0154, 0.0042] }],
    model,
    usage: { prompt_tokens: 5, total_tokens: 5 },
  });
}

function modelsJson(anthropic: boolean): string {
  if (anthropic) {
    return JSON.stringify({
      data: [{ type: "model", id: MOCK_ANTHROPIC_MODEL, display_name: "Claude Mock", created_at: "2025-01-01T00:00:00Z" }],
      has_more: false,
      first_id: MOCK_ANTHROPIC_MODEL,
      last_id: MOCK_ANTHROPIC_MODEL,
    });
  }
  return JSON.stringify({
    object: "list",
    data: [
      { id: "gpt-4o", object: "model", created: 1715367049, owned_by: "system" },
      { id: "gpt-4o-mini", object: "model", created: 1721172741, owned_by: "system" },
    ],
  });
}

/** Whether an OpenAI chat body asked for the usage chunk (`stream_options.include_usage: true`). */
function includesUsage(body: Record<string, unknown>): boolean {
  const so = body["stream_options"] as Record<string, unknown> | undefined | null;
  return so !== undefined && so !== null && so["include_usage"] === true;
}

// ---------------------------------------------------------------------------------------------

/** A `stream-in` body larger than this is recorded by size and digest only (body stays empty). */
export const STREAM_IN_KEEP_BYTES = 16 * 1024 * 1024;

/** Random failures (bench/retries.ts): each request draws once; p429 + p503 ≤ 1. */
export interface Chaos {
  p429: number;
  p503: number;
  /** The 429's `retry-after-ms` (default 50). */
  retryAfterMs?: number;
  /** PRNG seed, so a run is repeatable (default 1). */
  seed?: number;
}

/** `x-mock-chaos: 429=0.2,503=0.05[,ra=50]` (ra: the 429's retry-after-ms). */
export function parseChaosHeader(value: string): Chaos | undefined {
  const c: Chaos = { p429: 0, p503: 0 };
  for (const part of value.split(",")) {
    const [k, v] = part.split("=", 2).map((x) => x.trim());
    const n = Number(v);
    if (v === undefined || v === "" || !Number.isFinite(n) || n < 0) return undefined;
    if (k === "429") c.p429 = n;
    else if (k === "503") c.p503 = n;
    else if (k === "ra") c.retryAfterMs = n;
    else return undefined;
  }
  return c.p429 + c.p503 <= 1 ? c : undefined;
}

/** The credential a request carried: `authorization: Bearer K`, else `x-api-key`, else `api-key`. */
export function keyOf(rec: Pick<RecordedRequest, "headers">): string | undefined {
  const auth = rec.headers["authorization"];
  if (auth !== undefined && /^bearer /i.test(auth)) return auth.slice(7).trim();
  return rec.headers["x-api-key"] ?? rec.headers["api-key"];
}

/** The body's `model`, when the body was JSON with a string model. */
export function modelOf(rec: Pick<RecordedRequest, "json">): string | undefined {
  const j = rec.json;
  if (j === null || typeof j !== "object" || Array.isArray(j)) return undefined;
  const m = (j as Record<string, unknown>)["model"];
  return typeof m === "string" ? m : undefined;
}

export type Dialect = "openai" | "anthropic";

/** The dialect a request speaks, as the gateway routes it: Anthropic for `/messages` paths, else OpenAI. */
export function dialectOfPath(path: string): Dialect {
  const p = path.split("?", 1)[0] ?? path;
  return p.endsWith("/messages") || p.endsWith("/messages/count_tokens") ? "anthropic" : "openai";
}

/** What a pool key answers, by prefix (anything else: normal behaviour). */
export type KeyFailure = "r429" | "401" | "quota";
export const KEY_FAILURES: ReadonlyArray<readonly [prefix: string, failure: KeyFailure]> = [
  ["sk-r429-", "r429"],
  ["sk-401-", "401"],
  ["sk-quota-", "quota"],
];

export function keyFailureOf(key: string | undefined): KeyFailure | undefined {
  if (key === undefined) return undefined;
  for (const [prefix, f] of KEY_FAILURES) if (key.startsWith(prefix)) return f;
  return undefined;
}

/**
 * Per-model failures, matched by prefix of the body's `model` (so a test can name `fail-once-503-my-test` and get its
 * own "first time"). `once` failures fail only the first request for that exact model string since reset(); the
 * answer after is the normal one. The in-band, reset and slow modes apply to streamed chat/messages requests; a
 * non-streamed request for them gets the normal answer.
 */
export type ModelFailure =
  | { kind: "status"; status: 400 | 408 | 429 | 500 | 503 | 529; once: boolean }
  /** 400 saying the prompt is over the model's context window: OpenAI `context_length_exceeded`, Anthropic "prompt
   * is too long" (SPEC §11: a virtual model moves to its next target on it, unlike any other 400). Every time. */
  | { kind: "context-length" }
  /** Not a failure: the normal answer, its response head held back `ms` first (a slow target for `latency`). */
  | { kind: "slow-head"; ms: number }
  | { kind: "inband"; once: boolean }
  | { kind: "reset-after-content" }
  | { kind: "slow-preamble" };
export const MODEL_FAILURES: ReadonlyArray<readonly [prefix: string, failure: ModelFailure]> = [
  ["fail-once-503", { kind: "status", status: 503, once: true }],
  ["fail-once-500", { kind: "status", status: 500, once: true }],
  ["fail-once-529", { kind: "status", status: 529, once: true }],
  ["fail-once-429", { kind: "status", status: 429, once: true }],
  ["fail-once-408", { kind: "status", status: 408, once: true }],
  ["always-503", { kind: "status", status: 503, once: false }],
  ["status-400", { kind: "status", status: 400, once: false }],
  ["context-length-400", { kind: "context-length" }],
  ["inband-overload-once", { kind: "inband", once: true }],
  ["inband-overload-always", { kind: "inband", once: false }],
  ["reset-after-content", { kind: "reset-after-content" }],
  ["slow-preamble", { kind: "slow-preamble" }],
];

/** `slow-head-<ms>` (e.g. `slow-head-300-fast-llama`): the head of the normal answer waits that many milliseconds. */
const SLOW_HEAD = /^slow-head-(\d{1,6})(?:\D|$)/;

export function modelFailureOf(model: string | undefined): ModelFailure | undefined {
  if (model === undefined) return undefined;
  const slow = SLOW_HEAD.exec(model);
  if (slow !== null) return { kind: "slow-head", ms: Number(slow[1]) };
  for (const [prefix, f] of MODEL_FAILURES) if (model.startsWith(prefix)) return f;
  return undefined;
}

/** How long `slow-preamble` waits between the preamble and the first content delta (over commit_hold_ms = 1500). */
export const SLOW_PREAMBLE_MS = 1800;
/** The `retry-after` (seconds) a `sk-r429-` key answers with. */
export const R429_RETRY_AFTER_SECS = 30;
/** The `retry-after-ms` of `fail-once-429`. */
export const FAIL_ONCE_429_RETRY_AFTER_MS = 50;

/** A failure answer in the request's dialect: status, JSON body, headers, as the real providers send them. */
export function failureAnswer(
  dialect: Dialect,
  what: "rate_limited" | "auth" | "quota" | "context_length" | 400 | 408 | 429 | 500 | 503 | 529,
  opts: { retryAfterMs?: number; requestId?: string } = {},
): { status: number; body: string; headers: Record<string, string> } {
  const h: Record<string, string> = { "content-type": "application/json" };
  if (opts.requestId !== undefined) h[dialect === "openai" ? "x-request-id" : "request-id"] = opts.requestId;
  const oa = (status: number, message: string, type: string, code: string | null, param: string | null = null) => ({
    status,
    body: JSON.stringify({ error: { message, type, param, code } }),
    headers: h,
  });
  const an = (status: number, type: string, message: string) => ({
    status,
    body: JSON.stringify({ type: "error", error: { type, message } }),
    headers: h,
  });
  switch (what) {
    case "rate_limited": {
      // A long rate limit: `retry-after` in seconds plus the provider's own reset headers, all saying 30 s.
      h["retry-after"] = String(R429_RETRY_AFTER_SECS);
      if (dialect === "openai") {
        h["x-ratelimit-limit-requests"] = "500";
        h["x-ratelimit-remaining-requests"] = "0";
        h["x-ratelimit-reset-requests"] = `${R429_RETRY_AFTER_SECS}s`;
        return oa(429, "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 30s.", "requests", "rate_limit_exceeded");
      }
      h["anthropic-ratelimit-requests-limit"] = "50";
      h["anthropic-ratelimit-requests-remaining"] = "0";
      h["anthropic-ratelimit-requests-reset"] = new Date(Date.now() + R429_RETRY_AFTER_SECS * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
      return an(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit.");
    }
    case 429:
      // A short rate limit with only `retry-after-ms` (OpenAI sends it; the SDKs honour it first).
      h["retry-after-ms"] = String(opts.retryAfterMs ?? FAIL_ONCE_429_RETRY_AFTER_MS);
      return dialect === "openai"
        ? oa(429, "Rate limit reached for requests. Please try again shortly.", "requests", "rate_limit_exceeded")
        : an(429, "rate_limit_error", "Number of requests has exceeded your rate limit.");
    case "auth":
      // Never echo the key back (real OpenAI shows a masked tail; the tests check no key value leaks anywhere).
      return dialect === "openai"
        ? oa(401, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")
        : an(401, "authentication_error", "invalid x-api-key");
    case "quota":
      return oa(429, "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota");
    case "context_length":
      // The providers' own words: OpenAI's code, Anthropic's message prefix (both are what a gateway can match on).
      return dialect === "openai"
        ? oa(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
          )
        : an(400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum");
    case 400:
      return dialect === "openai"
        ? oa(400, "Invalid value for 'messages': the mock refuses this request.", "invalid_request_error", null, "messages")
        : an(400, "invalid_request_error", "messages: the mock refuses this request");
    case 408:
      return dialect === "openai" ? oa(408, "Request timed out.", "timeout", null) : an(408, "timeout_error", "Request timed out");
    case 500:
      return dialect === "openai"
        ? oa(500, "The server had an error while processing your request. Sorry about that!", "server_error", null)
        : an(500, "api_error", "Internal server error");
    case 503:
      return dialect === "openai"
        ? oa(503, "The server is overloaded or not ready yet.", "server_error", null)
        : an(503, "api_error", "Service unavailable");
    case 529:
      return dialect === "openai" ? oa(529, "The engine is currently overloaded, please try again later.", "server_error", null) : an(529, "overloaded_error", "Overloaded");
  }
}

/** The in-band error event a 200 stream ends with (Anthropic `event: error`; OpenAI a `data:` line holding `error`). */
export function inbandErrorEvent(dialect: Dialect): string {
  if (dialect === "anthropic") return `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`;
  return `data: ${JSON.stringify({ error: { message: "The server is overloaded or not ready yet.", type: "server_error", param: null, code: null } })}\n\n`;
}

/** How many leading events of the dialect's normal stream are the preamble (before the first content delta). */
export function preambleLength(dialect: Dialect): number {
  // Anthropic: message_start, content_block_start, ping. OpenAI chat: the role-only chunk.
  return dialect === "anthropic" ? 3 : 1;
}

export interface MockProvider {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** `127.0.0.1:PORT`, the value for `[provider_authorities]`. */
  authority: string;
  /** Every request since the last reset(), in arrival order. */
  requests: RecordedRequest[];
  /** The newest request, or throws when there is none. */
  last(): RecordedRequest;
  /** Pacing for every later SSE answer (a request's `x-mock-pace` header wins); null: unpaced. reset() goes back
   * to the run's default ($BEYOND_AI_MOCK_PACE, else unpaced). */
  setPacing(pacing: Pacing | null): void;
  /** Mode for every later request (or only those whose path without query equals `path`); null clears. */
  setMode(mode: MockMode | null, path?: string): void;
  /** A one-shot mode for the next request that has no `x-mock-mode` header. */
  queue(mode: MockMode): void;
  /** Forget requests and modes. */
  reset(): void;
  /** Polls until a recorded request satisfies `pred`. */
  waitForRequest(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Random failures for every later request that no key, model or header mode claims (null: off). Survives reset()
   * only when set again; reset() turns it off. */
  setChaos(chaos: Chaos | null): void;
  /** How many chaos failures of each kind were answered since reset(). */
  chaosCounts(): { "429": number; "503": number };
  stop(): Promise<void>;
}

interface Pending {
  closedEarlyAt: number | null;
  finished: boolean;
}

export function startMockProvider(): MockProvider {
  const requests: RecordedRequest[] = [];
  const pathModes = new Map<string, MockMode>();
  const queued: MockMode[] = [];
  let globalMode: MockMode | null = null;
  // `BEYOND_AI_MOCK_PACE=MS[/SPLIT]` paces every mock of a test run by default, so any e2e file can be run through
  // paced streams as it is (e.g. `BEYOND_AI_MOCK_PACE=3/7 bun test test/e2e-metering.test.ts`).
  const envPace = process.env["BEYOND_AI_MOCK_PACE"];
  const defaultPacing = envPace !== undefined && envPace !== "" ? (parsePaceHeader(envPace) ?? null) : null;
  let globalPacing: Pacing | null = defaultPacing;
  let seq = 0;
  // Models whose first request (since reset) has been answered: the `once` failures fail only that one.
  const seenModels = new Set<string>();
  let chaos: Chaos | null = null;
  let chaosRng = 1;
  const chaosCount = { "429": 0, "503": 0 };

  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // Streams in these tests idle for longer than Bun's default 10 s; the mock must never be the one that cuts.
    idleTimeout: 0,
    error(err) {
      return new Response(JSON.stringify({ error: { message: `mock failure: ${String(err)}` } }), { status: 500 });
    },
    async fetch(req) {
      const url = req.url;
      const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      const headerMode = headers["x-mock-mode"] !== undefined ? parseModeHeader(headers["x-mock-mode"]) : undefined;
      if (headerMode?.kind === "stream-in") return streamIn(req, path, headers);
      const body = new Uint8Array(await req.arrayBuffer());
      let json: unknown = undefined;
      if (body.length > 0 && body.length < 4 * 1024 * 1024 && (body[0] === 0x7b || body[0] === 0x5b)) {
        try {
          json = JSON.parse(new TextDecoder().decode(body));
        } catch {
          json = undefined;
        }
      }
      let markClosed!: () => void;
      const closedEarly = new Promise<void>((resolve) => {
        markClosed = resolve;
      });
      const rec: RecordedRequest = {
        seq: seq++,
        arrival: arrivals++,
        method: req.method,
        path,
        headers,
        body,
        bodySha256: sha256Hex(body),
        bytesReceived: body.length,
        json,
        receivedAt: Date.now(),
        closedEarlyAt: null,
        closedEarly,
        finished: false,
        pacing: null,
      };
      requests.push(rec);
      const onClose = (): void => {
        if (rec.finished || rec.closedEarlyAt !== null) return;
        rec.closedEarlyAt = Date.now();
        markClosed();
      };
      req.signal.addEventListener("abort", onClose);

      const pathOnly = path.split("?", 1)[0] ?? path;
      const pace = headers["x-mock-pace"];
      rec.pacing = (pace !== undefined ? parsePaceHeader(pace) : undefined) ?? globalPacing;
      // An explicit x-mock-mode wins; then the key's, the model's and chaos failures, before queued and set modes
      // (so a failing key never consumes a mode the test queued for the request that gets through).
      if (headerMode === undefined) {
        const failed = failure(rec, pathOnly, onClose);
        if (failed !== undefined) return failed;
        const mf = modelFailureOf(modelOf(rec));
        if (mf?.kind === "slow-head") await Bun.sleep(mf.ms);
      }
      const mode: MockMode =
        headerMode ?? queued.shift() ?? pathModes.get(pathOnly) ?? globalMode ?? { kind: "auto" };
      return answer(mode, rec, pathOnly, onClose);
    },
  });

  async function streamIn(req: Request, path: string, headers: Record<string, string>): Promise<Response> {
    const rec: RecordedRequest = {
      seq: seq++,
      arrival: arrivals++,
      method: req.method,
      path,
      headers,
      body: new Uint8Array(0),
      bodySha256: "",
      bytesReceived: 0,
      json: undefined,
      receivedAt: Date.now(),
      closedEarlyAt: null,
      closedEarly: new Promise<void>(() => {}),
      finished: false,
      pacing: null,
    };
    requests.push(rec);
    const hash = createHash("sha256");
    const parts: Uint8Array[] = [];
    // The first bytes, to find the body's `model` for the per-model failures without keeping a huge body.
    let head = "";
    if (req.body !== null) {
      for await (const chunk of req.body) {
        if (head.length < 4096) head += new TextDecoder().decode(chunk.subarray(0, 4096 - head.length));
        hash.update(chunk);
        if (rec.bytesReceived + chunk.byteLength <= STREAM_IN_KEEP_BYTES) parts.push(chunk);
        rec.bytesReceived += chunk.byteLength;
      }
    }
    // Huge uploads keep only their size and digest, so the test process does not hold them twice.
    if (rec.bytesReceived <= STREAM_IN_KEEP_BYTES) {
      const body = new Uint8Array(rec.bytesReceived);
      let off = 0;
      for (const p of parts) {
        body.set(p, off);
        off += p.byteLength;
      }
      rec.body = body;
    }
    rec.bodySha256 = hash.digest("hex");
    const model = /"model"\s*:\s*"([^"\\]*)"/.exec(head)?.[1];
    if (model !== undefined && rec.json === undefined) rec.json = { model };
    // Only status failures apply to a stream-in upload (it answers JSON, never a stream).
    const failed = statusFailure(rec, dialectOfPath(path), model);
    rec.finished = true;
    if (failed !== undefined) return failed;
    return Response.json({ size: rec.bytesReceived, sha256: rec.bodySha256 });
  }

  function failureResponse(f: { status: number; body: string; headers: Record<string, string> }, rec: RecordedRequest, name: string): Response {
    rec.finished = true;
    return new Response(f.body, { status: f.status, headers: { ...f.headers, "x-mock-failure": name, "x-mock-seq": String(rec.seq) } });
  }

  /** A key failure, else a status failure of the model (`once`: first request for the model only), else undefined. */
  function statusFailure(rec: RecordedRequest, dialect: Dialect, model: string | undefined): Response | undefined {
    const requestId = `req_mock_${rec.seq}`;
    const kf = keyFailureOf(keyOf(rec));
    if (kf !== undefined) {
      const what = kf === "r429" ? "rate_limited" : kf === "401" ? "auth" : "quota";
      return failureResponse(failureAnswer(dialect, what, { requestId }), rec, `key-${kf}`);
    }
    const mf = modelFailureOf(model);
    if (mf?.kind === "context-length") return failureResponse(failureAnswer(dialect, "context_length", { requestId }), rec, "model-context-length");
    if (mf?.kind !== "status" || model === undefined) return undefined;
    if (mf.once && !firstTime(model)) return undefined;
    return failureResponse(failureAnswer(dialect, mf.status, { requestId }), rec, `model-${mf.status}`);
  }

  /** True for the first request of `model` since reset() (and records it). */
  function firstTime(model: string): boolean {
    if (seenModels.has(model)) return false;
    seenModels.add(model);
    return true;
  }

  function chaosDraw(): number {
    // xorshift32, seeded by setChaos, so a bench run is repeatable.
    chaosRng ^= chaosRng << 13;
    chaosRng ^= chaosRng >>> 17;
    chaosRng ^= chaosRng << 5;
    return (chaosRng >>> 0) / 4294967296;
  }

  /** The failure this request gets from its key, its model or chaos; undefined: answer normally. */
  function failure(rec: RecordedRequest, pathOnly: string, onClose: () => void): Response | undefined {
    const dialect = dialectOfPath(pathOnly);
    const model = modelOf(rec);
    const status = statusFailure(rec, dialect, model);
    if (status !== undefined) return status;
    const mf = modelFailureOf(model);
    const body = (rec.json ?? {}) as Record<string, unknown>;
    const streamed = body["stream"] === true && rec.method === "POST" && (pathOnly.endsWith("/chat/completions") || pathOnly.endsWith("/messages"));
    if (mf !== undefined && mf.kind !== "status" && mf.kind !== "context-length" && mf.kind !== "slow-head" && streamed && model !== undefined) {
      const events = dialect === "anthropic" ? anthropicSseEvents() : openaiChatSseEvents(includesUsage(body));
      const pre = preambleLength(dialect);
      const h: Record<string, string> = { [dialect === "openai" ? "x-request-id" : "request-id"]: `req_mock_${rec.seq}`, "x-mock-seq": String(rec.seq) };
      const done = (): void => {
        rec.finished = true;
      };
      if (mf.kind === "inband" && (!mf.once || firstTime(model))) {
        return sseResponse([...events.slice(0, pre), inbandErrorEvent(dialect)], [], { ...h, "x-mock-failure": "inband" }, onClose, done, rec.pacing);
      }
      if (mf.kind === "reset-after-content") {
        // Preamble and two content deltas, then the connection dies (the body stream errors, as `reset` does).
        return sseResponse(events.slice(0, pre + 2), [], { ...h, "x-mock-failure": "reset-after-content" }, onClose, done, rec.pacing, "error");
      }
      if (mf.kind === "slow-preamble") {
        const gates: Array<Promise<void> | undefined> = [];
        gates[pre] = Bun.sleep(SLOW_PREAMBLE_MS);
        return sseResponse(events, gates, { ...h, "x-mock-failure": "slow-preamble" }, onClose, done, rec.pacing);
      }
      return undefined;
    }
    const chaosHeader = rec.headers["x-mock-chaos"];
    const c = chaosHeader !== undefined ? (parseChaosHeader(chaosHeader) ?? null) : chaos;
    if (c !== null && (c.p429 > 0 || c.p503 > 0)) {
      const x = chaosDraw();
      if (x < c.p429) {
        chaosCount["429"]++;
        return failureResponse(failureAnswer(dialect, 429, { retryAfterMs: c.retryAfterMs ?? 50, requestId: `req_mock_${rec.seq}` }), rec, "chaos-429");
      }
      if (x < c.p429 + c.p503) {
        chaosCount["503"]++;
        return failureResponse(failureAnswer(dialect, 503, { requestId: `req_mock_${rec.seq}` }), rec, "chaos-503");
      }
    }
    return undefined;
  }

  async function answer(mode: MockMode, rec: RecordedRequest, pathOnly: string, onClose: () => void): Promise<Response> {
    const done = (): void => {
      rec.finished = true;
    };
    switch (mode.kind) {
      case "auto":
        return autoAnswer(rec, pathOnly, mode.headers ?? {}, onClose, done);
      case "status": {
        const body = mode.body ?? JSON.stringify({ error: { message: "mock", type: "mock_error", code: `mock_${mode.status}` } });
        const h: Record<string, string> = { "content-type": "application/json", "x-mock-status": String(mode.status), ...(mode.headers ?? {}) };
        if (mode.status === 429 && h["retry-after"] === undefined) h["retry-after"] = "7";
        done();
        return new Response(body, { status: mode.status, headers: h });
      }
      case "bytes": {
        const data = patternBytes(mode.size, mode.seed ?? 1);
        const chunk = mode.chunkSize ?? 64 * 1024;
        let off = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(c) {
            if (off >= data.length) {
              done();
              c.close();
              return;
            }
            const end = Math.min(off + chunk, data.length);
            c.enqueue(data.subarray(off, end));
            off = end;
          },
          cancel: onClose,
        });
        return new Response(stream, {
          headers: { "content-type": "application/octet-stream", "x-mock-sha256": sha256Hex(data), "x-mock-size": String(mode.size) },
        });
      }
      case "compressed": {
        const plain = enc.encode(openaiChatJson());
        const accepted = (rec.headers["accept-encoding"] ?? "").toLowerCase().includes(mode.encoding);
        done();
        if (!accepted) {
          return new Response(plain, { headers: { "content-type": "application/json", "x-mock-encoding": "identity" } });
        }
        const packed = mode.encoding === "gzip" ? Bun.gzipSync(plain) : new Uint8Array(brotliCompressSync(plain));
        return new Response(packed, {
          headers: {
            "content-type": "application/json",
            "content-encoding": mode.encoding,
            "x-mock-encoding": mode.encoding,
            "x-mock-sha256": sha256Hex(packed),
          },
        });
      }
      case "echo-size":
      case "stream-in":
        done();
        return Response.json({ size: rec.body.length, sha256: rec.bodySha256 });
      case "delay":
        await Bun.sleep(mode.ms);
        return answer(mode.then ?? { kind: "auto" }, rec, pathOnly, onClose);
      case "reset": {
        let sent = false;
        const stream = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (!sent) {
              sent = true;
              c.enqueue(enc.encode('{"id":"chatcmpl-mock","partial":'));
              return;
            }
            await Bun.sleep(50);
            // Erroring the body makes Bun drop the socket without a final chunk: a reset as the caller sees it.
            // No reason given: with one, Bun prints it as an error in the test output.
            c.error();
          },
        });
        return new Response(stream, { headers: { "content-type": "application/json" } });
      }
      case "sse":
        return sseResponse(mode.events, mode.gates ?? [], mode.headers ?? {}, onClose, done, rec.pacing);
      case "drip": {
        let i = 0;
        const stream = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (i > 0) await Bun.sleep(mode.intervalMs);
            if (rec.closedEarlyAt !== null) return;
            c.enqueue(enc.encode(`data: {"n":${i++}}\n\n`));
          },
          cancel: onClose,
        });
        return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
      }
    }
  }

  function sseResponse(
    events: readonly string[],
    gates: ReadonlyArray<Promise<void> | undefined>,
    extra: Record<string, string>,
    onClose: () => void,
    done: () => void,
    pacing: Pacing | null,
    end: "close" | "error" = "close",
  ): Response {
    const headers = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...extra };
    /** After the last event: close the stream, or (end = "error") let the bytes go out, then kill the connection. */
    const finish = async (c: ReadableStreamDefaultController<Uint8Array>): Promise<void> => {
      if (end === "error") {
        await Bun.sleep(50);
        // No reason given: with one, Bun prints it as an error in the test output.
        c.error();
        return;
      }
      done();
      c.close();
    };
    if (pacing === null) {
      let i = 0;
      const stream = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (i >= events.length) {
            await finish(c);
            return;
          }
          const gate = gates[i];
          if (gate) await gate;
          c.enqueue(enc.encode(events[i] ?? ""));
          i++;
        },
        cancel: onClose,
      });
      return new Response(stream, { headers });
    }
    // Paced: one piece per pull, with a sleep before each but the first; a gate holds the first piece of its event.
    const pieces: Array<{ bytes: Uint8Array; gate: Promise<void> | undefined }> = [];
    events.forEach((e, i) => {
      pacedPieces([e], pacing).forEach((bytes, j) => pieces.push({ bytes, gate: j === 0 ? gates[i] : undefined }));
    });
    let i = 0;
    let closed = false;
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          if (i >= pieces.length) {
            await finish(c);
            return;
          }
          const p = pieces[i++] as { bytes: Uint8Array; gate: Promise<void> | undefined };
          if (i > 1) await Bun.sleep(pacing.delayMs);
          if (p.gate) await p.gate;
          if (!closed) c.enqueue(p.bytes);
        },
        cancel() {
          closed = true;
          onClose();
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(stream, { headers });
  }

  function autoAnswer(
    rec: RecordedRequest,
    pathOnly: string,
    extra: Record<string, string>,
    onClose: () => void,
    done: () => void,
  ): Response {
    const body = (rec.json ?? {}) as Record<string, unknown>;
    const stream = body["stream"] === true;
    const model = typeof body["model"] === "string" ? body["model"] : undefined;
    const common: Record<string, string> = { "x-mock-response": "auto", "x-mock-seq": String(rec.seq), ...extra };
    const json = (text: string, h: Record<string, string>): Response => {
      done();
      return new Response(text, { headers: { "content-type": "application/json", ...h, ...common } });
    };
    const replyHeader = rec.headers["x-mock-reply"];
    const chatOrMessages = rec.method === "POST" && (pathOnly.endsWith("/chat/completions") || pathOnly.endsWith("/messages"));
    if (replyHeader !== undefined && chatOrMessages) {
      const dialect = dialectOfPath(pathOnly);
      const reply = parseReplyHeader(replyHeader);
      // A misspelt reply name must fail the test loudly, not quietly get the plain answer.
      if (reply === undefined) {
        done();
        return Response.json({ error: { message: `mock: unknown x-mock-reply ${JSON.stringify(replyHeader)}` } }, { status: 418 });
      }
      if (reply === "error-400" || reply === "error-429" || reply === "error-500") {
        const status = reply === "error-400" ? 400 : reply === "error-429" ? 429 : 500;
        return failureResponse(failureAnswer(dialect, status, { requestId: `req_mock_${rec.seq}` }), rec, `reply-${reply}`);
      }
      const script = scriptFor(reply, dialect, body) as Script;
      const h: Record<string, string> =
        dialect === "openai" ? { "x-request-id": `req_mock_${rec.seq}` } : { "request-id": `req_mock_${rec.seq}` };
      h["x-mock-reply"] = reply;
      if (stream) {
        const events = dialect === "openai" ? openaiScriptSse(script, includesUsage(body)) : anthropicScriptSse(script);
        return sseResponse(events, [], { ...h, ...common }, onClose, done, rec.pacing);
      }
      return json(dialect === "openai" ? openaiScriptJson(script) : anthropicScriptJson(script), h);
    }
    if (pathOnly.endsWith("/chat/completions") && rec.method === "POST") {
      const openaiHeaders = { "x-request-id": `req_mock_${rec.seq}`, "openai-processing-ms": "7", "x-ratelimit-remaining-requests": "99" };
      if (stream) {
        return sseResponse(openaiChatSseEvents(includesUsage(body)), [], { ...openaiHeaders, ...common }, onClose, done, rec.pacing);
      }
      return json(openaiChatJson(), openaiHeaders);
    }
    if (pathOnly.endsWith("/messages/count_tokens")) {
      return json(JSON.stringify({ input_tokens: MOCK_USAGE.anthropicJson.input_tokens }), { "request-id": `req_mock_${rec.seq}` });
    }
    if (pathOnly.endsWith("/messages") && rec.method === "POST") {
      const h = { "request-id": `req_mock_${rec.seq}`, "anthropic-ratelimit-requests-remaining": "99" };
      if (stream) return sseResponse(anthropicSseEvents(), [], { ...h, ...common }, onClose, done, rec.pacing);
      return json(anthropicMessageJson(), h);
    }
    if (pathOnly.endsWith("/responses") && rec.method === "POST") {
      const h = { "x-request-id": `req_mock_${rec.seq}` };
      if (stream) return sseResponse(responsesSseEvents(), [], { ...h, ...common }, onClose, done, rec.pacing);
      return json(responsesJson(), h);
    }
    if (pathOnly.endsWith("/embeddings") && rec.method === "POST") {
      return json(embeddingsJson(model ?? "text-embedding-3-small"), {});
    }
    if (pathOnly.endsWith("/models") && rec.method === "GET") {
      return json(modelsJson(rec.headers["anthropic-version"] !== undefined), {});
    }
    return json(JSON.stringify({ ok: true, method: rec.method, path: rec.path }), {});
  }

  const mock: MockProvider = {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port ?? 0,
    authority: `127.0.0.1:${server.port}`,
    requests,
    last() {
      const r = requests[requests.length - 1];
      if (!r) throw new Error("mock provider: no request recorded");
      return r;
    },
    setMode(mode, path) {
      if (path === undefined) globalMode = mode;
      else if (mode === null) pathModes.delete(path);
      else pathModes.set(path, mode);
    },
    queue(mode) {
      queued.push(mode);
    },
    setPacing(pacing) {
      globalPacing = pacing;
    },
    setChaos(c) {
      chaos = c;
      chaosRng = (c?.seed ?? 1) >>> 0 || 1;
    },
    chaosCounts() {
      return { ...chaosCount };
    },
    reset() {
      seenModels.clear();
      chaos = null;
      chaosCount["429"] = 0;
      chaosCount["503"] = 0;
      requests.length = 0;
      pathModes.clear();
      queued.length = 0;
      globalMode = null;
      globalPacing = defaultPacing;
    },
    async waitForRequest(pred, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = requests.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) {
          throw new Error(`mock provider: no matching request within ${timeoutMs} ms; saw ${requests.map((r) => `${r.method} ${r.path}`).join(", ") || "none"}`);
        }
        await Bun.sleep(10);
      }
    },
    async stop() {
      await server.stop(true);
    },
  };
  return mock;
}

/** A free loopback port with nothing listening on it (for "connection refused" upstreams). */
export function closedPort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}
