// End to end, how a virtual model orders its targets (SPEC §11 `strategy`), through a real gateway and the recording
// mock, with the OpenAI SDK (maxRetries: 0) and raw fetch: round_robin and weighted spread requests (counts within a
// tolerance: the pool run has 2 worker threads, each rotating on its own), latency prefers the target whose head comes
// faster once each has been measured, cost sends to the cheapest priced target and bills what answered, and a target
// whose only key is cooling is skipped. Fallback, reach, rewrite and BYO: e2e-models.test.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, poolConfig, usageLine } from "./helpers/gateway.ts";
import { MOCK_TEXT, MOCK_USAGE, modelOf } from "./helpers/mock-provider.ts";
import { scrape, sampleValue } from "./helpers/prometheus.ts";
import { collectChatStream } from "./helpers/sdk.ts";
import { tracked } from "./helpers/tracked.ts";
import { attemptsOf, expectedMicros, modelTable, newTestId, openaiClient, poolKeyOf, priceTable, seen, tomlStrings } from "./helpers/virtual-models.ts";

const t = tracked();
const signing = keygen();
const MANAGED = mint(1, signing.seed, 818n, 13n);

const oai = t.newMock();
/** An added provider whose only pool key the mock always rate-limits for 30 s (`sk-r429-`). */
const LIMITED = "limited-vm";
const LIMITED_KEY = "sk-r429-vm-limited-0001";
const PRICEY = { input: 10, output: 30 };
const CHEAP = { input: 2.5, output: 10 };
const PRICIER_OK = { input: 1.5, output: 4.5 };
/** The slow target's head waits this long (the mock's `slow-head-<ms>` model prefix). */
const SLOW_MS = 300;

let gw: Gateway;
beforeAll(async () => {
  const providers = ["openai", "groq", "cerebras", "mistral"];
  const authorities: Record<string, string> = { [LIMITED]: oai.authority };
  const poolKeys: Record<string, string[]> = { [LIMITED]: [LIMITED_KEY] };
  for (const p of providers) {
    authorities[p] = oai.authority;
    poolKeys[p] = [poolKeyOf(p)];
  }
  const tables = [
    tomlStrings("provider_dialects", { [LIMITED]: "openai" }),
    modelTable("rr", { targets: ["groq/rr-a", "cerebras/rr-b"], strategy: "round_robin" }),
    modelTable("wt", { targets: ["groq/wt-a", "cerebras/wt-b"], strategy: "weighted", weights: [3, 1] }),
    modelTable("lat", { targets: [`groq/slow-head-${SLOW_MS}-lat`, "cerebras/lat-fast"], strategy: "latency" }),
    // Listed most expensive first, an unpriced target in the middle: cost order is cheap-y, pricey-x, unpriced-z.
    modelTable("cheap", { targets: ["groq/pricey-x", "openai/unpriced-z", "cerebras/cheap-y"], strategy: "cost" }),
    // The cheapest target always fails: the next-cheapest answers and is what the request costs.
    modelTable("cheapfb", { targets: ["groq/pricier-ok", "cerebras/always-503-cheapest"], strategy: "cost", retry: { max_attempts: 1 } }),
    modelTable("cool", { targets: [`${LIMITED}/cool-a`, "mistral/cool-b"] }),
    priceTable("groq/pricey-x", PRICEY),
    priceTable("cerebras/cheap-y", CHEAP),
    priceTable("groq/pricier-ok", PRICIER_OK),
    priceTable("cerebras/always-503-cheapest", { input: 0.1, output: 0.1 }),
  ];
  gw = await t.launch(
    poolConfig({ authorities, poolKeys, publicKey: signing.publicKey, retry: { initial_backoff_ms: 10, max_backoff_ms: 50 } }) + "\n" + tables.join("\n\n") + "\n",
  );
});

const MESSAGES = [{ role: "user" as const, content: "hi" }];

