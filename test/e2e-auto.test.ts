// End to end, `model: "auto"` (SPEC §13): real gateways between the official SDKs (maxRetries: 0) or raw fetch and the
// recording mocks, with four tiers: simple and reasoning are `provider/model` targets of their own, medium an alias,
// complex an Anthropic-dialect model (so an OpenAI client's complex request is also translated). Pins which tier each
// request shape gets and which target the mock saw, the x-beyond-tier override (and its 400), determinism, the
// `/auto/v1` path with both SDKs, the x-beyond-route header, the ai.usage fields and the decision metric, shadow mode,
// the external classifier (its answer used; the built-in decision on its timeout, error or nonsense), and the boot
// refusals of a bad [auto] (exit 2 naming the key).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, metricValue, poolConfig, runGatewayExpectExit, usageLine } from "./helpers/gateway.ts";
import { MOCK_TEXT, type RecordedRequest } from "./helpers/mock-provider.ts";
import { tracked } from "./helpers/tracked.ts";
import { anthropicClient, attemptsOf, modelTable, newTestId, openaiClient, poolKeyOf, seen } from "./helpers/virtual-models.ts";

const t = tracked();
const signing = keygen();
const MANAGED = mint(1, signing.seed, 818n, 21n);

const oai = t.newMock();
const ant = t.newMock();

const TIERS_TOML = '[auto]\ntiers = { simple = "openai/gpt-simple", medium = "mid", complex = "anthropic/claude-complex", reasoning = "openai/o-reason" }';

function config(autoExtra = ""): string {
  return (
    poolConfig({
      authorities: { openai: oai.authority, anthropic: ant.authority },
      poolKeys: { openai: [poolKeyOf("openai")], anthropic: [poolKeyOf("anthropic")] },
      publicKey: signing.publicKey,
    }) +
    "\n" +
    modelTable("mid", { targets: ["openai/gpt-mid"] }) +
    "\n\n" +
    TIERS_TOML +
    "\n" +
    autoExtra +
    "\n"
  );
}

/** The external classifier the third gateway asks: what it answers is set per test. */
type ExternalMode = { kind: "answer"; body: string } | { kind: "sleep"; ms: number } | { kind: "status"; status: number };
let externalMode: ExternalMode = { kind: "answer", body: '{"tier":"complex"}' };
const externalSeen: unknown[] = [];
const external = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    externalSeen.push(await req.json());
    const m = externalMode;
    if (m.kind === "sleep") await Bun.sleep(m.ms);
    if (m.kind === "status") return new Response("no", { status: m.status });
    return new Response(m.kind === "answer" ? m.body : '{"tier":"complex"}', { headers: { "content-type": "application/json" } });
  },
});
afterAll(() => external.stop(true));

let gw: Gateway;
let shadow: Gateway;
let ext: Gateway;
beforeAll(async () => {
  [gw, shadow, ext] = await Promise.all([
    t.launch(config()),
    t.launch(config('mode = "shadow"')),
    t.launch(config(`[auto.external]\nurl = "http://127.0.0.1:${external.port}/classify"\ntimeout_ms = 1000`)), // generous: a loaded CI box must not turn an answer into a timeout
  ]);
});

const GREETING = "hi there! how are you?";
/** A long, multi-part request: code to write, a proof, and several steps. */
const HARD = [
  "I need help with a multi-part task. First, implement a lock-free concurrent hash map in Rust with resizing,",
  "using atomic compare-and-swap, and explain the memory ordering of every atomic operation.",
  "```rust\nstruct Map<K, V> { buckets: AtomicPtr<Bucket<K, V>>, len: AtomicUsize }\nimpl<K: Hash + Eq, V> Map<K, V> {\n    fn insert(&self, k: K, v: V) -> Option<V> { todo!() }\n}\n```",
  "Second, prove that your resize procedure is linearizable: state the invariant, then prove it by induction on the",
  "number of concurrent operations, and show that no insert can be lost while a resize is in progress.",
  "Third, analyze the amortized complexity of insert and lookup under contention, step by step.",
  "Fourth, write unit tests and a loom model check for the race conditions, and explain why each one matters.",
  "Finally, compare the design with a sharded RwLock map and argue which is optimal for a read-heavy workload.",
].join("\n");

function rid(r: Response): string {
  return r.headers.get("x-beyond-request-id") ?? "";
}

