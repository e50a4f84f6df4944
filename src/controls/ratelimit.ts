// Rate guardrails (SPEC §2 rate_limit_rps / byo_rate_limit_rps, §4 order, §8 429).
//
// Two tiers, checked before any signature work because verification costs ~1000× more than this:
//   1. BYO global: one shared counter for every non-`bai_` token (managed traffic is exempt: a forged
//      `bai_` flood fails verification and never reaches a provider; what its signature checks may cost
//      is bounded by KeyVerifier's failed-verification budget, which answers 429 past it).
//   2. Per credential: keyed on the token string exactly as presented.
// Both count requests in fixed 1-second windows and reject the request that makes the count exceed
// the limit, so exactly N pass per window. Every checked request is charged, including those later
// rejected (401/402/403/413/503); nothing is refunded. As with any fixed window, up to ~2N can pass
// across one boundary.
//
// Memory is fixed (independent of how many distinct tokens are seen) and the credential is never
// stored: the per-credential tier is a count-min sketch of ROWS × WIDTH counters indexed by a
// random-seeded hash of the token. A sketch can only over-estimate, so a key is never let through
// above its limit; the cost is a small chance of rejecting a key early because it shares counters
// with busy keys. Error bound, T = all requests charged in the current window:
//   - Each of the 4 rows uses an independent 16-bit slice of a 64-bit hash, so a key's counter in a
//     row also holds roughly Poisson(T / 65536) other requests. Classic count-min bound:
//     estimate ≤ true + e·T/65536 with probability ≥ 1 − e^-4 (≈ +41 at T = 1,000,000).
//   - Conservative update (raise only the counters below the new estimate) and saturation at N + 1
//     (a key over its limit is already rejected; counting further would only crowd other keys)
//     keep the real over-estimate well under that. Measured over 2,000 fresh keys: T = 10,000 →
//     mean 0.001, worst 1; T = 100,000 → mean 0.4, worst 2; T = 1,000,000 → mean 6.6, worst 8.
//     So at realistic loads (≤ 100k requests/s per process) a key loses at most a couple of
//     requests of its budget, and it never gets more than N.
//   - A hash-flooding attacker gains nothing useful: the seed is random per process, and crowding
//     another key's four counters past N would need millions of requests per second to this process.
//
// Shared mode (workers ≥ 2, `new RateGuard(opts, shared)`, layout in shared-state.ts): the same two tiers over a
// SharedArrayBuffer, so the limits are process-wide. Every counter is one packed 32-bit word (window stamp | count)
// changed only by compare-and-swap, so no worker ever sees half an update. The BYO tier is one word: each increment returns a count no other returned, so exactly N pass per window. The
// per-credential tier keeps conservative update, which reads four counters and writes some, so one key's checks are
// serialised by a stripe lock (1,024 lock words; a key always takes the same one, other keys rarely share it; held for
// four loads and up to four compare-and-swaps, never across a call): one key bursting on every worker at once is
// admitted exactly N times per window, not N × workers, and the error bound above holds unchanged. (Plain lock-free
// count-min was tried first: a request's estimate is the minimum of four increments, and two racing requests can each
// see the other's row as their minimum, so both pass at N: 22 of 20 admitted in test/shared-state.test.ts.)
// Windows are aligned to the shared clock's origin (when main allocated the state) and hashes use the shared seeds, so
// every worker counts in the same windows and the same counters. Worker clocks can disagree by a fraction of a
// millisecond (shared-state.ts, Clock): a worker still in window n that meets a counter already in window n + 1 counts
// in n + 1 rather than resetting it, so a boundary never erases another worker's counts.
// The shared guard is a subclass, SharedRateGuard, which `new RateGuard(opts, shared)` returns: workers = 1 passes no
// state and runs today's class unchanged, method for method (no flag tested per call; a thread only ever holds one of
// the two classes, so its call sites stay monomorphic). Figures: bench/guards.bench.ts.

import { assertSharedState, countBitsFor, lockOwner, RATE_BYO_WORD, RATE_HEADER_INTS, RATE_LOCKS, RATE_LOCKS_AT, sharedClock, sharedLimit, type SharedState } from "./shared-state.ts";


