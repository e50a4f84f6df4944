// GatewayTransport against a tiny local Bun.serve stub (reference §B.5): URL and headers, pre-first-byte retries
// (statuses, backoff, Retry-After), the 401 message, no retry on 400, the request id, truncation and the idle timeout.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Agent, newSession } from "../../src/agent/core/index.ts";
import { GatewayTransport, retryAfterMs } from "../../src/agent/core/gateway-transport.ts";
import type { StreamEvent } from "../../src/agent/core/events.ts";
import { type ModelRequest, TransportError } from "../../src/agent/core/transport.ts";

type Reply = (req: Request) => Response | Promise<Response>;

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

const KEY = "bai_v1.1.secretpayload.signature";

let server: ReturnType<typeof Bun.serve>;
let base: string;
let replies: Reply[] = [];
let seen: Seen[] = [];

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      const text = await req.text();
      seen.push({ method: req.method, path: url.pathname, headers, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) });
      const r = replies.shift();
      if (r === undefined) return new Response("no scripted reply", { status: 599 });
      return r(req);
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(() => {
  server.stop(true);
});

function reset(...rs: Reply[]): void {
  replies = rs;
  seen = [];
}

const anthropicOk = [
  'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
].join("");

const openaiOk = [
  'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n',
  'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
  'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n',
  "data: [DONE]\n\n",
].join("");

function sse(body: string, headers: Record<string, string> = {}): Reply {
  return () => new Response(body, { headers: { "content-type": "text/event-stream", ...headers } });
}

function status(code: number, body = "", headers: Record<string, string> = {}): Reply {
  return () => new Response(body, { status: code, headers });
}

function request(model: string): ModelRequest {
  return { model, system: "s", messages: [{ role: "user", content: [{ type: "text", text: "x" }], ts: 0 }], tools: [], max_tokens: 4096 };
}

async function drain(t: GatewayTransport, model: string, signal = new AbortController().signal): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of t.stream(request(model), signal)) out.push(e);
  return out;
}

async function failure(p: Promise<unknown>): Promise<TransportError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TransportError) return e;
    throw e;
  }
  throw new Error("expected a TransportError");
}

function transport(extra: Partial<ConstructorParameters<typeof GatewayTransport>[0]> = {}): { t: GatewayTransport; waits: number[] } {
  const waits: number[] = [];
  const t = new GatewayTransport({
    baseUrl: `${base}/prefix/`,
    key: KEY,
    dialect: "auto",
    userAgent: "beyond-ai-agent/test",
    sleep: async (ms) => void waits.push(ms),
    ...extra,
  });
  return { t, waits };
}

