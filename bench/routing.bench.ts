// Per-request routing work for managed traffic (key pools, retry budget): what every request pays when nothing fails,
// and, for contrast, what a pick costs while one of the provider's keys is cooling. Run:
//   node_modules/.bin/bun bench/routing.bench.ts
// Happy path: pick() reads one hint word (plain read) and returns the only key, or hashes the session once (xxHash32)
// and scores each key with a few integer ops (affinity), or bumps a per-thread counter (round robin); succeeded()
// reads one hint word; budgets.first() is a clock read plus one compare-and-swap on the provider's bucket.
// "shared" rows run over a SharedState (workers >= 2), on one thread, so without contention.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { KEY_POOL_DEFAULTS } from "../src/ops/config.ts";
import { KeyPools } from "../src/routing/key-pool.ts";
import { BUILT_IN_PROVIDERS, buildProvider, type Provider } from "../src/routing/providers.ts";
import { RetryBudgets } from "../src/routing/retry-policy.ts";
import { Secret } from "../src/ops/secret.ts";
import { allocateSharedState } from "../src/controls/shared-state.ts";

const wrap = (s: string) => new Secret(s);
function provider(keys: number): Provider[] {
  return [buildProvider(BUILT_IN_PROVIDERS[0]!, true, Array.from({ length: keys }, (_, i) => wrap(`sk-bench-${i}`)), wrap, 0)];
}
const one = provider(1);
const four = provider(4);
const fourCooling = provider(4);
const shared = () => allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"], poolKeys: 4 });

const affinity1 = new KeyPools(KEY_POOL_DEFAULTS, one);
const affinity4 = new KeyPools(KEY_POOL_DEFAULTS, four);
const rr4 = new KeyPools({ ...KEY_POOL_DEFAULTS, selection: "round_robin" }, four);
const affinity4S = new KeyPools(KEY_POOL_DEFAULTS, four, shared());
// One key of four cooling for the model (a cooldown far in the future, so it stays cooling for the whole run).
const cooling = new KeyPools({ ...KEY_POOL_DEFAULTS, cooldown_max_ms: 3_600_000 }, fourCooling);
cooling.coolDown(fourCooling[0]!.keys[1]!, "gpt-4o", 3_600_000);
const coolingS = new KeyPools({ ...KEY_POOL_DEFAULTS, cooldown_max_ms: 3_600_000 }, fourCooling, shared());
coolingS.coolDown(fourCooling[0]!.keys[1]!, "gpt-4o", 3_600_000);

const budgets = new RetryBudgets({ ratio: 0.2, minPerSec: 5 }, ["openai"]);
const budgetsS = new RetryBudgets({ ratio: 0.2, minPerSec: 5 }, ["openai"], shared());

// Sessions as they arrive: a managed credential (~118 chars) or a short x-session-id.
const POOL = 64;
const sessions = Array.from({ length: POOL }, (_, i) => `bai_v1.1.${"A".repeat(20)}${i.toString().padStart(2, "0")}.${"s".repeat(86)}`);
let i = 0;
const p1 = one[0]!;
const p4 = four[0]!;
const p4c = fourCooling[0]!;
const key0 = one[0]!.keys[0]!;
const key4 = four[0]!.keys[2]!;

summary(() => {
  group("KeyPools.pick, happy path (nothing cooling)", () => {
    bench("1 key", () => do_not_optimize(affinity1.pick(p1, "gpt-4o", sessions[i++ & (POOL - 1)]!)));
    bench("4 keys, affinity (HRW over a 118-char session)", () => do_not_optimize(affinity4.pick(p4, "gpt-4o", sessions[i++ & (POOL - 1)]!)));
    bench("4 keys, round_robin", () => do_not_optimize(rr4.pick(p4, "gpt-4o", sessions[i++ & (POOL - 1)]!)));
    bench("shared: 4 keys, affinity", () => do_not_optimize(affinity4S.pick(p4, "gpt-4o", sessions[i++ & (POOL - 1)]!)));
  });
});

summary(() => {
  group("KeyPools.pick, one key of four cooling (contrast: the exact path)", () => {
    bench("4 keys, affinity, one cooling", () => do_not_optimize(cooling.pick(p4c, "gpt-4o", sessions[i++ & (POOL - 1)]!)));
    bench("shared: 4 keys, affinity, one cooling", () => do_not_optimize(coolingS.pick(p4c, "gpt-4o", sessions[i++ & (POOL - 1)]!)));
  });
});

summary(() => {
  group("per-request bookkeeping", () => {
    bench("succeeded (nothing cooled lately), 1 key", () => affinity1.succeeded(key0, "gpt-4o"));
    bench("succeeded (nothing cooled lately), 4 keys", () => affinity4.succeeded(key4, "gpt-4o"));
    bench("budgets.first", () => budgets.first(0));
    bench("shared: budgets.first", () => budgetsS.first(0));
  });
});

await run();