async function post(g: Gateway, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const anthropic = path.includes("/messages");
  return fetch(g.url + path, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(anthropic ? { "x-api-key": MANAGED, "anthropic-version": "2023-06-01" } : { authorization: `Bearer ${MANAGED}` }),
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The one upstream request a test's client request caused (it must be exactly one). */
function onlyAttempt(id: string): RecordedRequest {
  const reqs = attemptsOf(id, oai, ant);
  expect(reqs).toHaveLength(1);
  return reqs[0] as RecordedRequest;
}

describe("enforce: each request shape gets its tier, and the mock sees that tier's target", () => {
  test("a greeting from the OpenAI SDK goes to simple; the response says so in x-beyond-route; ai.usage has route auto, tier, score, signals", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "auto", messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(seen(onlyAttempt(id))).toEqual({ path: "/v1/chat/completions", model: "gpt-simple", key: poolKeyOf("openai") });
    expect(response.headers.get("x-beyond-route")).toBe("simple; openai/gpt-simple");
    const u = await usageLine(gw, rid(response));
    expect(u["route"]).toBe("auto");
    expect(u["tier"]).toBe("simple");
    expect(u["tier_mode"]).toBe("enforce");
    expect(typeof u["tier_score"]).toBe("number");
    expect(u["tier_score"] as number).toBeGreaterThanOrEqual(0);
    expect(u["tier_score"] as number).toBeLessThan(0.15);
    expect(u["tier_signals"]).toContain("greeting");
    expect(u["requested_model"]).toBe("auto");
    // Signals are fixed codes: nothing of the prompt's text is in the line.
    expect(JSON.stringify(u)).not.toContain("how are you");
  });

  test("a greeting from the Anthropic SDK on /v1/messages goes to simple (an OpenAI-dialect model: translated both ways)", async () => {
    const id = newTestId();
    const { data, response } = await anthropicClient(gw, MANAGED)
      .messages.create({ model: "auto", max_tokens: 64, messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.content[0]?.type === "text" ? data.content[0].text : undefined).toBe(MOCK_TEXT);
    expect(seen(onlyAttempt(id))).toEqual({ path: "/v1/chat/completions", model: "gpt-simple", key: poolKeyOf("openai") });
    expect(response.headers.get("x-beyond-route")).toBe("simple; openai/gpt-simple");
    const u = await usageLine(gw, rid(response));
    expect(u["tier"]).toBe("simple");
    expect(u["translated"]).toBe(true);
  });

  test("a long multi-part coding and proof request goes to complex or reasoning, never below", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "auto", messages: [{ role: "user", content: HARD }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    const u = await usageLine(gw, rid(response));
    expect(["complex", "reasoning"]).toContain(u["tier"] as string);
    const up = seen(onlyAttempt(id));
    if (u["tier"] === "complex") {
      expect(up).toEqual({ path: "/v1/messages", model: "claude-complex", key: poolKeyOf("anthropic") });
      expect(response.headers.get("x-beyond-route")).toBe("complex; anthropic/claude-complex");
    } else {
      expect(up).toEqual({ path: "/v1/chat/completions", model: "o-reason", key: poolKeyOf("openai") });
      expect(response.headers.get("x-beyond-route")).toBe("reasoning; openai/o-reason");
    }
    expect(u["tier_signals"]).toEqual(expect.arrayContaining(["code", "proof"]));
  });

  test("reasoning_effort sends even a greeting to reasoning", async () => {
    const id = newTestId();
    const { response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "auto", reasoning_effort: "high", messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(seen(onlyAttempt(id)).model).toBe("o-reason");
    expect(response.headers.get("x-beyond-route")).toBe("reasoning; openai/o-reason");
    expect((await usageLine(gw, rid(response)))["tier_signals"]).toContain("reasoning_effort");
  });

  test("Anthropic thinking sends a greeting to reasoning", async () => {
    const id = newTestId();
    const { response } = await anthropicClient(gw, MANAGED)
      .messages.create({ model: "auto", max_tokens: 2048, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(response.headers.get("x-beyond-route")).toBe("reasoning; openai/o-reason");
    expect(seen(onlyAttempt(id)).model).toBe("o-reason");
  });

  test("tools lift a greeting to at least medium (the alias mid)", async () => {
    const id = newTestId();
    const tools = [{ type: "function" as const, function: { name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const { response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "auto", tools, messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(response.headers.get("x-beyond-route")).toBe("medium; openai/gpt-mid");
    expect(seen(onlyAttempt(id))).toEqual({ path: "/v1/chat/completions", model: "gpt-mid", key: poolKeyOf("openai") });
    const u = await usageLine(gw, rid(response));
    expect(u["tier"]).toBe("medium");
    expect(u["tier_signals"]).toContain("tools");
  });

  test("a stream: the SDK reads the simple tier's stream, and the head carries x-beyond-route", async () => {
    const id = newTestId();
    const { data: stream, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "auto", stream: true, messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    expect(text).toBe(MOCK_TEXT);
    expect(response.headers.get("x-beyond-route")).toBe("simple; openai/gpt-simple");
    expect(seen(onlyAttempt(id)).model).toBe("gpt-simple");
  });

  test("the same body always gets the same tier and the same score", async () => {
    const body = { model: "auto", messages: [{ role: "system", content: "be brief" }, { role: "user", content: "Summarize the causes of the French revolution in three bullet points." }] };
    const seenTiers = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await post(gw, "/v1/chat/completions", body);
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      const u = await usageLine(gw, rid(r));
      seenTiers.add(`${u["tier"]}|${u["tier_score"]}|${JSON.stringify(u["tier_signals"])}|${r.headers.get("x-beyond-route")}`);
    }
    expect(seenTiers.size).toBe(1);
  });

  test("a last user turn past the 64 KiB lookahead (a streamed body) goes to complex", async () => {
    const id = newTestId();
    const big = "lorem ipsum dolor sit amet ".repeat(4000); // ~108 KB: the turn does not end within 64 KiB
    const r = await post(gw, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: big }] }, { "x-test-id": id });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(r.headers.get("x-beyond-route")).toBe("complex; anthropic/claude-complex");
    expect(seen(onlyAttempt(id)).model).toBe("claude-complex");
    const u = await usageLine(gw, rid(r));
    expect(u["tier"]).toBe("complex");
    expect(u["tier_signals"]).toContain("lookahead");
  });

  test("a streamed body (over 64 KiB) whose user turn lies within the lookahead is classified from it", async () => {
    const id = newTestId();
    // The user's greeting first, then a long assistant record after it, so the body passes 64 KiB while the last user
    // turn closed early; the body is sent with a content-length above 64 KiB (the streamed read path).
    const body = { model: "auto", messages: [{ role: "user", content: GREETING }], metadata_padding: "x".repeat(70_000) };
    const r = await post(gw, "/v1/chat/completions", body, { "x-test-id": id });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const u = await usageLine(gw, rid(r));
    expect(u["tier"]).toBe("simple");
    const up = onlyAttempt(id);
    expect(seen(up).model).toBe("gpt-simple");
    // The rest of the body went up untouched, its length exact.
    expect((up.json as { metadata_padding: string }).metadata_padding.length).toBe(70_000);
    expect(up.headers["content-length"]).toBe(String(up.body.length));
  });
});

describe("the x-beyond-tier override", () => {
  test("x-beyond-tier: complex sends a greeting to complex; ai.usage says override", async () => {
    const id = newTestId();
    const { response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "auto", messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id, "x-beyond-tier": "complex" } })
      .withResponse();
    expect(response.headers.get("x-beyond-route")).toBe("complex; anthropic/claude-complex");
    const up = onlyAttempt(id);
    expect(seen(up)).toEqual({ path: "/v1/messages", model: "claude-complex", key: poolKeyOf("anthropic") });
    // The header is the gateway's: it never reaches the provider.
    expect(up.headers["x-beyond-tier"]).toBeUndefined();
    const u = await usageLine(gw, rid(response));
    expect(u["tier"]).toBe("complex");
    expect(u["tier_mode"]).toBe("override");
    expect(u["tier_signals"]).toEqual(["override"]);
  });

  test("a value that is not a tier: 400 in the OpenAI dialect naming the tiers; nothing is sent upstream", async () => {
    const id = newTestId();
    const r = await post(gw, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id, "x-beyond-tier": "huge" });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.message).toBe('x-beyond-tier "huge" is not a tier: use simple, medium, complex or reasoning');
    expect(attemptsOf(id, oai, ant)).toHaveLength(0);
  });

  test("a value that is not a tier on /v1/messages: 400 in the Anthropic dialect", async () => {
    const r = await post(gw, "/v1/messages", { model: "auto", max_tokens: 16, messages: [{ role: "user", content: GREETING }] }, { "x-beyond-tier": "Simple" });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe("error");
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.message).toContain('"Simple" is not a tier');
  });

  test("the override header on a request that does not ask for auto changes nothing", async () => {
    const id = newTestId();
    const r = await post(gw, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id, "x-beyond-tier": "huge" });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(r.headers.get("x-beyond-route")).toBeNull();
    expect(seen(onlyAttempt(id)).model).toBe("gpt-4o");
  });
});

