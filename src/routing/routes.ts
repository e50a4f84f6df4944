// Virtual models (SPEC §11): an alias names a chain of provider/model targets, and `Routes.order` says, per request,
// in which order to try them. Pure and per thread: no I/O, no shared memory, no timers; the pipeline tries the
// targets in the order given (each with §10's retries) and reports time to first token back for `latency`.
//
// Cost per request: `fallback` and `cost` orders are computed once at boot and handed out as they are (no
// allocation) unless a `skip` function is given; the other strategies build one array of the alias's length.

import type { RetryConfig } from "../ops/config.ts";
import { orderingPrice, type Price } from "./prices.ts";
import type { Dialect, Provider } from "./providers.ts";

export type RouteStrategy = "fallback" | "round_robin" | "weighted" | "latency" | "cost";
export const ROUTE_STRATEGIES: readonly RouteStrategy[] = ["fallback", "round_robin", "weighted", "latency", "cost"];

/** One `"provider/model"` entry of an alias's `targets`, split at the first `/`. */
export interface RouteTargetConfig {
  readonly provider: string;
  readonly model: string;
}

/** `[models.<alias>]` after validation (src/ops/config.ts). */
export interface ModelRoute {
  readonly targets: readonly RouteTargetConfig[];
  readonly strategy: RouteStrategy;
  /** Only with `strategy = "weighted"`: one non-negative weight per target, not all zero. */
  readonly weights: readonly number[] | undefined;
  /** The dialect of the first target: what a path that cannot be translated speaks (SPEC §12 translates the rest). */
  readonly dialect: Dialect;
  /** `[retry]` with the alias's `[models.<alias>.retry]` keys laid over it. */
  readonly retry: RetryConfig;
}

/** A target as the pipeline uses it: the provider resolved, the price looked up. Shared, never mutated. */
export interface Target {
  /** The alias this target belongs to (the `route` of `ai.usage`). */
  readonly route: string;
  /** Position in the alias's `targets` list. */
  readonly index: number;
  readonly provider: Provider;
  /** The model the upstream body carries instead of the alias. */
  readonly model: string;
  /** `provider/model`, the `target` label of `ai_route_requests_total` and the `[prices]` key. */
  readonly id: string;
  readonly price: Price | undefined;
}

/**
 * `latency`: weight of a new time-to-first-token sample in the moving average (EWMA): avg += 0.3 × (sample − avg).
 * About the last 6 samples carry 90 % of the weight, so a provider that slows down loses first place within a few
 * requests, while one slow answer does not flip the order.
 */
export const LATENCY_EWMA_ALPHA = 0.3;
/**
 * `latency`: a target not measured (or not tried first) for this long is put first once more, so a target that was
 * slow and has recovered is noticed, and one whose probe never reported (it failed) is probed again.
 */
export const LATENCY_REPROBE_MS = 15_000;

/** Per-alias mutable state (per thread). */
interface RouteState {
  readonly name: string;
  readonly strategy: RouteStrategy;
  readonly targets: readonly Target[];
  /** `fallback`: the list; `cost`: priced by input+output ascending, then unpriced in list order. */
  readonly fixed: readonly Target[];
  /** round_robin: next start position. */
  next: number;
  /** weighted: smooth weighted round robin (nginx): weights and current values. */
  readonly weights: Float64Array;
  readonly current: Float64Array;
  readonly totalWeight: number;
  /** latency: EWMA of time to first token (NaN: never measured), and when each was last measured or probed. */
  readonly ewma: Float64Array;
  readonly touched: Float64Array;
}

export class Routes {
  readonly #routes = new Map<string, RouteState>();
  readonly #now: () => number;

