// End to end, retries and the commit point (SPEC §10): a real gateway between the official SDKs (maxRetries: 0, so
// only the gateway's retries count) or raw fetch and the recording mock, whose per-model failure modes
// (test/helpers/mock-provider.ts) fail a request the first time, always, in band, or after content. Pins what is
// retried (5xx, 408, 429 after its short Retry-After, an in-band overload before content) and what never is (any other
// 4xx, BYO, anything after the first byte reached the client, a request the SDK is already retrying, past the budget,
// past the replay limit), the one clean stream after an in-band overload, the replayed body byte for byte, and the
// `ai.usage` fields (attempts, retry_wait_ms, wasted_input_tokens). Key pools and cooldowns: e2e-keypool.test.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, poolConfig, usageLine } from "./helpers/gateway.ts";
import { anthropicSseEvents, failureAnswer, keyOf, MOCK_DELTAS, MOCK_TEXT, MOCK_USAGE, type MockProvider, modelOf, patternBytes, type RecordedRequest } from "./helpers/mock-provider.ts";
import { scrape, sampleValue } from "./helpers/prometheus.ts";
import { collectChatStream } from "./helpers/sdk.ts";
import { tracked } from "./helpers/tracked.ts";

const t = tracked();
const signing = keygen();
const MANAGED = mint(1, signing.seed, 515n, 10n);

const OPENAI_KEY = "sk-ok-retries-openai-0001";
const ANTHROPIC_KEY = "sk-ok-retries-anthropic-0001";
const BYO = "sk-byo-retries-0001";
const POOL_SECRETS = [OPENAI_KEY, ANTHROPIC_KEY];
/** Small backoffs keep the suite fast; everything else at its SPEC default unless a test says otherwise. */
const FAST = { initial_backoff_ms: 10, max_backoff_ms: 100 };

const openaiMock = t.newMock();
const anthropicMock = t.newMock();
const started: Gateway[] = [];

async function launch(retry: Record<string, string | number>): Promise<Gateway> {
  const g = await t.launch(
    poolConfig({
      authorities: { openai: openaiMock.authority, anthropic: anthropicMock.authority },
      poolKeys: { openai: [OPENAI_KEY], anthropic: [ANTHROPIC_KEY] },
      publicKey: signing.publicKey,
      retry: { ...FAST, ...retry },
    }),
  );
  started.push(g);
  return g;
}

let gw: Gateway;
beforeAll(async () => {
  gw = await launch({});
});

function openai(g: Gateway = gw, apiKey = MANAGED): OpenAI {
  return new OpenAI({ apiKey, baseURL: `${g.url}/v1`, organization: null, project: null, maxRetries: 0 });
}
function anthropic(g: Gateway = gw, apiKey = MANAGED): Anthropic {
  return new Anthropic({ apiKey, baseURL: g.url, maxRetries: 0 });
}

/** Requests the mock received for exactly this model. */
function sent(mock: MockProvider, model: string): RecordedRequest[] {
  return mock.requests.filter((r) => modelOf(r) === model);
}

/** A unique model name with the failure prefix, so every test gets its own "first time" from the shared mock. */
let uniq = 0;
function model(prefix: string): string {
  return `${prefix}-${++uniq}`;
}

const MESSAGES = [{ role: "user" as const, content: "hi" }];

