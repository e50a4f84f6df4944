// End to end, usage metering (SPEC §6, managed traffic only): a real gateway process between clients (the
// official SDKs, plain fetch, raw HTTP) and recording mock providers. Every test checks the `ai.usage` line
// field by field against what the provider reported, and what the client and the provider saw on the wire:
// include_usage is injected only where the gateway may, its usage chunk never reaches a client that did not
// ask for it, bodies the gateway must not touch arrive byte-identical, and BYO traffic is never metered.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, type LogLine, type ManagedPair, metricValue, rawHttp, startGateway, startManagedPair } from "./helpers/gateway.ts";
import {
  createGate,
  MOCK_ANTHROPIC_MODEL,
  MOCK_DELTAS,
  MOCK_OPENAI_MODEL,
  MOCK_TEXT,
  MOCK_USAGE,
  openaiChatSseEvents,
  sha256Hex,
  type MockProvider,
  type RecordedRequest,
} from "./helpers/mock-provider.ts";
import { collectChatStream } from "./helpers/sdk.ts";

const OPENAI_POOL = "sk-metering-openai-pool";
const ANTHROPIC_POOL = "sk-metering-anthropic-pool";
const BYO_KEY = "sk-proj-byo-metering-0123456789";

const U64_MAX = 18446744073709551615n;
const signing = keygen();
const TENANT = 42n;
const VPC = 7n;
const MANAGED = mint(1, signing.seed, TENANT, VPC);
const MANAGED_MAX = mint(1, signing.seed, U64_MAX, U64_MAX - 1n);

const enc = new TextEncoder();
const dec = new TextDecoder();

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
  sent = [];
});

// ---------------------------------------------------------------------------------------------
// Helpers

interface Sent {
  url: string;
  body: string | undefined;
  /** x-beyond-request-id of the response this request got. */
  requestId: string | null;
}
let sent: Sent[] = [];

/** Delegates to fetch, recording the body the SDK built and the gateway's request id on the answer. */
async function recordingFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const s: Sent = { url, body: typeof init?.body === "string" ? init.body : undefined, requestId: null };
  sent.push(s);
  const res = await fetch(input, init);
  s.requestId = res.headers.get("x-beyond-request-id");
  return res;
}

function lastSent(): Sent {
  const s = sent[sent.length - 1];
  if (!s) throw new Error("the SDK sent nothing");
  return s;
}

function lastRequestId(): string {
  const id = lastSent().requestId;
  if (!id) throw new Error("the response carried no x-beyond-request-id");
  return id;
}

const openaiClient = (apiKey = MANAGED): OpenAI =>
  new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, organization: null, project: null, maxRetries: 0, fetch: recordingFetch });
const anthropicClient = (): Anthropic => new Anthropic({ apiKey: MANAGED, baseURL: gw.url, maxRetries: 0, fetch: recordingFetch });