/** How many upstream requests named each model since the mock started. */
function countModels(...models: string[]): number[] {
  return models.map((m) => oai.requests.filter((r) => modelOf(r) === m).length);
}

/** `n` requests through `fn`, `concurrency` at a time. */
async function spread(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function rawChat(model: string, id = newTestId()): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", "x-test-id": id },
    body: JSON.stringify({ model, messages: MESSAGES }),
  });
}

describe("round_robin and weighted spread the first target", () => {
  test("round_robin over 200 OpenAI SDK requests (JSON and stream, 8 at a time): each target first 80–120 times, no fallbacks", async () => {
    const client = openaiClient(gw, MANAGED);
    const before = (await scrape(gw.metricsUrl)).exp;
    await spread(200, 8, async (i) => {
      if (i % 2 === 0) {
        const c = await client.chat.completions.create({ model: "rr", messages: MESSAGES });
        expect(c.choices[0]?.message.content).toBe(MOCK_TEXT);
      } else {
        const s = await client.chat.completions.create({ model: "rr", messages: MESSAGES, stream: true });
        expect((await collectChatStream(s)).text).toBe(MOCK_TEXT);
      }
    });
    const [a, b] = countModels("rr-a", "rr-b") as [number, number];
    expect(a + b).toBe(200);
    expect(a).toBeGreaterThanOrEqual(80);
    expect(a).toBeLessThanOrEqual(120);
    expect(b).toBeGreaterThanOrEqual(80);
    expect(b).toBeLessThanOrEqual(120);
    const after = (await scrape(gw.metricsUrl)).exp;
    const delta = (labels: Record<string, string>): number => (sampleValue(after, "ai_route_requests_total", labels) ?? 0) - (sampleValue(before, "ai_route_requests_total", labels) ?? 0);
    expect(delta({ route: "rr", target: "groq/rr-a" })).toBe(a);
    expect(delta({ route: "rr", target: "cerebras/rr-b" })).toBe(b);
    // No target failed, so nothing fell back.
    expect(after.samples.filter((x) => x.name === "ai_fallbacks_total" && x.labels["route"] === "rr")).toEqual([]);
  });

  test("weighted [3, 1] over 200 raw requests (8 at a time): the first target 130–170 times (75 % ± 10 %)", async () => {
    await spread(200, 8, async () => {
      const r = await rawChat("wt");
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    });
    const [a, b] = countModels("wt-a", "wt-b") as [number, number];
    expect(a + b).toBe(200);
    expect(a).toBeGreaterThanOrEqual(130);
    expect(a).toBeLessThanOrEqual(170);
  });
});

describe("latency", () => {
  test("after each target is measured once, the target whose head comes faster goes first: most of 24 streamed requests reach it", async () => {
    const client = openaiClient(gw, MANAGED);
    const firsts: string[] = [];
    for (let i = 0; i < 24; i++) {
      const id = newTestId();
      const s = await client.chat.completions.create({ model: "lat", messages: MESSAGES, stream: true }, { headers: { "x-test-id": id } });
      expect((await collectChatStream(s)).text).toBe(MOCK_TEXT);
      const reqs = attemptsOf(id, oai);
      expect(reqs).toHaveLength(1);
      firsts.push(seen(reqs[0]!).model ?? "");
    }
    const slow = firsts.filter((m) => m === `slow-head-${SLOW_MS}-lat`).length;
    const fast = firsts.filter((m) => m === "lat-fast").length;
    expect(slow + fast).toBe(24);
    // Each worker thread measures the slow target once (a never-measured target goes first once); after that the
    // fast one leads. Counts, not timings: at most one probe per worker thread, with margin.
    expect(slow).toBeGreaterThanOrEqual(1);
    expect(fast).toBeGreaterThanOrEqual(18);
  });
});

