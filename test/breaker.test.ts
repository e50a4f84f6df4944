import { describe, expect, test } from "bun:test";
import { ADMITTED, CircuitBreaker, DENIED, isBreakerFailure, PROBE } from "../src/controls/breaker.ts";
import { allocateSharedState, breakerSlot } from "../src/controls/shared-state.ts";

// BEYOND_AI_GUARDS_SHARED=1 runs every test below against a breaker on a shared slot (workers >= 2) instead of private
// fields; test/shared-state.test.ts does that run. Each breaker gets a fresh state, so tests stay independent.
const SHARED = process.env.BEYOND_AI_GUARDS_SHARED === "1";

/** A hand-driven millisecond clock: tests move time instead of sleeping. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** threshold 3, window 10 s, reset 30 s unless overridden. */
function breaker(c: { now: () => number }, threshold = 3, windowSecs = 10, resetSecs = 30): CircuitBreaker {
  const opts = { threshold, windowSecs, resetSecs, now: c.now };
  if (!SHARED) return new CircuitBreaker(opts);
  return new CircuitBreaker(opts, breakerSlot(allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["p"] }), "p"));
}

function fail(b: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) b.onFailure(ADMITTED);
}

describe("closed", () => {
  test("a new breaker is closed and allows requests", () => {
    const b = breaker(clock());
    expect(b.state).toBe("closed");
    for (let i = 0; i < 100; i++) expect(b.allow()).toBe(ADMITTED);
  });

  test("opens when failures reach the threshold within the window", () => {
    const c = clock();
    const b = breaker(c);
    b.onFailure(ADMITTED);
    c.advance(4_000);
    b.onFailure(ADMITTED);
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(ADMITTED);
    c.advance(5_999); // 9.999 s after the first failure: still inside the 10 s window
    b.onFailure(ADMITTED);
    expect(b.state).toBe("open");
  });

  test("failures spread beyond the window do not open it", () => {
    const c = clock();
    const b = breaker(c);
    for (let i = 0; i < 20; i++) {
      b.onFailure(ADMITTED);
      b.onFailure(ADMITTED);
      c.advance(10_000); // the window expires before the third failure, which starts a new one
    }
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(ADMITTED);
  });

  test("an expired window restarts the count at the next failure", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 2);
    c.advance(10_000);
    fail(b, 2); // count 1 (new window), then 2
    expect(b.state).toBe("closed");
    b.onFailure(ADMITTED); // 3 within the new window
    expect(b.state).toBe("open");
  });

  test("a success resets the failure count", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 2);
    b.onSuccess(ADMITTED);
    fail(b, 2);
    expect(b.state).toBe("closed");
    b.onSuccess(ADMITTED);
    fail(b, 2);
    expect(b.state).toBe("closed");
    b.onFailure(ADMITTED);
    expect(b.state).toBe("open");
  });

  test("a 429 (or any status below 500) is recorded as a success and resets the count", () => {
    const c = clock();
    const b = breaker(c);
    const record = (status: number): void => (isBreakerFailure(status, false) ? b.onFailure(ADMITTED) : b.onSuccess(ADMITTED));
    for (let i = 0; i < 10; i++) {
      record(503);
      record(502);
      record(429);
      record(401);
    }
    expect(b.state).toBe("closed");
    record(500);
    record(500);
    record(500);
    expect(b.state).toBe("open");
  });

  test("threshold 1 opens on the first failure", () => {
    const b = breaker(clock(), 1);
    b.onFailure(ADMITTED);
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(DENIED);
  });
});

describe("outcome mapping", () => {
  test("429 and every other status below 500 are successes; 5xx are failures", () => {
    for (const status of [200, 201, 301, 400, 401, 403, 404, 413, 429, 499]) {
      expect(isBreakerFailure(status, false)).toBe(false);
      // A received status decides even if the body later errored (the provider did answer).
      expect(isBreakerFailure(status, true)).toBe(false);
    }
    for (const status of [500, 502, 503, 504, 529]) expect(isBreakerFailure(status, false)).toBe(true);
  });

  test("no status: an error the provider caused (connect, DNS, head timeout) is a failure, anything else is not", () => {
    expect(isBreakerFailure(undefined, true)).toBe(true);
    expect(isBreakerFailure(undefined, false)).toBe(false);
  });
});

describe("open", () => {
  test("an open breaker rejects requests until the reset time", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    expect(b.allow()).toBe(DENIED);
    c.advance(29_999);
    expect(b.allow()).toBe(DENIED);
    expect(b.state).toBe("open");
  });

  test("outcomes recorded while open are ignored", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(20_000);
    b.onSuccess(ADMITTED); // a request admitted before opening finishing now must not close it
    expect(b.state).toBe("open");
    b.onFailure(ADMITTED); // nor push the reset time back
    expect(b.state).toBe("open");
    c.advance(10_000); // 30 s after opening
    expect(b.allow()).toBe(PROBE);
    expect(b.state).toBe("half_open");
  });
});