function managedHeaders(dialect: "openai" | "anthropic", key = MANAGED): Record<string, string> {
  return dialect === "openai"
    ? { authorization: `Bearer ${key}`, "content-type": "application/json" }
    : { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" };
}

async function post(path: string, body: string | ReadableStream<Uint8Array>, headers: Record<string, string>): Promise<{ res: Response; id: string }> {
  const res = await fetch(gw.url + path, { method: "POST", headers, body });
  const id = res.headers.get("x-beyond-request-id");
  if (!id) throw new Error(`no x-beyond-request-id on ${res.status} from ${path}`);
  return { res, id };
}

async function usageLine(requestId: string, timeoutMs = 3000): Promise<LogLine> {
  return gw.waitForLog((l) => l["target"] === "ai.usage" && l["request_id"] === requestId, timeoutMs);
}

/** The usage line exactly as the gateway printed it: u64 ids lose digits in JSON.parse, so they are read from here. */
function rawUsageLine(requestId: string): string {
  const line = gw
    .stdout()
    .split("\n")
    .find((l) => l.includes(`"target":"ai.usage"`) && l.includes(`"request_id":${JSON.stringify(requestId)}`));
  if (line === undefined) throw new Error(`no raw ai.usage line for ${requestId}`);
  return line;
}

/** The digits of a top-level numeric field, as printed. */
function rawNumber(line: string, field: string): string | undefined {
  return new RegExp(`"${field}":(-?\\d+)[,}]`).exec(line)?.[1];
}

interface ExpectedUsage {
  provider: "openai" | "anthropic";
  model: string;
  requested_model: string;
  stream: boolean;
  status?: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  /** undefined: the field must be absent (the provider did not report it). */
  reasoning_tokens?: number;
  complete?: boolean;
  tenant?: bigint;
  vpc?: bigint;
}

/** Waits for the request's usage line and checks every field of it. */
async function expectUsage(requestId: string, want: ExpectedUsage): Promise<LogLine> {
  const l = await usageLine(requestId);
  expect(l["target"]).toBe("ai.usage");
  expect(l["level"]).toBe("info");
  expect(l["msg"]).toBe("usage");
  expect(typeof l["ts"]).toBe("string");
  expect(Number.isNaN(Date.parse(String(l["ts"])))).toBe(false);
  expect(l["request_id"]).toBe(requestId);
  const raw = rawUsageLine(requestId);
  expect(rawNumber(raw, "tenant_id")).toBe(String(want.tenant ?? TENANT));
  expect(rawNumber(raw, "vpc_id")).toBe(String(want.vpc ?? VPC));
  expect({
    provider: l["provider"],
    model: l["model"],
    requested_model: l["requested_model"],
    stream: l["stream"],
    status: l["status"],
    input_tokens: l["input_tokens"],
    output_tokens: l["output_tokens"],
    cache_read_tokens: l["cache_read_tokens"],
    cache_write_tokens: l["cache_write_tokens"],
    complete: l["complete"],
  }).toEqual({
    provider: want.provider,
    model: want.model,
    requested_model: want.requested_model,
    stream: want.stream,
    status: want.status ?? 200,
    input_tokens: want.input_tokens,
    output_tokens: want.output_tokens,
    cache_read_tokens: want.cache_read_tokens,
    cache_write_tokens: want.cache_write_tokens,
    complete: want.complete ?? true,
  });
  if (want.reasoning_tokens === undefined) expect(Object.hasOwn(l, "reasoning_tokens")).toBe(false);
  else expect(l["reasoning_tokens"]).toBe(want.reasoning_tokens);
  expect(typeof l["latency_ms"]).toBe("number");
  expect(l["latency_ms"] as number).toBeGreaterThanOrEqual(0);
  return l;
}

/** Asserts that no usage line exists for a request whose access line has been written. The usage line is written
 * before the access line on the same ordered sink, so once the access line is visible a usage line would be too. */
async function expectNoUsage(requestId: string): Promise<void> {
  await gw.accessLog(requestId);
  expect(gw.logs().filter((l) => l["target"] === "ai.usage" && l["request_id"] === requestId)).toEqual([]);
}

function bodyText(r: RecordedRequest): string {
  return dec.decode(r.body);
}

/** A request body that arrived with framing the provider can trust: chunked, or a content-length that is right. */
function expectHonestLength(r: RecordedRequest): void {
  const cl = r.headers["content-length"];
  if (cl !== undefined) expect(Number(cl)).toBe(r.body.length);
}

/** Anthropic SSE in the real event order, with the usage numbers and content deltas chosen by the test. */
function anthropicEvents(opts: {
  input: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
  deltas: readonly string[];
  model?: string;
}): string[] {
  const ev = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const events = [
    ev("message_start", {
      type: "message_start",
      message: {
        id: "msg_meter",
        type: "message",
        role: "assistant",
        model: opts.model ?? MOCK_ANTHROPIC_MODEL,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: opts.input,
          cache_creation_input_tokens: opts.cacheWrite,
          cache_read_input_tokens: opts.cacheRead,
          output_tokens: 1,
          service_tier: "standard",
        },
      },
    }),
    ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    ev("ping", { type: "ping" }),
  ];
  for (const d of opts.deltas) {
    events.push(ev("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: d } }));
  }
  events.push(
    ev("content_block_stop", { type: "content_block_stop", index: 0 }),
    ev("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: opts.output } }),
    ev("message_stop", { type: "message_stop" }),
  );
  return events;
}

/** The same OpenAI chat stream rendered with and without include_usage, with one `created` so they compare byte for byte. */
function openaiStreamPair(): { withUsage: string[]; without: string[] } {
  const withUsage = openaiChatSseEvents(true);
  const created = /"created":(\d+)/.exec(withUsage[0] ?? "")?.[1];
  if (created === undefined) throw new Error("mock chunk without created");
  const without = openaiChatSseEvents(false).map((e) => e.replace(/"created":\d+/, `"created":${created}`));
  return { withUsage, without };
}

const CHAT_BODY = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
const CHAT_STREAM_BODY = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
const INCLUDE_USAGE = `"stream_options":{"include_usage":true}`;
/** The line for the mock's OpenAI stream asked for as "gpt-4o": its usage chunk's counts, no cached tokens. */
const OPENAI_STREAM_USAGE: ExpectedUsage = {
  provider: "openai",
  model: MOCK_OPENAI_MODEL,
  requested_model: "gpt-4o",
  stream: true,
  input_tokens: MOCK_USAGE.openaiSse.prompt_tokens,
  output_tokens: MOCK_USAGE.openaiSse.completion_tokens,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
  reasoning_tokens: 0,
};

// ---------------------------------------------------------------------------------------------

describe("OpenAI chat completions", () => {
  test("JSON response is metered with cached tokens moved out of input, model from the response, requested model from the request", async () => {
    const body = JSON.stringify({
      id: "chatcmpl-meter",
      object: "chat.completion",
      created: 1700000000,
      model: MOCK_OPENAI_MODEL,
      choices: [{ index: 0, message: { role: "assistant", content: MOCK_TEXT }, finish_reason: "stop" }],
      usage: {
        prompt_tokens: 1200,
        completion_tokens: 30,
        total_tokens: 1230,
        prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 5, audio_tokens: 0 },
      },
    });
    openaiMock.queue({ kind: "status", status: 200, body });
    const { res, id } = await post("/v1/chat/completions", CHAT_BODY, managedHeaders("openai"));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(body);
    // A non-streaming request is never rewritten.
    expect(bodyText(openaiMock.last())).toBe(CHAT_BODY);
    await expectUsage(id, {
      provider: "openai",
      model: MOCK_OPENAI_MODEL,
      requested_model: "gpt-4o",
      stream: false,
      input_tokens: 1200 - 1024,
      output_tokens: 30,
      cache_read_tokens: 1024,
      cache_write_tokens: 0,
      reasoning_tokens: 5,
    });
  });

  test("SDK stream without stream_options: include_usage reaches the provider, the SDK sees no usage chunk, and the usage is metered", async () => {
    const stream = await openaiClient().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true });
    const collected = await collectChatStream(stream);
    const chunks = collected.chunks as unknown as Array<Record<string, unknown>>;
    expect(collected.text).toBe(MOCK_TEXT);
    // role chunk + deltas + finish chunk, exactly what the provider sends without include_usage.
    expect(chunks.length).toBe(MOCK_DELTAS.length + 2);
    expect(chunks.filter((c) => Object.hasOwn(c, "usage"))).toEqual([]);
    expect(chunks.filter((c) => !Array.isArray(c["choices"]) || (c["choices"] as unknown[]).length === 0)).toEqual([]);

    const seen = openaiMock.last();
    expect(seen.path).toBe("/v1/chat/completions");
    expect(bodyText(seen)).toContain(INCLUDE_USAGE);
    expect(seen.json).toMatchObject({ model: "gpt-4o", stream: true, stream_options: { include_usage: true } });
    expectHonestLength(seen);
    // Apart from the injected member, the body is what the SDK sent.
    const sdkBody = JSON.parse(lastSent().body ?? "null") as Record<string, unknown>;
    expect(seen.json).toEqual({ ...sdkBody, stream_options: { include_usage: true } });

    await expectUsage(lastRequestId(), OPENAI_STREAM_USAGE);
  });

  test("stream without stream_options: the client receives byte for byte what the provider sends without include_usage", async () => {
    const { withUsage, without } = openaiStreamPair();
    // The provider's stream really differs: `"usage":null` on every chunk plus a usage-only chunk.
    expect(withUsage.join("")).not.toBe(without.join(""));
    expect(withUsage.length).toBe(without.length + 1);
    openaiMock.queue({ kind: "sse", events: withUsage });
    const { res, id } = await post("/v1/chat/completions", CHAT_STREAM_BODY, managedHeaders("openai"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const got = await res.text();
    expect(got).toBe(without.join(""));
    expect(bodyText(openaiMock.last())).toContain(INCLUDE_USAGE);
    await expectUsage(id, OPENAI_STREAM_USAGE);
  });

  test("a short stream that arrives whole with its head (content-length, one write) is still tapped as SSE: usage metered, usage chunk removed", async () => {
    const { withUsage, without } = openaiStreamPair();
    openaiMock.queue({ kind: "status", status: 200, body: withUsage.join(""), headers: { "content-type": "text/event-stream" } });
    const { res, id } = await post("/v1/chat/completions", CHAT_STREAM_BODY, managedHeaders("openai"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(await res.text()).toBe(without.join(""));
    await expectUsage(id, OPENAI_STREAM_USAGE);
    const access = await gw.accessLog(id);
    expect(access["bytes_out"]).toBe(enc.encode(without.join("")).byteLength);
  });

  test("a client that set include_usage itself keeps its usage chunk and its body reaches the provider unchanged", async () => {
    const stream = await openaiClient().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const { chunks, text } = await collectChatStream(stream);
    const usageChunk = chunks.findLast((c) => c.usage);
    const usage = usageChunk?.usage;
    const usageChunkChoices = usageChunk?.choices.length;
    expect(text).toBe(MOCK_TEXT);
    const u = MOCK_USAGE.openaiSse;
    expect(usage?.prompt_tokens).toBe(u.prompt_tokens);
    expect(usage?.completion_tokens).toBe(u.completion_tokens);
    expect(usageChunkChoices).toBe(0);

    const sdkBody = lastSent().body;
    expect(sdkBody).toBeDefined();
    const seen = openaiMock.last();
    expect(bodyText(seen)).toBe(sdkBody!);
    expect(seen.bodySha256).toBe(sha256Hex(enc.encode(sdkBody!)));
    await expectUsage(lastRequestId(), OPENAI_STREAM_USAGE);
  });

  test("a 1 MiB JSON response with usage at the end is still metered", async () => {
    const content = "lorem ipsum dolor sit amet ".repeat(Math.ceil((1024 * 1024) / 27));
    const body = JSON.stringify({
      id: "chatcmpl-big",
      object: "chat.completion",
      created: 1700000000,
      model: MOCK_OPENAI_MODEL,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
      usage: {
        prompt_tokens: 300,
        completion_tokens: 250000,
        total_tokens: 250300,
        prompt_tokens_details: { cached_tokens: 100 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
    expect(body.length).toBeGreaterThan(1024 * 1024);
    openaiMock.queue({ kind: "status", status: 200, body });
    const { res, id } = await post("/v1/chat/completions", CHAT_BODY, managedHeaders("openai"));
    expect(res.status).toBe(200);
    const got = await res.text();
    expect(got.length).toBe(body.length);
    expect(got === body).toBe(true);
    await expectUsage(id, {
      provider: "openai",
      model: MOCK_OPENAI_MODEL,
      requested_model: "gpt-4o",
      stream: false,
      input_tokens: 200,
      output_tokens: 250000,
      cache_read_tokens: 100,
      cache_write_tokens: 0,
      reasoning_tokens: 0,
    });
  });

  test("a gzip response reaches the client compressed and untouched, and is metered", async () => {
    openaiMock.queue({ kind: "compressed", encoding: "gzip" });
    const req =
      `POST /v1/chat/completions HTTP/1.1\r\nHost: ${gw.host}:${gw.port}\r\nAuthorization: Bearer ${MANAGED}\r\n` +
      `Content-Type: application/json\r\nAccept-Encoding: gzip\r\nContent-Length: ${enc.encode(CHAT_BODY).length}\r\n` +
      `Connection: close\r\n\r\n${CHAT_BODY}`;
    const res = await rawHttp(gw.host, gw.port, req);
    expect(res.status).toBe(200);
    expect(res.headers["content-encoding"]).toBe("gzip");
    expect(res.headers["x-mock-encoding"]).toBe("gzip");
    expect(openaiMock.last().headers["accept-encoding"]).toContain("gzip");
    expect(sha256Hex(res.body)).toBe(res.headers["x-mock-sha256"] ?? "missing x-mock-sha256");
    const plain = JSON.parse(dec.decode(gunzipSync(res.body))) as { choices: Array<{ message: { content: string } }> };
    expect(plain.choices[0]?.message.content).toBe(MOCK_TEXT);
    const id = res.headers["x-beyond-request-id"];
    expect(id).toBeTruthy();
    const u = MOCK_USAGE.openaiJson;
    await expectUsage(id!, {
      provider: "openai",
      model: MOCK_OPENAI_MODEL,
      requested_model: "gpt-4o",
      stream: false,
      input_tokens: u.prompt_tokens,
      output_tokens: u.completion_tokens,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      reasoning_tokens: 0,
    });
  });

  test("a client that aborts mid-stream gets an incomplete usage line with an input estimate from the request bytes", async () => {
    const gate = createGate();
    const { withUsage } = openaiStreamPair();
    // The first event flows, the rest wait for a gate that only opens after the test is over.
    openaiMock.queue({ kind: "sse", events: withUsage, gates: [undefined, gate.promise] });
    const controller = new AbortController();
    const prompt = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "tell me a long story ".repeat(20) }], stream: true });
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: managedHeaders("openai"),
        body: prompt,
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      const id = res.headers.get("x-beyond-request-id");
      expect(id).toBeTruthy();
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      expect(dec.decode(first.value)).toContain(`"role":"assistant"`);
      controller.abort();
      await reader.cancel().catch(() => {});

      const l = await usageLine(id!, 2000);
      expect(l["complete"]).toBe(false);
      expect(l["stream"]).toBe(true);
      expect(l["status"]).toBe(200);
      expect(l["provider"]).toBe("openai");
      expect(l["requested_model"]).toBe("gpt-4o");
      expect(typeof l["input_tokens"]).toBe("number");
      expect(l["input_tokens"] as number).toBeGreaterThan(0);
      expect(typeof l["output_tokens"]).toBe("number");
      expect(l["output_tokens"] as number).toBeGreaterThanOrEqual(0);
      expect(rawNumber(rawUsageLine(id!), "tenant_id")).toBe(String(TENANT));
      // The provider's request was cut too, not left streaming into nothing.
      const seen = openaiMock.last();
      await Promise.race([seen.closedEarly, Bun.sleep(2000)]);
      expect(seen.closedEarlyAt).not.toBeNull();
    } finally {
      gate.open();
    }
  });

  test("a managed 200 KiB chunked streaming body with model last still gets include_usage and stays valid JSON", async () => {
    const filler = "x".repeat(200 * 1024);
    const text = JSON.stringify({ messages: [{ role: "user", content: filler }], stream: true, model: "gpt-4o" });
    const bytes = enc.encode(text);
    // Odd chunk sizes, so the boundaries fall inside keys and values.
    const step = 7919;
    let off = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (off >= bytes.length) {
          c.close();
          return;
        }
        const end = Math.min(off + step, bytes.length);
        c.enqueue(bytes.slice(off, end));
        off = end;
      },
    });
    const { res, id } = await post("/v1/chat/completions", body, managedHeaders("openai"));
    expect(res.status).toBe(200);
    const got = await res.text();
    expect(got).not.toContain(`"usage"`);
    expect(got).toContain("data: [DONE]");

    const seen = openaiMock.last();
    // The gateway cannot know the rewritten length without holding the body: it must stream it on, chunked.
    expect(seen.headers["content-length"]).toBeUndefined();
    expect(seen.headers["transfer-encoding"]).toBe("chunked");
    expect(seen.json).toBeDefined();
    const j = seen.json as Record<string, unknown>;
    expect(j["model"]).toBe("gpt-4o");
    expect(j["stream"]).toBe(true);
    expect(j["stream_options"]).toEqual({ include_usage: true });
    expect((j["messages"] as Array<{ content: string }>)[0]?.content).toBe(filler);
    expect(Object.keys(j).sort()).toEqual(["messages", "model", "stream", "stream_options"]);

    await expectUsage(id, OPENAI_STREAM_USAGE);
  });
});

