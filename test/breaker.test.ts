import { describe, expect, test } from "bun:test";
import { CircuitBreaker, isBreakerFailure } from "../src/breaker.ts";

/** A hand-driven millisecond clock: tests move time instead of sleeping. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** threshold 3, window 10 s, reset 30 s unless overridden. */
function breaker(c: { now: () => number }, threshold = 3, windowSecs = 10, resetSecs = 30): CircuitBreaker {
  return new CircuitBreaker({ threshold, windowSecs, resetSecs, now: c.now });
}

function fail(b: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) b.onFailure();
}

describe("closed", () => {
  test("a new breaker is closed and allows requests", () => {
    const b = breaker(clock());
    expect(b.state).toBe("closed");
    for (let i = 0; i < 100; i++) expect(b.allow()).toBe(true);
  });

  test("opens when failures reach the threshold within the window", () => {
    const c = clock();
    const b = breaker(c);
    b.onFailure();
    c.advance(4_000);
    b.onFailure();
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
    c.advance(5_999); // 9.999 s after the first failure: still inside the 10 s window
    b.onFailure();
    expect(b.state).toBe("open");
  });

  test("failures spread beyond the window do not open it", () => {
    const c = clock();
    const b = breaker(c);
    for (let i = 0; i < 20; i++) {
      b.onFailure();
      b.onFailure();
      c.advance(10_000); // the window expires before the third failure, which starts a new one
    }
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
  });

  test("an expired window restarts the count at the next failure", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 2);
    c.advance(10_000);
    fail(b, 2); // count 1 (new window), then 2
    expect(b.state).toBe("closed");
    b.onFailure(); // 3 within the new window
    expect(b.state).toBe("open");
  });

  test("a success resets the failure count", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 2);
    b.onSuccess();
    fail(b, 2);
    expect(b.state).toBe("closed");
    b.onSuccess();
    fail(b, 2);
    expect(b.state).toBe("closed");
    b.onFailure();
    expect(b.state).toBe("open");
  });

  test("a 429 (or any status below 500) is recorded as a success and resets the count", () => {
    const c = clock();
    const b = breaker(c);
    const record = (status: number): void => (isBreakerFailure(status, false) ? b.onFailure() : b.onSuccess());
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
    b.onFailure();
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(false);
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

  test("no status: an error (connect, DNS, head timeout) is a failure, a client that left first is a success", () => {
    expect(isBreakerFailure(undefined, true)).toBe(true);
    expect(isBreakerFailure(undefined, false)).toBe(false);
  });
});

describe("open", () => {
  test("an open breaker rejects requests until the reset time", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    expect(b.allow()).toBe(false);
    c.advance(29_999);
    expect(b.allow()).toBe(false);
    expect(b.state).toBe("open");
  });

  test("outcomes recorded while open are ignored", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(20_000);
    b.onSuccess(); // a request admitted before opening finishing now must not close it
    expect(b.state).toBe("open");
    b.onFailure(); // nor push the reset time back
    expect(b.state).toBe("open");
    c.advance(10_000); // 30 s after opening
    expect(b.allow()).toBe(true);
    expect(b.state).toBe("half_open");
  });
});

describe("half-open", () => {
  test("after the reset time exactly one probe is allowed; the second caller is rejected", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    expect(b.allow()).toBe(true);
    expect(b.state).toBe("half_open");
    expect(b.allow()).toBe(false);
    c.advance(60_000); // however long the probe takes, no second permit
    expect(b.allow()).toBe(false);
  });

  test("a successful probe closes the breaker with a zero count", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    expect(b.allow()).toBe(true);
    b.onSuccess();
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(true);
    fail(b, 2); // a fresh count: two failures do not reopen it
    expect(b.state).toBe("closed");
  });

  test("a failed probe reopens the breaker and restarts the reset time", () => {
    const c = clock();
    const b = breaker(c);
    fail(b, 3);
    c.advance(30_000);
    expect(b.allow()).toBe(true);
    c.advance(5_000);
    b.onFailure();
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(false);
    c.advance(29_999); // measured from the reopening, not the first opening
    expect(b.allow()).toBe(false);
    c.advance(1);
    expect(b.allow()).toBe(true);
    expect(b.state).toBe("half_open");
    expect(b.allow()).toBe(false);
  });

  test("the reset time is measured in milliseconds, not whole seconds", () => {
    const c = clock(1_000_900); // opening late in a second must not shorten the wait
    const b = breaker(c, 1, 10, 1);
    b.onFailure();
    c.advance(200); // crosses a whole-second boundary, only 0.2 s elapsed
    expect(b.allow()).toBe(false);
    c.advance(800);
    expect(b.allow()).toBe(true);
  });
});

describe("disabled", () => {
  test("threshold 0 never opens", () => {
    const c = clock();
    const b = breaker(c, 0);
    for (let i = 0; i < 10_000; i++) b.onFailure();
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
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
      b.onFailure();
      c.advance(500);
    }
    expect(b.state).toBe("closed");
    b.onFailure(); // 20th, at 9.5 s
    expect(b.state).toBe("open");
  });
});
