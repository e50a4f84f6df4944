// End to end through a mock that paces its streams like a real provider (issue 12, item 1): every SSE event in its
// own write with a delay between writes, and a mode that splits every event (the usage-only chunk and `[DONE]`
// included) at a byte offset into two writes, swept over every offset. The gateway must relay the whole stream and
// end it for every combination of read boundaries: a read the response tap turns into zero bytes (only the usage-only
// chunk the gateway caused, or part of an SSE line) must not stall the relay. Run with both transports
// (`BEYOND_AI_TRANSPORT=fetch bun test test/e2e-paced.test.ts` for fetch). A hang fails a test through the client's
// own timeout (SDK `timeout`, fetch `AbortSignal.timeout`) rather than stalling the suite.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, type LogLine, type ManagedPair, startManagedPair } from "./helpers/gateway.ts";
import {
  anthropicSseEvents,
  MOCK_ANTHROPIC_MODEL,
  MOCK_DELTAS,
  MOCK_OPENAI_MODEL,
  MOCK_TEXT,
  MOCK_USAGE,
  type MockProvider,
  openaiChatSseEvents,
} from "./helpers/mock-provider.ts";
import { collectChatStream } from "./helpers/sdk.ts";

const OPENAI_POOL = "sk-paced-openai-pool";
const ANTHROPIC_POOL = "sk-paced-anthropic-pool";
const signing = keygen();
const TENANT = 4242n;
const VPC = 17n;
const MANAGED = mint(1, signing.seed, TENANT, VPC);

/** A client that waits longer than this for a stream the gateway stalled fails the test instead of hanging it. */
const CLIENT_TIMEOUT_MS = 8000;
/** Per SDK call: the SDK's own `timeout` stops at the response head, a signal also bounds reading the stream. */
const bounded = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
/**
 * Reads an SDK chat stream to its end under a client timeout. The SDK ends its iteration quietly when its signal
 * aborts, so the result says whether the stream ended on its own (`timedOut` false) or the client gave up.
 */
async function collectBounded(
  create: (opts: { signal: AbortSignal }) => Promise<AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>>,
): Promise<{ chunks: OpenAI.Chat.Completions.ChatCompletionChunk[]; text: string; timedOut: boolean }> {
  const opts = bounded();
  const r = await collectChatStream(await create(opts));
  return { ...r, timedOut: opts.signal.aborted };
}

let openaiMock: MockProvider;
let anthropicMock: MockProvider;
let gw: Gateway;
let pair: ManagedPair;

beforeAll(async () => {
  pair = await startManagedPair({ openaiPool: OPENAI_POOL, anthropicPool: ANTHROPIC_POOL, publicKey: signing.publicKey });
  ({ gw, openaiMock, anthropicMock } = pair);
});

afterAll(() => pair?.stop());

beforeEach(() => {
  openaiMock.reset();
  anthropicMock.reset();
});

// ---------------------------------------------------------------------------------------------
// Helpers

