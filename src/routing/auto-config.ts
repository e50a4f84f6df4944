// `[auto]` (SPEC §13): the tiers `model: "auto"` chooses between, the mode, the classifier's boundaries and the
// optional external classifier. File only, like `[models]`. Every bad value is a ConfigError naming the key
// (`auto.tiers.simple`, `auto.boundaries`, `auto.mode` …), which the CLI turns into exit 2 at boot.
//
// The boundaries and the margin are converted here, once, to integers on the classifier's fixed-point scale
// (SCORE_ONE = 1.0), so the per-request arithmetic in classify.ts is integer only and the same on every machine.

import { ConfigError, describe, isTable } from "../ops/config.ts";
import type { Secret } from "../ops/secret.ts";
import type { Price } from "./prices.ts";
import type { ModelRoute } from "./routes.ts";

export const TIERS = ["simple", "medium", "complex", "reasoning"] as const;
export type Tier = (typeof TIERS)[number];
/** A tier as its index in TIERS: 0 simple … 3 reasoning. */
export type TierIndex = 0 | 1 | 2 | 3;

/**
 * A tier name as a client or the external classifier gives it (`x-beyond-tier: complex`, `{"tier": "complex"}`):
 * its index, or undefined when it is not exactly one of TIERS (surrounding spaces ignored, case-sensitive like every
 * other value the gateway reads). The pipeline answers 400 in dialect for a header that is not a tier, and falls back
 * to the built-in classifier for an external answer that is not one.
 */
export function tierIndexOf(name: unknown): TierIndex | undefined {
  if (typeof name !== "string") return undefined;
  const i = (TIERS as readonly string[]).indexOf(name.trim());
  return i < 0 ? undefined : (i as TierIndex);
}

/** The classifier's fixed-point scale: a score or boundary of 1.0 is SCORE_ONE (1/10000 steps). */
export const SCORE_ONE = 10_000;

/**
 * Default boundaries (simple|medium, medium|complex, complex|reasoning): LiteLLM's starting point [0.15, 0.35, 0.60]
 * (research §3.7) with the top one moved to 0.75 by the tuning of bench/auto-eval.ts on its training split, together
 * with classify.ts's DEFAULT_WEIGHTS (the two are tuned as a pair).
 */
export const DEFAULT_BOUNDARIES: readonly [number, number, number] = [0.15, 0.35, 0.75];
export const DEFAULT_ROUND_UP_MARGIN = 0.03;
export const DEFAULT_EXTERNAL_TIMEOUT_MS = 50;
/** A classifier that needs longer than this is not a per-request classifier; a typo'd 50000 is caught. */
const MAX_EXTERNAL_TIMEOUT_MS = 10_000;

export interface AutoExternalConfig {
  readonly url: string;
  readonly timeout_ms: number;
}

export interface AutoConfig {
  /** Each tier's target as configured: an alias of `[models]` or `"provider/model"`; undefined when left out. */
  readonly tiers: Readonly<Record<Tier, string | undefined>>;
  /**
   * The target each tier index routes to, the gaps filled: a missing tier uses the next configured one up; a
   * missing tier with nothing above it (the top ones) uses the nearest configured one below. Never undefined: at
   * least one tier is required.
   */
  readonly resolved: readonly [string, string, string, string];
  /** `enforce` routes to the tier chosen; `shadow` decides and records it, but routes to `medium` (resolved[1]). */
  readonly mode: "enforce" | "shadow";
  /** As configured (check-config shows them). */
  readonly boundaries: readonly [number, number, number];
  readonly round_up_margin: number;
  /** The boundaries on the SCORE_ONE scale, strictly increasing integers in [0, SCORE_ONE]. */
  readonly boundariesFixed: readonly [number, number, number];
  /** round_up_margin on the SCORE_ONE scale. */
  readonly marginFixed: number;
  readonly external: AutoExternalConfig | undefined;
}

/** What the classifier needs to know about a tier's target to apply the capability gates. */
export interface TierInfo {
  /** Images may go to this tier (every model it may reach is marked `vision = true` in `[prices]`). */
  readonly vision: boolean;
  /** The smallest `context_window` among the models it may reach; undefined when none is known. */
  readonly contextWindow: number | undefined;
}

export interface AutoContext {
  /** Provider names, built-in and added. */
  readonly known: ReadonlySet<string>;
  readonly pool: Readonly<Record<string, readonly Secret[]>>;
  /** `[models]`, already validated. */
  readonly models: Readonly<Record<string, ModelRoute>>;
}

const AUTO_KEYS = ["tiers", "mode", "boundaries", "round_up_margin", "external"];
const EXTERNAL_KEYS = ["url", "timeout_ms"];
const MODES = ["enforce", "shadow"] as const;

