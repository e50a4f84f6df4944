// End to end, issue 12 item 5: the attack shape at a modest scale. A burst of well-formed forged managed keys under
// a trusted kid (each one a new token, so a new rate key, each costing a signature check) against a real gateway
// with the default failed-verification budget (100 a second): the first are 401, then the budget is spent and they
// get 429 in dialect with Retry-After before any signature work; a legitimate managed client keeps getting 200
// throughout; nothing forged reaches the provider; the process keeps serving. Bounded: 600 forged requests.
// With workers >= 2 the budget is process-wide (shared memory) but the success cache is per worker thread, so the
// legit key is warmed on every worker before the flood.
// No timing assertions (figures: bench/forged-flood.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, metricValue, startGateway } from "./helpers/gateway.ts";
import { type MockProvider, startMockProvider } from "./helpers/mock-provider.ts";
import { expectGatewayError, toReply } from "./helpers/replies.ts";

const KID = 3;
const key = keygen();
const LEGIT = mint(KID, key.seed, 777n, 1n);
const POOL = "sk-pool-flood";
const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const MSG = JSON.stringify({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });

/** Well-formed under the trusted kid, random payload, random signature with a canonical S: a full verification to reject. */
function forged(): string {
  const sig = randomBytes(64);
  sig[63]! &= 0x0f;
  return `bai_v1.${KID}.${randomBytes(16).toString("base64url")}.${sig.toString("base64url")}`;
}

let mock: MockProvider;
let gw: Gateway;

beforeAll(async () => {
  mock = startMockProvider();
  gw = await startGateway({
    config: baseConfig({
      authorities: { openai: mock.authority, anthropic: mock.authority },
      tables: ["[pool_keys]", `openai = "${POOL}"`, `anthropic = "${POOL}"`, "", "[signing_keys]", `${KID} = "${Buffer.from(key.publicKey).toString("base64")}"`].join("\n"),
    }),
  });
});

afterAll(async () => {
  await gw?.stop();
  await mock?.stop();
});

async function chat(token: string): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: CHAT });
}

describe("forged managed-key flood", () => {
  test("forged tokens get 401 then 429 once the failure budget is spent; a legit managed key keeps getting 200; nothing forged is forwarded", async () => {
    // The legit key verifies first, so it is in the success cache before the flood (a key first seen mid-flood may be
    // 429). Each worker thread has its own success cache, so the key is verified on every worker: fresh
    // connections until each worker (told apart by its request-id prefix) has answered it.
    const workers = await metricValue(gw.metricsUrl, "ai_workers");
    const seen = new Set<string>();
    for (let i = 0; i < 200 && seen.size < workers; i++) {
      const r = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${LEGIT}`, "content-type": "application/json", connection: "close" },
        body: CHAT,
      });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      const id = r.headers.get("x-beyond-request-id") ?? "";
      seen.add(id.slice(0, id.lastIndexOf("-")));
    }
    expect(seen.size).toBe(workers);
    const forwardedBefore = mock.requests.length;

    const statuses: number[] = [];
    let first429: Response | undefined;
    let stop = false;
    const legit: number[] = [];
    const legitLoop = (async () => {
      while (!stop) {
        const r = await chat(LEGIT);
        await r.arrayBuffer();
        legit.push(r.status);
      }
    })();
    let sent = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (sent < 600) {
          sent++;
          const r = await chat(forged());
          if (r.status === 429 && first429 === undefined) first429 = r;
          else await r.arrayBuffer();
          statuses.push(r.status);
        }
      }),
    );
    stop = true;
    await legitLoop;

    expect(statuses.length).toBe(600);
    expect(statuses[0]).toBe(401);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    // 600 failures cannot all fit in the budget of 100 a second unless the burst took 6 s or more.
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(first429).toBeDefined();
    expect(first429!.headers.get("retry-after")).toBe("1");
    expectGatewayError(await toReply(first429!), "openai", 429, "rate_limit_error", "rate limit exceeded");

    expect(legit.length).toBeGreaterThan(0);
    expect(legit.every((s) => s === 200)).toBe(true);
    // Only the legit requests reached the provider, each with the pool key.
    expect(mock.requests.length - forwardedBefore).toBe(legit.length);
    for (const r of mock.requests.slice(forwardedBefore)) expect(r.headers["authorization"]).toBe(`Bearer ${POOL}`);

    expect(await metricValue(gw.metricsUrl, "ai_rejections_total", { reason: "auth_throttled" })).toBeGreaterThan(0);
    const line = gw.logs().find((l) => l["target"] === "ai.access" && l["status"] === 429);
    expect(line?.["error"]).toBe("auth_throttled");
    expect(JSON.stringify(gw.logs())).not.toContain("bai_v1");
  });

  test("the throttled answer is in the Anthropic shape on an Anthropic route", async () => {
    let last: Response | undefined;
    for (let i = 0; i < 300; i++) {
      const r = await fetch(`${gw.url}/v1/messages`, { method: "POST", headers: { "x-api-key": forged(), "anthropic-version": "2023-06-01" }, body: MSG });
      if (r.status === 429) {
        last = r;
        break;
      }
      expect(r.status).toBe(401);
      await r.arrayBuffer();
    }
    expect(last).toBeDefined();
    expect(last!.headers.get("retry-after")).toBe("1");
    expectGatewayError(await toReply(last!), "anthropic", 429, "rate_limit_error", "rate limit exceeded");
  });

  test("after the flood the gateway still serves, and the budget refills: a forged key is 401 again", async () => {
    await Bun.sleep(1100); // one budget window with no failures
    const r = await chat(forged());
    expectGatewayError(await toReply(r), "openai", 401, "authentication_error", "invalid API key");
    expect((await chat(LEGIT)).status).toBe(200);
    expect((await fetch(`${gw.metricsUrl}/livez`)).status).toBe(200);
    expect(gw.proc.exitCode).toBeNull();
  });
});
