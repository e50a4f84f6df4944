// End to end, key pools (SPEC §10): one real gateway holding several pool keys per provider in front of the recording
// mock, whose keys fail by prefix (`sk-r429-` always 429 with retry-after 30, `sk-401-` always 401, `sk-quota-` an
// insufficient_quota 429; test/helpers/mock-provider.ts). Every provider below is a separate pool on the same mock,
// so each test owns its keys: a rate-limited key cools and is not used again, a dead key reaches the provider once
// and is logged once, every key cooling or dead answers 429 at once without contacting the provider, a request the SDK
// is already retrying still moves to another key, sessions keep their key, and no key value is ever printed.
import { beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, type LogLine, poolConfig } from "./helpers/gateway.ts";
import { keyOf, MOCK_TEXT, R429_RETRY_AFTER_SECS, type MockProvider } from "./helpers/mock-provider.ts";
import { scrape, sampleValue } from "./helpers/prometheus.ts";
import { type Reply, toReply } from "./helpers/replies.ts";
import { tracked } from "./helpers/tracked.ts";

const t = tracked();
const signing = keygen();
const MANAGED = mint(1, signing.seed, 616n, 11n);

/** Each provider's pool: what the test using it is about. All OpenAI-dialect pools but `anthropic` are on one mock. */
const POOLS = {
  openai: ["sk-r429-kp-a1", "sk-ok-kp-b1"], // 40 concurrent with one rate-limited key
  groq: ["sk-401-kp-dead2", "sk-ok-kp-live2"], // a dead key (401) among two
  fireworks: ["sk-quota-kp-q3", "sk-ok-kp-live3"], // a dead key (quota) among two
  deepseek: ["sk-r429-kp-only4"], // the only key rate-limited for 30 s
  anthropic: ["sk-401-kp-only5"], // the only key dead
  cerebras: ["sk-r429-kp-s6", "sk-ok-kp-s6"], // x-stainless-retry-count: 1 still switches keys
  together: ["sk-ok-kp-t7a", "sk-ok-kp-t7b", "sk-ok-kp-t7c"], // affinity
} as const;
const ALL_KEYS: string[] = Object.values(POOLS).flat();

const openaiMock = t.newMock();
const anthropicMock = t.newMock();
let gw: Gateway;

beforeAll(async () => {
  const authorities: Record<string, string> = {};
  for (const p of Object.keys(POOLS)) authorities[p] = p === "anthropic" ? anthropicMock.authority : openaiMock.authority;
  gw = await t.launch(
    poolConfig({
      authorities,
      poolKeys: POOLS,
      publicKey: signing.publicKey,
      retry: { initial_backoff_ms: 10, max_backoff_ms: 100 },
    }),
  );
});

function client(provider: string): OpenAI {
  const base = provider === "openai" ? `${gw.url}/v1` : `${gw.url}/${provider}/v1`;
  return new OpenAI({ apiKey: MANAGED, baseURL: base, organization: null, project: null, maxRetries: 0 });
}

/** How many requests the mock received with this key. */
function uses(mock: MockProvider, key: string): number {
  return mock.requests.filter((r) => keyOf(r) === key).length;
}

async function chat(provider: string, session: string, headers: Record<string, string> = {}): Promise<Reply> {
  const path = provider === "openai" ? "/v1/chat/completions" : `/${provider}/v1/chat/completions`;
  return toReply(
    await fetch(gw.url + path, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", "x-session-id": session, ...headers },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
    }),
  );
}

/** The "pool key is dead" lines for a provider, once the first has been written (stdout is flushed in batches). */
async function deadLines(provider: string): Promise<LogLine[]> {
  const isDead = (l: LogLine): boolean => l["target"] === "ai.gateway" && l["msg"] === "pool key is dead" && l["provider"] === provider;
  await gw.waitForLog(isDead);
  // A batch more, so a second line (the bug this guards against) would be in too.
  await Bun.sleep(100);
  return gw.logs().filter(isDead);
}

async function keyState(provider: string, keyId: string): Promise<Record<string, number | undefined>> {
  const exp = (await scrape(gw.metricsUrl)).exp;
  const out: Record<string, number | undefined> = {};
  for (const state of ["ready", "cooling", "dead"]) out[state] = sampleValue(exp, "ai_pool_key_state", { provider, key_id: keyId, state });
  return out;
}