/** Result of a check. Decisions are shared frozen constants: checking allocates nothing. */
export type RateDecision =
  | { ok: true }
  | { ok: false; reason: "rate_limit" | "rate_limit_byo_global"; retryAfterSecs: number };

export interface RateGuardOptions {
  /** Per-credential ceiling (requests per 1-second window); 0 disables the tier. */
  perCredentialRps: number;
  /** Shared ceiling for all BYO (non-`bai_`) traffic; 0 disables the tier. */
  byoRps: number;
  /**
   * Millisecond clock, injectable for tests. Default: `performance.now()` (monotonic) privately, the shared clock of
   * shared-state.ts in shared mode. In shared mode windows start at the clock's 0, not at construction.
   */
  now?: () => number;
}

/** Window length. Windows are aligned to the guard's creation time (monotonic clock, not epoch). */
export const WINDOW_MS = 1000;
/** Count-min sketch depth: 4 rows × 16 bits of index = the 64 hash bits, no double hashing needed. */
export const SKETCH_ROWS = 4;
/** Count-min sketch width (counters per row). Must stay 2^16: each row takes a 16-bit hash slice. */
export const SKETCH_WIDTH = 65536;

// A rejection always arrives inside a window that ends at most 1 s from now, so "seconds until the
// window ends, rounded up, at least 1" is always exactly 1 with 1-second windows. Precomputing the
// decisions keeps rejections allocation-free too.
const RETRY_AFTER_SECS = Math.max(1, Math.ceil(WINDOW_MS / 1000));
const OK: RateDecision = Object.freeze({ ok: true as const });
const LIMITED: RateDecision = Object.freeze({
  ok: false as const,
  reason: "rate_limit" as const,
  retryAfterSecs: RETRY_AFTER_SECS,
});
const LIMITED_BYO: RateDecision = Object.freeze({
  ok: false as const,
  reason: "rate_limit_byo_global" as const,
  retryAfterSecs: RETRY_AFTER_SECS,
});

const defaultNow = (): number => performance.now();

// Row r's slot pair starts at ((r << 16) | column) << 1. Each slot is [window stamp, count]: a count
// whose stamp is not the current window reads as 0, so a new window needs no bulk clear (clearing
// 2 MiB once a second would stall whichever request crossed the boundary).
const ROW_SHIFT = 16;

/** Random 32-bit seed from the CSPRNG, so hash collisions cannot be precomputed across processes. */
function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

// Bound once: a property lookup on Bun.hash per call is measurable at this scale.
const xxHash32 = Bun.hash.xxHash32;

export class RateGuard {
  readonly #perLimit: number;
  readonly #byoLimit: number;
  readonly #now: () => number;
  readonly #origin: number;
  /** Interleaved [stamp, count] pairs, ROWS × WIDTH of them; empty when the tier is disabled. */
  readonly #table: Uint32Array;
  readonly #seedA: number;
  readonly #seedB: number;
  /** Current window's stamp (window index + 1, so the zero-filled table reads as stale) and end. */
  #stamp = 0;
  #windowEnd = Number.NEGATIVE_INFINITY;
  #byoStamp = 0;
  #byoCount = 0;

  constructor(opts: RateGuardOptions, shared?: SharedState) {
    this.#perLimit = validLimit(opts.perCredentialRps, "perCredentialRps");
    this.#byoLimit = validLimit(opts.byoRps, "byoRps");
    this.#now = opts.now ?? defaultNow;
    this.#origin = this.#now();
    this.#table = new Uint32Array(this.#perLimit > 0 && shared === undefined ? 2 * SKETCH_ROWS * SKETCH_WIDTH : 0);
    this.#seedA = randomSeed();
    this.#seedB = randomSeed();
    // Shared mode: the object built is the subclass (its super() call comes back here without a state).
    if (shared !== undefined) return new SharedRateGuard(opts, shared);
  }

