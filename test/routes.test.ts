// Routes.order: the per-request order of a virtual model's targets for each strategy, and the skip rule.
import { describe, expect, test } from "bun:test";
import { RETRY_DEFAULTS } from "../src/ops/config.ts";
import { Secret } from "../src/ops/secret.ts";
import type { Price } from "../src/routing/prices.ts";
import { BUILT_IN_PROVIDERS, buildProvider, type Provider } from "../src/routing/providers.ts";
import { LATENCY_REPROBE_MS, type ModelRoute, Routes, type RouteStrategy, type Target } from "../src/routing/routes.ts";

const wrap = (s: string) => new Secret(s);
const PROVIDERS: Provider[] = BUILT_IN_PROVIDERS.map((r, i) => buildProvider(r, true, [wrap(`sk-${r.name}`)], wrap, i));

function route(targets: string[], strategy: RouteStrategy = "fallback", weights?: number[]): ModelRoute {
  return {
    targets: targets.map((t) => ({ provider: t.slice(0, t.indexOf("/")), model: t.slice(t.indexOf("/") + 1) })),
    strategy,
    weights,
    dialect: "openai",
    retry: RETRY_DEFAULTS,
  };
}

const price = (input: number, output: number): Price => ({ input, output, cache_read: input, cache_write: input, context_window: undefined, vision: false });
const ids = (order: readonly Target[] | undefined): string[] => (order ?? []).map((t) => t.id);

/** How often each target came first over `n` orders. */
function firsts(routes: Routes, alias: string, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const first = (routes.order(alias) as readonly Target[])[0] as Target;
    out[first.id] = (out[first.id] ?? 0) + 1;
  }
  return out;
}

describe("targets", () => {
  test("each target resolves its provider (with its base path), its model split at the first /, its id and its price", () => {
    const routes = new Routes({ smart: route(["together/meta-llama/Llama-3.3-70B", "groq/llama-3.3-70b-versatile"]) }, PROVIDERS, new Map([["groq/llama-3.3-70b-versatile", price(0.59, 0.79)]]));
    const [a, b] = routes.order("smart") as readonly Target[];
    expect(a?.provider.name).toBe("together");
    expect(a?.model).toBe("meta-llama/Llama-3.3-70B");
    expect(a?.id).toBe("together/meta-llama/Llama-3.3-70B");
    expect(a?.price).toBeUndefined();
    expect(b?.provider.basePath).toBe("/openai/v1");
    expect(b?.price?.input).toBe(0.59);
    expect(a?.route).toBe("smart");
    expect(b?.index).toBe(1);
  });

  test("a name that is not an alias has no order", () => {
    const routes = new Routes({ smart: route(["openai/gpt-4.1-mini"]) }, PROVIDERS, new Map());
    expect(routes.order("gpt-4.1-mini")).toBeUndefined();
    expect(routes.has("smart")).toBe(true);
    expect(routes.has("openai")).toBe(false);
  });
});

describe("fallback", () => {
  test("always the list order, handed out without building a new array", () => {
    const routes = new Routes({ smart: route(["groq/a", "cerebras/b", "openai/c"]) }, PROVIDERS, new Map());
    const first = routes.order("smart");
    expect(ids(first)).toEqual(["groq/a", "cerebras/b", "openai/c"]);
    for (let i = 0; i < 10; i++) expect(routes.order("smart")).toBe(first as readonly Target[]);
  });
});

describe("round_robin", () => {
  test("the start rotates by one per request: over 200 requests across 4 targets each comes first exactly 50 times", () => {
    const routes = new Routes({ rr: route(["groq/a", "cerebras/b", "openai/c", "xai/d"], "round_robin") }, PROVIDERS, new Map());
    expect(firsts(routes, "rr", 200)).toEqual({ "groq/a": 50, "cerebras/b": 50, "openai/c": 50, "xai/d": 50 });
  });

  test("the rest follow as the rotated list (every target once, wrapping around)", () => {
    const routes = new Routes({ rr: route(["groq/a", "cerebras/b", "openai/c"], "round_robin") }, PROVIDERS, new Map());
    expect(ids(routes.order("rr"))).toEqual(["groq/a", "cerebras/b", "openai/c"]);
    expect(ids(routes.order("rr"))).toEqual(["cerebras/b", "openai/c", "groq/a"]);
    expect(ids(routes.order("rr"))).toEqual(["openai/c", "groq/a", "cerebras/b"]);
    expect(ids(routes.order("rr"))).toEqual(["groq/a", "cerebras/b", "openai/c"]);
  });

  test("two aliases keep separate turns", () => {
    const routes = new Routes({ x: route(["groq/a", "cerebras/b"], "round_robin"), y: route(["groq/a", "cerebras/b"], "round_robin") }, PROVIDERS, new Map());
    expect(ids(routes.order("x"))[0]).toBe("groq/a");
    expect(ids(routes.order("x"))[0]).toBe("cerebras/b");
    expect(ids(routes.order("y"))[0]).toBe("groq/a");
  });
});