describe("/auto/v1: the path asks for auto whatever the body's model", () => {
  test("the OpenAI SDK at /auto/v1 gets the greeting's tier (the body's model is replaced by the target's)", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED, "auto")
      .chat.completions.create({ model: "whatever", messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(response.headers.get("x-beyond-route")).toBe("simple; openai/gpt-simple");
    expect(seen(onlyAttempt(id))).toEqual({ path: "/v1/chat/completions", model: "gpt-simple", key: poolKeyOf("openai") });
    expect((await usageLine(gw, rid(response)))["route"]).toBe("auto");
  });

  test("the Anthropic SDK at /auto: a hard request reaches the Anthropic tier untranslated", async () => {
    const id = newTestId();
    const { response } = await anthropicClient(gw, MANAGED, "auto")
      .messages.create({ model: "whatever", max_tokens: 64, messages: [{ role: "user", content: HARD }] }, { headers: { "x-test-id": id, "x-beyond-tier": "complex" } })
      .withResponse();
    expect(response.headers.get("x-beyond-route")).toBe("complex; anthropic/claude-complex");
    expect(seen(onlyAttempt(id))).toEqual({ path: "/v1/messages", model: "claude-complex", key: poolKeyOf("anthropic") });
    expect((await usageLine(gw, rid(response)))["translated"]).toBeUndefined();
  });
});