test("40 concurrent OpenAI SDK requests with keys [r429, ok]: all 200; each request tries the 429 key at most once; it cools and is not used again", async () => {
  const [bad, good] = POOLS.openai;
  const sdk = client("openai");
  const burst = (tag: string): Promise<string[]> =>
    Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const c = await sdk.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }, { headers: { "x-session-id": `${tag}-${i}` } });
        return c.choices[0]?.message.content ?? "";
      }),
    );
  expect(await burst("first")).toEqual(Array(40).fill(MOCK_TEXT));
  // Distinct sessions spread over both keys, so the 429 key is reached (by the requests in flight before its first
  // 429 came back); each of those moved to the other key, at once.
  const badFirst = uses(openaiMock, bad);
  expect(badFirst).toBeGreaterThanOrEqual(1);
  expect(badFirst).toBeLessThanOrEqual(40);
  expect(uses(openaiMock, good)).toBe(40);
  const mine = openaiMock.requests.filter((r) => keyOf(r) === bad || keyOf(r) === good);
  for (const [session, reqs] of Map.groupBy(mine, (r) => r.headers["x-session-id"] ?? "")) {
    expect(reqs.filter((r) => keyOf(r) === bad).length, session).toBeLessThanOrEqual(1);
    expect(reqs.filter((r) => keyOf(r) === good).length, session).toBe(1);
  }
  // Cooling for 30 s: a second burst never touches it.
  expect(await burst("second")).toEqual(Array(40).fill(MOCK_TEXT));
  expect(uses(openaiMock, bad)).toBe(badFirst);
  expect(uses(openaiMock, good)).toBe(80);
  expect(await keyState("openai", "openai#0")).toEqual({ ready: 0, cooling: 1, dead: 0 });
  expect(await keyState("openai", "openai#1")).toEqual({ ready: 1, cooling: 0, dead: 0 });
  const exp = (await scrape(gw.metricsUrl)).exp;
  expect(sampleValue(exp, "ai_pool_key_cooldowns_total", { provider: "openai", key_id: "openai#0", reason: "rate_limited" }) ?? 0).toBeGreaterThanOrEqual(1);
  expect(sampleValue(exp, "ai_retries_total", { provider: "openai", reason: "rate_limited" })).toBe(badFirst);
});

describe("dead keys", () => {
  for (const c of [
    { provider: "groq", reason: "auth", status: 401 },
    { provider: "fireworks", reason: "quota", status: 429 },
  ] as const) {
    test(`${c.provider}: a ${c.reason} key among two: every request 200, the dead key reached the mock exactly once, never again over 20 more; one "pool key is dead" line`, async () => {
      const [dead, live] = POOLS[c.provider];
      // Distinct sessions until one lands on the dead key (affinity spreads them; it is reached within a few).
      let i = 0;
      while (uses(openaiMock, dead) === 0 && i < 40) {
        const r = await chat(c.provider, `dead-${c.provider}-${i++}`);
        expect(r.status).toBe(200);
      }
      expect(uses(openaiMock, dead)).toBe(1);
      for (let j = 0; j < 20; j++) {
        const r = await chat(c.provider, `dead-${c.provider}-more-${j}`);
        expect(r.status).toBe(200);
      }
      expect(uses(openaiMock, dead)).toBe(1);
      expect(uses(openaiMock, live)).toBe(i + 20);
      const lines = await deadLines(c.provider);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: "error", key_id: `${c.provider}#0`, reason: c.reason, status: c.status });
      expect(await keyState(c.provider, `${c.provider}#0`)).toEqual({ ready: 0, cooling: 0, dead: 1 });
      const exp = (await scrape(gw.metricsUrl)).exp;
      expect(sampleValue(exp, "ai_pool_key_cooldowns_total", { provider: c.provider, key_id: `${c.provider}#0`, reason: c.reason })).toBe(1);
      expect(sampleValue(exp, "ai_upstream_attempts_total", { provider: c.provider, outcome: "dead_key" })).toBe(1);
    });
  }
});

