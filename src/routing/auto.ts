// `model: "auto"` (SPEC §13), the per-request half: which tier a request gets and which route serves that tier.
// The classifier (classify.ts) scores the body; this module adds what is not about the bytes: the x-beyond-tier
// override, shadow mode, the optional `[auto.external]` classifier with its timeout and fallback, and the tier →
// route map. A tier names an alias of `[models]` or a `provider/model`; the latter gets a one-target route of its own
// here (named by the `provider/model` string, which no alias can be, since aliases never hold a `/`), so every tier
// is served by the virtual-model machinery of §11: retries, key pools, fallbacks and translation work unchanged.

import type { Config } from "../ops/config.ts";
import type { Labels } from "../ops/metrics.ts";
import { type AutoConfig, autoTierInfo, SCORE_ONE, type TierIndex, tierIndexOf, TIERS, type TierInfo } from "./auto-config.ts";
import { applyGates, type Classification, classify, type ClassifyDialect, classifyOptions, type ClassifyOptions, SIG } from "./classify.ts";
import type { Provider } from "./providers.ts";
import type { ModelRoute } from "./routes.ts";

/** The model name (and the path segment, `/auto/v1/…`) that asks for a tier. */
export const AUTO = "auto";

/** Where a decision came from: the classifier in `[auto] mode`, or the client's x-beyond-tier header. */
export type AutoMode = "enforce" | "shadow" | "override";

export interface AutoDecision {
  /** The tier decided: what ai.usage records as `tier`. */
  readonly tier: TierIndex;
  /** The tier that serves the request: `tier`, except in shadow mode (medium). */
  readonly routed: TierIndex;
  /** The route (a `[models]` alias, or a tier's own `provider/model` route) serving `routed`. */
  readonly route: string;
  /** The built-in classifier's score on the SCORE_ONE scale; undefined for an override (nothing was scored). */
  readonly score: number | undefined;
  /** Short codes (never prompt text): the classifier's, plus where the decision came from. */
  readonly signals: readonly string[];
  readonly mode: AutoMode;
}

/** What the pipeline needs to ask: a body prefix and whether it is the whole body. */
export interface AutoInput {
  readonly prefix: Uint8Array;
  readonly complete: boolean;
  readonly dialect: ClassifyDialect;
  /** The body's declared length, when a content-length was sent (the context estimate). */
  readonly totalBytes: number | undefined;
}

/** An external classifier that cannot answer is logged at most this often per thread (every request records it). */
const EXTERNAL_WARN_EVERY_MS = 60_000;

export class AutoRouter {
  /** `[models]` plus one route per `provider/model` tier: what Routes and the pipeline serve. */
  readonly models: Readonly<Record<string, ModelRoute>>;
  readonly mode: "enforce" | "shadow";
  readonly #cfg: AutoConfig;
  readonly #opts: ClassifyOptions;
  readonly #tiers: readonly [TierInfo, TierInfo, TierInfo, TierInfo];
  /** ai_route_decisions_total's label sets, by tier index and MODE_INDEX. */
  readonly #labels: readonly (readonly Labels[])[];
  readonly #onExternalFailure: (what: string) => void;
  #lastWarn = Number.NEGATIVE_INFINITY;

  constructor(cfg: Config, providers: readonly Provider[], onExternalFailure: (what: string) => void = () => {}) {
    const auto = cfg.auto as AutoConfig;
    this.#cfg = auto;
    this.mode = auto.mode;
    this.#onExternalFailure = onExternalFailure;
    const byName = new Map(providers.map((p) => [p.name, p]));
    const models: Record<string, ModelRoute> = { ...cfg.models };
    for (const target of auto.resolved) {
      const slash = target.indexOf("/");
      if (slash < 0 || models[target] !== undefined) continue;
      const provider = target.slice(0, slash);
      const p = byName.get(provider);
      if (p === undefined) throw new Error(`auto.tiers: provider ${provider} is not in the provider table`);
      models[target] = Object.freeze({ targets: Object.freeze([{ provider, model: target.slice(slash + 1) }]), strategy: "fallback", weights: undefined, dialect: p.dialect, retry: cfg.retry });
    }
    this.models = Object.freeze(models);
    this.#tiers = autoTierInfo(auto, cfg.models, cfg.prices);
    this.#opts = classifyOptions(auto, this.#tiers, { text: auto.external !== undefined });
    this.#labels = TIERS.map((tier) => MODES.map((mode) => Object.freeze({ tier, mode })));
  }