describe("model names in the line", () => {
  test("a billed model no log parser could trust is logged as unknown, and the next request's clean model is logged as itself", async () => {
    // Requests in a row through one gateway: clean, odd (quote, control character), over 256 bytes (not a model name:
    // the requested model stands in), clean again, so a remembered earlier answer can neither let an odd name through
    // nor turn a clean one into "unknown".
    const models = ["gpt-4o-2024-08-06", 'gpt-4o"x', "gpt-4o\u0001", "m".repeat(257), "gpt-4o-2024-08-06", "gpt-4o-mini"];
    const logged: unknown[] = [];
    for (const model of models) {
      const body = JSON.stringify({ id: "c", object: "chat.completion", created: 1, model, choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } });
      openaiMock.queue({ kind: "status", status: 200, body });
      const { res, id } = await post("/v1/chat/completions", CHAT_BODY, managedHeaders("openai"));
      expect(await res.text()).toBe(body);
      const line = await usageLine(id);
      expect(line["requested_model"]).toBe("gpt-4o");
      logged.push(line["model"]);
    }
    expect(logged).toEqual(["gpt-4o-2024-08-06", "unknown", "unknown", "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini"]);
  });
});

describe("OpenAI Responses API", () => {
  test("JSON response is metered and the body reaches the provider byte-identical", async () => {
    const sentBody = JSON.stringify({ model: "gpt-4o", input: "hi" });
    const { res, id } = await post("/v1/responses", sentBody, managedHeaders("openai"));
    expect(res.status).toBe(200);
    const out = (await res.json()) as { usage: { input_tokens: number } };
    expect(out.usage.input_tokens).toBe(MOCK_USAGE.responses.input_tokens);
    const seen = openaiMock.last();
    expect(seen.path).toBe("/v1/responses");
    expect(bodyText(seen)).toBe(sentBody);
    const u = MOCK_USAGE.responses;
    await expectUsage(id, {
      provider: "openai",
      model: MOCK_OPENAI_MODEL,
      requested_model: "gpt-4o",
      stream: false,
      input_tokens: u.input_tokens,
      output_tokens: u.output_tokens,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      reasoning_tokens: 0,
    });
  });

  test("SSE is metered from response.completed and the streaming body is never rewritten", async () => {
    const sentBody = JSON.stringify({ model: "gpt-4o", input: "hi", stream: true });
    const { res, id } = await post("/v1/responses", sentBody, managedHeaders("openai"));
    expect(res.status).toBe(200);
    const got = await res.text();
    expect(got).toContain("event: response.completed");
    const seen = openaiMock.last();
    expect(seen.path).toBe("/v1/responses");
    expect(bodyText(seen)).toBe(sentBody);
    expect(bodyText(seen)).not.toContain("stream_options");
    const u = MOCK_USAGE.responses;
    await expectUsage(id, {
      provider: "openai",
      model: MOCK_OPENAI_MODEL,
      requested_model: "gpt-4o",
      stream: true,
      input_tokens: u.input_tokens,
      output_tokens: u.output_tokens,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      reasoning_tokens: 0,
    });
  });
});