  /**
   * Charges one request to the tiers that apply and says whether it may proceed. `managed` is
   * "the token starts with `bai_`" (the caller already knows; passing it avoids a second look).
   */
  check(token: string, managed: boolean): RateDecision {
    const perLimit = this.#perLimit;
    const byoLimit = this.#byoLimit;
    if (perLimit === 0 && byoLimit === 0) return OK;
    const stamp = this.#currentStamp();

    if (byoLimit > 0 && !managed) {
      // Saturating at limit + 1 keeps the count bounded; the decision only needs "over or not".
      const count = this.#byoStamp === stamp ? this.#byoCount : 0;
      if (count > byoLimit) return LIMITED_BYO;
      this.#byoStamp = stamp;
      this.#byoCount = count + 1;
      // The per-credential tier is deliberately not charged when the global tier trips (seed §7.2).
      if (count + 1 > byoLimit) return LIMITED_BYO;
    }
    if (perLimit === 0) return OK;

    // Two seeded 32-bit hashes of the token's bytes = 64 bits, so two distinct tokens share all four
    // counters with probability ~2^-64 (one hash sliced for all rows would make that 2^-32, and the
    // pair would share a budget for the whole process lifetime). Bun's native xxHash32 hashes the
    // string's UTF-8 form without a JS-visible allocation and is ~2× faster than murmur-style mixing
    // written in JS over charCodeAt (measured: 82 vs ~155 ns for both hashes of 118 chars). UTF-8 is
    // injective on well-formed strings; only lone surrogates (which header values cannot hold) merge.
    const ha = xxHash32(token, this.#seedA);
    const hb = xxHash32(token, this.#seedB);

    const t = this.#table;
    const i0 = (ha & 0xffff) << 1;
    const i1 = ((1 << ROW_SHIFT) | (ha >>> 16)) << 1;
    const i2 = ((2 << ROW_SHIFT) | (hb & 0xffff)) << 1;
    const i3 = ((3 << ROW_SHIFT) | (hb >>> 16)) << 1;
    const c0 = t[i0] === stamp ? t[i0 + 1]! : 0;
    const c1 = t[i1] === stamp ? t[i1 + 1]! : 0;
    const c2 = t[i2] === stamp ? t[i2 + 1]! : 0;
    const c3 = t[i3] === stamp ? t[i3 + 1]! : 0;
    let min = c0 < c1 ? c0 : c1;
    if (c2 < min) min = c2;
    if (c3 < min) min = c3;
    // Already over: still charged in effect (it stays over until the window ends), and no counter
    // needs to move since all are capped at limit + 1.
    if (min > perLimit) return LIMITED;
    const est = min + 1;
    // Conservative update: only counters below the new estimate are raised to it. Never below the
    // true count of any key (so still an over-estimate), but much less crowding than adding to all.
    if (c0 < est) { t[i0] = stamp; t[i0 + 1] = est; }
    if (c1 < est) { t[i1] = stamp; t[i1 + 1] = est; }
    if (c2 < est) { t[i2] = stamp; t[i2 + 1] = est; }
    if (c3 < est) { t[i3] = stamp; t[i3 + 1] = est; }
    return est > perLimit ? LIMITED : OK;
  }

  /** Bytes held by the guard's counters: fixed at construction, whatever the number of keys. */
  retainedBytes(): number {
    return this.#table.byteLength;
  }

  #currentStamp(): number {
    const now = this.#now();
    if (now < this.#windowEnd) return this.#stamp;
    // Rolled over (or first use): recompute from the origin so idle gaps skip whole windows.
    const index = Math.floor((now - this.#origin) / WINDOW_MS);
    this.#windowEnd = this.#origin + (index + 1) * WINDOW_MS;
    // +1 so a zero-filled slot never matches; >>> 0 matches what a Uint32Array slot holds.
    this.#stamp = (index + 1) >>> 0;
    return this.#stamp;
  }
}

/** Shared-mode state: the Int32Array over SharedState.rate and the packing of each tier. */
interface SharedRate {
  readonly words: Int32Array;
  readonly perBits: number;
  readonly byoBits: number;
}

/** The guard over a SharedState (workers ≥ 2): process-wide counts, see the header. Built by `new RateGuard(opts, shared)`. */
export class SharedRateGuard extends RateGuard {
  readonly #perLimit: number;
  readonly #byoLimit: number;
  readonly #now: () => number;
  readonly #seedA: number;
  readonly #seedB: number;
  readonly #sh: SharedRate;
  #stamp = 0;
  #windowEnd = Number.NEGATIVE_INFINITY;

  constructor(opts: RateGuardOptions, shared: SharedState) {
    super({ perCredentialRps: 0, byoRps: 0 }); // the private tiers stay off: nothing allocated
    const per = validLimit(opts.perCredentialRps, "perCredentialRps");
    const byo = validLimit(opts.byoRps, "byoRps");
    assertSharedState(shared);
    if (shared.perCredentialRps !== per || shared.byoRps !== byo) {
      throw new RangeError("the shared rate state was allocated for other limits");
    }
    this.#perLimit = sharedLimit(per);
    this.#byoLimit = sharedLimit(byo);
    this.#now = opts.now ?? sharedClock(shared.originEpochMs);
    this.#seedA = shared.seedA;
    this.#seedB = shared.seedB;
    this.#sh = { words: new Int32Array(shared.rate), perBits: countBitsFor(this.#perLimit), byoBits: countBitsFor(this.#byoLimit) };
  }

  /** Bytes of the shared sketch (the same buffer for every worker), whatever the number of keys. */
  override retainedBytes(): number {
    return this.#sh.words.byteLength - 4 * RATE_HEADER_INTS;
  }

  /** check() over the shared buffer: same tiers and decisions, counts process-wide (see the header). */
  override check(token: string, managed: boolean): RateDecision {
    const sh = this.#sh;
    const perLimit = this.#perLimit;
    const byoLimit = this.#byoLimit;
    if (perLimit === 0 && byoLimit === 0) return OK;
    const stamp = this.#currentStamp();
    const w = sh.words;

    if (byoLimit > 0 && !managed) {
      // Saturates at limit + 1: a request arriving there is refused without a write, as privately.
      if (windowIncrement(w, RATE_BYO_WORD, stamp, sh.byoBits, byoLimit + 1) > byoLimit) return LIMITED_BYO;
    }
    if (perLimit === 0) return OK;

    const ha = xxHash32(token, this.#seedA);
    const hb = xxHash32(token, this.#seedB);
    const bits = sh.perBits;
    const i0 = RATE_HEADER_INTS + (ha & 0xffff);
    const i1 = RATE_HEADER_INTS + ((1 << ROW_SHIFT) | (ha >>> 16));
    const i2 = RATE_HEADER_INTS + ((2 << ROW_SHIFT) | (hb & 0xffff));
    const i3 = RATE_HEADER_INTS + ((3 << ROW_SHIFT) | (hb >>> 16));
    const cap = perLimit + 1;
    // Already over (all four rows at the cap): refuse without the lock or a write, as privately; within a window the
    // counters only rise, so this cannot refuse a request that the locked path below would admit.
    if (
      windowRead(w, i0, stamp, bits) >= cap &&
      windowRead(w, i1, stamp, bits) >= cap &&
      windowRead(w, i2, stamp, bits) >= cap &&
      windowRead(w, i3, stamp, bits) >= cap
    ) {
      return LIMITED;
    }
    // One key's checks are serialised by its stripe lock (a key always maps to the same one), so its estimate counts
    // every earlier request of its own: exactly N pass per window however many workers race. Other keys sharing a
    // counter only ever raise it (compare-and-swap to the larger value), which keeps every key's counters at or above
    // its true count: the invariant that makes the sketch an over-estimate. Measured exactness: test/shared-state.test.ts.
    const lk = RATE_LOCKS_AT + ((ha ^ hb) & (RATE_LOCKS - 1));
    while (Atomics.compareExchange(w, lk, 0, lockOwner) !== 0); // holder's id: see releaseDeadThread
    const c0 = windowRead(w, i0, stamp, bits);
    const c1 = windowRead(w, i1, stamp, bits);
    const c2 = windowRead(w, i2, stamp, bits);
    const c3 = windowRead(w, i3, stamp, bits);
    let min = c0 < c1 ? c0 : c1;
    if (c2 < min) min = c2;
    if (c3 < min) min = c3;
    if (min > perLimit) {
      // Went over between the check above and the lock (an earlier request of this key, on another worker).
      Atomics.store(w, lk, 0);
      return LIMITED;
    }
    const est = min + 1; // ≤ cap, so it fits the count bits
    // Conservative update, as privately: only counters below the new estimate are raised to it.
    if (c0 < est) windowRaise(w, i0, stamp, bits, est);
    if (c1 < est) windowRaise(w, i1, stamp, bits, est);
    if (c2 < est) windowRaise(w, i2, stamp, bits, est);
    if (c3 < est) windowRaise(w, i3, stamp, bits, est);
    Atomics.store(w, lk, 0);
    return est > perLimit ? LIMITED : OK;
  }

  #currentStamp(): number {
    const now = this.#now();
    if (now < this.#windowEnd) return this.#stamp;
    // Rolled over (or first use): recompute from the shared origin (the clock's 0) so idle gaps skip whole windows.
    const index = Math.floor(now / WINDOW_MS);
    this.#windowEnd = (index + 1) * WINDOW_MS;
    // +1 so a zero-filled slot never matches; >>> 0 matches what a Uint32Array slot holds.
    this.#stamp = (index + 1) >>> 0;
    return this.#stamp;
  }
}

/**
 * Count of packed word `i` in window `stamp`, also when another worker has already moved it to the next window (its
 * clock is a hair ahead): that count is the one this request will join. Any older window reads as 0.
 */
function windowRead(a: Int32Array, i: number, stamp: number, bits: number): number {
  const word = Atomics.load(a, i);
  const ws = word >>> bits;
  const mine = stamp & (0xffffffff >>> bits);
  return ws === mine || ws === ((mine + 1) & (0xffffffff >>> bits)) ? word & ((1 << bits) - 1) : 0;
}

/**
 * Raises packed word `i` to `value` in window `stamp` unless it already holds as much (another key sharing the counter
 * may have raised it meanwhile); a word from an older window restarts at `value`, one in the next window is joined.
 */
function windowRaise(a: Int32Array, i: number, stamp: number, bits: number, value: number): void {
  const stampMask = 0xffffffff >>> bits;
  const countMask = (1 << bits) - 1;
  const mine = stamp & stampMask;
  const next = (mine + 1) & stampMask;
  for (;;) {
    const word = Atomics.load(a, i);
    const ws = word >>> bits;
    const current = ws === mine || ws === next;
    if (current && (word & countMask) >= value) return;
    const base = current ? word & ~countMask : mine << bits;
    if (Atomics.compareExchange(a, i, word, base | value) === word) return;
  }
}

/**
 * Adds one to packed word `i` for window `stamp`, saturating at `cap`, and returns the new count. A word from an older
 * window restarts at 1; one already in the next window (a worker whose clock is a hair ahead) is joined, never reset.
 * A compare-and-swap loop on one word: lock-free, and every successful increment returns a distinct count.
 */
function windowIncrement(a: Int32Array, i: number, stamp: number, bits: number, cap: number): number {
  const stampMask = 0xffffffff >>> bits;
  const countMask = (1 << bits) - 1;
  const mine = stamp & stampMask;
  const next = (mine + 1) & stampMask;
  for (;;) {
    const word = Atomics.load(a, i);
    const ws = word >>> bits;
    let count: number;
    let base: number;
    if (ws === mine || ws === next) {
      count = word & countMask;
      base = word & ~countMask;
    } else {
      count = 0;
      base = mine << bits;
    }
    if (count >= cap) return cap;
    if (Atomics.compareExchange(a, i, word, base | (count + 1)) === word) return count + 1;
  }
}

function validLimit(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) {
    throw new RangeError(`${name} must be an integer from 0 to 4294967294`);
  }
  return v;
}
