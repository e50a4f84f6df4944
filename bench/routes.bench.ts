// Per-request cost of ordering a virtual model's targets (src/routing/routes.ts), per strategy, for a 3-target alias,
// with and without a `skip` function that drops nothing (the common case: no breaker open, no keys cooling) and
// with one that skips the first target. Run:
//   node_modules/.bin/bun bench/routes.bench.ts
// fallback and cost hand out a precomputed array (no allocation); round_robin, weighted and latency build one array
// of the alias's length.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { RETRY_DEFAULTS } from "../src/ops/config.ts";
import { Secret } from "../src/ops/secret.ts";
import type { Price } from "../src/routing/prices.ts";
import { BUILT_IN_PROVIDERS, buildProvider } from "../src/routing/providers.ts";
import { type ModelRoute, Routes, type RouteStrategy, type Target } from "../src/routing/routes.ts";

const wrap = (s: string) => new Secret(s);
const providers = BUILT_IN_PROVIDERS.map((r, i) => buildProvider(r, true, [wrap(`sk-${r.name}`)], wrap, i));
const targets = [
  { provider: "groq", model: "llama-3.3-70b-versatile" },
  { provider: "cerebras", model: "llama-3.3-70b" },
  { provider: "openai", model: "gpt-4.1-mini" },
];
const route = (strategy: RouteStrategy, weights?: number[]): ModelRoute => ({ targets, strategy, weights, dialect: "openai", retry: RETRY_DEFAULTS });
const price = (input: number, output: number): Price => ({ input, output, cache_read: input, cache_write: input, context_window: undefined, vision: false });
const prices = new Map([
  ["groq/llama-3.3-70b-versatile", price(0.59, 0.79)],
  ["openai/gpt-4.1-mini", price(0.4, 1.6)],
]);
const routes = new Routes(
  {
    fallback: route("fallback"),
    round_robin: route("round_robin"),
    weighted: route("weighted", [3, 1, 1]),
    latency: route("latency"),
    cost: route("cost"),
  },
  providers,
  prices,
);
// Warm latency up so it orders by measurements, not probes.
for (const t of routes.targets("latency") as readonly Target[]) routes.observeTtft(t, 100 + t.index * 50);

const none = (_t: Target) => false;
const first = (t: Target) => t.index === 0;

for (const strategy of ["fallback", "round_robin", "weighted", "latency", "cost"]) {
  group(strategy, () => {
    summary(() => {
      bench(`${strategy}: order`, () => do_not_optimize(routes.order(strategy)));
      bench(`${strategy}: order, skip drops nothing`, () => do_not_optimize(routes.order(strategy, none)));
      bench(`${strategy}: order, first target skipped`, () => do_not_optimize(routes.order(strategy, first)));
    });
  });
}
group("observeTtft", () => {
  const t = (routes.targets("latency") as readonly Target[])[0] as Target;
  bench("observeTtft", () => routes.observeTtft(t, 120));
});

await run();
