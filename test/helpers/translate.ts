// Shared setup of the dialect-translation end-to-end suites (SPEC §12: test/e2e-translate*.test.ts): one OpenAI-wire
// mock (openai, groq) and one Anthropic mock behind a managed gateway whose aliases cross dialects, plus the small
// readers those suites share (normalised upstream bodies, SSE parsing, the response a SDK call came back on).
// Requests carry their own `x-test-id` (forwarded like any header), so a test picks out its own upstream attempts.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { keygen, mint } from "../../src/controls/keys.ts";
import { type Gateway, poolConfig } from "./gateway.ts";
import type { MockProvider, RecordedRequest } from "./mock-provider.ts";
import type { Tracked } from "./tracked.ts";
import { modelTable, poolKeyOf } from "./virtual-models.ts";

const signing = keygen();
/** The managed key every translation suite sends. */
export const MANAGED = mint(1, signing.seed, 1717n, 17n);

/**
 * The aliases of the translation suites. OpenAI-SDK clients reach the Anthropic-target ones, Anthropic-SDK clients the
 * OpenAI-target ones; the `fb-*` and `mixed` ones mix dialects; the `*-1` ones make one attempt only (provider errors
 * are relayed at once); the 429 ones each get their own model, since a 429 cools the pool key for that model.
 */
export const ALIASES = {
  /** OpenAI client → Anthropic target. */
  claude: ["anthropic/claude-t"],
  /** Anthropic client → OpenAI target. */
  gpt: ["openai/gpt-t"],
  /** Anthropic client → groq (OpenAI wire, base path /openai/v1). */
  llama: ["groq/llama-t"],
  mixed: ["anthropic/claude-mix", "openai/gpt-mix"],
  /** The Anthropic target always 503s; the OpenAI one answers. */
  "fb-ant-first": ["anthropic/always-503-fa", "openai/gpt-fa"],
  /** The OpenAI target always 503s; the Anthropic one answers. */
  "fb-oai-first": ["openai/always-503-fo", "anthropic/claude-fo"],
  "claude-1": ["anthropic/claude-e"],
  "gpt-1": ["openai/gpt-e"],
  "claude-429": ["anthropic/claude-429"],
  "claude-429s": ["anthropic/claude-429s"],
  "claude-429j": ["anthropic/claude-429j"],
  "gpt-429": ["openai/gpt-429"],
  "gpt-429s": ["openai/gpt-429s"],
  "gpt-429j": ["openai/gpt-429j"],
  /** The Anthropic target's first stream ends in an in-band overloaded_error after its preamble (retried). */
  "inband-claude": ["anthropic/inband-overload-once-tc"],
  "inband-gpt": ["openai/inband-overload-once-tg"],
  /** The Anthropic target 500s the first time; with one attempt per target the OpenAI one answers. */
  "once500-ant": ["anthropic/fail-once-500-ta", "openai/gpt-once"],
  "once500-oai": ["openai/fail-once-500-to", "anthropic/claude-once"],
} as const satisfies Record<string, readonly string[]>;

/** One attempt per target: the aliases whose first failure must move on (or be relayed) at once. */
const ONE_ATTEMPT = new Set(["fb-ant-first", "fb-oai-first", "claude-1", "gpt-1", "claude-429", "claude-429s", "claude-429j", "gpt-429", "gpt-429s", "gpt-429j", "once500-ant", "once500-oai"]);

/** `[prices]` of the Anthropic target, so a translated request's cost is checked against the provider's counts. */
export const CLAUDE_T_PRICE = { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 } as const;

export interface TranslateRig {
  gw: Gateway;
  /** The OpenAI-wire mock (providers openai and groq). */
  oai: MockProvider;
  /** The Anthropic mock (provider anthropic). */
  ant: MockProvider;
}

/** Starts both mocks and a managed gateway with ALIASES; `extra` goes into the config's top level (e.g.
 * `max_translate_bytes = 4096`). */