describe("every key cooling or dead: the gateway answers at once, nothing forwarded", () => {
  test("the only key 429s with retry-after 30 (over max_retry_after_ms): relayed at once with its retry-after; the next request gets the gateway's 429 with Retry-After 1..30 and the mock sees nothing", async () => {
    const [only] = POOLS.deepseek;
    const first = await chat("deepseek", "cool-1");
    expect(first.status).toBe(429);
    // The provider's own answer, relayed as it came: its retry-after intact, not waited (30 s > 10 s).
    expect(first.headers.get("retry-after")).toBe(String(R429_RETRY_AFTER_SECS));
    expect(first.headers.get("x-mock-failure")).toBe("key-r429");
    expect(uses(openaiMock, only)).toBe(1);
    for (const session of ["cool-1", "cool-2", "cool-3"]) {
      const r = await chat("deepseek", session);
      expect(r.status).toBe(429);
      expect(r.headers.get("x-beyond-request-id")).toBeTruthy();
      expect(r.headers.get("x-mock-failure")).toBeNull();
      expect(r.json).toMatchObject({ error: { type: "rate_limit_error" } });
      const message = (r.json as { error: { message: string } }).error.message;
      expect(message).toContain("deepseek");
      expect(message).not.toContain(only);
      const ra = Number(r.headers.get("retry-after"));
      expect(ra).toBeGreaterThanOrEqual(1);
      expect(ra).toBeLessThanOrEqual(R429_RETRY_AFTER_SECS);
      expect(r.headers.get("x-should-retry")).toBeNull();
    }
    expect(uses(openaiMock, only)).toBe(1);
    expect(await keyState("deepseek", "deepseek#0")).toEqual({ ready: 0, cooling: 1, dead: 0 });
  });

  test("the only key dead (401): later requests get 429 rate_limit_error in the Anthropic dialect with x-should-retry: false, nothing forwarded", async () => {
    const [only] = POOLS.anthropic;
    const sdk = new Anthropic({ apiKey: MANAGED, baseURL: gw.url, maxRetries: 0 });
    const first = await sdk.messages.create({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(first).toBeInstanceOf(Anthropic.APIError);
    expect(uses(anthropicMock, only)).toBe(1);
    for (let i = 0; i < 3; i++) {
      const r = await toReply(
        await fetch(`${gw.url}/v1/messages`, {
          method: "POST",
          headers: { "x-api-key": MANAGED, "anthropic-version": "2023-06-01", "content-type": "application/json" },
          body: JSON.stringify({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
        }),
      );
      expect(r.status).toBe(429);
      expect(r.json).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
      expect((r.json as { error: { message: string } }).error.message).toContain("anthropic");
      expect(r.headers.get("x-should-retry")).toBe("false");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // An SDK allowed to retry (it reads x-should-retry: false and stops) still gets nothing forwarded.
    const retrying = new Anthropic({ apiKey: MANAGED, baseURL: gw.url, maxRetries: 2 });
    await retrying.messages.create({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).catch(() => undefined);
    expect(uses(anthropicMock, only)).toBe(1);
    const lines = await deadLines("anthropic");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ reason: "auth", status: 401, key_id: "anthropic#0" });
  });
});

test("x-stainless-retry-count: 1 with a 429 key first: the request still moves to the other key and gets 200", async () => {
  const [bad, good] = POOLS.cerebras;
  let i = 0;
  while (uses(openaiMock, bad) === 0 && i < 40) {
    const r = await chat("cerebras", `stainless-${i++}`, { "x-stainless-retry-count": "1" });
    expect(r.status).toBe(200);
    expect((r.json as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe(MOCK_TEXT);
  }
  expect(uses(openaiMock, bad)).toBe(1);
  const hit = openaiMock.requests.find((r) => keyOf(r) === bad);
  const session = hit?.headers["x-session-id"];
  expect(openaiMock.requests.filter((r) => r.headers["x-session-id"] === session).map(keyOf)).toEqual([bad, good]);
});

test("affinity: with 3 ready keys the same x-session-id always lands on the same key, and sessions spread over the keys", async () => {
  const keyBySession = new Map<string, Set<string>>();
  for (let round = 0; round < 3; round++) {
    for (let s = 0; s < 12; s++) {
      const session = `affinity-${s}`;
      const before = openaiMock.requests.length;
      const r = await chat("together", session);
      expect(r.status).toBe(200);
      expect(openaiMock.requests.length).toBe(before + 1);
      const key = keyOf(openaiMock.last()) ?? "";
      expect(POOLS.together as readonly string[]).toContain(key);
      const set = keyBySession.get(session) ?? new Set<string>();
      set.add(key);
      keyBySession.set(session, set);
    }
  }
  for (const [session, keys] of keyBySession) expect([...keys], session).toHaveLength(1);
  const used = new Set([...keyBySession.values()].flatMap((s) => [...s]));
  expect(used.size).toBeGreaterThanOrEqual(2);
});

const ENV_KEYS = ["sk-ok-kp-env-1", "sk-ok-kp-env-2"];

test("AI_POOL_KEY_OPENAI with comma-separated keys: both are pool keys (sessions reach each), ids openai#0 and openai#1", async () => {
  const envGw = await t.launch(poolConfig({ authorities: { openai: openaiMock.authority }, poolKeys: {}, publicKey: signing.publicKey }), {
    AI_POOL_KEY_OPENAI: ENV_KEYS.join(","),
  });
  const seen = new Map<string, string>();
  for (let s = 0; s < 24; s++) {
    const r = await fetch(`${envGw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", "x-session-id": `env-${s}` },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(r.status).toBe(200);
    const id = r.headers.get("x-beyond-request-id") ?? "";
    await r.arrayBuffer();
    const key = keyOf(openaiMock.last()) ?? "";
    expect(ENV_KEYS).toContain(key);
    const usage = await envGw.waitForLog((l) => l["target"] === "ai.usage" && l["request_id"] === id);
    seen.set(key, String(usage["key_id"]));
  }
  expect(Object.fromEntries(seen)).toEqual({ [ENV_KEYS[0]!]: "openai#0", [ENV_KEYS[1]!]: "openai#1" });
  const text = `${envGw.stdout()}\n${envGw.stderr()}\n${(await scrape(envGw.metricsUrl)).text}`;
  for (const k of ENV_KEYS) expect(text).not.toContain(k);
});

test("no pool key value appears in the gateway's stdout, stderr or /metrics", async () => {
  const text = `${gw.stdout()}\n${gw.stderr()}\n${(await scrape(gw.metricsUrl)).text}`;
  for (const k of ALL_KEYS) expect(text).not.toContain(k);
  expect(text).not.toContain("sk-ok-kp");
  // Key ids are what they print instead.
  expect(text).toContain("openai#0");
});
