// Per-provider circuit breaker (SPEC §2 circuit_breaker_*, §4 last check, §8 503
// "provider temporarily unavailable" with Retry-After), the seed's windowed policy (reference §7.3):
//
//   CLOSED     allow() always admits. A success resets the failure count to 0. A failure starts a new
//              window (count 1, at now) when the count was 0 or the window has expired, else adds 1;
//              reaching the threshold opens the breaker at now. Because any success resets the count,
//              it trips only on `threshold` failures within `windowSecs` with no success between.
//   OPEN       allow() refuses until `resetSecs` have passed since opening; then the breaker goes
//              HALF_OPEN and that caller takes the single probe permit (PROBE). Outcomes arriving while
//              OPEN (from requests admitted before it opened) are ignored.
//   HALF_OPEN  allow() refuses once the permit is taken. Only the probe's own outcome counts: a success
//              closes (count 0), a failure reopens at now, a neutral outcome (the probe never learnt
//              anything about the provider: its client stalled or left) hands the permit back, so the
//              next request probes instead. Stragglers admitted while CLOSED are ignored, as when OPEN.
//   threshold 0 disables the breaker: allow() always admits and outcomes are ignored.
//
// Outcome mapping for the caller, recorded exactly once per request that allow() admitted, with the
// permit allow() returned:
//   - any received status < 500, 429 and every other 4xx included → onSuccess() (a 429 says the
//     provider is up and talking; tripping on it would turn one tenant's quota into an outage for all);
//   - status ≥ 500 → onFailure();
//   - no status, the provider's fault (DNS, connect failure after retries, reset, no head within the
//     read timeout after the whole body was sent) → onFailure();
//   - no status, the client's doing (it left, stalled its upload, sent an oversize body) → onNeutral():
//     nothing was learnt about the provider, and a client must not be able to open (or close) the breaker.
// A request refused by allow() records nothing. An admitted probe that never reported would keep the
// breaker HALF_OPEN and refusing everything, hence "exactly once", and hence the pipeline takes the
// permit only just before the upstream send (after a small body has been read), never while waiting on
// its client; wouldAllow() is the side-effect-free check it makes earlier, to refuse without reading.
//
// Shared mode (workers ≥ 2, `new CircuitBreaker(opts, breakerSlot(shared, name))`, layout in shared-state.ts): the same
// machine over one 64-byte slot per provider in a SharedArrayBuffer, so failures on every worker add up and exactly one
// half-open probe is out process-wide. Every transition (and every read of the two times) happens under the slot's spin
// lock, a compare-and-swap on one word, held for a few dozen instructions of arithmetic: never across an await, never
// around any call (the clock is read just before the lock is taken). The hot paths stay lock-free: allow()/wouldAllow() when CLOSED are
// one Atomics.load of the state; onSuccess() when CLOSED with no failures counted is two loads and no write.
// Clock: the shared clock (shared-state.ts), because performance.now() has a per-thread origin: a worker's reading of
// "opened at" would mean nothing to another. It lives in a subclass, SharedCircuitBreaker, which `new CircuitBreaker(opts,
// slot)` returns: workers = 1 passes no slot and runs today's class unchanged, method for method (no flag tested per
// call; a thread only ever holds one of the two classes, so its call sites stay monomorphic).
//
// Clock: milliseconds (the seed used whole seconds). Millisecond resolution makes "reset after 30 s"
// mean 30 s, not anywhere in 29–30 s depending on where in the second the breaker opened.

import {
  assertBreakerSlot,
  BREAKER_SLOT_INTS,
  BRK_F64_OPENED_AT,
  BRK_F64_WINDOW_START,
  BRK_FAILURES,
  BRK_LOCK,
  BRK_PERMITS,
  BRK_PROBE_OWNER,
  BRK_STATE,
  lockOwner,
  sharedClock,
  type SharedBreakerSlot,
} from "./shared-state.ts";

export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Failures within the window that open the breaker; 0 disables it. */
  threshold: number;
  /** Length of the failure-counting window, seconds. */
  windowSecs: number;
  /** Time the breaker stays open before one probe is let through, seconds. */
  resetSecs: number;
  /** Millisecond clock, injectable for tests. Default: `performance.now()` (monotonic). */
  now?: () => number;
}

// Numeric states: the hot path compares small integers; the string view is for metrics and tests.
const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;
const STATE_NAMES: readonly BreakerState[] = ["closed", "open", "half_open"];