export async function startTranslateRig(t: Tracked, extra?: string): Promise<TranslateRig> {
  const oai = t.newMock();
  const ant = t.newMock();
  const authorities = { openai: oai.authority, groq: oai.authority, anthropic: ant.authority };
  const poolKeys = { openai: [poolKeyOf("openai")], groq: [poolKeyOf("groq")], anthropic: [poolKeyOf("anthropic")] };
  const tables = Object.entries(ALIASES).map(([alias, targets]) =>
    modelTable(alias, { targets: [...targets], ...(ONE_ATTEMPT.has(alias) ? { retry: { max_attempts: 1 } } : {}) }),
  );
  tables.push(
    [
      `[prices."anthropic/claude-t"]`,
      `input = ${CLAUDE_T_PRICE.input}`,
      `output = ${CLAUDE_T_PRICE.output}`,
      `cache_read = ${CLAUDE_T_PRICE.cache_read}`,
      `cache_write = ${CLAUDE_T_PRICE.cache_write}`,
    ].join("\n"),
  );
  const gw = await t.launch(
    poolConfig({ authorities, poolKeys, publicKey: signing.publicKey, extra, retry: { initial_backoff_ms: 10, max_backoff_ms: 50 } }) + "\n" + tables.join("\n\n") + "\n",
  );
  return { gw, oai, ant };
}

/** The last Response a SDK client received (its headers: request id, x-beyond-dropped-params), for calls whose helper
 * (`chat.completions.stream`, `messages.stream`) does not hand the Response back. */
export interface Capture {
  fetch: typeof fetch;
  last(): Response;
}

export function capture(): Capture {
  let last: Response | undefined;
  const f = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const r = await fetch(input, init);
    last = r;
    return r;
  }) as typeof fetch;
  return {
    fetch: f,
    last() {
      if (last === undefined) throw new Error("capture: no response yet");
      return last;
    },
  };
}

/** An OpenAI SDK client (maxRetries 0) at `gw/v1` (body alias) or `gw/<alias>/v1`, optionally capturing responses. */
export function openaiSdk(gw: Gateway, o: { pathAlias?: string; cap?: Capture } = {}): OpenAI {
  const baseURL = o.pathAlias === undefined ? `${gw.url}/v1` : `${gw.url}/${o.pathAlias}/v1`;
  return new OpenAI({ apiKey: MANAGED, baseURL, organization: null, project: null, maxRetries: 0, ...(o.cap ? { fetch: o.cap.fetch } : {}) });
}

/** An Anthropic SDK client (maxRetries 0) at `gw` (body alias) or `gw/<alias>`, optionally capturing responses. */
export function anthropicSdk(gw: Gateway, o: { pathAlias?: string; cap?: Capture } = {}): Anthropic {
  const baseURL = o.pathAlias === undefined ? gw.url : `${gw.url}/${o.pathAlias}`;
  return new Anthropic({ apiKey: MANAGED, baseURL, maxRetries: 0, ...(o.cap ? { fetch: o.cap.fetch } : {}) });
}

/** Raw POST as an OpenAI client (Bearer managed key) or an Anthropic one (x-api-key + anthropic-version). */
export function rawPost(
  gw: Gateway,
  path: string,
  body: string | Uint8Array | ReadableStream<Uint8Array>,
  o: { anthropic?: boolean; id?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(gw.url + path, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(o.anthropic ? { "x-api-key": MANAGED, "anthropic-version": "2023-06-01" } : { authorization: `Bearer ${MANAGED}` }),
      ...(o.id !== undefined ? { "x-test-id": o.id } : {}),
      ...(o.headers ?? {}),
    },
    body,
  });
}

export function rid(r: Response): string {
  return r.headers.get("x-beyond-request-id") ?? "";
}

/** `x-beyond-dropped-params` as a sorted list (null: the header is absent). */
export function droppedOf(r: Response): string[] | null {
  const v = r.headers.get("x-beyond-dropped-params");
  if (v === null) return null;
  return v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .sort();
}

