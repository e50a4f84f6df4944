// The test mock's failure modes (SPEC §10 tests): each checked on the wire against the mock alone, so the retry suites
// can trust that a key, a model or chaos fails exactly as documented in test/helpers/mock-provider.ts, in the
// request's dialect, and that everything else still gets the normal answer.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import {
  anthropicSseEvents,
  FAIL_ONCE_429_RETRY_AFTER_MS,
  keyOf,
  MOCK_DELTAS,
  MOCK_TEXT,
  MOCK_USAGE,
  type MockProvider,
  modelOf,
  openaiChatSseEvents,
  parseChaosHeader,
  patternBytes,
  R429_RETRY_AFTER_SECS,
  SLOW_PREAMBLE_MS,
  sha256Hex,
  startMockProvider,
} from "./helpers/mock-provider.ts";

let mock: MockProvider;
beforeAll(() => {
  mock = startMockProvider();
});
afterAll(async () => {
  await mock?.stop();
});
beforeEach(() => {
  mock.reset();
});

type Dialect = "openai" | "anthropic";

function call(dialect: Dialect, key: string, model: string, opts: { stream?: boolean; headers?: Record<string, string> } = {}): Promise<Response> {
  const openai = dialect === "openai";
  const body = openai
    ? { model, messages: [{ role: "user", content: "hi" }], ...(opts.stream ? { stream: true } : {}) }
    : { model, max_tokens: 16, messages: [{ role: "user", content: "hi" }], ...(opts.stream ? { stream: true } : {}) };
  return fetch(`${mock.url}${openai ? "/v1/chat/completions" : "/v1/messages"}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(openai ? { authorization: `Bearer ${key}` } : { "x-api-key": key, "anthropic-version": "2023-06-01" }),
      ...(opts.headers ?? {}),
    },
    body: JSON.stringify(body),
  });
}

/** The SSE events of a body, each with its `event:` name (if any) and parsed `data:`. */
function sseEvents(text: string): Array<{ event: string | undefined; data: unknown }> {
  return text
    .split("\n\n")
    .filter((e) => e.trim() !== "")
    .map((e) => {
      const ev = /^event: (.*)$/m.exec(e)?.[1];
      const data = /^data: (.*)$/m.exec(e)?.[1] ?? "";
      return { event: ev, data: data === "[DONE]" ? "[DONE]" : (JSON.parse(data) as unknown) };
    });
}

async function normalAnswer(res: Response, dialect: Dialect): Promise<void> {
  expect(res.status).toBe(200);
  expect(res.headers.get("x-mock-failure")).toBeNull();
  const j = (await res.json()) as Record<string, unknown>;
  if (dialect === "openai") expect(j).toMatchObject({ object: "chat.completion", choices: [{ message: { content: MOCK_TEXT } }] });
  else expect(j).toMatchObject({ type: "message", content: [{ type: "text", text: MOCK_TEXT }] });
}

describe("per pool key, by the credential's prefix", () => {
  test("keyOf reads Bearer, x-api-key and api-key; modelOf reads the JSON body's model", async () => {
    await call("openai", "sk-ok-bearer", "gpt-4o-mini");
    await call("anthropic", "sk-ok-xapi", "claude-x");
    await fetch(`${mock.url}/v1/embeddings`, { method: "POST", headers: { "api-key": "sk-ok-azure" }, body: "{}" });
    await fetch(`${mock.url}/v1/models`);
    expect(mock.requests.map(keyOf)).toEqual(["sk-ok-bearer", "sk-ok-xapi", "sk-ok-azure", undefined]);
    expect(mock.requests.map(modelOf)).toEqual(["gpt-4o-mini", "claude-x", undefined, undefined]);
  });

  test("sk-r429-: every request 429 rate limit with retry-after 30 and reset headers, in both dialects", async () => {
    for (let i = 0; i < 2; i++) {
      const o = await call("openai", "sk-r429-a", "gpt-4o-mini");
      expect(o.status).toBe(429);
      expect(o.headers.get("retry-after")).toBe(String(R429_RETRY_AFTER_SECS));
      expect(o.headers.get("x-ratelimit-reset-requests")).toBe("30s");
      expect(o.headers.get("x-ratelimit-remaining-requests")).toBe("0");
      expect(await o.json()).toMatchObject({ error: { type: "requests", code: "rate_limit_exceeded" } });
      const a = await call("anthropic", "sk-r429-b", "claude-x");
      expect(a.status).toBe(429);
      expect(a.headers.get("retry-after")).toBe("30");
      const reset = Date.parse(a.headers.get("anthropic-ratelimit-requests-reset") ?? "");
      expect(reset - Date.now()).toBeGreaterThan(20_000);
      expect(reset - Date.now()).toBeLessThanOrEqual(31_000);
      expect(await a.json()).toEqual({ type: "error", error: { type: "rate_limit_error", message: expect.any(String) } });
    }
    expect(mock.requests).toHaveLength(4);
  });

  test("sk-401-: 401 invalid_api_key / authentication_error, and the body never echoes the key", async () => {
    const o = await call("openai", "sk-401-secretvalue", "gpt-4o-mini");
    expect(o.status).toBe(401);
    const ot = await o.text();
    expect(JSON.parse(ot)).toMatchObject({ error: { code: "invalid_api_key", type: "invalid_request_error" } });
    expect(ot).not.toContain("secretvalue");
    const a = await call("anthropic", "sk-401-secretvalue", "claude-x");
    expect(a.status).toBe(401);
    expect(await a.json()).toEqual({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
  });

  test("sk-quota-: 429 insufficient_quota (OpenAI shape), no retry-after", async () => {
    const o = await call("openai", "sk-quota-x", "gpt-4o-mini");
    expect(o.status).toBe(429);
    expect(o.headers.get("retry-after")).toBeNull();
    expect(await o.json()).toMatchObject({ error: { type: "insufficient_quota", code: "insufficient_quota" } });
  });

  test("any other key answers normally, and a key failure wins over the model's (no first-time spent)", async () => {
    await normalAnswer(await call("openai", "sk-ok-b", "gpt-4o-mini"), "openai");
    expect((await call("openai", "sk-401-a", "fail-once-503-k")).status).toBe(401);
    expect((await call("openai", "sk-ok-b", "fail-once-503-k")).status).toBe(503);
  });
});

describe("per model, by the body's model prefix", () => {
  const onceCases: Array<{ model: string; status: number; dialect: Dialect; type: string }> = [
    { model: "fail-once-503", status: 503, dialect: "openai", type: "server_error" },
    { model: "fail-once-500", status: 500, dialect: "openai", type: "server_error" },
    { model: "fail-once-408", status: 408, dialect: "openai", type: "timeout" },
    { model: "fail-once-429", status: 429, dialect: "openai", type: "requests" },
    { model: "fail-once-503", status: 503, dialect: "anthropic", type: "api_error" },
    { model: "fail-once-500", status: 500, dialect: "anthropic", type: "api_error" },
    { model: "fail-once-529", status: 529, dialect: "anthropic", type: "overloaded_error" },
    { model: "fail-once-408", status: 408, dialect: "anthropic", type: "timeout_error" },
  ];
  for (const c of onceCases) {
    test(`${c.model} (${c.dialect}): ${c.status} ${c.type} the first time, the normal answer after`, async () => {
      const first = await call(c.dialect, "sk-ok", c.model);
      expect(first.status).toBe(c.status);
      const j = (await first.json()) as Record<string, unknown>;
      if (c.dialect === "openai") expect(j).toMatchObject({ error: { type: c.type } });
      else expect(j).toEqual({ type: "error", error: { type: c.type, message: expect.any(String) } });
      await normalAnswer(await call(c.dialect, "sk-ok", c.model), c.dialect);
      await normalAnswer(await call(c.dialect, "sk-ok", c.model), c.dialect);
    });
  }

  test("fail-once-429 carries retry-after-ms 50 and no retry-after", async () => {
    const r = await call("openai", "sk-ok", "fail-once-429");
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after-ms")).toBe(String(FAIL_ONCE_429_RETRY_AFTER_MS));
    expect(r.headers.get("retry-after")).toBeNull();
  });

  test("the first time is per exact model string and starts again after reset()", async () => {
    expect((await call("openai", "sk-ok", "fail-once-503-a")).status).toBe(503);
    expect((await call("openai", "sk-ok", "fail-once-503-b")).status).toBe(503);
    expect((await call("openai", "sk-ok", "fail-once-503-a")).status).toBe(200);
    mock.reset();
    expect((await call("openai", "sk-ok", "fail-once-503-a")).status).toBe(503);
  });

  test("always-503 fails every time; status-400 is 400 invalid_request_error every time", async () => {
    for (let i = 0; i < 3; i++) {
      expect((await call("openai", "sk-ok", "always-503")).status).toBe(503);
      const o = await call("openai", "sk-ok", "status-400");
      expect(o.status).toBe(400);
      expect(await o.json()).toMatchObject({ error: { type: "invalid_request_error", param: "messages" } });
      const a = await call("anthropic", "sk-ok", "status-400");
      expect(a.status).toBe(400);
      expect(await a.json()).toEqual({ type: "error", error: { type: "invalid_request_error", message: expect.any(String) } });
    }
  });

  test("context-length-400: 400 context_length_exceeded (OpenAI) / invalid_request_error \"prompt is too long\" (Anthropic), every time", async () => {
    for (let i = 0; i < 2; i++) {
      const o = await call("openai", "sk-ok", "context-length-400-x");
      expect(o.status).toBe(400);
      expect(o.headers.get("x-mock-failure")).toBe("model-context-length");
      expect(await o.json()).toEqual({
        error: { message: expect.stringContaining("maximum context length"), type: "invalid_request_error", param: "messages", code: "context_length_exceeded" },
      });
      const a = await call("anthropic", "sk-ok", "context-length-400-x", { stream: true });
      expect(a.status).toBe(400);
      expect(await a.json()).toEqual({ type: "error", error: { type: "invalid_request_error", message: expect.stringMatching(/^prompt is too long/) } });
    }
    expect(mock.requests).toHaveLength(4);
  });

  test("slow-head-<ms>: the normal answer (JSON and stream), its head only after that many ms; other models at once", async () => {
    // Lower bounds only (the mock's sleep starts after t0), so load cannot make them fail.
    const t0 = performance.now();
    await normalAnswer(await call("openai", "sk-ok", "slow-head-250-llama"), "openai");
    const slow = performance.now() - t0;
    expect(slow).toBeGreaterThanOrEqual(240);
    const t1 = performance.now();
    const s = await call("anthropic", "sk-ok", "slow-head-250", { stream: true });
    expect(performance.now() - t1).toBeGreaterThanOrEqual(240);
    expect(s.status).toBe(200);
    const ev = sseEvents(await s.text());
    expect(ev[0]?.event).toBe("message_start");
    expect(ev.at(-1)?.event).toBe("message_stop");
    // A name that only starts like it (no digits) is an ordinary model.
    const r = await call("openai", "sk-ok", "slow-head-fast");
    await normalAnswer(r, "openai");
  });

  test("inband-overload-once (Anthropic): a 200 stream of message_start (with input usage), content_block_start, ping, then event: error overloaded_error; the normal stream after", async () => {
    const r = await call("anthropic", "sk-ok", "inband-overload-once", { stream: true });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/event-stream");
    const evs = sseEvents(await r.text());
    expect(evs.map((e) => e.event)).toEqual(["message_start", "content_block_start", "ping", "error"]);
    expect(evs[0]?.data).toMatchObject({ message: { usage: { input_tokens: MOCK_USAGE.anthropicSse.input_tokens } } });
    expect(evs[3]?.data).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    const again = await call("anthropic", "sk-ok", "inband-overload-once", { stream: true });
    expect(await again.text()).toBe(anthropicSseEvents().join(""));
  });

  test("inband-overload-once (OpenAI): the role-only chunk, then data: {error}; the normal stream after", async () => {
    const r = await call("openai", "sk-ok", "inband-overload-once", { stream: true });
    expect(r.status).toBe(200);
    const evs = sseEvents(await r.text());
    expect(evs).toHaveLength(2);
    expect(evs[0]?.data).toMatchObject({ choices: [{ delta: { role: "assistant", content: "" } }] });
    expect(evs[1]?.data).toMatchObject({ error: { type: "server_error" } });
    const again = await call("openai", "sk-ok", "inband-overload-once", { stream: true });
    expect(await again.text()).toBe(openaiChatSseEvents(false).join(""));
  });

  test("inband-overload-always fails every stream; a non-streamed request for it gets the normal answer", async () => {
    for (let i = 0; i < 2; i++) {
      const evs = sseEvents(await (await call("anthropic", "sk-ok", "inband-overload-always", { stream: true })).text());
      expect(evs.at(-1)?.event).toBe("error");
    }
    await normalAnswer(await call("anthropic", "sk-ok", "inband-overload-always"), "anthropic");
  });

  test("reset-after-content: preamble and content deltas arrive, then the connection dies before the stream ends", async () => {
    for (const dialect of ["anthropic", "openai"] as const) {
      const r = await call(dialect, "sk-ok", "reset-after-content", { stream: true });
      expect(r.status).toBe(200);
      let text = "";
      const dec = new TextDecoder();
      let error: unknown;
      try {
        for await (const chunk of r.body!) text += dec.decode(chunk, { stream: true });
      } catch (e) {
        error = e;
      }
      expect(error).toBeDefined();
      expect(text).toContain(JSON.stringify(MOCK_DELTAS[0]));
      expect(text).not.toContain("message_stop");
      expect(text).not.toContain("[DONE]");
    }
  });

  test("slow-preamble: the preamble at once, the first content delta only after SLOW_PREAMBLE_MS, then the whole stream", async () => {
    const t0 = performance.now();
    const r = await call("anthropic", "sk-ok", "slow-preamble", { stream: true });
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let text = "";
    let reads = 0;
    let preambleRead = 0;
    let deltaRead = 0;
    let deltaAt = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      reads++;
      text += dec.decode(value, { stream: true });
      if (preambleRead === 0 && text.includes("event: ping")) preambleRead = reads;
      if (deltaRead === 0 && text.includes("content_block_delta")) {
        deltaRead = reads;
        deltaAt = performance.now() - t0;
      }
    }
    expect(text).toBe(anthropicSseEvents().join(""));
    // The preamble arrives in an earlier read than the first delta, which the mock's own sleep holds back: a lower
    // bound only (the sleep starts after t0), so load cannot make it fail.
    expect(preambleRead).toBeGreaterThan(0);
    expect(deltaRead).toBeGreaterThan(preambleRead);
    expect(deltaAt).toBeGreaterThanOrEqual(SLOW_PREAMBLE_MS - 20);
  });
});

describe("chaos", () => {
  test("parseChaosHeader reads 429=,503=,ra= and refuses garbage or probabilities over 1", () => {
    expect(parseChaosHeader("429=0.2,503=0.05")).toEqual({ p429: 0.2, p503: 0.05 });
    expect(parseChaosHeader("429=0.1, ra=20")).toEqual({ p429: 0.1, p503: 0, retryAfterMs: 20 });
    expect(parseChaosHeader("429=0.7,503=0.5")).toBeUndefined();
    expect(parseChaosHeader("429=x")).toBeUndefined();
    expect(parseChaosHeader("500=0.1")).toBeUndefined();
  });

  test("setChaos: about the asked share of 429s (retry-after-ms) and 503s, the rest normal, repeatable by seed", async () => {
    const run = async (): Promise<number[]> => {
      mock.reset();
      mock.setChaos({ p429: 0.2, p503: 0.05, retryAfterMs: 25, seed: 7 });
      const statuses: number[] = [];
      for (let i = 0; i < 400; i++) {
        const r = await call("openai", "sk-ok", "gpt-4o-mini");
        statuses.push(r.status);
        if (r.status === 429) expect(r.headers.get("retry-after-ms")).toBe("25");
        await r.arrayBuffer();
      }
      return statuses;
    };
    const a = await run();
    const n429 = a.filter((s) => s === 429).length;
    const n503 = a.filter((s) => s === 503).length;
    expect(n429).toBeGreaterThan(50);
    expect(n429).toBeLessThan(110);
    expect(n503).toBeGreaterThan(5);
    expect(n503).toBeLessThan(40);
    expect(a.filter((s) => s === 200).length).toBe(400 - n429 - n503);
    expect(mock.chaosCounts()).toEqual({ "429": n429, "503": n503 });
    expect(await run()).toEqual(a);
    mock.reset();
    expect((await call("openai", "sk-ok", "gpt-4o-mini")).status).toBe(200);
  });

  test("x-mock-chaos header: 429=1 fails that request only", async () => {
    expect((await call("openai", "sk-ok", "gpt-4o-mini", { headers: { "x-mock-chaos": "429=1" } })).status).toBe(429);
    expect((await call("anthropic", "sk-ok", "c", { headers: { "x-mock-chaos": "503=1" } })).status).toBe(503);
    expect((await call("openai", "sk-ok", "gpt-4o-mini")).status).toBe(200);
  });
});

describe("stream-in uploads", () => {
  test("a stream-in upload whose JSON names fail-once-503: the body is read whole, then 503; the next one 200", async () => {
    const payload = new TextEncoder().encode(`{"model":"fail-once-503-up","messages":[{"role":"user","content":"${"x".repeat(200_000)}"}]}`);
    const send = (): Promise<Response> =>
      fetch(`${mock.url}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer sk-ok", "x-mock-mode": "stream-in" }, body: payload });
    const first = await send();
    expect(first.status).toBe(503);
    expect(mock.last().bytesReceived).toBe(payload.byteLength);
    expect(mock.last().bodySha256).toBe(sha256Hex(payload));
    const second = await send();
    expect(await second.json()).toEqual({ size: payload.byteLength, sha256: sha256Hex(payload) });
  });

  test("a stream-in upload of non-JSON bytes is unaffected", async () => {
    const bytes = patternBytes(100_000, 3);
    const r = await fetch(`${mock.url}/v1/files`, { method: "POST", headers: { authorization: "Bearer sk-ok", "x-mock-mode": "stream-in" }, body: bytes });
    expect(await r.json()).toEqual({ size: bytes.byteLength, sha256: sha256Hex(bytes) });
  });
});
