// SPEC §10 retry policy: how long to back off, what the provider said about waiting, whether an error answer means
// the key itself is spent, which statuses are retried, and the per-provider retry budget. Everything but the budget
// is a pure function; the budget counts over shared memory when workers ≥ 2 (src/controls/shared-state.ts), so every worker
// spends from one budget, and over a private state of the same layout otherwise.
//
// Rules chosen where the contract is silent (documented in ARCHITECTURE):
// - Reset headers: the first source that is present AND valid wins; a malformed value is ignored and the next source
//   is tried (so a garbage retry-after falls through to the reset headers, then to the doubling rule). Of a pair
//   (OpenAI requests/tokens, Anthropic requests/tokens) the larger valid value wins: the 429 does not say which
//   limit was hit, and the larger one is when both are available again.
// - Valid means syntactically right and not negative. A date in the past gives 0. Anything longer than 24 h is
//   clamped to 24 h (a provider that says "tomorrow" means "not soon"; the caller's max_retry_after_ms decides whether
//   that is waited, and the key pool cools the key that long at most). Values are rounded up to a whole millisecond.

import { RETRY_BUDGET_BUCKETS, type SharedState, SharedRetryBudgets, allocatePrivateRoutingState, sharedClock } from "../controls/shared-state.ts";

export interface BackoffPolicy {
  initialMs: number;
  multiplier: number;
  maxMs: number;
  jitter: "full" | "none";
}

/**
 * Delay before retry number `retry` (1 = the first retry): d = min(maxMs, initialMs × multiplier^(retry − 1));
 * jitter "none" → d; "full" → uniform in [0, d] using `random` (default Math.random). A retry number below 1 counts
 * as 1; a power that overflows is capped at maxMs like any other.
 */
export function backoffMs(retry: number, p: BackoffPolicy, random: () => number = Math.random): number {
  const n = retry >= 1 ? Math.floor(retry) : 1;
  const raw = p.initialMs * p.multiplier ** (n - 1);
  // NaN (0 × Infinity, a bad policy) and negatives fall to 0; Infinity to maxMs.
  const d = raw > p.maxMs ? p.maxMs : raw >= 0 ? raw : 0;
  if (p.jitter === "none") return d;
  const r = random();
  return d * (r >= 0 ? (r <= 1 ? r : 1) : 0);
}

/** The longest wait a provider header can ask for: longer values are clamped to it (see the header). */
export const RETRY_AFTER_CAP_MS = 24 * 60 * 60 * 1000;

const DECIMAL = /^\d+(?:\.\d+)?$/;

/** A non-negative decimal number of `unitMs`, or undefined. */
function decimal(text: string | null, unitMs: number): number | undefined {
  if (text === null || !DECIMAL.test(text)) return undefined;
  return clampWait(Number(text) * unitMs);
}

function clampWait(ms: number): number | undefined {
  if (Number.isNaN(ms) || ms < 0) return undefined;
  return ms >= RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : Math.ceil(ms);
}

/** Milliseconds from `nowEpochMs` until epoch `at` (0 when past), or undefined when `at` is undefined. */
function until(at: number | undefined, nowEpochMs: number): number | undefined {
  if (at === undefined) return undefined;
  return clampWait(Math.max(0, at - nowEpochMs));
}

