// Per-provider circuit breaker (SPEC §2 circuit_breaker_*, §4 last check, §8 503
// "provider temporarily unavailable"), the seed's windowed policy (reference §7.3):
//
//   CLOSED     allow() always true. A success resets the failure count to 0. A failure starts a new
//              window (count 1, at now) when the count was 0 or the window has expired, else adds 1;
//              reaching the threshold opens the breaker at now. Because any success resets the count,
//              it trips only on `threshold` failures within `windowSecs` with no success between.
//   OPEN       allow() is false until `resetSecs` have passed since opening; then the breaker goes
//              HALF_OPEN and that caller takes the single probe permit. Outcomes arriving while OPEN
//              (from requests admitted before it opened) are ignored.
//   HALF_OPEN  allow() is false once the permit is taken. A success closes (count 0); a failure
//              reopens at now.
//   threshold 0 disables the breaker: allow() is always true and outcomes are ignored.
//
// Outcome mapping for the caller, recorded exactly once per request that allow() admitted, when the
// request is over (the logging phase, in a `finally`, so aborts and exceptions report too):
//   - any received status < 500, 429 and every other 4xx included → onSuccess() (a 429 says the
//     provider is up and talking; tripping on it would turn one tenant's quota into an outage for all);
//   - status ≥ 500 → onFailure();
//   - no status, with an error (DNS, connect failure after retries, timeout before the head) → onFailure();
//   - no status and no error (the client went away first) → onSuccess().
// A request rejected by allow() must record nothing. If an admitted probe never reported, the breaker
// would stay HALF_OPEN and reject everything, hence the "exactly once, in a finally" rule.
//
// Clock: milliseconds (the seed used whole seconds). Millisecond resolution makes "reset after 30 s"
// mean 30 s, not anywhere in 29–30 s depending on where in the second the breaker opened.

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

const defaultNow = (): number => performance.now();

/**
 * The outcome mapping above as code, so callers need not re-derive it: `status` is the received
 * status (undefined when no head arrived), `errored` whether the attempt ended in an error.
 * true → onFailure(), false → onSuccess().
 */
export function isBreakerFailure(status: number | undefined, errored: boolean): boolean {
  return status === undefined ? errored : status >= 500;
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

  constructor(opts: CircuitBreakerOptions) {
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
  }

  get state(): BreakerState {
    return STATE_NAMES[this.#state]!;
  }

  /** May a request go to this provider now? false → 503 "provider temporarily unavailable". */
  allow(): boolean {
    // CLOSED first and without a clock read: it is the state of nearly every request.
    if (this.#state === CLOSED) return true;
    if (this.#state === OPEN) {
      if (this.#now() - this.#openedAt < this.#resetMs) return false;
      this.#state = HALF_OPEN;
      this.#permits = HALF_OPEN_PERMITS;
    }
    if (this.#permits > 0) {
      this.#permits--;
      return true;
    }
    return false;
  }

  /** The provider answered (any status < 500, 429 included), or the client left with no error. */
  onSuccess(): void {
    const s = this.#state;
    if (s === CLOSED) {
      this.#failures = 0;
    } else if (s === HALF_OPEN) {
      this.#state = CLOSED;
      this.#failures = 0;
    }
    // OPEN: ignored; only the probe after the reset time decides.
  }

  /** Status ≥ 500, or a connect failure / timeout before the response head. */
  onFailure(): void {
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
    } else if (s === HALF_OPEN) {
      this.#open(this.#now());
    }
    // OPEN: ignored.
  }

  #open(now: number): void {
    this.#state = OPEN;
    this.#openedAt = now;
    this.#permits = 0;
  }
}