  /** True when `[auto.external]` is configured: `decide` then asks it (async). */
  get external(): boolean {
    return this.#cfg.external !== undefined;
  }

  /** The route serving a tier. */
  routeOf(tier: TierIndex): string {
    return this.#cfg.resolved[tier];
  }

  /** ai_route_decisions_total's labels for a decision (bound once per pair). */
  labels(d: AutoDecision): Labels {
    return (this.#labels[d.tier] as readonly Labels[])[MODES.indexOf(d.mode)] as Labels;
  }

  /** The decision for an x-beyond-tier header; undefined when the value is not a tier (the pipeline answers 400). */
  override(header: string): AutoDecision | undefined {
    const t = tierIndexOf(header);
    if (t === undefined) return undefined;
    // The client's explicit choice is honoured in both modes: shadow mode holds back the classifier, not the client.
    return { tier: t, routed: t, route: this.routeOf(t), score: undefined, signals: OVERRIDE_SIGNALS, mode: "override" };
  }

  /** The built-in classifier's decision (synchronous: what serves when no `[auto.external]` is configured). */
  decide(input: AutoInput): AutoDecision {
    return this.#fromBuiltIn(this.#classify(input));
  }

  /**
   * With `[auto.external]`: the service's tier when it answers within `timeout_ms` with a tier (the capability gates
   * still apply: it cannot send images to a tier without vision), else the built-in decision, marked with why. A turn
   * that is not whole within the lookahead, or a body without one, is not sent: the built-in rules decide those.
   */
  async decideWithExternal(input: AutoInput): Promise<AutoDecision> {
    const c = this.#classify(input);
    const ext = this.#cfg.external;
    if (ext === undefined || c.text === undefined) return this.#fromBuiltIn(c);
    const answer = await askExternal(ext.url, ext.timeout_ms, c.text, c.features);
    if (typeof answer === "number") {
      const signals: string[] = [SIG.external];
      const t = applyGates(answer, c.features, this.#tiers, signals);
      return this.#decision(t, c.score, signals);
    }
    const now = performance.now();
    if (now - this.#lastWarn >= EXTERNAL_WARN_EVERY_MS) {
      this.#lastWarn = now;
      this.#onExternalFailure(answer);
    }
    return this.#fromBuiltIn(c, answer === "timeout" ? SIG.externalTimeout : SIG.externalError);
  }

  #classify(input: AutoInput): Classification {
    // A whole body is its own size: only a streamed one needs its declared length for the context estimate.
    const opts = input.complete || input.totalBytes === undefined ? this.#opts : { ...this.#opts, totalBytes: input.totalBytes };
    return classify(input.prefix, input.complete, input.dialect, opts);
  }

  #fromBuiltIn(c: Classification, extra?: string): AutoDecision {
    const signals = extra === undefined ? c.signals : [...c.signals, extra];
    return this.#decision(c.tierIndex, c.score, signals);
  }

  #decision(tier: TierIndex, score: number, signals: readonly string[]): AutoDecision {
    const routed: TierIndex = this.mode === "shadow" ? 1 : tier;
    return { tier, routed, route: this.routeOf(routed), score, signals, mode: this.mode };
  }
}

const MODES: readonly AutoMode[] = ["enforce", "shadow", "override"];

const OVERRIDE_SIGNALS: readonly string[] = Object.freeze([SIG.override]);

/** A score on the SCORE_ONE scale as ai.usage's `tier_score` (0 … 1, four decimals: the scale's resolution). */
export function scoreText(score: number): string {
  return (score / SCORE_ONE).toFixed(4);
}

/**
 * POST `{ text, features }` to the external classifier; its tier index, or why there is none. The timeout covers the
 * whole exchange (head and body). The URL holds no credentials (config refuses them), and nothing here is logged.
 */
async function askExternal(url: string, timeoutMs: number, text: string, features: object): Promise<TierIndex | "timeout" | "error"> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text, features }), signal });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      return "error";
    }
    const answer: unknown = await res.json();
    const t = typeof answer === "object" && answer !== null ? tierIndexOf((answer as { tier?: unknown }).tier) : undefined;
    return t ?? "error";
  } catch {
    return signal.aborted ? "timeout" : "error";
  }
}