/** `[auto]` from the file, or undefined when the table is absent (then `model: "auto"` is not served). */
export function autoFromToml(value: unknown, ctx: AutoContext): AutoConfig | undefined {
  if (value === undefined) return undefined;
  if (!isTable(value)) throw new ConfigError("auto", `must be a table ([auto] with tiers = { … }), got ${describe(value)}`);
  for (const k of Object.keys(value)) {
    if (!AUTO_KEYS.includes(k)) throw new ConfigError(`auto.${k}`, `unknown key in [auto] (known keys: ${AUTO_KEYS.join(", ")})`);
  }

  const tiersRaw = value.tiers;
  if (tiersRaw === undefined) throw new ConfigError("auto.tiers", `missing: name at least one of ${TIERS.join(", ")} (tiers = { simple = "…", … })`);
  if (!isTable(tiersRaw)) throw new ConfigError("auto.tiers", `must be a table (tiers = { simple = "…", medium = "…", … }), got ${describe(tiersRaw)}`);
  const tiers: Record<Tier, string | undefined> = { simple: undefined, medium: undefined, complex: undefined, reasoning: undefined };
  for (const [name, target] of Object.entries(tiersRaw)) {
    const key = `auto.tiers.${name}`;
    if (!(TIERS as readonly string[]).includes(name)) throw new ConfigError(key, `unknown tier (tiers are ${TIERS.join(", ")})`);
    if (typeof target !== "string") throw new ConfigError(key, `must be an alias of [models] or a "provider/model" string, got ${describe(target)}`);
    checkTarget(key, target, ctx);
    tiers[name as Tier] = target;
  }
  const configured = TIERS.map((t) => tiers[t]);
  if (configured.every((t) => t === undefined)) throw new ConfigError("auto.tiers", `empty: name at least one of ${TIERS.join(", ")}`);
  const resolved = configured.map((_, i) => {
    for (let j = i; j < TIERS.length; j++) if (configured[j] !== undefined) return configured[j] as string;
    for (let j = i - 1; j >= 0; j--) if (configured[j] !== undefined) return configured[j] as string;
    return "";
  }) as unknown as [string, string, string, string];

  let mode: "enforce" | "shadow" = "enforce";
  if (value.mode !== undefined) {
    if (typeof value.mode !== "string" || !(MODES as readonly string[]).includes(value.mode)) {
      throw new ConfigError("auto.mode", `${typeof value.mode === "string" ? `"${value.mode}"` : describe(value.mode)} is not one of ${MODES.join(", ")}`);
    }
    mode = value.mode as "enforce" | "shadow";
  }

  let boundaries = DEFAULT_BOUNDARIES;
  if (value.boundaries !== undefined) {
    const b = value.boundaries;
    if (!Array.isArray(b) || b.length !== 3) {
      throw new ConfigError("auto.boundaries", `must be an array of three numbers [simple|medium, medium|complex, complex|reasoning], got ${Array.isArray(b) ? `${b.length} element(s)` : describe(b)}`);
    }
    const nums = b.map((x, i) => {
      const n = typeof x === "bigint" ? Number(x) : x;
      if (typeof n !== "number" || !Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError("auto.boundaries", `element ${i} must be a number in [0, 1], got ${describe(x)}`);
      return n;
    }) as [number, number, number];
    if (!(nums[0] < nums[1] && nums[1] < nums[2])) throw new ConfigError("auto.boundaries", `[${nums.join(", ")}] must be strictly increasing`);
    boundaries = nums;
  }
  const boundariesFixed = boundaries.map(toFixed) as [number, number, number];
  if (!(boundariesFixed[0] < boundariesFixed[1] && boundariesFixed[1] < boundariesFixed[2])) {
    throw new ConfigError("auto.boundaries", `[${boundaries.join(", ")}] must differ by at least ${1 / SCORE_ONE} (the classifier's step)`);
  }

  let margin = DEFAULT_ROUND_UP_MARGIN;
  if (value.round_up_margin !== undefined) {
    const m = typeof value.round_up_margin === "bigint" ? Number(value.round_up_margin) : value.round_up_margin;
    if (typeof m !== "number" || !Number.isFinite(m) || m < 0 || m >= 0.5) throw new ConfigError("auto.round_up_margin", `must be a number in [0, 0.5), got ${describe(value.round_up_margin)}`);
    margin = m;
  }

  let external: AutoExternalConfig | undefined;
  if (value.external !== undefined) {
    const e = value.external;
    if (!isTable(e)) throw new ConfigError("auto.external", `must be a table ([auto.external] with url = "http://…"), got ${describe(e)}`);
    for (const k of Object.keys(e)) {
      if (!EXTERNAL_KEYS.includes(k)) throw new ConfigError(`auto.external.${k}`, `unknown key in [auto.external] (known keys: ${EXTERNAL_KEYS.join(", ")})`);
    }
    if (e.url === undefined) throw new ConfigError("auto.external.url", 'missing: the classifier\'s http:// or https:// URL');
    if (typeof e.url !== "string") throw new ConfigError("auto.external.url", `must be an http:// or https:// URL, got ${describe(e.url)}`);
    let parsed: URL | undefined;
    try {
      parsed = new URL(e.url);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.hostname === "") {
      throw new ConfigError("auto.external.url", "must be an http:// or https:// URL with a host");
    }
    // The URL is printed by check-config and in logs: it must not carry a secret.
    if (parsed.username !== "" || parsed.password !== "") throw new ConfigError("auto.external.url", "must not hold credentials (user:password@); the classifier is a local service");
    let timeout = DEFAULT_EXTERNAL_TIMEOUT_MS;
    if (e.timeout_ms !== undefined) {
      const t = typeof e.timeout_ms === "bigint" ? Number(e.timeout_ms) : e.timeout_ms;
      if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 1 || t > MAX_EXTERNAL_TIMEOUT_MS) {
        throw new ConfigError("auto.external.timeout_ms", `must be an integer in [1, ${MAX_EXTERNAL_TIMEOUT_MS}] (milliseconds), got ${describe(e.timeout_ms)}`);
      }
      timeout = t;
    }
    external = Object.freeze({ url: e.url, timeout_ms: timeout });
  }

  return Object.freeze({
    tiers: Object.freeze(tiers),
    resolved: Object.freeze(resolved),
    mode,
    boundaries: Object.freeze([...boundaries]) as unknown as readonly [number, number, number],
    round_up_margin: margin,
    boundariesFixed: Object.freeze(boundariesFixed),
    marginFixed: toFixed(margin),
    external,
  });
}

