// The per-request half of `auto` (src/routing/auto.ts), without a process: the tier → route map (a `provider/model`
// tier gets a one-target route of its own; an alias tier is the alias), the x-beyond-tier override, shadow mode, the
// decision's labels, and the external classifier (its answer used, passed through the capability gates; timeout,
// error and nonsense answers falling back to the built-in decision). End to end: test/e2e-auto.test.ts.
import { afterAll, describe, expect, test } from "bun:test";
import { type Config, loadConfig } from "../src/ops/config.ts";
import { AutoRouter, scoreText } from "../src/routing/auto.ts";
import { buildProviders } from "../src/server.ts";

const POOL = '[pool_keys]\nopenai = "sk-o"\nanthropic = "sk-a"\n\n[models.mid]\ntargets = ["openai/gpt-mid", "anthropic/claude-mid"]\n\n';
const TIERS = 'tiers = { simple = "openai/gpt-simple", medium = "mid", complex = "anthropic/claude-big", reasoning = "openai/o-reason" }\n';
const enc = new TextEncoder();

function router(extra = "", prices = "", onFailure?: (why: string) => void): AutoRouter {
  const cfg: Config = loadConfig({ configPath: "/virtual/config.toml", fileText: `${POOL}${prices}[auto]\n${TIERS}${extra}`, env: {} });
  return new AutoRouter(cfg, buildProviders(cfg), onFailure);
}

function chat(content: unknown, more: Record<string, unknown> = {}): Uint8Array {
  return enc.encode(JSON.stringify({ model: "auto", messages: [{ role: "user", content }], ...more }));
}

const whole = (prefix: Uint8Array) => ({ prefix, complete: true, dialect: "openai" as const, totalBytes: undefined });

describe("routes", () => {
  test("a provider/model tier is a one-target route named by that string; an alias tier is the alias; [models] is kept", () => {
    const a = router();
    expect(Object.keys(a.models).sort()).toEqual(["anthropic/claude-big", "mid", "openai/gpt-simple", "openai/o-reason"]);
    expect(a.models["openai/gpt-simple"]?.targets).toEqual([{ provider: "openai", model: "gpt-simple" }]);
    expect(a.models["anthropic/claude-big"]?.dialect).toBe("anthropic");
    expect(a.models["mid"]?.targets).toHaveLength(2);
    expect([0, 1, 2, 3].map((t) => a.routeOf(t as 0 | 1 | 2 | 3))).toEqual(["openai/gpt-simple", "mid", "anthropic/claude-big", "openai/o-reason"]);
  });

  test("a missing tier is served by the next one up", () => {
    const cfg = loadConfig({ configPath: "/v/c.toml", fileText: `${POOL}[auto]\ntiers = { medium = "mid", reasoning = "openai/o-reason" }\n`, env: {} });
    const a = new AutoRouter(cfg, buildProviders(cfg));
    expect([0, 1, 2, 3].map((t) => a.routeOf(t as 0 | 1 | 2 | 3))).toEqual(["mid", "mid", "openai/o-reason", "openai/o-reason"]);
  });
});

describe("decisions", () => {
  test("enforce: a greeting is simple and routed to simple; the decision carries score and signals", () => {
    const d = router().decide(whole(chat("hello!")));
    expect(d).toMatchObject({ tier: 0, routed: 0, route: "openai/gpt-simple", mode: "enforce" });
    expect(d.signals).toContain("greeting");
    expect(d.score).toBeGreaterThanOrEqual(0);
  });

  test("shadow: the tier decided is kept, the route is medium's", () => {
    const d = router('mode = "shadow"\n').decide(whole(chat("hello!", { reasoning_effort: "high" })));
    expect(d).toMatchObject({ tier: 3, routed: 1, route: "mid", mode: "shadow" });
  });

  test("override: exactly a tier name (spaces trimmed, case-sensitive), routed even in shadow mode, no score", () => {
    const a = router('mode = "shadow"\n');
    expect(a.override(" complex ")).toMatchObject({ tier: 2, routed: 2, route: "anthropic/claude-big", mode: "override", score: undefined, signals: ["override"] });
    expect(a.override("Complex")).toBeUndefined();
    expect(a.override("")).toBeUndefined();
    expect(a.override("complex2")).toBeUndefined();
  });

  test("a streamed prefix's context estimate uses the declared length: a body too big for simple's window moves up", () => {
    const a = router("", '[prices."openai/gpt-simple"]\ninput = 0.1\noutput = 0.4\ncontext_window = 1000\n\n');
    const prefix = chat("hello!");
    expect(a.decide({ prefix, complete: false, dialect: "openai", totalBytes: 10_000 }).tier).toBe(1);
    expect(a.decide({ prefix, complete: true, dialect: "openai", totalBytes: undefined }).tier).toBe(0);
  });

  test("labels: one frozen label set per tier and mode, the same object every time", () => {
    const a = router();
    const d = a.decide(whole(chat("hello!")));
    expect(a.labels(d)).toEqual({ tier: "simple", mode: "enforce" });
    expect(a.labels(d)).toBe(a.labels(a.decide(whole(chat("hey")))));
    expect(a.labels(a.override("reasoning") as NonNullable<ReturnType<AutoRouter["override"]>>)).toEqual({ tier: "reasoning", mode: "override" });
  });

  test("scoreText: the fixed-point score as 0–1 with four decimals", () => {
    expect(scoreText(0)).toBe("0.0000");
    expect(scoreText(1234)).toBe("0.1234");
    expect(scoreText(10_000)).toBe("1.0000");
  });
});