async function rawChat(g: Gateway, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${g.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("retried before the commit point: one request, two attempts, the client sees one answer", () => {
  for (const prefix of ["fail-once-503", "fail-once-500", "fail-once-408"]) {
    test(`OpenAI SDK, ${prefix}: 200, the mock saw 2 requests, usage attempts 2 with retry_wait_ms and key_id`, async () => {
      const m = model(prefix);
      const { data, response } = await openai().chat.completions.create({ model: m, messages: MESSAGES }).withResponse();
      expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
      expect(sent(openaiMock, m)).toHaveLength(2);
      const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
      expect(u["attempts"]).toBe(2);
      expect(u["key_id"]).toBe("openai#0");
      expect(typeof u["retry_wait_ms"]).toBe("number");
      expect(u["status"]).toBe(200);
      expect(u["complete"]).toBe(true);
      expect(u["wasted_input_tokens"]).toBeUndefined();
      expect((await gw.accessLog(String(u["request_id"])))["attempts"]).toBe(2);
    });
  }

  for (const prefix of ["fail-once-503", "fail-once-500", "fail-once-529", "fail-once-408"]) {
    test(`Anthropic SDK, ${prefix}: 200, the mock saw 2 requests, usage attempts 2`, async () => {
      const m = model(prefix);
      const { data, response } = await anthropic().messages.create({ model: m, max_tokens: 16, messages: MESSAGES }).withResponse();
      const block = data.content[0];
      expect(block?.type === "text" ? block.text : undefined).toBe(MOCK_TEXT);
      expect(sent(anthropicMock, m)).toHaveLength(2);
      const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
      expect(u["attempts"]).toBe(2);
      expect(u["key_id"]).toBe("anthropic#0");
    });
  }

  test("fail-once-429 with retry-after-ms 50 on the only key: the short wait is taken and the same key retried, 200", async () => {
    const m = model("fail-once-429");
    const { data, response } = await openai().chat.completions.create({ model: m, messages: MESSAGES }).withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    const reqs = sent(openaiMock, m);
    expect(reqs).toHaveLength(2);
    expect(reqs.map(keyOf)).toEqual([OPENAI_KEY, OPENAI_KEY]);
    const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
    expect(u["attempts"]).toBe(2);
    expect(u["retry_wait_ms"] as number).toBeGreaterThanOrEqual(45);
  });

  test("the retry counts in ai_upstream_attempts_total and ai_retries_total{reason=server_error}", async () => {
    const before = (await scrape(gw.metricsUrl)).exp;
    const r = await rawChat(gw, { model: model("fail-once-503"), messages: MESSAGES });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const after = (await scrape(gw.metricsUrl)).exp;
    const delta = (name: string, labels: Record<string, string>): number => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    expect(delta("ai_upstream_attempts_total", { provider: "openai", outcome: "server_error" })).toBe(1);
    expect(delta("ai_upstream_attempts_total", { provider: "openai", outcome: "ok" })).toBe(1);
    expect(delta("ai_retries_total", { provider: "openai", reason: "server_error" })).toBe(1);
  });
});

describe("never retried", () => {
  test("BYO: a 500 (x-mock-mode status:500) reaches the mock exactly once and the client gets it", async () => {
    const before = openaiMock.requests.length;
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BYO}`, "content-type": "application/json", "x-mock-mode": "status:500" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: MESSAGES }),
    });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ error: { code: "mock_500" } });
    expect(openaiMock.requests.length).toBe(before + 1);
    expect(keyOf(openaiMock.last())).toBe(BYO);
  });

  test("BYO with the OpenAI SDK: always-503 reaches the mock exactly once and the SDK gets the 503", async () => {
    const m = model("always-503");
    const err = await openai(gw, BYO)
      .chat.completions.create({ model: m, messages: MESSAGES })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(sent(openaiMock, m)).toHaveLength(1);
  });

  test("status-400 (managed): reaches the mock exactly once, the client gets the provider's 400 body byte for byte", async () => {
    const m = model("status-400");
    const r = await rawChat(gw, { model: m, messages: MESSAGES });
    expect(r.status).toBe(400);
    expect(await r.text()).toBe(failureAnswer("openai", 400).body);
    expect(sent(openaiMock, m)).toHaveLength(1);
    const err = await openai()
      .chat.completions.create({ model: m, messages: MESSAGES })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(sent(openaiMock, m)).toHaveLength(2);
    const a = await anthropic()
      .messages.create({ model: m, max_tokens: 16, messages: MESSAGES })
      .then(() => undefined, (e: unknown) => e);
    expect(a).toBeInstanceOf(Anthropic.BadRequestError);
    expect(sent(anthropicMock, m)).toHaveLength(1);
  });

  test("x-stainless-retry-count: 1 on fail-once-503: no same-target retry, the mock saw 1 and the client gets the 503", async () => {
    const m = model("fail-once-503");
    const r = await rawChat(gw, { model: m, messages: MESSAGES }, { "x-stainless-retry-count": "1" });
    expect(r.status).toBe(503);
    expect(await r.text()).toBe(failureAnswer("openai", 503).body);
    expect(sent(openaiMock, m)).toHaveLength(1);
  });

  test("max_attempts = 1 disables retries: fail-once-503 → 503 to the client, the mock saw 1", async () => {
    const one = await launch({ max_attempts: 1 });
    const m = model("fail-once-503");
    const err = await openai(one)
      .chat.completions.create({ model: m, messages: MESSAGES })
      .then(() => undefined, (e: unknown) => e);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(sent(openaiMock, m)).toHaveLength(1);
  });

  test("the retry budget: a burst of always-503 with budget_ratio 0 and budget_min_per_sec 1 retries only what the budget allows", async () => {
    const budget = await launch({ budget_ratio: 0, budget_min_per_sec: 1 });
    const m = model("always-503");
    const N = 30;
    const statuses = await Promise.all(
      Array.from({ length: N }, async () => {
        const r = await rawChat(budget, { model: m, messages: MESSAGES });
        await r.arrayBuffer();
        return r.status;
      }),
    );
    expect(statuses).toEqual(Array(N).fill(503));
    const retries = sent(openaiMock, m).length - N;
    // Unbudgeted this burst would make N × 3 retries (max_attempts 4); the budget allows at most 1 a second over the
    // 10 s window (≤ 10, plus a little for the window moving during the burst).
    expect(retries).toBeGreaterThanOrEqual(0);
    expect(retries).toBeLessThanOrEqual(12);
    const exp = (await scrape(budget.metricsUrl)).exp;
    expect(sampleValue(exp, "ai_retry_budget_exhausted_total", { provider: "openai" }) ?? 0).toBeGreaterThan(0);
  });
});

describe("the commit point: SSE head and preamble held until the first content event", () => {
  test("Anthropic SDK stream of inband-overload-once: one message_start, no error, the full text; the mock saw 2; usage attempts 2 and wasted_input_tokens", async () => {
    const m = model("inband-overload-once");
    const { data: stream, response } = await anthropic().messages.create({ model: m, max_tokens: 16, messages: MESSAGES, stream: true }).withResponse();
    const types: string[] = [];
    let text = "";
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    expect(types.filter((x) => x === "message_start")).toHaveLength(1);
    expect(types[0]).toBe("message_start");
    expect(types.at(-1)).toBe("message_stop");
    expect(text).toBe(MOCK_TEXT);
    expect(sent(anthropicMock, m)).toHaveLength(2);
    const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
    expect(u["attempts"]).toBe(2);
    expect(u["wasted_input_tokens"]).toBe(MOCK_USAGE.anthropicSse.input_tokens);
    expect(u["input_tokens"]).toBe(MOCK_USAGE.anthropicSse.input_tokens);
    expect(u["complete"]).toBe(true);
  });

  test("OpenAI SDK stream of inband-overload-once: one role chunk, no error, the full text; the mock saw 2; usage attempts 2", async () => {
    const m = model("inband-overload-once");
    const { data: stream, response } = await openai().chat.completions.create({ model: m, messages: MESSAGES, stream: true }).withResponse();
    const { chunks, text } = await collectChatStream(stream);
    expect(chunks.filter((c) => c.choices[0]?.delta?.role === "assistant")).toHaveLength(1);
    expect(text).toBe(MOCK_TEXT);
    expect(sent(openaiMock, m)).toHaveLength(2);
    const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
    expect(u["attempts"]).toBe(2);
    // OpenAI's preamble carries no usage, so nothing was wasted that the provider reported.
    expect(u["wasted_input_tokens"]).toBeUndefined();
  });

  for (const pace of [undefined, "1/7", "0/40"]) {
    test(`raw fetch of inband-overload-once (Anthropic${pace === undefined ? "" : `, mock paced ${pace}: events split across writes`}): the client's bytes are exactly the second attempt's stream`, async () => {
      const m = model("inband-overload-once");
      const r = await fetch(`${gw.url}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": MANAGED, "anthropic-version": "2023-06-01", "content-type": "application/json", ...(pace === undefined ? {} : { "x-mock-pace": pace }) },
        body: JSON.stringify({ model: m, max_tokens: 16, stream: true, messages: MESSAGES }),
      });
      expect(r.status).toBe(200);
      expect(r.headers.get("x-mock-failure")).toBeNull();
      expect(await r.text()).toBe(anthropicSseEvents().join(""));
      expect(sent(anthropicMock, m)).toHaveLength(2);
    });
  }

  test("inband-overload-always: after max_attempts the last attempt's stream reaches the client (its error included), mock saw 4", async () => {
    const m = model("inband-overload-always");
    const r = await fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": MANAGED, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: m, max_tokens: 16, stream: true, messages: MESSAGES }),
    });
    const text = await r.text();
    expect(text.match(/event: message_start/g)).toHaveLength(1);
    expect(text).toContain("overloaded_error");
    expect(sent(anthropicMock, m)).toHaveLength(4);
  });

  test("reset-after-content (Anthropic SDK): reaches the mock once; the client sees the partial text, then an error; usage complete false", async () => {
    const m = model("reset-after-content");
    const { data: stream, response } = await anthropic().messages.create({ model: m, max_tokens: 16, messages: MESSAGES, stream: true }).withResponse();
    let text = "";
    let error: unknown;
    try {
      for await (const ev of stream) {
        if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
      }
    } catch (e) {
      error = e;
    }
    expect(text).toBe(MOCK_DELTAS.slice(0, 2).join(""));
    // The cut reaches the client as the cut it is: the SDK's stream raises.
    expect(error).toBeDefined();
    expect(sent(anthropicMock, m)).toHaveLength(1);
    const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
    expect(u["complete"]).toBe(false);
    expect(u["attempts"]).toBe(1);
  });

  test("reset-after-content (OpenAI SDK): reaches the mock once; the partial text arrives, then the stream raises; usage complete false", async () => {
    const m = model("reset-after-content");
    const { data: stream, response } = await openai().chat.completions.create({ model: m, messages: MESSAGES, stream: true }).withResponse();
    let text = "";
    let error: unknown;
    try {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    } catch (e) {
      error = e;
    }
    expect(text).toBe(MOCK_DELTAS.slice(0, 2).join(""));
    expect(error).toBeDefined();
    expect(sent(openaiMock, m)).toHaveLength(1);
    const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
    expect(u["complete"]).toBe(false);
  });

  test("slow-preamble: the hold is bounded (commit_hold_ms): the client still receives the whole stream, one attempt", async () => {
    const m = model("slow-preamble");
    const stream = await anthropic().messages.create({ model: m, max_tokens: 16, messages: MESSAGES, stream: true });
    const types: string[] = [];
    let text = "";
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    expect(types.filter((x) => x === "message_start")).toHaveLength(1);
    expect(text).toBe(MOCK_TEXT);
    expect(sent(anthropicMock, m)).toHaveLength(1);
  });
});