describe("what auto is not", () => {
  test("a BYO key asking for auto is refused (auto routes managed traffic only): 400, nothing sent", async () => {
    const id = newTestId();
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-byo-auto-0001", "x-test-id": id },
      body: JSON.stringify({ model: "auto", messages: [{ role: "user", content: GREETING }] }),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { message: string } }).error.message).toBe("virtual models need a managed key");
    expect(attemptsOf(id, oai, ant)).toHaveLength(0);
  });

  test("a body naming a tier's own provider/model route is a plain model name: forwarded unchanged, no tier", async () => {
    const id = newTestId();
    const r = await post(gw, "/v1/chat/completions", { model: "openai/gpt-simple", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(r.headers.get("x-beyond-route")).toBeNull();
    expect(seen(onlyAttempt(id)).model).toBe("openai/gpt-simple");
    expect((await usageLine(gw, rid(r)))["route"]).toBeUndefined();
  });
});

describe("metrics", () => {
  test("ai_route_decisions_total{tier,mode} and ai_route_requests_total{route=auto,target} count each decision", async () => {
    const before = await metricValue(gw.metricsUrl, "ai_route_decisions_total", { tier: "simple", mode: "enforce" });
    const beforeTarget = await metricValue(gw.metricsUrl, "ai_route_requests_total", { route: "auto", target: "openai/gpt-simple" });
    const beforeOverride = await metricValue(gw.metricsUrl, "ai_route_decisions_total", { tier: "reasoning", mode: "override" });
    for (let i = 0; i < 3; i++) {
      const r = await post(gw, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: GREETING }] });
      await r.arrayBuffer();
    }
    const o = await post(gw, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: GREETING }] }, { "x-beyond-tier": "reasoning" });
    await o.arrayBuffer();
    expect((await metricValue(gw.metricsUrl, "ai_route_decisions_total", { tier: "simple", mode: "enforce" })) - before).toBe(3);
    expect((await metricValue(gw.metricsUrl, "ai_route_requests_total", { route: "auto", target: "openai/gpt-simple" })) - beforeTarget).toBe(3);
    expect((await metricValue(gw.metricsUrl, "ai_route_decisions_total", { tier: "reasoning", mode: "override" })) - beforeOverride).toBe(1);
  });
});

