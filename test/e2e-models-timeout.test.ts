// End to end, virtual models: a target whose response head does not come within read_timeout_secs is left for the
// next target (fallback_reason "timeout"), never retried on itself; with no target left the client gets the 504 as a
// direct request would. The gateway runs with read_timeout_secs = 1 and a mock whose `slow-head-<ms>` models hold the
// head back. And a target that resets every connection before its head is retried once, then left for the next
// target (a reset's one retry is per target, not per request).
import { beforeAll, describe, expect, test } from "bun:test";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, metricValue, poolConfig, usageLine } from "./helpers/gateway.ts";
import { MOCK_TEXT } from "./helpers/mock-provider.ts";
import { tracked } from "./helpers/tracked.ts";
import { attemptsOf, modelTable, newTestId, openaiClient, poolKeyOf, seen } from "./helpers/virtual-models.ts";

const t = tracked();
const signing = keygen();
const MANAGED = mint(1, signing.seed, 718n, 13n);
const oai = t.newMock();
let gw: Gateway;
/** A provider that reads a request and closes the connection without a byte of answer. */
let resets = 0;
const resetter = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(socket) {
      resets++;
      socket.end();
    },
  },
});

beforeAll(async () => {
  const providers = ["groq", "cerebras", "mistral"];
  const authorities: Record<string, string> = Object.fromEntries(providers.map((p) => [p, oai.authority]));
  authorities["mistral"] = `127.0.0.1:${resetter.port}`;
  const poolKeys = Object.fromEntries(providers.map((p) => [p, [poolKeyOf(p)]]));
  const tables = [modelTable("slowfirst", { targets: ["groq/slow-head-2500-a", "cerebras/fast-b"] }), modelTable("slowonly", { targets: ["groq/slow-head-2500-c"] }), modelTable("resetfirst", { targets: ["mistral/r", "cerebras/after-reset"] })];
  gw = await t.launch(poolConfig({ authorities, poolKeys, publicKey: signing.publicKey, extra: "read_timeout_secs = 1" }) + "\n" + tables.join("\n\n") + "\n");
});

describe("a head timeout moves a virtual model to its next target", () => {
  test("OpenAI SDK, body alias: the first target's head is late, the second target answers; one attempt each; usage says fallback_reason timeout", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "slowfirst", messages: [{ role: "user", content: "hi" }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(attemptsOf(id, oai).map(seen)).toEqual([
      { path: "/openai/v1/chat/completions", model: "slow-head-2500-a", key: poolKeyOf("groq") },
      { path: "/v1/chat/completions", model: "fast-b", key: poolKeyOf("cerebras") },
    ]);
    const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
    expect(u).toMatchObject({ route: "slowfirst", provider: "cerebras", fallback_reason: "timeout", status: 200 });
    expect(await metricValue(gw.metricsUrl, "ai_fallbacks_total", { route: "slowfirst", reason: "timeout" })).toBeGreaterThanOrEqual(1);
  });

  test("no target left: the 504 in the client's dialect, the target tried once", async () => {
    const id = newTestId();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", "x-test-id": id },
      body: JSON.stringify({ model: "slowonly", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("upstream_timeout");
    expect(attemptsOf(id, oai)).toHaveLength(1);
  });
});

describe("resets before the head", () => {
  test("a target that resets every time is retried once, then the next target answers (fallback_reason connect)", async () => {
    const id = newTestId();
    const before = resets;
    const { data, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "resetfirst", messages: [{ role: "user", content: "hi" }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(resets - before).toBeGreaterThanOrEqual(2);
    expect(attemptsOf(id, oai).map(seen)).toEqual([{ path: "/v1/chat/completions", model: "after-reset", key: poolKeyOf("cerebras") }]);
    const u = await usageLine(gw, response.headers.get("x-beyond-request-id") ?? "");
    expect(u).toMatchObject({ route: "resetfirst", provider: "cerebras", fallback_reason: "connect", status: 200 });
  });
});