describe("cost", () => {
  test("the cheapest priced target answers every request (JSON and stream); cost_usd_micros is exact at its price", async () => {
    const client = openaiClient(gw, MANAGED);
    for (const stream of [false, true]) {
      for (let i = 0; i < 3; i++) {
        const id = newTestId();
        const headers = { "x-test-id": id };
        let response: Response;
        if (stream) {
          const res = await client.chat.completions.create({ model: "cheap", messages: MESSAGES, stream: true }, { headers }).withResponse();
          expect((await collectChatStream(res.data)).text).toBe(MOCK_TEXT);
          response = res.response;
        } else {
          const res = await client.chat.completions.create({ model: "cheap", messages: MESSAGES }, { headers }).withResponse();
          expect(res.data.choices[0]?.message.content).toBe(MOCK_TEXT);
          response = res.response;
        }
        expect(attemptsOf(id, oai).map(seen)).toEqual([{ path: "/v1/chat/completions", model: "cheap-y", key: poolKeyOf("cerebras") }]);
        const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
        const usage = stream ? MOCK_USAGE.openaiSse : MOCK_USAGE.openaiJson;
        expect(u).toMatchObject({ route: "cheap", provider: "cerebras", requested_model: "cheap" });
        expect(u["fallback_reason"]).toBeUndefined();
        // JSON: 11 × 2.5 + 7 × 10 = 97.5 → 98; stream: 5 × 2.5 + 9 × 10 = 102.5 → 103 (a half rounds up).
        expect(u["cost_usd_micros"]).toBe(expectedMicros({ input: usage.prompt_tokens, output: usage.completion_tokens }, CHEAP));
        expect(Number.isInteger(u["cost_usd_micros"])).toBe(true);
      }
    }
  });

  test("the cheapest target fails: the next cheapest answers and the request costs its price, fallback_reason 5xx", async () => {
    const id = newTestId();
    const r = await rawChat("cheapfb", id);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(attemptsOf(id, oai).map((x) => seen(x).model)).toEqual(["always-503-cheapest", "pricier-ok"]);
    const u = await usageLine(gw, r.headers.get("x-beyond-request-id") ?? "");
    expect(u).toMatchObject({ route: "cheapfb", provider: "groq", fallback_reason: "5xx" });
    expect(u["cost_usd_micros"]).toBe(expectedMicros({ input: MOCK_USAGE.openaiJson.prompt_tokens, output: MOCK_USAGE.openaiJson.completion_tokens }, PRICIER_OK));
  });
});

describe("skipped targets", () => {
  test("a 429 with no other key moves on (fallback_reason 429); while that key cools the target is skipped (keys_cooling), never contacted", async () => {
    const id = newTestId();
    const r = await rawChat("cool", id);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(attemptsOf(id, oai).map(seen)).toEqual([
      { path: "/v1/chat/completions", model: "cool-a", key: LIMITED_KEY },
      { path: "/v1/chat/completions", model: "cool-b", key: poolKeyOf("mistral") },
    ]);
    expect(await usageLine(gw, r.headers.get("x-beyond-request-id") ?? "")).toMatchObject({ route: "cool", provider: "mistral", fallback_reason: "429" });

    // The key cools for 30 s (its retry-after): the next requests go straight to mistral.
    for (let i = 0; i < 3; i++) {
      const id2 = newTestId();
      const r2 = await rawChat("cool", id2);
      expect(r2.status).toBe(200);
      await r2.arrayBuffer();
      expect(attemptsOf(id2, oai).map((x) => seen(x).model)).toEqual(["cool-b"]);
      expect(await usageLine(gw, r2.headers.get("x-beyond-request-id") ?? "")).toMatchObject({ route: "cool", provider: "mistral", fallback_reason: "keys_cooling" });
    }
  });
});