describe("shadow mode: decide and record, route to medium", () => {
  test("a greeting is recorded as simple but served by medium; the header names the tier that served", async () => {
    const id = newTestId();
    const { response } = await openaiClient(shadow, MANAGED)
      .chat.completions.create({ model: "auto", messages: [{ role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(seen(onlyAttempt(id))).toEqual({ path: "/v1/chat/completions", model: "gpt-mid", key: poolKeyOf("openai") });
    expect(response.headers.get("x-beyond-route")).toBe("medium; openai/gpt-mid");
    const u = await usageLine(shadow, rid(response));
    expect(u["tier"]).toBe("simple");
    expect(u["tier_mode"]).toBe("shadow");
    expect(u["tier_signals"]).toContain("greeting");
    expect(await metricValue(shadow.metricsUrl, "ai_route_decisions_total", { tier: "simple", mode: "shadow" })).toBeGreaterThanOrEqual(1);
  });

  test("reasoning_effort is recorded as reasoning, still served by medium", async () => {
    const id = newTestId();
    const r = await post(shadow, "/v1/chat/completions", { model: "auto", reasoning_effort: "high", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id });
    await r.arrayBuffer();
    expect(seen(onlyAttempt(id)).model).toBe("gpt-mid");
    expect((await usageLine(shadow, rid(r)))["tier"]).toBe("reasoning");
  });

  test("the client's override is honoured in shadow mode too", async () => {
    const id = newTestId();
    const r = await post(shadow, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id, "x-beyond-tier": "reasoning" });
    await r.arrayBuffer();
    expect(seen(onlyAttempt(id)).model).toBe("o-reason");
    expect(r.headers.get("x-beyond-route")).toBe("reasoning; openai/o-reason");
  });
});

describe("[auto.external]: a local classifier service", () => {
  test("its answer is used: {text, features} go out, {tier} comes back, the signals say external", async () => {
    externalMode = { kind: "answer", body: '{"tier":"complex"}' };
    externalSeen.length = 0;
    const id = newTestId();
    const { response } = await openaiClient(ext, MANAGED)
      .chat.completions.create({ model: "auto", messages: [{ role: "system", content: "sys" }, { role: "user", content: GREETING }] }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(seen(onlyAttempt(id)).model).toBe("claude-complex");
    expect(response.headers.get("x-beyond-route")).toBe("complex; anthropic/claude-complex");
    expect(externalSeen).toHaveLength(1);
    const sent = externalSeen[0] as { text: string; features: Record<string, number> };
    expect(sent.text).toBe(GREETING);
    expect(sent.features["greeting"]).toBeGreaterThan(0);
    expect(sent.features["userTurns"]).toBe(1);
    const u = await usageLine(ext, rid(response));
    expect(u["tier"]).toBe("complex");
    expect(u["tier_signals"]).toContain("external");
  });

  test("when it times out, the built-in classifier decides (a greeting: simple), marked external_timeout", async () => {
    externalMode = { kind: "sleep", ms: 2500 };
    const id = newTestId();
    const r = await post(ext, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(seen(onlyAttempt(id)).model).toBe("gpt-simple");
    const u = await usageLine(ext, rid(r));
    expect(u["tier"]).toBe("simple");
    expect(u["tier_signals"]).toEqual(expect.arrayContaining(["greeting", "external_timeout"]));
  });

  test("when it answers 500, the built-in classifier decides, marked external_error", async () => {
    externalMode = { kind: "status", status: 500 };
    const id = newTestId();
    const r = await post(ext, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id });
    await r.arrayBuffer();
    expect(seen(onlyAttempt(id)).model).toBe("gpt-simple");
    expect((await usageLine(ext, rid(r)))["tier_signals"]).toContain("external_error");
  });

  test("when its answer names no tier, the built-in classifier decides, marked external_error", async () => {
    externalMode = { kind: "answer", body: '{"tier":"gigantic"}' };
    const id = newTestId();
    const r = await post(ext, "/v1/chat/completions", { model: "auto", messages: [{ role: "user", content: GREETING }] }, { "x-test-id": id });
    await r.arrayBuffer();
    expect(seen(onlyAttempt(id)).model).toBe("gpt-simple");
    expect((await usageLine(ext, rid(r)))["tier_signals"]).toContain("external_error");
  });
});

describe("a bad [auto] stops the boot: exit 2, one stderr line naming the key", () => {
  const POOL = '[pool_keys]\nopenai = "sk-auto-boot-secret"\n\n[models.mid]\ntargets = ["openai/gpt-mid"]\n\n';
  const bad: Array<[string, string, string]> = [
    ["a tier naming an unknown alias", '[auto]\ntiers = { simple = "nosuch" }\n', 'auto.tiers.simple: "nosuch" is not an alias of [models]'],
    ["a tier naming an unknown provider", '[auto]\ntiers = { medium = "nosuch/m" }\n', 'auto.tiers.medium: unknown provider "nosuch"'],
    ["boundaries not increasing", '[auto]\ntiers = { medium = "mid" }\nboundaries = [0.3, 0.2, 0.9]\n', "auto.boundaries: [0.3, 0.2, 0.9] must be strictly increasing"],
    ["a boundary outside [0, 1]", '[auto]\ntiers = { medium = "mid" }\nboundaries = [0.1, 0.5, 1.5]\n', "auto.boundaries: element 2 must be a number in [0, 1]"],
    ["a mode that is neither enforce nor shadow", '[auto]\ntiers = { medium = "mid" }\nmode = "log"\n', 'auto.mode: "log" is not one of enforce, shadow'],
  ];
  test.each(bad)("%s", async (_what, tables, message) => {
    const r = await runGatewayExpectExit({ config: baseConfig({ authorities: { openai: oai.authority }, tables: `${POOL}${tables}` }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`config error: ${message}`);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stdout + r.stderr).not.toContain("sk-auto-boot-secret");
  });
});