/** The seed hard-codes one half-open probe. */
const HALF_OPEN_PERMITS = 1;

/** What allow() granted: nothing, an ordinary admission, or the half-open probe. Passed back with the outcome. */
export type Permit = 0 | 1 | 2;
export const DENIED: Permit = 0;
export const ADMITTED: Permit = 1;
export const PROBE: Permit = 2;

const defaultNow = (): number => performance.now();

/**
 * The outcome mapping above as code, so callers need not re-derive it: `status` is the received
 * status (undefined when no head arrived), `errored` whether the attempt ended in an error the
 * provider is to blame for. true → onFailure(), false → onSuccess() (or onNeutral() without a status).
 */
export function isBreakerFailure(status: number | undefined, errored: boolean): boolean {
  return status === undefined ? errored : status >= 500;
}

/** Shared-mode views of one slot: Int32 words at i + BRK_*, Float64 times at f + BRK_F64_*. */
interface Slot {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly i: number;
  readonly f: number;
}

export class CircuitBreaker {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #resetMs: number;
  readonly #now: () => number;
  #state: number = CLOSED;
  #failures = 0;
  #windowStart = 0;
  #openedAt = 0;
  #permits = 0;

  constructor(opts: CircuitBreakerOptions, shared?: SharedBreakerSlot) {
    if (!Number.isInteger(opts.threshold) || opts.threshold < 0) {
      throw new RangeError("threshold must be a non-negative integer");
    }
    if (!(opts.windowSecs >= 0) || !(opts.resetSecs >= 0)) {
      throw new RangeError("windowSecs and resetSecs must be non-negative");
    }
    this.#threshold = opts.threshold;
    this.#windowMs = opts.windowSecs * 1000;
    this.#resetMs = opts.resetSecs * 1000;
    this.#now = opts.now ?? defaultNow;
    // Shared mode: the object built is the subclass (its super() call comes back here without a slot).
    if (shared !== undefined) return new SharedCircuitBreaker(opts, shared);
  }