describe("Anthropic messages", () => {
  test("JSON response is metered with cache reads and cache writes in their own buckets", async () => {
    const body = JSON.stringify({
      id: "msg_meter",
      type: "message",
      role: "assistant",
      model: MOCK_ANTHROPIC_MODEL,
      content: [{ type: "text", text: MOCK_TEXT }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 13, cache_creation_input_tokens: 2048, cache_read_input_tokens: 4096, output_tokens: 7, service_tier: "standard" },
    });
    anthropicMock.queue({ kind: "status", status: 200, body });
    const sentBody = JSON.stringify({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
    const { res, id } = await post("/v1/messages", sentBody, managedHeaders("anthropic"));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(body);
    expect(bodyText(anthropicMock.last())).toBe(sentBody);
    await expectUsage(id, {
      provider: "anthropic",
      model: MOCK_ANTHROPIC_MODEL,
      requested_model: "claude-test",
      stream: false,
      input_tokens: 13,
      output_tokens: 7,
      cache_read_tokens: 4096,
      cache_write_tokens: 2048,
    });
  });

  test("SDK stream is metered from message_start usage plus message_delta usage", async () => {
    anthropicMock.queue({
      kind: "sse",
      events: anthropicEvents({ input: 21, cacheRead: 3000, cacheWrite: 500, output: 42, deltas: MOCK_DELTAS }),
    });
    const stream = anthropicClient().messages.stream({ model: "claude-test", max_tokens: 64, messages: [{ role: "user", content: "hi" }] });
    const final = await stream.finalMessage();
    const block = final.content[0];
    expect(block?.type === "text" ? block.text : "").toBe(MOCK_TEXT);
    expect(final.usage.input_tokens).toBe(21);
    expect(final.usage.output_tokens).toBe(42);
    expect(final.usage.cache_read_input_tokens).toBe(3000);
    expect(final.usage.cache_creation_input_tokens).toBe(500);
    const sdkBody = lastSent().body;
    expect(sdkBody).toBeDefined();
    expect(bodyText(anthropicMock.last())).toBe(sdkBody!);
    await expectUsage(lastRequestId(), {
      provider: "anthropic",
      model: MOCK_ANTHROPIC_MODEL,
      requested_model: "claude-test",
      stream: true,
      input_tokens: 21,
      output_tokens: 42,
      cache_read_tokens: 3000,
      cache_write_tokens: 500,
    });
  });

  test("a 600 KiB stream still meters input and cache from message_start", async () => {
    const piece = "The quick brown fox jumps over the lazy dog. ".repeat(23); // ~1 KiB per delta
    const deltas = Array.from({ length: 600 }, () => piece);
    const events = anthropicEvents({ input: 777, cacheRead: 9000, cacheWrite: 1234, output: 150000, deltas });
    const total = events.reduce((n, e) => n + enc.encode(e).length, 0);
    expect(total).toBeGreaterThan(600 * 1024);
    anthropicMock.queue({ kind: "sse", events });
    const sentBody = JSON.stringify({ model: "claude-test", max_tokens: 200000, messages: [{ role: "user", content: "write a lot" }], stream: true });
    const { res, id } = await post("/v1/messages", sentBody, managedHeaders("anthropic"));
    expect(res.status).toBe(200);
    const got = await res.text();
    expect(got === events.join("")).toBe(true);
    await expectUsage(id, {
      provider: "anthropic",
      model: MOCK_ANTHROPIC_MODEL,
      requested_model: "claude-test",
      stream: true,
      input_tokens: 777,
      output_tokens: 150000,
      cache_read_tokens: 9000,
      cache_write_tokens: 1234,
    });
  });
});

describe("attribution and scope", () => {
  test("tenant_id 2^64-1 and vpc_id 2^64-2 appear with exact digits in the usage line", async () => {
    const { res, id } = await post("/v1/chat/completions", CHAT_BODY, managedHeaders("openai", MANAGED_MAX));
    expect(res.status).toBe(200);
    await res.text();
    const u = MOCK_USAGE.openaiJson;
    await expectUsage(id, {
      provider: "openai",
      model: MOCK_OPENAI_MODEL,
      requested_model: "gpt-4o",
      stream: false,
      input_tokens: u.prompt_tokens,
      output_tokens: u.completion_tokens,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      reasoning_tokens: 0,
      tenant: U64_MAX,
      vpc: U64_MAX - 1n,
    });
    const raw = rawUsageLine(id);
    expect(raw).toContain(`"tenant_id":18446744073709551615,`);
    expect(raw).toContain(`"vpc_id":18446744073709551614,`);
  });

  test("BYO JSON traffic produces no usage line", async () => {
    const { res, id } = await post("/v1/chat/completions", CHAT_BODY, { authorization: `Bearer ${BYO_KEY}`, "content-type": "application/json" });
    expect(res.status).toBe(200);
    await res.text();
    expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${BYO_KEY}`);
    await expectNoUsage(id);
  });

  test("BYO streaming traffic is neither metered nor rewritten", async () => {
    const { res, id } = await post("/v1/chat/completions", CHAT_STREAM_BODY, { authorization: `Bearer ${BYO_KEY}`, "content-type": "application/json" });
    expect(res.status).toBe(200);
    const got = await res.text();
    expect(got).toContain("data: [DONE]");
    expect(got).not.toContain(`"usage"`);
    const seen = openaiMock.last();
    expect(bodyText(seen)).toBe(CHAT_STREAM_BODY);
    expect(bodyText(seen)).not.toContain("stream_options");
    expect(seen.headers["content-length"]).toBe(String(enc.encode(CHAT_STREAM_BODY).length));
    await expectNoUsage(id);
  });

  test("BYO Anthropic stream through the SDK produces no usage line", async () => {
    const client = new Anthropic({ apiKey: "sk-ant-api03-byo-metering", baseURL: gw.url, maxRetries: 0, fetch: recordingFetch });
    const final = await client.messages.stream({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).finalMessage();
    expect(final.usage.output_tokens).toBe(MOCK_USAGE.anthropicSse.output_tokens);
    expect(bodyText(anthropicMock.last())).toBe(lastSent().body!);
    await expectNoUsage(lastRequestId());
  });

  test("/metrics ai_tokens_total grows by the tokens of a metered request", async () => {
    const labels = (kind: string): Record<string, string> => ({ kind });
    const before = {
      input: await metricValue(gw.metricsUrl, "ai_tokens_total", labels("input")),
      output: await metricValue(gw.metricsUrl, "ai_tokens_total", labels("output")),
    };
    const { res, id } = await post("/v1/chat/completions", CHAT_BODY, managedHeaders("openai"));
    expect(res.status).toBe(200);
    await res.text();
    await usageLine(id);
    const after = {
      input: await metricValue(gw.metricsUrl, "ai_tokens_total", labels("input")),
      output: await metricValue(gw.metricsUrl, "ai_tokens_total", labels("output")),
    };
    expect(after.input - before.input).toBe(MOCK_USAGE.openaiJson.prompt_tokens);
    expect(after.output - before.output).toBe(MOCK_USAGE.openaiJson.completion_tokens);
    expect(after.input).toBeGreaterThan(0);
  });
});

describe("usage_metering = false", () => {
  let off: Gateway;
  beforeAll(async () => {
    off = await startGateway({
      config: baseConfig({
        authorities: { openai: openaiMock.authority },
        extra: "usage_metering = false",
        tables: ["[pool_keys]", `openai = "${OPENAI_POOL}"`, "", "[signing_keys]", `1 = "${Buffer.from(signing.publicKey).toString("base64")}"`].join("\n"),
      }),
    });
  });
  afterAll(async () => {
    await off?.stop();
  });

  test("boot warns that managed traffic will not be metered", async () => {
    const warn = await off.waitForLog((l) => l["target"] === "ai.gateway" && String(l["msg"]).includes("usage_metering = false"));
    expect(warn["level"]).toBe("warn");
  });

  test("a managed request is still verified and swapped to the pool key, but leaves no usage line and an untouched body", async () => {
    const res = await fetch(`${off.url}/v1/chat/completions`, { method: "POST", headers: managedHeaders("openai"), body: CHAT_STREAM_BODY });
    expect(res.status).toBe(200);
    const id = res.headers.get("x-beyond-request-id") as string;
    expect(await res.text()).toContain("data: [DONE]");
    const seen = openaiMock.last();
    expect(seen.headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    expect(bodyText(seen)).toBe(CHAT_STREAM_BODY);
    const access = await off.accessLog(id);
    expect(access["managed"]).toBe(true);
    expect(off.logs().filter((l) => l["target"] === "ai.usage")).toEqual([]);
  });

  test("a bad managed key is still refused with 401 and never reaches the provider", async () => {
    const res = await fetch(`${off.url}/v1/chat/completions`, { method: "POST", headers: managedHeaders("openai", `${MANAGED.slice(0, -4)}AAAA`), body: CHAT_BODY });
    expect(res.status).toBe(401);
    await res.text();
    expect(openaiMock.requests.length).toBe(0);
  });
});