/** The larger of two optional values, or the one present. */
function larger(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/**
 * How long the provider says to wait, in ms, from a 429/503 head; undefined when no usable header is present. Order,
 * the first present and valid wins: retry-after-ms → retry-after (delta-seconds or HTTP-date) → OpenAI
 * x-ratelimit-reset-requests / -tokens (Go durations) → Anthropic anthropic-ratelimit-requests-reset / -tokens-reset
 * (RFC 3339); of a pair, the reset of the one limit whose `remaining` is 0, else the larger. Never throws.
 */
export function retryAfterFromHeaders(h: Headers, nowEpochMs: number): number | undefined {
  const ms = decimal(h.get("retry-after-ms"), 1);
  if (ms !== undefined) return ms;
  const ra = h.get("retry-after");
  if (ra !== null) {
    const v = decimal(ra, 1000) ?? until(parseHttpDate(ra, nowEpochMs), nowEpochMs);
    if (v !== undefined) return v;
  }
  const openai = exhausted(
    goWait(h.get("x-ratelimit-reset-requests")),
    goWait(h.get("x-ratelimit-reset-tokens")),
    h.get("x-ratelimit-remaining-requests"),
    h.get("x-ratelimit-remaining-tokens"),
  );
  if (openai !== undefined) return openai;
  const rq = h.get("anthropic-ratelimit-requests-reset");
  const tk = h.get("anthropic-ratelimit-tokens-reset");
  return exhausted(
    until(rq === null ? undefined : parseRfc3339(rq), nowEpochMs),
    until(tk === null ? undefined : parseRfc3339(tk), nowEpochMs),
    h.get("anthropic-ratelimit-requests-remaining"),
    h.get("anthropic-ratelimit-tokens-remaining"),
  );
}

/**
 * The wait of a requests/tokens reset pair. When exactly one of the two limits says it is spent (its `remaining` is
 * 0) and its reset is valid, that limit's reset is the wait: a 429 because the per-minute tokens ran out should not
 * rest the key for the requests window, or the other way round. Otherwise (neither or both spent, or the headers
 * missing) the larger valid reset, since the 429 does not say which limit was hit.
 */
function exhausted(requests: number | undefined, tokens: number | undefined, requestsLeft: string | null, tokensLeft: string | null): number | undefined {
  const rSpent = requestsLeft !== null && requestsLeft.trim() === "0";
  const tSpent = tokensLeft !== null && tokensLeft.trim() === "0";
  if (rSpent && !tSpent && requests !== undefined) return requests;
  if (tSpent && !rSpent && tokens !== undefined) return tokens;
  return larger(requests, tokens);
}

function goWait(text: string | null): number | undefined {
  if (text === null) return undefined;
  const d = parseGoDuration(text);
  return d === undefined ? undefined : clampWait(d);
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a Go duration (time.ParseDuration: "1h2m3.5s", "250ms", "10us", "6m0s", "0", an optional sign) into ms;
 * undefined on garbage (no unit, an unknown unit, no digits, empty). A negative duration parses as negative: callers
 * that want a wait reject it.
 */
export function parseGoDuration(text: string): number | undefined {
  let i = 0;
  const n = text.length;
  let sign = 1;
  if (i < n && (text[i] === "-" || text[i] === "+")) {
    if (text[i] === "-") sign = -1;
    i++;
  }
  if (text.slice(i) === "0") return 0;
  if (i === n) return undefined;
  let total = 0;
  while (i < n) {
    const start = i;
    while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
    const intEnd = i;
    let fracEnd = i;
    if (i < n && text[i] === ".") {
      i++;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      fracEnd = i;
    }
    // Go wants a digit before or after the dot.
    if (intEnd === start && fracEnd <= intEnd + 1) return undefined;
    const value = Number(text.slice(start, fracEnd));
    const unitStart = i;
    while (i < n && !(text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) && text[i] !== ".") i++;
    const unit = GO_UNITS[text.slice(unitStart, i)];
    if (unit === undefined || Number.isNaN(value)) return undefined;
    total += value * unit;
  }
  return sign * total;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Epoch ms of an RFC 3339 timestamp ("2026-11-30T21:43:27Z", "…27.5+02:00"), or undefined. */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const t = utc(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (t === undefined) return undefined;
  const frac = m[7] !== undefined ? Number(m[7]) * 1000 : 0;
  let offset = 0;
  if (m[8] === undefined) {
    const oh = +m[10]!;
    const om = +m[11]!;
    if (oh > 23 || om > 59) return undefined;
    offset = (m[9] === "-" ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return t + frac - offset;
}

const MONTHS: Record<string, number> = { Jan: 1, Feb: 2, Mar: 3, Apr: 4, May: 5, Jun: 6, Jul: 7, Aug: 8, Sep: 9, Oct: 10, Nov: 11, Dec: 12 };
const IMF_FIXDATE = /^[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850 = /^[A-Z][a-z]{5,8}, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Epoch ms of an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must
 * accept), or undefined. An RFC 850 two-digit year more than 50 years ahead of `nowEpochMs` is the previous century.
 */
export function parseHttpDate(text: string, nowEpochMs: number): number | undefined {
  let m = IMF_FIXDATE.exec(text);
  if (m !== null) return utc(+m[3]!, MONTHS[m[2]!], +m[1]!, +m[4]!, +m[5]!, +m[6]!);
  m = RFC850.exec(text);
  if (m !== null) {
    const nowYear = new Date(nowEpochMs).getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + +m[3]!;
    if (year > nowYear + 50) year -= 100;
    return utc(year, MONTHS[m[2]!], +m[1]!, +m[4]!, +m[5]!, +m[6]!);
  }
  m = ASCTIME.exec(text);
  if (m !== null) return utc(+m[6]!, MONTHS[m[1]!], +m[2]!.trim(), +m[3]!, +m[4]!, +m[5]!);
  return undefined;
}

/** Date.UTC for fields that must each be in range (a 31 February is garbage, not 3 March); 60 s allows a leap second. */
function utc(y: number, mo: number | undefined, d: number, h: number, mi: number, s: number): number | undefined {
  if (mo === undefined || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return undefined;
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d) return undefined;
  return t;
}

// Error codes/types that say the key (its account) is spent or shut, not that it is busy: OpenAI's quota and billing
// codes, Anthropic's billing_error (402) type, DeepSeek-style insufficient_balance. Not a generic "quota_exceeded":
// some providers answer a plain per-minute rate limit with it, and a dead key is out for an hour.
const QUOTA_CODES = new Set([
  "insufficient_quota",
  "billing_hard_limit_reached",
  "billing_not_active",
  "access_terminated",
  "account_deactivated",
  "account_suspended",
  "billing_error",
  "insufficient_balance",
]);
// Messages that say so where the code does not (Anthropic's low credit balance arrives as invalid_request_error).
const QUOTA_MESSAGE = /exceeded your current quota|credit balance is too low|insufficient (?:balance|credits|funds)/i;

const textDecoder = new TextDecoder();

/**
 * True when an error answer's body (a 429, 401/403, 402: at most 64 KiB, maybe not JSON) says the key itself is
 * unusable (quota or billing exhausted, key or account deactivated), so the key is dead for dead_key_ms rather than
 * cooling. Looks at `code` and `type` at the top level and under `error` (an array body: its first element), and the
 * message for the wordings above. Runs only on error answers, so JSON.parse is fine; never throws.
 */
export function isQuotaExhausted(body: Uint8Array): boolean {
  let doc: unknown;
  try {
    doc = JSON.parse(textDecoder.decode(body));
  } catch {
    return false;
  }
  if (Array.isArray(doc)) doc = doc[0];
  if (doc === null || typeof doc !== "object") return false;
  const top = doc as Record<string, unknown>;
  const inner = top["error"];
  for (const o of [top, inner !== null && typeof inner === "object" ? (inner as Record<string, unknown>) : undefined]) {
    if (o === undefined) continue;
    for (const field of ["code", "type"]) {
      const v = o[field];
      if (typeof v === "string" && QUOTA_CODES.has(v.toLowerCase())) return true;
    }
    const msg = o["message"];
    if (typeof msg === "string" && QUOTA_MESSAGE.test(msg)) return true;
  }
  return false;
}

/**
 * A 400 that says the prompt does not fit the model's context window (OpenAI `context_length_exceeded`, Anthropic
 * "prompt is too long"): a virtual model moves on to its next target (SPEC §11). A byte search: runs only on 400s.
 */
export function isContextLengthError(body: Uint8Array): boolean {
  const text = textDecoder.decode(body);
  return text.includes("context_length_exceeded") || text.includes("prompt is too long") || text.includes("maximum context length");
}

/** SPEC §10 statuses retried on the same target: 408, 500, 502, 503, 504, 529. (429 and 401/403 are key events.) */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 500 || status === 502 || status === 503 || status === 504 || status === 529;
}

/**
 * Per-provider retry budget (SPEC §10): retries may not exceed ratio × first attempts over the last 10 s plus
 * minPerSec × 10. Counts in one-second buckets (SharedRetryBudgets), over shared memory when workers ≥ 2, so every
 * worker spends from the same budget. tryRetry's check and count are two steps, so workers retrying at the very same
 * instant at the edge may overshoot by one retry each: a budget, not a lock.
 */
export class RetryBudgets {
  readonly #b: SharedRetryBudgets;
  readonly #index: Int32Array;
  readonly #ratio: number;
  readonly #floor: number;
  readonly #now: () => number;
  /** First attempts counted here and not yet added to the (shared) buckets, per provider, and when the oldest came. */
  readonly #pending: Int32Array;
  readonly #pendingAt: Float64Array;

  constructor(opts: { ratio: number; minPerSec: number }, providers: readonly string[], shared?: SharedState, now?: () => number) {
    const state = shared ?? allocatePrivateRoutingState(providers, 0, 1);
    this.#b = new SharedRetryBudgets(state);
    // The caller's provider numbers → the state's budget slots (the same order in practice; a name the state was not
    // allocated with is a wiring bug).
    this.#index = new Int32Array(providers.length);
    providers.forEach((name, i) => {
      const at = state.providers.indexOf(name);
      if (at < 0) throw new RangeError(`provider ${name} has no retry budget slot in the shared state`);
      this.#index[i] = at;
    });
    this.#ratio = opts.ratio > 0 ? opts.ratio : 0;
    this.#floor = opts.minPerSec > 0 ? opts.minPerSec * RETRY_BUDGET_BUCKETS : 0;
    this.#now = now ?? sharedClock(state.originEpochMs);
    this.#pending = new Int32Array(providers.length);
    this.#pendingAt = new Float64Array(providers.length);
    // Pending counts reach the buckets at least once a second (and before any retry decision of this thread), so the
    // other workers see them within a second: for a 10 s window that only makes the budget a little stricter.
    setInterval(() => this.flush(), 1000).unref();
  }

  /**
   * Counts one first attempt of a managed request to `provider`. Every managed request calls it, so it is a plain
   * increment: the clock is read only for the first pending one, and the shared buckets are written by flush().
   */
  first(provider: number): void {
    if (this.#pending[provider]!++ === 0) this.#pendingAt[provider] = this.#now();
  }

  /** Adds the pending first attempts to the buckets, each provider's at the time its oldest pending one came. */
  flush(): void {
    const pending = this.#pending;
    for (let p = 0; p < pending.length; p++) {
      const n = pending[p]!;
      if (n === 0) continue;
      pending[p] = 0;
      this.#b.record(this.#index[p]!, false, this.#pendingAt[p]!, n);
    }
  }

  /** True and counts one retry when the budget allows one now; false (counts nothing) when it is spent. */
  tryRetry(provider: number): boolean {
    this.flush();
    const p = this.#index[provider]!;
    const now = this.#now();
    const t = this.#b.totals(p, now);
    if (t.retries >= this.#ratio * t.first + this.#floor) return false;
    this.#b.record(p, true, now);
    return true;
  }
}