describe("skipped targets: an open breaker", () => {
  const mock = t.newMock();
  let g: Gateway;
  beforeAll(async () => {
    const providers = ["xai", "deepseek", "openai"];
    const config = poolConfig({
      authorities: Object.fromEntries(providers.map((p) => [p, mock.authority])),
      poolKeys: Object.fromEntries(providers.map((p) => [p, [poolKeyOf(p)]])),
      publicKey: signing.publicKey,
      retry: { initial_backoff_ms: 10, max_backoff_ms: 50 },
    }).replace(/^circuit_breaker_threshold = 0$/m, "circuit_breaker_threshold = 2\ncircuit_breaker_reset_secs = 60");
    expect(config).toContain("circuit_breaker_threshold = 2");
    const tables = [
      modelTable("brk", { targets: ["xai/always-503-brk", "deepseek/brk-ok"], retry: { max_attempts: 1 } }),
      modelTable("elsewhere", { targets: ["deepseek/elsewhere-ok"] }),
    ];
    g = await t.launch(config + "\n" + tables.join("\n\n") + "\n");
  });

  async function post(model: string, id: string): Promise<Response> {
    return fetch(`${g.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", "x-test-id": id },
      body: JSON.stringify({ model, messages: MESSAGES }),
    });
  }

  test("once the first target's breaker opens, it is skipped (fallback_reason breaker_open) and not contacted", async () => {
    // Two 503s in a row from xai (each request falls back to deepseek): the breaker opens.
    for (let i = 0; i < 2; i++) {
      const id = newTestId();
      const r = await post("brk", id);
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      expect(attemptsOf(id, mock).map((x) => seen(x).model)).toEqual(["always-503-brk", "brk-ok"]);
      expect(await usageLine(g, r.headers.get("x-beyond-request-id") ?? "")).toMatchObject({ route: "brk", provider: "deepseek", fallback_reason: "5xx" });
    }
    const id = newTestId();
    const r = await post("brk", id);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(attemptsOf(id, mock).map((x) => seen(x).model)).toEqual(["brk-ok"]);
    expect(await usageLine(g, r.headers.get("x-beyond-request-id") ?? "")).toMatchObject({ route: "brk", provider: "deepseek", fallback_reason: "breaker_open" });
  });

  test("the bare path's own provider (openai) with its breaker open does not stop a body alias whose targets are elsewhere", async () => {
    // A direct request that openai answers 503 four times (§10's attempts) opens openai's breaker (threshold 2).
    const direct = await post("always-503-direct", newTestId());
    expect(direct.status).toBe(503);
    await direct.arrayBuffer();
    const refused = await post("gpt-4o-mini", newTestId());
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).not.toBe("mock_503");
    // The same bare path naming an alias over deepseek goes through.
    const id = newTestId();
    const r = await post("elsewhere", id);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(attemptsOf(id, mock).map(seen)).toEqual([{ path: "/v1/chat/completions", model: "elsewhere-ok", key: poolKeyOf("deepseek") }]);
  });
});

describe("a body alias needs no pool key for the bare path's own provider", () => {
  test("only deepseek and groq have pool keys: model \"nk\" on /v1/chat/completions (OpenAI SDK) reaches deepseek", async () => {
    const mock = t.newMock();
    const providers = ["deepseek", "groq"];
    const g = await t.launch(
      poolConfig({
        authorities: { ...Object.fromEntries(providers.map((p) => [p, mock.authority])), openai: mock.authority },
        poolKeys: Object.fromEntries(providers.map((p) => [p, [poolKeyOf(p)]])),
        publicKey: signing.publicKey,
      }) +
        "\n" +
        modelTable("nk", { targets: ["deepseek/nk-model", "groq/nk-other"] }) +
        "\n",
    );
    const id = newTestId();
    const { data, response } = await openaiClient(g, MANAGED)
      .chat.completions.create({ model: "nk", messages: MESSAGES }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(attemptsOf(id, mock).map(seen)).toEqual([{ path: "/v1/chat/completions", model: "nk-model", key: poolKeyOf("deepseek") }]);
    expect(await usageLine(g, response.headers.get("x-beyond-request-id") ?? "")).toMatchObject({ route: "nk", provider: "deepseek" });
  });
});