export type Json = Record<string, unknown>;

/** The recorded upstream body as a JSON object (throws when it was not one). */
export function bodyOf(r: RecordedRequest | undefined): Json {
  if (r === undefined) throw new Error("no upstream request recorded");
  const j = r.json;
  if (j === null || typeof j !== "object" || Array.isArray(j)) throw new Error(`upstream body is not a JSON object: ${new TextDecoder().decode(r.body).slice(0, 300)}`);
  return j as Json;
}

/** A message's content as a list of parts/blocks: a string becomes one text part (both dialects allow either form,
 * so the suites compare what was said, not which of the two equivalent spellings the translator chose). */
export function partsOf(content: unknown): Json[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (Array.isArray(content)) return content as Json[];
  return [];
}

/** The messages of an upstream body with every content normalised by partsOf; other message fields as they are. */
export function normalisedMessages(body: Json): Json[] {
  const msgs = Array.isArray(body["messages"]) ? (body["messages"] as Json[]) : [];
  return msgs.map((m) => (m["content"] === undefined || m["content"] === null ? m : { ...m, content: partsOf(m["content"]) }));
}

/** The text of a system value (Anthropic `system`: a string or text blocks; OpenAI: a message content). */
export function textOf(v: unknown): string {
  return partsOf(v)
    .map((p) => (typeof p["text"] === "string" ? p["text"] : ""))
    .join("");
}

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/** Splits a whole SSE body into events (`event:` and `data:` lines; comments and blank events skipped). */
export function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.replace(/\r\n/g, "\n").split("\n\n")) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (event !== undefined || data.length > 0) out.push({ event, data: data.join("\n") });
  }
  return out;
}

/** The JSON of each `data:` (not `[DONE]`) of an SSE body. */
export function sseJson(text: string): Json[] {
  return parseSse(text)
    .filter((e) => e.data !== "" && e.data !== "[DONE]")
    .map((e) => JSON.parse(e.data) as Json);
}

/** A tiny valid PNG (1×1), as base64, for the image tests. */
export const PNG_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
export const IMAGE_URL = "https://example.com/cat.png";

/** The OpenAI tool the suites declare (JSON schema parameters) and the same tool as Anthropic declares it. */
export const WEATHER_PARAMS = {
  type: "object" as const,
  properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
  required: ["city"],
};
export const OPENAI_TOOLS = [
  { type: "function" as const, function: { name: "get_weather", description: "Weather for a city", parameters: WEATHER_PARAMS } },
  { type: "function" as const, function: { name: "get_time", description: "Local time for a city", parameters: { type: "object", properties: { city: { type: "string" } } } } },
];
export const ANTHROPIC_TOOLS = [
  { name: "get_weather", description: "Weather for a city", input_schema: WEATHER_PARAMS },
  { name: "get_time", description: "Local time for a city", input_schema: { type: "object" as const, properties: { city: { type: "string" } } } },
];

/**
 * The attempts one client request caused on two mocks, `first`'s then `second`'s, for a fallback from a target on one
 * mock to a target on the other. (attemptsOf orders by arrival time, then by each mock's own sequence number, which
 * means nothing across two mocks: two attempts in the same millisecond could come out either way.) Throws when an
 * attempt on `second` arrived before one on `first`, so the order is still checked, to the millisecond.
 */
export function attemptsAcross(id: string, first: MockProvider, second: MockProvider): RecordedRequest[] {
  const mine = (m: MockProvider) => m.requests.filter((r) => r.headers["x-test-id"] === id);
  const a = mine(first);
  const b = mine(second);
  const lastA = Math.max(...a.map((r) => r.arrival));
  const firstB = Math.min(...b.map((r) => r.arrival));
  if (a.length > 0 && b.length > 0 && firstB < lastA) throw new Error("attemptsAcross: an attempt on the second mock arrived before one on the first");
  return [...a, ...b];
}