describe("the external classifier", () => {
  let answer: () => Response | Promise<Response> = () => Response.json({ tier: "complex" });
  const bodies: unknown[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      bodies.push(await req.json());
      return answer();
    },
  });
  afterAll(() => server.stop(true));
  const failures: string[] = [];
  const a = router(`[auto.external]\nurl = "http://127.0.0.1:${server.port}/c"\ntimeout_ms = 500\n`, '[prices."anthropic/claude-big"]\ninput = 3\noutput = 15\nvision = false\n\n[prices."openai/o-reason"]\ninput = 2\noutput = 8\nvision = true\n\n', (why) => failures.push(why));

  test("its tier is used; it gets the last user turn's text and the features", async () => {
    answer = () => Response.json({ tier: "complex" });
    bodies.length = 0;
    const d = await a.decideWithExternal(whole(chat("hello!")));
    expect(d).toMatchObject({ tier: 2, route: "anthropic/claude-big", mode: "enforce" });
    expect(d.signals).toEqual(["external"]);
    expect(bodies).toHaveLength(1);
    expect((bodies[0] as { text: string }).text).toBe("hello!");
    expect((bodies[0] as { features: { userTurns: number } }).features.userTurns).toBe(1);
  });

  test("its answer still passes the capability gates: images move past a tier without vision", async () => {
    answer = () => Response.json({ tier: "complex" });
    const img = chat([
      { type: "text", text: "what is this?" },
      { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
    ]);
    const d = await a.decideWithExternal(whole(img));
    expect(d.tier).toBe(3);
    expect(d.signals).toEqual(expect.arrayContaining(["external", "img"]));
  });

  test("a timeout falls back to the built-in decision, marked external_timeout, and is reported once a minute at most", async () => {
    answer = async () => {
      await Bun.sleep(1500);
      return Response.json({ tier: "reasoning" });
    };
    failures.length = 0;
    const d1 = await a.decideWithExternal(whole(chat("hello!")));
    const d2 = await a.decideWithExternal(whole(chat("hello!")));
    expect(d1.tier).toBe(0);
    expect(d1.signals).toEqual(expect.arrayContaining(["greeting", "external_timeout"]));
    expect(d2.signals).toContain("external_timeout");
    expect(failures).toEqual(["timeout"]);
  });

  test("a non-2xx, a body that is not JSON, and an answer naming no tier are external_error", async () => {
    for (const make of [() => new Response("busy", { status: 503 }), () => new Response("not json"), () => Response.json({ tier: "huge" }), () => Response.json(["complex"])]) {
      answer = make;
      const d = await a.decideWithExternal(whole(chat("hello!")));
      expect(d.tier).toBe(0);
      expect(d.signals).toContain("external_error");
    }
  });

  test("a turn past the lookahead is not sent: the built-in rule (complex) decides", async () => {
    bodies.length = 0;
    const big = enc.encode(`{"model":"auto","messages":[{"role":"user","content":"${"a".repeat(70_000)}`);
    const d = await a.decideWithExternal({ prefix: big.subarray(0, 65_536), complete: false, dialect: "openai", totalBytes: 80_000 });
    expect(d.tier).toBe(2);
    expect(d.signals).toContain("lookahead");
    expect(bodies).toHaveLength(0);
  });
});
