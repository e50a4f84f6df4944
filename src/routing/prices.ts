// `[prices."provider/model"]` (SPEC §11): what a model costs, for `ai.usage` `cost_usd_micros` and the `cost` routing
// strategy. Prices are the operator's data (USD per million tokens); nothing here knows a provider's price list.

/** One model's prices, USD per million tokens, as `[prices]` gives them after validation. */
export interface Price {
  readonly input: number;
  readonly output: number;
  /** Defaults to `input` when the entry leaves it out (a forgotten line over-reports rather than hides spend). */
  readonly cache_read: number;
  /** Defaults to `input` when the entry leaves it out. */
  readonly cache_write: number;
  /** The model's context window in tokens, when known (SPEC §13 uses it). */
  readonly context_window: number | undefined;
  /** The model accepts images (default false). */
  readonly vision: boolean;
}

/** The four disjoint token buckets of an `ai.usage` line (the metering's `Usage` has this shape). */
export interface TokenCounts {
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
}

/**
 * What a request cost, in integer micro-USD. A price per million tokens in USD is exactly micro-USD per token, so
 * the cost is Σ tokens × price over the four buckets (each at its own price), summed in floating point and rounded
 * once, at the end, to the nearest micro-USD (a half rounds up). Rounding per bucket would lose up to 2 µUSD on every
 * request; rounding once keeps the error of the sum below 0.5 µUSD. A negative or non-finite count counts as 0.
 */
export function costMicros(usage: TokenCounts, price: Price): number {
  const sum = tokens(usage.input) * price.input + tokens(usage.output) * price.output + tokens(usage.cacheRead) * price.cache_read + tokens(usage.cacheWrite) * price.cache_write;
  return Math.round(sum);
}

function tokens(n: number): number {
  return n > 0 && Number.isFinite(n) ? n : 0;
}

/**
 * The figure the `cost` strategy orders targets by: input + output price per million tokens. Cache prices are left
 * out on purpose: how much of a prompt a provider serves from its cache depends on the traffic, not the model, and
 * the same list order breaks a tie, so the order is stable.
 */
export function orderingPrice(price: Price): number {
  return price.input + price.output;
}