/** A configured number in [0, 1] on the classifier's integer scale. */
function toFixed(x: number): number {
  return Math.round(x * SCORE_ONE);
}

/**
 * A tier's target: `provider/model` (split at the first `/`; the provider exists and has a pool key, as for a
 * `[models]` target) or an alias of `[models]` (aliases are path segments, so never hold a `/`).
 */
function checkTarget(key: string, target: string, ctx: AutoContext): void {
  const slash = target.indexOf("/");
  if (slash < 0) {
    if (target === "") throw new ConfigError(key, 'empty: an alias of [models] or "provider/model"');
    if (ctx.models[target] === undefined) {
      const aliases = Object.keys(ctx.models);
      throw new ConfigError(key, `"${target}" is not an alias of [models]${aliases.length === 0 ? " (none are configured)" : ` (aliases: ${aliases.join(", ")})`} and has no "/" for "provider/model"`);
    }
    return;
  }
  const provider = target.slice(0, slash);
  const model = target.slice(slash + 1);
  if (provider === "") throw new ConfigError(key, `"${target}" has an empty provider before the "/"`);
  if (model === "") throw new ConfigError(key, `"${target}" has an empty model after the "/"`);
  if (!ctx.known.has(provider)) throw new ConfigError(key, `unknown provider "${provider}" (built in, or added under [provider_authorities])`);
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw new ConfigError(key, `the model contains a control character at offset ${i}`);
  }
  if ((ctx.pool[provider]?.length ?? 0) === 0) {
    throw new ConfigError(key, `provider ${provider} has no pool key ([pool_keys] ${provider} or AI_POOL_KEY_${provider.toUpperCase().replaceAll("-", "_")}): auto sends managed traffic, which needs one`);
  }
}

/**
 * Per tier index, what the capability gates need: an alias's tier may reach any of its targets, so it accepts images
 * only when every target is `vision = true`, and its window is the smallest one declared. A model without a
 * `[prices]` entry has no vision and an unknown window.
 */
export function autoTierInfo(auto: AutoConfig, models: Readonly<Record<string, ModelRoute>>, prices: ReadonlyMap<string, Price>): readonly [TierInfo, TierInfo, TierInfo, TierInfo] {
  return auto.resolved.map((target) => {
    const ids = target.includes("/") ? [target] : (models[target]?.targets ?? []).map((t) => `${t.provider}/${t.model}`);
    let vision = ids.length > 0;
    let window: number | undefined;
    for (const id of ids) {
      const p = prices.get(id);
      if (p?.vision !== true) vision = false;
      const w = p?.context_window;
      if (w !== undefined && (window === undefined || w < window)) window = w;
    }
    return Object.freeze({ vision, contextWindow: window });
  }) as unknown as readonly [TierInfo, TierInfo, TierInfo, TierInfo];
}

/** check-config's view of `[auto]` (nothing in it is secret; the external URL is shown as written). */
export function redactedAuto(auto: AutoConfig | undefined): Record<string, unknown> | null {
  if (auto === undefined) return null;
  return {
    tiers: { ...auto.tiers },
    resolved: Object.fromEntries(TIERS.map((t, i) => [t, auto.resolved[i]])),
    mode: auto.mode,
    boundaries: [...auto.boundaries],
    round_up_margin: auto.round_up_margin,
    ...(auto.external === undefined ? {} : { external: { ...auto.external } }),
  };
}