describe("weighted", () => {
  test("3:1 over 200 requests is 150:50 (within ±5 %), and the first four interleave A A B A (smooth, not bursts)", () => {
    const routes = new Routes({ w: route(["groq/a", "cerebras/b"], "weighted", [3, 1]) }, PROVIDERS, new Map());
    const firstFour = [0, 1, 2, 3].map(() => ids(routes.order("w"))[0]);
    expect(firstFour).toEqual(["groq/a", "groq/a", "cerebras/b", "groq/a"]);
    const counts = firsts(routes, "w", 200);
    expect(Math.abs((counts["groq/a"] ?? 0) - 150)).toBeLessThanOrEqual(10);
    expect(Math.abs((counts["cerebras/b"] ?? 0) - 50)).toBeLessThanOrEqual(10);
    expect((counts["groq/a"] ?? 0) + (counts["cerebras/b"] ?? 0)).toBe(200);
  });

  test("2:1:1 over 200 requests is exactly 100:50:50 (integer weights are met exactly every Σweights requests)", () => {
    const routes = new Routes({ w: route(["groq/a", "cerebras/b", "openai/c"], "weighted", [2, 1, 1]) }, PROVIDERS, new Map());
    expect(firsts(routes, "w", 200)).toEqual({ "groq/a": 100, "cerebras/b": 50, "openai/c": 50 });
  });

  test("fractional weights spread in proportion (0.75 : 0.25 like 3 : 1)", () => {
    const routes = new Routes({ w: route(["groq/a", "cerebras/b"], "weighted", [0.75, 0.25]) }, PROVIDERS, new Map());
    expect(firsts(routes, "w", 200)).toEqual({ "groq/a": 150, "cerebras/b": 50 });
  });

  test("after the weighted pick the others follow in list order as fallbacks", () => {
    const routes = new Routes({ w: route(["groq/a", "cerebras/b", "openai/c"], "weighted", [0, 0, 1]) }, PROVIDERS, new Map());
    expect(ids(routes.order("w"))).toEqual(["openai/c", "groq/a", "cerebras/b"]);
  });

  test("a zero weight never comes first but stays a fallback", () => {
    const routes = new Routes({ w: route(["groq/a", "cerebras/b"], "weighted", [0, 5]) }, PROVIDERS, new Map());
    for (let i = 0; i < 50; i++) expect(ids(routes.order("w"))).toEqual(["cerebras/b", "groq/a"]);
  });
});

describe("latency", () => {
  function setup() {
    let now = 1_000_000;
    const routes = new Routes({ fast: route(["groq/slow", "cerebras/quick"], "latency") }, PROVIDERS, new Map(), () => now);
    const [slow, quick] = routes.targets("fast") as readonly Target[];
    return { routes, slow: slow as Target, quick: quick as Target, advance: (ms: number) => (now += ms) };
  }

  test("targets never measured go first, once each, to be measured", () => {
    const { routes } = setup();
    expect(ids(routes.order("fast"))).toEqual(["groq/slow", "cerebras/quick"]);
    // The first probe is out (not reported yet): the other unmeasured target is probed next, not the same one again.
    expect(ids(routes.order("fast"))).toEqual(["cerebras/quick", "groq/slow"]);
    // Both probed, none measured: list order, no third probe.
    expect(ids(routes.order("fast"))).toEqual(["groq/slow", "cerebras/quick"]);
  });

  test("after warm-up the fast target comes first on every request, the slow one as its fallback", () => {
    const { routes, slow, quick } = setup();
    routes.order("fast");
    routes.order("fast");
    routes.observeTtft(slow, 900);
    routes.observeTtft(quick, 120);
    for (let i = 0; i < 100; i++) {
      const order = routes.order("fast") as readonly Target[];
      expect(ids(order)).toEqual(["cerebras/quick", "groq/slow"]);
      routes.observeTtft(order[0] as Target, 100 + (i % 7));
    }
    expect(routes.ttft(quick)).toBeLessThan(130);
    expect(routes.ttft(slow)).toBe(900);
  });

  test("the slow target is re-probed once after the re-probe interval; when it has become faster it takes first place", () => {
    const { routes, slow, quick, advance } = setup();
    routes.order("fast");
    routes.order("fast");
    routes.observeTtft(slow, 900);
    routes.observeTtft(quick, 120);
    advance(LATENCY_REPROBE_MS - 1);
    routes.observeTtft(quick, 120);
    expect(ids(routes.order("fast"))[0]).toBe("cerebras/quick");
    advance(2);
    // slow was last measured LATENCY_REPROBE_MS + 1 ago: one probe, then back to the measured order.
    expect(ids(routes.order("fast"))).toEqual(["groq/slow", "cerebras/quick"]);
    expect(ids(routes.order("fast"))).toEqual(["cerebras/quick", "groq/slow"]);
    // The probe finds it fast now (the average moves by 0.3 of the gap per sample); a few samples make it the fastest.
    for (let i = 0; i < 10; i++) routes.observeTtft(slow, 20);
    expect(routes.ttft(slow)).toBeLessThan(120);
    expect(ids(routes.order("fast"))).toEqual(["groq/slow", "cerebras/quick"]);
  });

  test("one slow answer from the fast target does not flip the order (smoothing)", () => {
    const { routes, slow, quick } = setup();
    routes.order("fast");
    routes.order("fast");
    routes.observeTtft(slow, 500);
    for (let i = 0; i < 5; i++) routes.observeTtft(quick, 100);
    routes.observeTtft(quick, 1000);
    expect(routes.ttft(quick)).toBeCloseTo(100 + 0.3 * 900, 6);
    expect(ids(routes.order("fast"))[0]).toBe("cerebras/quick");
  });

  test("a probe that never reports (it failed) is probed again after the interval", () => {
    const { routes, advance } = setup();
    routes.order("fast");
    routes.order("fast");
    advance(LATENCY_REPROBE_MS);
    expect(ids(routes.order("fast"))[0]).toBe("groq/slow");
  });

  test("a sample that is negative, NaN or infinite is ignored", () => {
    const { routes, quick } = setup();
    routes.observeTtft(quick, -5);
    routes.observeTtft(quick, Number.NaN);
    routes.observeTtft(quick, Number.POSITIVE_INFINITY);
    expect(Number.isNaN(routes.ttft(quick))).toBe(true);
    routes.observeTtft(quick, 42);
    expect(routes.ttft(quick)).toBe(42);
  });
});

