// End to end, retries and the circuit breaker (SPEC §10): the breaker hears exactly one outcome per upstream attempt
// (a retried 503 counts every attempt, so a provider failing under retries opens it as soon as the failures reach
// the threshold, and a retry never goes to a breaker the request itself just opened), while 429 stays a success (a
// rate-limited key never opens the provider's breaker). Also a pool key the provider answers 403 for goes out of use
// like a 401 one: reached once, logged once, the other key serves.
import { beforeAll, expect, test } from "bun:test";
import OpenAI from "openai";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, poolConfig } from "./helpers/gateway.ts";
import { keyOf } from "./helpers/mock-provider.ts";
import { scrape, sampleValue } from "./helpers/prometheus.ts";
import { tracked } from "./helpers/tracked.ts";

const t = tracked();
const signing = keygen();
const MANAGED = mint(1, signing.seed, 5n, 6n);
const mock = t.newMock();
let gw: Gateway;

const POOLS = {
  groq: ["sk-ok-brk-a"], // always-503 under retries: opens at the threshold
  openai: ["sk-r429-brk-b", "sk-ok-brk-c"], // 429s never open it
  fireworks: ["sk-ok-brk-d403", "sk-ok-brk-e"], // the first one gets a 403 once
} as const;

beforeAll(async () => {
  gw = await t.launch(
    poolConfig({
      authorities: { groq: mock.authority, openai: mock.authority, fireworks: mock.authority },
      poolKeys: POOLS,
      publicKey: signing.publicKey,
      retry: { initial_backoff_ms: 1, max_backoff_ms: 5, budget_min_per_sec: 1000 },
      extra: "circuit_breaker_window_secs = 60\ncircuit_breaker_reset_secs = 60",
    }).replace("circuit_breaker_threshold = 0", "circuit_breaker_threshold = 6"),
  );
});

function client(provider: string): OpenAI {
  return new OpenAI({ apiKey: MANAGED, baseURL: provider === "openai" ? `${gw.url}/v1` : `${gw.url}/${provider}/v1`, maxRetries: 0 });
}

test("every retried attempt is one breaker outcome: two requests of 4 attempts open a breaker of threshold 6 at the 6th failure", async () => {
  const c = client("groq");
  const first = await c.chat.completions.create({ model: "always-503-brk", messages: [{ role: "user", content: "x" }] }).catch((e: { status?: number }) => e);
  expect((first as { status?: number }).status).toBe(503);
  const seenAfterFirst = mock.requests.filter((r) => keyOf(r) === "sk-ok-brk-a").length;
  expect(seenAfterFirst).toBe(4);
  // The second request fails twice more (failures 5, 6): the breaker opens, and its next attempt is not made.
  const second = await c.chat.completions.create({ model: "always-503-brk", messages: [{ role: "user", content: "x" }] }).catch((e: { status?: number }) => e);
  expect((second as { status?: number }).status).toBe(503);
  expect(mock.requests.filter((r) => keyOf(r) === "sk-ok-brk-a").length).toBe(6);
  // Open: the gateway's own 503 with Retry-After, nothing forwarded.
  const third = await fetch(`${gw.url}/groq/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
  });
  expect(third.status).toBe(503);
  const body = (await third.json()) as { error: { message: string } };
  expect(body.error.message).toBe("provider temporarily unavailable");
  expect(third.headers.get("retry-after")).not.toBeNull();
  expect(mock.requests.filter((r) => keyOf(r) === "sk-ok-brk-a").length).toBe(6);
});

test("429s are successes for the breaker: 12 requests through a rate-limited key never open it", async () => {
  const c = client("openai");
  for (let i = 0; i < 12; i++) {
    const r = await c.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `q${i}` }] }, { headers: { "x-session-id": `s${i}` } });
    expect(r.choices[0]?.message.content).toBeTruthy();
  }
  expect(mock.requests.filter((r) => keyOf(r) === "sk-r429-brk-b").length).toBeGreaterThanOrEqual(1);
  const { exp } = await scrape(gw.metricsUrl);
  expect(sampleValue(exp, "ai_rejections_total", { reason: "circuit_open" }) ?? 0).toBe(1); // only the groq test's
  expect(sampleValue(exp, "ai_upstream_attempts_total", { provider: "openai", outcome: "rate_limited" }) ?? 0).toBeGreaterThanOrEqual(1);
});

test("a 403 from the provider puts the key out of use like a 401: reached once, one dead line, the other key serves", async () => {
  mock.queue({ kind: "status", status: 403 });
  const c = client("fireworks");
  // Pin the session to the first key by trying sessions until the 403 key is the one hit.
  const r = await c.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
  expect(r.choices[0]?.message.content).toBeTruthy();
  const hit403 = mock.requests.filter((q) => q.path.startsWith("/v1/chat") && (keyOf(q) === "sk-ok-brk-d403" || keyOf(q) === "sk-ok-brk-e"));
  const deadKey = keyOf(hit403[0]!) as string;
  for (let i = 0; i < 10; i++) await c.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `y${i}` }] }, { headers: { "x-session-id": `f${i}` } });
  expect(mock.requests.filter((q) => keyOf(q) === deadKey).length).toBe(1);
  const line = await gw.waitForLog((l) => l["msg"] === "pool key is dead" && l["provider"] === "fireworks");
  expect(line["reason"]).toBe("auth");
  expect(line["status"]).toBe(403);
  expect(JSON.stringify(gw.logs())).not.toContain("sk-ok-brk");
});