  get state(): BreakerState {
    return STATE_NAMES[this.#state]!;
  }

  /**
   * Would allow() admit a request now? No side effect: no permit is taken and OPEN does not turn HALF_OPEN.
   * Lets the pipeline refuse an open provider early, without reading a body it would not send.
   */
  wouldAllow(): boolean {
    if (this.#state === CLOSED) return true;
    if (this.#state === OPEN) return this.#now() - this.#openedAt >= this.#resetMs;
    return this.#permits > 0;
  }

  /**
   * May a request go to this provider now? DENIED → 503 "provider temporarily unavailable". Call it just before the
   * request is sent upstream, and report the outcome with the permit it returned, exactly once.
   */
  allow(): Permit {
    // CLOSED first and without a clock read: it is the state of nearly every request.
    if (this.#state === CLOSED) return ADMITTED;
    if (this.#state === OPEN) {
      if (this.#now() - this.#openedAt < this.#resetMs) return DENIED;
      this.#state = HALF_OPEN;
      this.#permits = HALF_OPEN_PERMITS;
    }
    if (this.#permits > 0) {
      this.#permits--;
      return PROBE;
    }
    return DENIED;
  }

  /** Whole seconds until allow() would let a probe through (at least 1): the 503's Retry-After. */
  retryAfterSecs(): number {
    if (this.#state !== OPEN) return 1; // HALF_OPEN: the probe in flight decides any moment now
    return Math.max(1, Math.ceil((this.#resetMs - (this.#now() - this.#openedAt)) / 1000));
  }

  /** The provider answered (any status < 500, 429 included). */
  onSuccess(permit: Permit): void {
    const s = this.#state;
    if (s === CLOSED) {
      this.#failures = 0;
    } else if (s === HALF_OPEN && permit === PROBE) {
      this.#state = CLOSED;
      this.#failures = 0;
    }
    // OPEN, or a straggler while HALF_OPEN: ignored; only the probe after the reset time decides.
  }

  /** Status ≥ 500, or a connect failure / reset / timeout before the response head that the provider caused. */
  onFailure(permit: Permit): void {
    if (this.#threshold === 0) return;
    const s = this.#state;
    if (s === CLOSED) {
      const now = this.#now();
      if (this.#failures === 0 || now - this.#windowStart >= this.#windowMs) {
        this.#failures = 1;
        this.#windowStart = now;
      } else {
        this.#failures++;
      }
      if (this.#failures >= this.#threshold) this.#open(now);
    } else if (s === HALF_OPEN && permit === PROBE) {
      this.#open(this.#now());
    }
    // OPEN, or a straggler while HALF_OPEN: ignored.
  }

  /**
   * The request ended with nothing learnt about the provider (the client left, stalled or sent too much before any
   * answer): the count is left as it is, and a probe's permit goes back, so the next request probes instead.
   */
  onNeutral(permit: Permit): void {
    if (this.#state === HALF_OPEN && permit === PROBE && this.#permits < HALF_OPEN_PERMITS) this.#permits++;
  }

  #open(now: number): void {
    this.#state = OPEN;
    this.#openedAt = now;
    this.#permits = 0;
  }
}

/**
 * The breaker over a shared slot (workers ≥ 2): the same transitions as CircuitBreaker, on the slot, under its lock.
 * Built by `new CircuitBreaker(opts, slot)`.
 */
export class SharedCircuitBreaker extends CircuitBreaker {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #resetMs: number;
  readonly #now: () => number;
  readonly #slot: Slot;

  constructor(opts: CircuitBreakerOptions, shared: SharedBreakerSlot) {
    super(opts); // validates; no slot, so it builds this object, not another
    assertBreakerSlot(shared);
    this.#threshold = opts.threshold;
    this.#windowMs = opts.windowSecs * 1000;
    this.#resetMs = opts.resetSecs * 1000;
    this.#now = opts.now ?? sharedClock(shared.originEpochMs);
    this.#slot = {
      i32: new Int32Array(shared.buffer),
      f64: new Float64Array(shared.buffer),
      i: shared.index * BREAKER_SLOT_INTS,
      f: (shared.index * BREAKER_SLOT_INTS) / 2,
    };
  }

  override get state(): BreakerState {
    return STATE_NAMES[Atomics.load(this.#slot.i32, this.#slot.i + BRK_STATE)]!;
  }

  // No try/finally: JSC compiles a function holding one far worse (measured: a closed onSuccess went from ~15 to ~140 ns),
  // and nothing between lock() and unlock() can throw: the clock is read before the lock is taken (which also keeps the
  // hold short), the rest is arithmetic on the slot. A reading a few nanoseconds old is indistinguishable from a call
  // that arrived those nanoseconds earlier.

  override wouldAllow(): boolean {
    const sl = this.#slot;
    const st = Atomics.load(sl.i32, sl.i + BRK_STATE);
    if (st === CLOSED) return true;
    const now = this.#now();
    lock(sl);
    const s = Atomics.load(sl.i32, sl.i + BRK_STATE);
    const ok = s === CLOSED || (s === OPEN ? now - sl.f64[sl.f + BRK_F64_OPENED_AT]! >= this.#resetMs : Atomics.load(sl.i32, sl.i + BRK_PERMITS) > 0);
    unlock(sl);
    return ok;
  }

  override allow(): Permit {
    const sl = this.#slot;
    if (Atomics.load(sl.i32, sl.i + BRK_STATE) === CLOSED) return ADMITTED;
    const now = this.#now();
    lock(sl);
    const s = Atomics.load(sl.i32, sl.i + BRK_STATE);
    let permit: Permit = DENIED;
    if (s === CLOSED) {
      permit = ADMITTED;
    } else if (s === HALF_OPEN || now - sl.f64[sl.f + BRK_F64_OPENED_AT]! >= this.#resetMs) {
      // HALF_OPEN, or OPEN with the reset time passed: this caller turns it HALF_OPEN and takes the permit.
      const permits = s === HALF_OPEN ? Atomics.load(sl.i32, sl.i + BRK_PERMITS) : HALF_OPEN_PERMITS;
      if (s !== HALF_OPEN) Atomics.store(sl.i32, sl.i + BRK_STATE, HALF_OPEN);
      if (permits > 0) {
        Atomics.store(sl.i32, sl.i + BRK_PERMITS, permits - 1);
        Atomics.store(sl.i32, sl.i + BRK_PROBE_OWNER, lockOwner); // so a dead thread's probe can be handed back
        permit = PROBE;
      } else {
        Atomics.store(sl.i32, sl.i + BRK_PERMITS, permits);
      }
    }
    unlock(sl);
    return permit;
  }

  override retryAfterSecs(): number {
    const sl = this.#slot;
    if (Atomics.load(sl.i32, sl.i + BRK_STATE) !== OPEN) return 1;
    const now = this.#now();
    lock(sl);
    const secs =
      Atomics.load(sl.i32, sl.i + BRK_STATE) === OPEN
        ? Math.max(1, Math.ceil((this.#resetMs - (now - sl.f64[sl.f + BRK_F64_OPENED_AT]!)) / 1000))
        : 1;
    unlock(sl);
    return secs;
  }

  override onSuccess(permit: Permit): void {
    const sl = this.#slot;
    const st = Atomics.load(sl.i32, sl.i + BRK_STATE);
    // The common case, lock-free and without a write: closed with nothing counted, so nothing to reset.
    if (st === CLOSED && Atomics.load(sl.i32, sl.i + BRK_FAILURES) === 0) return;
    if (st === OPEN || (st === HALF_OPEN && permit !== PROBE)) return; // ignored, as privately
    lock(sl);
    const s = Atomics.load(sl.i32, sl.i + BRK_STATE);
    if (s === CLOSED) {
      Atomics.store(sl.i32, sl.i + BRK_FAILURES, 0);
    } else if (s === HALF_OPEN && permit === PROBE) {
      Atomics.store(sl.i32, sl.i + BRK_FAILURES, 0);
      Atomics.store(sl.i32, sl.i + BRK_PROBE_OWNER, 0);
      Atomics.store(sl.i32, sl.i + BRK_STATE, CLOSED);
    }
    unlock(sl);
  }

  override onFailure(permit: Permit): void {
    if (this.#threshold === 0) return;
    const sl = this.#slot;
    const st = Atomics.load(sl.i32, sl.i + BRK_STATE);
    if (st === OPEN || (st === HALF_OPEN && permit !== PROBE)) return; // ignored, as privately
    const now = this.#now();
    lock(sl);
    const s = Atomics.load(sl.i32, sl.i + BRK_STATE);
    if (s === CLOSED) {
      let failures = Atomics.load(sl.i32, sl.i + BRK_FAILURES);
      if (failures === 0 || now - sl.f64[sl.f + BRK_F64_WINDOW_START]! >= this.#windowMs) {
        failures = 1;
        sl.f64[sl.f + BRK_F64_WINDOW_START] = now;
      } else {
        failures++;
      }
      Atomics.store(sl.i32, sl.i + BRK_FAILURES, failures);
      if (failures >= this.#threshold) openShared(sl, now);
    } else if (s === HALF_OPEN && permit === PROBE) {
      openShared(sl, now);
    }
    unlock(sl);
  }

  override onNeutral(permit: Permit): void {
    const sl = this.#slot;
    if (permit !== PROBE || Atomics.load(sl.i32, sl.i + BRK_STATE) !== HALF_OPEN) return;
    lock(sl);
    const permits = Atomics.load(sl.i32, sl.i + BRK_PERMITS);
    if (Atomics.load(sl.i32, sl.i + BRK_STATE) === HALF_OPEN && permits < HALF_OPEN_PERMITS) {
      Atomics.store(sl.i32, sl.i + BRK_PERMITS, permits + 1);
      Atomics.store(sl.i32, sl.i + BRK_PROBE_OWNER, 0);
    }
    unlock(sl);
  }
}

// Spin lock on the slot's lock word. The holder runs a few dozen instructions without awaiting, so a waiter spins at most
// that long unless the holder's thread is preempted, when it spins until the scheduler resumes it (rare; the section is
// too short for a futex wait to pay off). Atomics are sequentially consistent, so the lock's acquire/release order the
// plain Float64 time fields between threads.
// The lock word holds the holder's thread id (shared-state.ts lockOwner), so that the supervisor can free a lock whose
// thread died inside it (releaseDeadThread).
function lock(sl: Slot): void {
  while (Atomics.compareExchange(sl.i32, sl.i + BRK_LOCK, 0, lockOwner) !== 0);
}

function unlock(sl: Slot): void {
  Atomics.store(sl.i32, sl.i + BRK_LOCK, 0);
}

/** Opens the slot at `now`; called under the lock. The state is stored last, after the time it will be read with. */
function openShared(sl: Slot, now: number): void {
  sl.f64[sl.f + BRK_F64_OPENED_AT] = now;
  Atomics.store(sl.i32, sl.i + BRK_PERMITS, 0);
  Atomics.store(sl.i32, sl.i + BRK_PROBE_OWNER, 0);
  Atomics.store(sl.i32, sl.i + BRK_STATE, OPEN);
}