describe("cost", () => {
  test("priced targets cheapest first by input + output, then unpriced ones in list order", () => {
    const prices = new Map<string, Price>([
      ["openai/gpt-4.1", price(2, 8)],
      ["groq/llama-3.1-8b-instant", price(0.05, 0.08)],
      ["deepseek/deepseek-chat", price(0.27, 1.1)],
    ]);
    const routes = new Routes({ cheap: route(["mistral/unpriced-1", "openai/gpt-4.1", "groq/llama-3.1-8b-instant", "xai/unpriced-2", "deepseek/deepseek-chat"], "cost") }, PROVIDERS, prices);
    expect(ids(routes.order("cheap"))).toEqual(["groq/llama-3.1-8b-instant", "deepseek/deepseek-chat", "openai/gpt-4.1", "mistral/unpriced-1", "xai/unpriced-2"]);
  });

  test("equal prices keep list order; a free model (0, 0) is cheapest, not unpriced", () => {
    const prices = new Map<string, Price>([
      ["groq/b", price(1, 1)],
      ["cerebras/a", price(0.5, 1.5)],
      ["openai/free", price(0, 0)],
    ]);
    const routes = new Routes({ c: route(["groq/b", "cerebras/a", "openai/free"], "cost") }, PROVIDERS, prices);
    expect(ids(routes.order("c"))).toEqual(["openai/free", "groq/b", "cerebras/a"]);
  });
});

describe("skip", () => {
  test("a skipped target goes last, not away: the others keep their order, so the chain is never empty", () => {
    const routes = new Routes({ smart: route(["groq/a", "cerebras/b", "openai/c"]) }, PROVIDERS, new Map());
    expect(ids(routes.order("smart", (t) => t.provider.name === "groq"))).toEqual(["cerebras/b", "openai/c", "groq/a"]);
    expect(ids(routes.order("smart", (t) => t.provider.name !== "cerebras"))).toEqual(["cerebras/b", "groq/a", "openai/c"]);
  });

  test("with every target skipped the order is the strategy's own (the first target's answer is what the client gets)", () => {
    const routes = new Routes({ smart: route(["groq/a", "cerebras/b", "openai/c"]) }, PROVIDERS, new Map());
    expect(ids(routes.order("smart", () => true))).toEqual(["groq/a", "cerebras/b", "openai/c"]);
  });

  test("a skip that drops nothing hands back the shared fallback order (no new array)", () => {
    const routes = new Routes({ smart: route(["groq/a", "cerebras/b"]) }, PROVIDERS, new Map());
    expect(routes.order("smart", () => false)).toBe(routes.order("smart") as readonly Target[]);
  });

  test("skip applies after the strategy: a round-robin start that is skipped yields to the next, and the turn still advances", () => {
    const routes = new Routes({ rr: route(["groq/a", "cerebras/b", "openai/c"], "round_robin") }, PROVIDERS, new Map());
    const skipGroq = (t: Target) => t.provider.name === "groq";
    expect(ids(routes.order("rr", skipGroq))).toEqual(["cerebras/b", "openai/c", "groq/a"]);
    expect(ids(routes.order("rr", skipGroq))).toEqual(["cerebras/b", "openai/c", "groq/a"]);
    expect(ids(routes.order("rr", skipGroq))).toEqual(["openai/c", "cerebras/b", "groq/a"]);
  });

  test("latency never spends its probe on a skipped target", () => {
    let now = 0;
    const routes = new Routes({ fast: route(["groq/a", "cerebras/b"], "latency") }, PROVIDERS, new Map(), () => now);
    const skipGroq = (t: Target) => t.provider.name === "groq";
    expect(ids(routes.order("fast", skipGroq))).toEqual(["cerebras/b", "groq/a"]);
    // groq's breaker has closed again: it was never probed, so it is probed now.
    now += 1;
    expect(ids(routes.order("fast"))).toEqual(["groq/a", "cerebras/b"]);
  });
});