describe("half-open", () => {
  test("after the reset time exactly one probe is allowed; the second caller is rejected", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    expect(b.allow()).toBe(PROBE);
    expect(b.state).toBe("half_open");
    expect(b.allow()).toBe(DENIED);
    c.advance(60_000); // however long the probe takes, no second permit
    expect(b.allow()).toBe(DENIED);
  });

  test("a successful probe closes the breaker with a zero count", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    expect(b.allow()).toBe(PROBE);
    b.onSuccess(PROBE);
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(ADMITTED);
    expect(b.allow()).toBe(ADMITTED);
    fail(b, 2); // a fresh count: two failures do not reopen it
    expect(b.state).toBe("closed");
  });

  test("a failed probe reopens the breaker and restarts the reset time", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    expect(b.allow()).toBe(PROBE);
    c.advance(5_000);
    b.onFailure(PROBE);
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(DENIED);
    c.advance(29_999); // measured from the reopening, not the first opening
    expect(b.allow()).toBe(DENIED);
    c.advance(1);
    expect(b.allow()).toBe(PROBE);
    expect(b.state).toBe("half_open");
    expect(b.allow()).toBe(DENIED);
  });

  test("the reset time is measured in milliseconds, not whole seconds", () => {
    const c = clock(1_000_900); // opening late in a second must not shorten the wait
    const b = breaker(c, 1, 10, 1);
    b.onFailure(ADMITTED);
    c.advance(200); // crosses a whole-second boundary, only 0.2 s elapsed
    expect(b.allow()).toBe(DENIED);
    c.advance(800);
    expect(b.allow()).toBe(PROBE);
  });
});

describe("permits and neutral outcomes (issue 12 item 3)", () => {
  test("wouldAllow has no side effect: past the reset time it says yes but takes no permit and leaves the breaker open", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    expect(b.wouldAllow()).toBe(false);
    c.advance(30_000);
    for (let i = 0; i < 5; i++) expect(b.wouldAllow()).toBe(true);
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(PROBE);
    expect(b.wouldAllow()).toBe(false); // the probe is out
    expect(b.allow()).toBe(DENIED);
  });

  test("an abandoned probe (neutral outcome) hands its permit back: the next request probes and can close the breaker", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    const probe = b.allow();
    expect(probe).toBe(PROBE);
    expect(b.allow()).toBe(DENIED);
    b.onNeutral(probe); // its client stalled or left before any answer
    expect(b.state).toBe("half_open");
    expect(b.wouldAllow()).toBe(true);
    const next = b.allow();
    expect(next).toBe(PROBE);
    expect(b.allow()).toBe(DENIED); // still one probe at a time
    b.onSuccess(next);
    expect(b.state).toBe("closed");
  });

  test("a neutral outcome reported twice cannot mint a second probe permit", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    const probe = b.allow();
    b.onNeutral(probe);
    b.onNeutral(probe);
    expect(b.allow()).toBe(PROBE);
    expect(b.allow()).toBe(DENIED);
  });

  test("while half-open only the probe's outcome counts: stragglers admitted when closed neither close, reopen nor add permits", () => {
    const c = clock();
    const b = breaker(c);
    const straggler = b.allow(); // admitted while closed, still running when the breaker opens
    expect(straggler).toBe(ADMITTED);
    fail(b, 3);
    c.advance(30_000);
    expect(b.allow()).toBe(PROBE);
    b.onSuccess(straggler);
    expect(b.state).toBe("half_open");
    b.onFailure(straggler);
    expect(b.state).toBe("half_open");
    b.onNeutral(straggler);
    expect(b.allow()).toBe(DENIED);
  });

  test("neutral outcomes while closed leave the failure count as it is (a stalled client neither trips nor heals it)", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 2);
    for (let i = 0; i < 50; i++) b.onNeutral(ADMITTED);
    expect(b.state).toBe("closed");
    b.onFailure(ADMITTED);
    expect(b.state).toBe("open");
  });

  test("retryAfterSecs counts whole seconds up to the probe, at least 1", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    expect(b.retryAfterSecs()).toBe(30);
    c.advance(10_500);
    expect(b.retryAfterSecs()).toBe(20); // 19.5 s left, rounded up
    c.advance(19_400);
    expect(b.retryAfterSecs()).toBe(1); // 0.1 s left
    c.advance(100);
    expect(b.retryAfterSecs()).toBe(1); // due now: never 0
    expect(b.allow()).toBe(PROBE);
    expect(b.retryAfterSecs()).toBe(1); // half-open, the probe decides any moment
  });
});

describe("disabled", () => {
  test("threshold 0 never opens", () => {
    const c = clock();
    const b = breaker(c, 0);
    for (let i = 0; i < 10_000; i++) b.onFailure(ADMITTED);
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(ADMITTED);
  });

  test("invalid options are refused at construction", () => {
    expect(() => new CircuitBreaker({ threshold: -1, windowSecs: 10, resetSecs: 30 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ threshold: 1.5, windowSecs: 10, resetSecs: 30 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ threshold: 3, windowSecs: Number.NaN, resetSecs: 30 })).toThrow(RangeError);
  });
});

describe("defaults", () => {
  test("with the config defaults (20 / 10 s / 30 s) it trips on 20 failures in 10 s with no success between", () => {
    const c = clock();
    const b = breaker(c, 20, 10, 30);
    for (let i = 0; i < 19; i++) {
      b.onFailure(ADMITTED);
      c.advance(500);
    }
    expect(b.state).toBe("closed");
    b.onFailure(ADMITTED); // 20th, at 9.5 s
    expect(b.state).toBe("open");
  });
});