  /**
   * `providers`: the provider table (buildProviders); every target's provider must be in it, as config validation
   * guarantees. `now`: a millisecond clock (tests pass their own).
   */
  constructor(models: Readonly<Record<string, ModelRoute>>, providers: readonly Provider[], prices: ReadonlyMap<string, Price>, now: () => number = () => performance.now()) {
    this.#now = now;
    const byName = new Map(providers.map((p) => [p.name, p]));
    for (const [name, route] of Object.entries(models)) {
      const targets = route.targets.map((t, index): Target => {
        const provider = byName.get(t.provider);
        if (provider === undefined) throw new Error(`models.${name}: target provider ${t.provider} is not in the provider table`);
        const id = `${t.provider}/${t.model}`;
        return Object.freeze({ route: name, index, provider, model: t.model, id, price: prices.get(id) });
      });
      const n = targets.length;
      const weights = new Float64Array(n);
      if (route.weights !== undefined) for (let i = 0; i < n; i++) weights[i] = route.weights[i] ?? 0;
      let totalWeight = 0;
      for (let i = 0; i < n; i++) totalWeight += weights[i] as number;
      this.#routes.set(name, {
        name,
        strategy: route.strategy,
        targets: Object.freeze(targets),
        fixed: Object.freeze(route.strategy === "cost" ? costOrder(targets) : targets),
        next: 0,
        weights,
        current: new Float64Array(n),
        totalWeight,
        ewma: new Float64Array(n).fill(Number.NaN),
        touched: new Float64Array(n).fill(Number.NEGATIVE_INFINITY),
      });
    }
  }

  /** True when `name` is an alias. */
  has(name: string): boolean {
    return this.#routes.has(name);
  }

  /** The alias's targets as configured (list order). */
  targets(alias: string): readonly Target[] | undefined {
    return this.#routes.get(alias)?.targets;
  }

  /**
   * The order in which to try `alias`'s targets for one request; undefined for a name that is no alias. Never empty
   * and never shorter than the list: a target for which `skip` says true (its breaker is open, or all its keys cool
   * for its model) is moved after the others, keeping the relative order, not removed. So with every target skipped
   * the request still meets the first one's own answer (503 with Retry-After from the breaker, or 429 with
   * Retry-After from the key pool), as a direct request would, and the pipeline never has to invent an error.
   * `skip` must be free of side effects (the breaker's `wouldAllow`, the key pool's readiness): it may be asked more
   * than once about a target. The result must not be modified (it may be shared).
   */
  order(alias: string, skip?: (t: Target) => boolean): readonly Target[] | undefined {
    const r = this.#routes.get(alias);
    if (r === undefined) return undefined;
    let out: readonly Target[];
    switch (r.strategy) {
      case "fallback":
      case "cost":
        out = r.fixed;
        break;
      case "round_robin":
        out = this.#roundRobin(r);
        break;
      case "weighted":
        out = this.#weighted(r);
        break;
      case "latency":
        out = this.#latency(r, skip);
        break;
    }
    return skip === undefined ? out : skipLast(out, skip);
  }

  /**
   * The gateway measured `ms` from sending to `target` to its first content byte. Feeds `latency`; cheap enough to
   * call for every alias (two array writes).
   */
  observeTtft(target: Target, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    const r = this.#routes.get(target.route);
    if (r === undefined || r.targets[target.index] !== target) return;
    const i = target.index;
    const prev = r.ewma[i] as number;
    r.ewma[i] = Number.isNaN(prev) ? ms : prev + LATENCY_EWMA_ALPHA * (ms - prev);
    r.touched[i] = this.#now();
  }

  /** The current smoothed time to first token of a target (NaN: never measured), for tests and metrics. */
  ttft(target: Target): number {
    return this.#routes.get(target.route)?.ewma[target.index] ?? Number.NaN;
  }

  /** round_robin: the list rotated to a start that advances by one per request. */
  #roundRobin(r: RouteState): Target[] {
    const n = r.targets.length;
    const start = r.next;
    r.next = start + 1 === n ? 0 : start + 1;
    const out = new Array<Target>(n);
    for (let i = 0; i < n; i++) out[i] = r.targets[(start + i) % n] as Target;
    return out;
  }

  /**
   * weighted: smooth weighted round robin (nginx's): every target's current value grows by its weight, the largest
   * goes first and gives back the total. Over any run of Σweights requests each target comes first exactly its weight
   * times (integer weights), interleaved rather than in bursts (3:1 gives A A B A, not A A A B), and deterministic.
   * The rest follow in list order as fallbacks. A zero weight never comes first, only as a fallback.
   */
  #weighted(r: RouteState): Target[] {
    const n = r.targets.length;
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const v = (r.current[i] as number) + (r.weights[i] as number);
      r.current[i] = v;
      if (v > bestValue) {
        bestValue = v;
        best = i;
      }
    }
    r.current[best] = bestValue - r.totalWeight;
    return firstThenList(r.targets, best);
  }

  /**
   * latency: one target due for a measurement first (never measured, or not measured or probed for
   * LATENCY_REPROBE_MS), at most one per request, then the rest by smoothed time to first token, fastest first
   * (unmeasured after measured, list order breaking ties). A skipped target is never the probe.
   */
  #latency(r: RouteState, skip: ((t: Target) => boolean) | undefined): Target[] {
    const n = r.targets.length;
    const now = this.#now();
    let probe = -1;
    for (let i = 0; i < n; i++) {
      if (now - (r.touched[i] as number) < LATENCY_REPROBE_MS) continue;
      if (skip !== undefined && skip(r.targets[i] as Target)) continue;
      probe = i;
      r.touched[i] = now;
      break;
    }
    // Insertion sort of the others by EWMA (n is a handful; no comparator closure, no allocation besides `out`).
    const out = new Array<Target>(n);
    let len = 0;
    if (probe >= 0) out[len++] = r.targets[probe] as Target;
    const from = len;
    for (let i = 0; i < n; i++) {
      if (i === probe) continue;
      const t = r.targets[i] as Target;
      const v = r.ewma[i] as number;
      let j = len;
      while (j > from && slower(r.ewma[(out[j - 1] as Target).index] as number, v)) {
        out[j] = out[j - 1] as Target;
        j--;
      }
      out[j] = t;
      len++;
    }
    return out;
  }
}