describe("replay: the body streams to the first attempt while a bounded copy is kept", () => {
  /** A 300 KiB JSON chat body sent chunked (a ReadableStream, no content-length), and its digest. */
  function bigBody(m: string, size = 300 * 1024): { stream: () => ReadableStream<Uint8Array>; sha256: string; size: number } {
    const filler = Buffer.from(patternBytes(size, 9)).toString("base64").slice(0, size);
    const bytes = new TextEncoder().encode(JSON.stringify({ model: m, messages: [{ role: "user", content: filler }] }));
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const stream = (): ReadableStream<Uint8Array> => {
      let off = 0;
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          if (off >= bytes.length) {
            c.close();
            return;
          }
          await Bun.sleep(1);
          c.enqueue(bytes.slice(off, off + 16 * 1024));
          off += 16 * 1024;
        },
      });
    };
    return { stream, sha256, size: bytes.length };
  }

  async function upload(g: Gateway, body: { stream: () => ReadableStream<Uint8Array> }): Promise<Response> {
    return fetch(`${g.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json" },
      body: body.stream(),
    });
  }

  test("a 300 KiB chunked upload to fail-once-503: retried, and the second attempt's body sha256 equals the client's", async () => {
    const m = model("fail-once-503");
    const body = bigBody(m);
    const r = await upload(gw, body);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const reqs = sent(openaiMock, m);
    expect(reqs).toHaveLength(2);
    expect(reqs[0]?.bodySha256).toBe(body.sha256);
    expect(reqs[1]?.bodySha256).toBe(body.sha256);
    expect(reqs[1]?.body.byteLength).toBe(body.size);
  });

  test("an upload over max_replay_bytes (100 KiB) to fail-once-503: not retried, the client gets the 503, ai_replay_abandoned_total{reason=request_limit} 1", async () => {
    const small = await launch({ max_replay_bytes: 100 * 1024 });
    const m = model("fail-once-503");
    const body = bigBody(m);
    const r = await upload(small, body);
    expect(r.status).toBe(503);
    await r.arrayBuffer();
    const reqs = sent(openaiMock, m);
    expect(reqs).toHaveLength(1);
    expect(reqs[0]?.bodySha256).toBe(body.sha256);
    const exp = (await scrape(small.metricsUrl)).exp;
    expect(sampleValue(exp, "ai_replay_abandoned_total", { reason: "request_limit" })).toBe(1);
  });
});

test("no pool key value appears in any gateway's stdout, stderr or /metrics", async () => {
  for (const g of started) {
    const text = `${g.stdout()}\n${g.stderr()}\n${(await scrape(g.metricsUrl)).text}`;
    for (const k of POOL_SECRETS) expect(text).not.toContain(k);
    expect(text).not.toContain("sk-ok-retries");
  }
  // The mock did receive the keys: the check above is not vacuous.
  expect(openaiMock.requests.some((r) => keyOf(r) === OPENAI_KEY)).toBe(true);
});