const CHAT_STREAM_BODY = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
const MESSAGES_STREAM_BODY = JSON.stringify({ model: "claude-test", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hi" }] });

/** The mock's OpenAI stream with and without include_usage, one `created`, so they compare byte for byte. */
function openaiStreamPair(): { withUsage: string[]; without: string[] } {
  const withUsage = openaiChatSseEvents(true);
  const created = /"created":(\d+)/.exec(withUsage[0] ?? "")?.[1];
  if (created === undefined) throw new Error("mock chunk without created");
  const without = openaiChatSseEvents(false).map((e) => e.replace(/"created":\d+/, `"created":${created}`));
  return { withUsage, without };
}

/** Request ids of the answers the SDK got, in order. */
let ids: string[] = [];
async function recordingFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await fetch(input, init);
  const id = res.headers.get("x-beyond-request-id");
  if (id !== null) ids.push(id);
  return res;
}
function lastId(): string {
  const id = ids[ids.length - 1];
  if (id === undefined) throw new Error("no response carried x-beyond-request-id");
  return id;
}

function openaiClient(pace: string, key = MANAGED): OpenAI {
  return new OpenAI({
    apiKey: key,
    baseURL: `${gw.url}/v1`,
    organization: null,
    project: null,
    maxRetries: 0,
    timeout: CLIENT_TIMEOUT_MS,
    defaultHeaders: { "x-mock-pace": pace },
    fetch: recordingFetch,
  });
}

function anthropicClient(pace: string): Anthropic {
  return new Anthropic({
    apiKey: MANAGED,
    baseURL: gw.url,
    maxRetries: 0,
    timeout: CLIENT_TIMEOUT_MS,
    defaultHeaders: { "x-mock-pace": pace },
    fetch: recordingFetch,
  });
}

/** POST through the gateway and read the body to its end (a stalled relay aborts after CLIENT_TIMEOUT_MS). */
async function postAndRead(path: string, body: string, headers: Record<string, string>): Promise<{ status: number; id: string; text: string }> {
  const res = await fetch(gw.url + path, { method: "POST", headers, body, signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
  const id = res.headers.get("x-beyond-request-id");
  if (id === null) throw new Error(`no x-beyond-request-id on ${res.status}`);
  return { status: res.status, id, text: await res.text() };
}

const openaiHeaders = (pace: string): Record<string, string> => ({
  authorization: `Bearer ${MANAGED}`,
  "content-type": "application/json",
  "x-mock-pace": pace,
});
const anthropicHeaders = (pace: string): Record<string, string> => ({
  "x-api-key": MANAGED,
  "anthropic-version": "2023-06-01",
  "content-type": "application/json",
  "x-mock-pace": pace,
});

interface Tokens {
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
}
const OPENAI_TOKENS: Tokens = {
  provider: "openai",
  model: MOCK_OPENAI_MODEL,
  input_tokens: MOCK_USAGE.openaiSse.prompt_tokens,
  output_tokens: MOCK_USAGE.openaiSse.completion_tokens,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
};
const ANTHROPIC_TOKENS: Tokens = {
  provider: "anthropic",
  model: MOCK_ANTHROPIC_MODEL,
  input_tokens: MOCK_USAGE.anthropicSse.input_tokens,
  output_tokens: MOCK_USAGE.anthropicSse.output_tokens,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
};

function usageOf(l: LogLine): Record<string, unknown> {
  return {
    provider: l["provider"],
    model: l["model"],
    stream: l["stream"],
    status: l["status"],
    input_tokens: l["input_tokens"],
    output_tokens: l["output_tokens"],
    cache_read_tokens: l["cache_read_tokens"],
    cache_write_tokens: l["cache_write_tokens"],
    complete: l["complete"],
  };
}
const expectedUsage = (t: Tokens): Record<string, unknown> => ({ ...t, stream: true, status: 200, complete: true });

/**
 * The request's ai.usage line is exact and complete, and the exchange ended as "complete": the access line (written
 * right after the usage line) carries no error, so the line came from the stream's end, not from a client giving up.
 */
async function expectCompleteUsage(id: string, t: Tokens): Promise<void> {
  const access = await gw.accessLog(id);
  expect(access["status"]).toBe(200);
  expect(access["error"]).toBeUndefined();
  const lines = gw.logs().filter((l) => l["target"] === "ai.usage" && l["request_id"] === id);
  expect(lines.length).toBe(1);
  expect(usageOf(lines[0] as LogLine)).toEqual(expectedUsage(t));
}

/** Runs `f` over `items` with at most `limit` in flight. */
async function pooled<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await f(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** 1 .. (longest event − 1): every offset at which some event splits into two non-empty writes. */
function everySplitOffset(events: readonly string[]): number[] {
  const longest = Math.max(...events.map((e) => new TextEncoder().encode(e).byteLength));
  return Array.from({ length: longest - 1 }, (_, i) => i + 1);
}

/**
 * Runs one paced request per split offset and checks each: status 200, the exact expected body, and an exact,
 * complete usage line written at the stream's end. Failures are collected, so one run names every offset that broke.
 */
async function sweep(opts: {
  offsets: number[];
  path: string;
  body: string;
  headers: (pace: string) => Record<string, string>;
  expectBody: string;
  tokens: Tokens;
}): Promise<void> {
  const done: Array<{ k: number; id: string }> = [];
  const failures: string[] = [];
  await pooled(opts.offsets, 12, async (k) => {
    try {
      const r = await postAndRead(opts.path, opts.body, opts.headers(`2/${k}`));
      if (r.status !== 200) failures.push(`offset ${k}: status ${r.status}`);
      else if (r.text !== opts.expectBody) failures.push(`offset ${k}: body differs (${r.text.length} chars, want ${opts.expectBody.length})`);
      else done.push({ k, id: r.id });
    } catch (e) {
      failures.push(`offset ${k}: ${String(e)}`);
    }
  });
  expect(failures).toEqual([]);
  // Every line is written before the client sees the end of its body; one wait covers the last flush of the log sink.
  const lastDone = done[done.length - 1];
  if (lastDone !== undefined) await gw.accessLog(lastDone.id);
  const byId = new Map<string, LogLine[]>();
  for (const l of gw.logs()) {
    const id = l["request_id"];
    if (typeof id !== "string") continue;
    const list = byId.get(id) ?? [];
    list.push(l);
    byId.set(id, list);
  }
  const bad: string[] = [];
  for (const { k, id } of done) {
    const lines = byId.get(id) ?? [];
    const usage = lines.filter((l) => l["target"] === "ai.usage");
    const access = lines.filter((l) => l["target"] === "ai.access");
    if (usage.length !== 1 || access.length !== 1) {
      bad.push(`offset ${k}: ${usage.length} usage and ${access.length} access lines`);
      continue;
    }
    const got = usageOf(usage[0] as LogLine);
    if (!Bun.deepEquals(got, expectedUsage(opts.tokens))) bad.push(`offset ${k}: usage ${JSON.stringify(got)}`);
    if ((access[0] as LogLine)["error"] !== undefined) bad.push(`offset ${k}: access error ${String((access[0] as LogLine)["error"])}`);
  }
  expect(bad).toEqual([]);
  expect(done.length).toBe(opts.offsets.length);
}

// ---------------------------------------------------------------------------------------------

describe("paced OpenAI chat stream the gateway added include_usage to", () => {
  test("the official SDK receives the whole stream and its end; the usage-only chunk is removed; ai.usage is exact and complete", async () => {
    const { chunks, text, timedOut } = await collectBounded((o) =>
      openaiClient("10").chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true }, o),
    );
    expect(timedOut).toBe(false);
    expect(text).toBe(MOCK_TEXT);
    // role chunk + deltas + finish chunk: exactly what the provider sends without include_usage.
    expect(chunks.length).toBe(MOCK_DELTAS.length + 2);
    const raw = chunks as unknown as Array<Record<string, unknown>>;
    expect(raw.filter((c) => Object.hasOwn(c, "usage"))).toEqual([]);
    expect(chunks[chunks.length - 1]?.choices[0]?.finish_reason).toBe("stop");
    // The provider really was asked for usage (so it sent the usage-only chunk in a write of its own).
    expect(openaiMock.last().json).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(openaiMock.last().pacing).toEqual({ delayMs: 10 });
    await expectCompleteUsage(lastId(), OPENAI_TOKENS);
  });

  test("the SDK receives the whole stream when every event, the usage chunk and [DONE] arrive split in two writes", async () => {
    // Offsets inside "data: ", just after it, mid-JSON, and inside the terminating blank line of short events.
    for (const k of [1, 6, 7, 12, 150, 253, 254]) {
      const { chunks, text, timedOut } = await collectBounded((o) =>
        openaiClient(`3/${k}`).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true }, o),
      );
      expect({ k, timedOut, text, n: chunks.length }).toEqual({ k, timedOut: false, text: MOCK_TEXT, n: MOCK_DELTAS.length + 2 });
      await expectCompleteUsage(lastId(), OPENAI_TOKENS);
    }
  });

  test("raw fetch reads the body to its end: data: [DONE] is there and the bytes are the provider's stream without include_usage", async () => {
    const { withUsage, without } = openaiStreamPair();
    openaiMock.queue({ kind: "sse", events: withUsage });
    const r = await postAndRead("/v1/chat/completions", CHAT_STREAM_BODY, openaiHeaders("10"));
    expect(r.status).toBe(200);
    expect(r.text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(r.text).toBe(without.join(""));
    await expectCompleteUsage(r.id, OPENAI_TOKENS);
  });

  test("a client that asked for include_usage itself still gets its usage chunk and [DONE] through a paced stream", async () => {
    const { chunks, text, timedOut } = await collectBounded((o) =>
      openaiClient("5").chat.completions.create(
        { model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } },
        o,
      ),
    );
    expect(timedOut).toBe(false);
    expect(text).toBe(MOCK_TEXT);
    const usageChunk = chunks.findLast((c) => c.usage);
    expect(usageChunk?.choices.length).toBe(0);
    expect(usageChunk?.usage?.prompt_tokens).toBe(MOCK_USAGE.openaiSse.prompt_tokens);
    expect(usageChunk?.usage?.completion_tokens).toBe(MOCK_USAGE.openaiSse.completion_tokens);
    await expectCompleteUsage(lastId(), OPENAI_TOKENS);
  });

  test("every split offset of every event (usage chunk and [DONE] included): the whole stream ends with [DONE], usage chunk removed, exact complete ai.usage", async () => {
    const { withUsage, without } = openaiStreamPair();
    const offsets = everySplitOffset(withUsage);
    // Each request gets the same events; the sweep's requests run concurrently, so the mode is global, not queued.
    openaiMock.setMode({ kind: "sse", events: withUsage });
    await sweep({ offsets, path: "/v1/chat/completions", body: CHAT_STREAM_BODY, headers: openaiHeaders, expectBody: without.join(""), tokens: OPENAI_TOKENS });
    // The provider was asked for usage every time, so every stream carried the usage-only chunk to remove.
    expect(openaiMock.requests.length).toBe(offsets.length);
    expect(openaiMock.requests.every((r) => (r.json as { stream_options?: unknown }).stream_options !== undefined)).toBe(true);
  }, 60_000);
});