/** a sorts after b: NaN (unmeasured) after any number; equal values keep list order (stable insertion). */
function slower(a: number, b: number): boolean {
  if (Number.isNaN(a)) return !Number.isNaN(b);
  if (Number.isNaN(b)) return false;
  return a > b;
}

function firstThenList(targets: readonly Target[], first: number): Target[] {
  const n = targets.length;
  const out = new Array<Target>(n);
  out[0] = targets[first] as Target;
  let k = 1;
  for (let i = 0; i < n; i++) if (i !== first) out[k++] = targets[i] as Target;
  return out;
}

/** cost: priced targets by input+output ascending (stable: list order breaks ties), then unpriced in list order. */
function costOrder(targets: readonly Target[]): Target[] {
  const priced = targets.filter((t) => t.price !== undefined);
  priced.sort((a, b) => orderingPrice(a.price as Price) - orderingPrice(b.price as Price) || a.index - b.index);
  return [...priced, ...targets.filter((t) => t.price === undefined)];
}

/** The not-skipped targets in order, then the skipped ones in order. Calls `skip` once per target. */
function skipLast(order: readonly Target[], skip: (t: Target) => boolean): readonly Target[] {
  const n = order.length;
  let skipped: Target[] | undefined;
  let out: Target[] | undefined;
  for (let i = 0; i < n; i++) {
    const t = order[i] as Target;
    if (skip(t)) {
      if (out === undefined) out = order.slice(0, i);
      (skipped ??= []).push(t);
    } else if (out !== undefined) out.push(t);
  }
  if (skipped === undefined) return order;
  return (out as Target[]).concat(skipped);
}