describe("GatewayTransport", () => {
  test("Anthropic: URL with the base's prefix, bearer key, anthropic-version, body; request id on message_start", async () => {
    reset(sse(anthropicOk, { "x-beyond-request-id": "gw-1" }));
    const { t } = transport();
    const ev = await drain(t, "claude-test");
    expect(ev[0]).toEqual({ type: "message_start", request_id: "gw-1" });
    expect(ev[ev.length - 1]).toEqual({ type: "message_stop", stop_reason: "end_turn" });
    const s = seen[0]!;
    expect(s.method).toBe("POST");
    expect(s.path).toBe("/prefix/v1/messages");
    expect(s.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(s.headers["x-api-key"]).toBeUndefined();
    expect(s.headers["anthropic-version"]).toBe("2023-06-01");
    expect(s.headers.accept).toBe("text/event-stream");
    expect(s.headers["content-type"]).toBe("application/json");
    expect(s.headers["user-agent"]).toBe("beyond-ai-agent/test");
    expect(s.body.max_tokens).toBe(4096);
    expect(s.body.stream).toBe(true);
  });

  test("OpenAI: /v1/chat/completions, bearer, include_usage, no anthropic-version", async () => {
    reset(sse(openaiOk, { "x-beyond-request-id": "gw-2" }));
    const { t } = transport();
    const ev = await drain(t, "gpt-4o-mini");
    expect(ev[0]).toEqual({ type: "message_start", request_id: "gw-2" });
    expect(ev.some((e) => e.type === "usage" && e.input_tokens === 5)).toBe(true);
    expect(seen[0]!.path).toBe("/prefix/v1/chat/completions");
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(seen[0]!.headers["anthropic-version"]).toBeUndefined();
    expect(seen[0]!.body.stream_options).toEqual({ include_usage: true });
  });

  test("direct Anthropic sends x-api-key and no authorization", async () => {
    reset(sse(anthropicOk));
    const { t } = transport({ direct: true, dialect: "anthropic", key: "sk-direct-key" });
    await drain(t, "claude-test");
    expect(seen[0]!.headers["x-api-key"]).toBe("sk-direct-key");
    expect(seen[0]!.headers.authorization).toBeUndefined();
  });

  test("every retryable status is retried before the first byte with 250·2^(n-1) backoff", async () => {
    for (const code of [408, 409, 429, 500, 502, 503, 504, 524]) {
      reset(status(code), status(code), sse(openaiOk));
      const { t, waits } = transport();
      const ev = await drain(t, "gpt-4o");
      expect(ev[ev.length - 1]!.type).toBe("message_stop");
      expect(seen.length).toBe(3);
      expect(waits).toEqual([250, 500]);
    }
  });

  test("retries stop after 3: the fourth failure is the error, not retried again by the transport", async () => {
    reset(status(503, '{"error":{"message":"upstream busy"}}'), status(503), status(503), status(503, '{"error":{"message":"still busy"}}'), sse(openaiOk));
    const { t, waits } = transport();
    const e = await failure(drain(t, "gpt-4o"));
    expect(seen.length).toBe(4);
    expect(waits).toEqual([250, 500, 1000]);
    expect(e.message).toBe("gateway returned 503: still busy");
    expect(e.opts.status).toBe(503);
    expect(e.opts.retryable).toBe(false);
  });

  test("Retry-After is honoured (seconds and HTTP date), capped at 60 s", async () => {
    reset(status(429, "", { "retry-after": "1" }), status(429, "", { "retry-after": "3600" }), sse(openaiOk));
    const { t, waits } = transport();
    await drain(t, "gpt-4o");
    expect(waits).toEqual([1000, 60_000]);
    const h = new Headers({ "retry-after": new Date(Date.UTC(2030, 0, 1, 0, 0, 5)).toUTCString() });
    expect(retryAfterMs(h, Date.UTC(2030, 0, 1, 0, 0, 0))).toBe(5000);
    expect(retryAfterMs(new Headers({ "retry-after-ms": "1500" }))).toBe(1500);
    expect(retryAfterMs(new Headers({ "retry-after": "soon" }))).toBeUndefined();
  });

  test("401 is not retried and says which key to check, without printing it", async () => {
    reset(status(401, `{"error":{"message":"invalid key ${KEY}"}}`), sse(openaiOk));
    const { t, waits } = transport();
    const e = await failure(drain(t, "gpt-4o"));
    expect(e.message).toBe("gateway rejected the key (401): check AI_AGENT_KEY");
    expect(e.opts.status).toBe(401);
    expect(e.opts.retryable).toBe(false);
    expect(seen.length).toBe(1);
    expect(waits).toEqual([]);
  });

  test("400, 403, 404 and 413 are never retried; the message carries error.message or the first 512 bytes, key redacted", async () => {
    for (const code of [400, 403, 404, 413]) {
      reset(status(code, `{"error":{"message":"bad thing for ${KEY}"}}`), sse(openaiOk));
      const { t } = transport();
      const e = await failure(drain(t, "gpt-4o"));
      expect(seen.length).toBe(1);
      expect(e.message).toBe(`gateway returned ${code}: bad thing for ***`);
      expect(e.message).not.toContain("secretpayload");
    }
    reset(status(400, `<html>${"x".repeat(2000)}</html>`));
    const e = await failure(drain(transport().t, "gpt-4o"));
    expect(e.message).toBe(`gateway returned 400: <html>${"x".repeat(506)}`);
  });

  test("a network error is retried, then reported without the key", async () => {
    const { t, waits } = transport({ baseUrl: "http://127.0.0.1:1" });
    const e = await failure(drain(t, "gpt-4o"));
    expect(waits).toEqual([250, 500, 1000]);
    expect(e.opts.phase).toBe("connect");
    expect(e.message).toStartWith("could not reach the gateway: ");
    expect(e.message).not.toContain(KEY);
  });

  test("a stream cut before its end is a retryable 'stream truncated' carrying the request id", async () => {
    reset(sse(anthropicOk.split("event: message_delta")[0]!, { "x-beyond-request-id": "gw-cut" }));
    const e = await failure(drain(transport().t, "claude-test"));
    expect(e.message).toBe("stream truncated");
    expect(e.opts).toEqual({ retryable: true, phase: "stream", requestId: "gw-cut" });
  });

  test("silence past the idle timeout ends the attempt with a retryable stream error", async () => {
    reset(
      () =>
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode('data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'));
              // then nothing
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        ),
    );
    const e = await failure(drain(transport({ idleTimeoutMs: 100 }).t, "gpt-4o"));
    expect(e.message).toBe("stream idle for 100 ms");
    expect(e.opts.retryable).toBe(true);
  });

  test("an abort mid-stream ends the iteration with an AbortError and the server sees the connection close", async () => {
    let closed!: () => void;
    const closedP = new Promise<void>((r) => (closed = r));
    reset(
      () =>
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode('data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'));
            },
            cancel() {
              closed();
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        ),
    );
    const ac = new AbortController();
    const it = transport().t.stream(request("gpt-4o"), ac.signal)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toEqual({ type: "message_start" });
    await it.next(); // the text delta
    const pending = it.next();
    ac.abort();
    let err: unknown;
    try {
      await pending;
    } catch (e) {
      err = e;
    }
    expect((err as Error).name).toBe("AbortError");
    await closedP;
  });

  test("with the loop: a cut stream is retried as a turn (turn_retry), a 503 before the first byte is not a turn retry", async () => {
    reset(sse(anthropicOk.slice(0, 200)), status(503), sse(anthropicOk));
    const { t } = transport();
    const events: string[] = [];
    const agent = new Agent({ transport: t, model: "claude-test", sleep: async () => {} });
    const s = newSession("s");
    const r = await agent.run(s, { prompt: "x", onEvent: (e) => events.push(e.kind) });
    expect(r.status).toBe("done");
    expect(seen.length).toBe(3);
    expect(events.filter((k) => k === "turn_retry").length).toBe(1);
    expect(s.messages[1]!.content).toEqual([{ type: "text", text: "hi" }]);
  });
});