describe("paced Anthropic messages stream", () => {
  test("the official SDK receives the whole paced stream and the usage from message_start and message_delta is metered", async () => {
    const opts = bounded();
    const stream = anthropicClient("10").messages.stream({ model: "claude-test", max_tokens: 64, messages: [{ role: "user", content: "hi" }] }, opts);
    const final = await stream.finalMessage();
    expect(opts.signal.aborted).toBe(false);
    const block = final.content[0];
    expect(block?.type === "text" ? block.text : "").toBe(MOCK_TEXT);
    expect(final.usage.output_tokens).toBe(MOCK_USAGE.anthropicSse.output_tokens);
    expect(anthropicMock.last().pacing).toEqual({ delayMs: 10 });
    await expectCompleteUsage(lastId(), ANTHROPIC_TOKENS);
  });

  test("every split offset of every event: the whole stream arrives byte for byte with an exact complete ai.usage", async () => {
    const events = anthropicSseEvents();
    anthropicMock.setMode({ kind: "sse", events });
    await sweep({ offsets: everySplitOffset(events), path: "/v1/messages", body: MESSAGES_STREAM_BODY, headers: anthropicHeaders, expectBody: events.join(""), tokens: ANTHROPIC_TOKENS });
  }, 60_000);
});

describe("attack shape (bounded)", () => {
  test("50 concurrent paced managed OpenAI streams with injected include_usage all finish with [DONE] and a complete usage line each", async () => {
    const { withUsage, without } = openaiStreamPair();
    openaiMock.setMode({ kind: "sse", events: withUsage });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => postAndRead("/v1/chat/completions", CHAT_STREAM_BODY, openaiHeaders(i % 2 === 0 ? "15" : `15/${1 + i * 7}`))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(results.filter((r) => r.text !== without.join("")).length).toBe(0);
    for (const r of results) await expectCompleteUsage(r.id, OPENAI_TOKENS);
  }, 60_000);
});
