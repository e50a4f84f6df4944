// SPEC §10 retry policy units: backoff schedule and jitter bounds, the provider wait headers (every format, the
// precedence order, garbage in each), quota detection, the retried statuses, and the per-provider retry budget
// (private and over one shared state).
import { describe, expect, test } from "bun:test";
import {
  type BackoffPolicy,
  backoffMs,
  isQuotaExhausted,
  isRetryableStatus,
  parseGoDuration,
  parseHttpDate,
  parseRfc3339,
  RETRY_AFTER_CAP_MS,
  RetryBudgets,
  retryAfterFromHeaders,
} from "../src/routing/retry-policy.ts";
import { allocateSharedState } from "../src/controls/shared-state.ts";
import { mulberry32 } from "./helpers/random.ts";


const DEFAULTS: BackoffPolicy = { initialMs: 200, multiplier: 1.5, maxMs: 10_000, jitter: "none" };

describe("backoffMs", () => {
  test("jitter none gives the exact schedule 200, 300, 450 … and stays at max_backoff_ms once it gets there", () => {
    const expected = [200, 300, 450, 675, 1012.5, 1518.75, 2278.125, 3417.1875, 5125.78125, 7688.671875, 10_000, 10_000];
    expected.forEach((d, i) => expect(backoffMs(i + 1, DEFAULTS)).toBe(d));
    expect(backoffMs(1000, DEFAULTS)).toBe(10_000); // 1.5^999 overflows to Infinity: still capped
    expect(backoffMs(1e9, DEFAULTS)).toBe(10_000);
  });

  test("a retry number below 1 counts as the first retry", () => {
    expect(backoffMs(0, DEFAULTS)).toBe(200);
    expect(backoffMs(-3, DEFAULTS)).toBe(200);
  });

  test("multiplier 1 is a constant delay, and an initial delay above the max is capped", () => {
    for (let r = 1; r <= 20; r++) expect(backoffMs(r, { ...DEFAULTS, multiplier: 1 })).toBe(200);
    expect(backoffMs(1, { ...DEFAULTS, initialMs: 50_000 })).toBe(10_000);
  });

  test("full jitter stays within [0, computed delay] for every retry number and spreads its values", () => {
    const random = mulberry32(42);
    const full: BackoffPolicy = { ...DEFAULTS, jitter: "full" };
    for (let r = 1; r <= 15; r++) {
      const cap = backoffMs(r, DEFAULTS);
      const seen = new Set<number>();
      for (let i = 0; i < 200; i++) {
        const d = backoffMs(r, full, random);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(cap);
        seen.add(d);
      }
      expect(seen.size).toBeGreaterThan(150); // not always the same value
    }
  });

  test("full jitter uses the injected random: 0 → 0, 0.5 → half, 1 → the whole delay; out-of-range randoms are clamped", () => {
    const full: BackoffPolicy = { ...DEFAULTS, jitter: "full" };
    expect(backoffMs(3, full, () => 0)).toBe(0);
    expect(backoffMs(3, full, () => 0.5)).toBe(225);
    expect(backoffMs(3, full, () => 1)).toBe(450);
    expect(backoffMs(3, full, () => 7)).toBe(450);
    expect(backoffMs(3, full, () => -1)).toBe(0);
  });
});

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0); // 2026-11-30T12:00:00Z
const h = (o: Record<string, string>) => new Headers(o);

describe("retryAfterFromHeaders", () => {
  test("retry-after-ms: milliseconds, fractional allowed (rounded up to a whole ms)", () => {
    expect(retryAfterFromHeaders(h({ "retry-after-ms": "1500" }), NOW)).toBe(1500);
    expect(retryAfterFromHeaders(h({ "retry-after-ms": "20.25" }), NOW)).toBe(21);
    expect(retryAfterFromHeaders(h({ "retry-after-ms": "0" }), NOW)).toBe(0);
  });

  test("retry-after: delta-seconds, and an HTTP-date in the future or the past (0)", () => {
    expect(retryAfterFromHeaders(h({ "retry-after": "7" }), NOW)).toBe(7000);
    expect(retryAfterFromHeaders(h({ "retry-after": "1.5" }), NOW)).toBe(1500);
    expect(retryAfterFromHeaders(h({ "retry-after": "Mon, 30 Nov 2026 12:00:30 GMT" }), NOW)).toBe(30_000);
    expect(retryAfterFromHeaders(h({ "retry-after": "Mon, 30 Nov 2026 11:59:00 GMT" }), NOW)).toBe(0);
    // The obsolete forms recipients must accept (RFC 9110 §5.6.7).
    expect(retryAfterFromHeaders(h({ "retry-after": "Monday, 30-Nov-26 12:01:00 GMT" }), NOW)).toBe(60_000);
    expect(retryAfterFromHeaders(h({ "retry-after": "Mon Nov 30 12:00:05 2026" }), NOW)).toBe(5000);
  });

  test("OpenAI x-ratelimit-reset-*: Go durations, the larger of the two when both are valid", () => {
    expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-requests": "6m0s" }), NOW)).toBe(360_000);
    expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-tokens": "12ms" }), NOW)).toBe(12);
    expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-requests": "1.5s", "x-ratelimit-reset-tokens": "20s" }), NOW)).toBe(20_000);
    expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-requests": "1h2m3s", "x-ratelimit-reset-tokens": "0s" }), NOW)).toBe(3_723_000);
    // One garbage, one valid: the valid one.
    expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-requests": "soon", "x-ratelimit-reset-tokens": "2s" }), NOW)).toBe(2000);
  });

  test("of a reset pair, the limit whose remaining is 0 decides: a spent token limit does not rest the key for the request window", () => {
    const both = { "x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "1.5s" };
    expect(retryAfterFromHeaders(h({ ...both, "x-ratelimit-remaining-requests": "499", "x-ratelimit-remaining-tokens": "0" }), NOW)).toBe(1500);
    expect(retryAfterFromHeaders(h({ ...both, "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "1200" }), NOW)).toBe(360_000);
    // Both spent, or neither said: the larger.
    expect(retryAfterFromHeaders(h({ ...both, "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "0" }), NOW)).toBe(360_000);
    expect(retryAfterFromHeaders(h(both), NOW)).toBe(360_000);
    // The spent limit's reset is garbage: the larger valid one.
    expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-requests": "soon", "x-ratelimit-reset-tokens": "2s", "x-ratelimit-remaining-requests": "0" }), NOW)).toBe(2000);
    const anthropic = { "anthropic-ratelimit-requests-reset": "2026-11-30T12:00:40Z", "anthropic-ratelimit-tokens-reset": "2026-11-30T12:00:03Z" };
    expect(retryAfterFromHeaders(h({ ...anthropic, "anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-requests-remaining": "17" }), NOW)).toBe(3000);
  });

  test("Anthropic anthropic-ratelimit-*-reset: RFC 3339 with Z or an offset, the larger of the two, a past one gives 0", () => {
    expect(retryAfterFromHeaders(h({ "anthropic-ratelimit-requests-reset": "2026-11-30T12:00:10Z" }), NOW)).toBe(10_000);
    expect(retryAfterFromHeaders(h({ "anthropic-ratelimit-tokens-reset": "2026-11-30T14:00:02+02:00" }), NOW)).toBe(2000);
    expect(
      retryAfterFromHeaders(h({ "anthropic-ratelimit-requests-reset": "2026-11-30T12:00:03.5Z", "anthropic-ratelimit-tokens-reset": "2026-11-30T11:00:09-01:00" }), NOW),
    ).toBe(9000);
    expect(retryAfterFromHeaders(h({ "anthropic-ratelimit-requests-reset": "2026-11-30T11:00:00Z" }), NOW)).toBe(0);
  });

  test("precedence: retry-after-ms, then retry-after, then OpenAI's resets, then Anthropic's", () => {
    const all = {
      "retry-after-ms": "100",
      "retry-after": "2",
      "x-ratelimit-reset-requests": "3s",
      "anthropic-ratelimit-requests-reset": "2026-11-30T12:00:04Z",
    };
    expect(retryAfterFromHeaders(h(all), NOW)).toBe(100);
    const { "retry-after-ms": _a, ...noMs } = all;
    expect(retryAfterFromHeaders(h(noMs), NOW)).toBe(2000);
    const { "retry-after": _b, ...noRa } = noMs;
    expect(retryAfterFromHeaders(h(noRa), NOW)).toBe(3000);
    const { "x-ratelimit-reset-requests": _c, ...onlyAnthropic } = noRa;
    expect(retryAfterFromHeaders(h(onlyAnthropic), NOW)).toBe(4000);
    expect(retryAfterFromHeaders(h({ "content-type": "application/json" }), NOW)).toBeUndefined();
  });

  test("a malformed value in each source is ignored and the next source is used", () => {
    for (const bad of ["", "abc", "-5", "1e3", "0x10", "5 s", "NaN", "Infinity", "+5"]) {
      expect(retryAfterFromHeaders(h({ "retry-after-ms": bad, "retry-after": "3" }), NOW)).toBe(3000);
      expect(retryAfterFromHeaders(h({ "retry-after": bad, "x-ratelimit-reset-tokens": "4s" }), NOW)).toBe(4000);
    }
    for (const bad of ["", "5", "s", "-3s", "3 s", "3x", "1.2.3s", "."]) {
      expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-requests": bad, "anthropic-ratelimit-requests-reset": "2026-11-30T12:00:05Z" }), NOW)).toBe(5000);
    }
    for (const bad of ["", "tomorrow", "2026-11-30", "2026-11-30T12:00:05", "2026-13-30T12:00:05Z", "2026-02-31T12:00:05Z", "2026-11-30T25:00:05Z", "2026-11-30T12:00:05+24:00"]) {
      expect(retryAfterFromHeaders(h({ "anthropic-ratelimit-requests-reset": bad }), NOW)).toBeUndefined();
    }
    // An HTTP-date with a wrong weekday format or an impossible day is garbage too, not a Date.parse guess.
    expect(retryAfterFromHeaders(h({ "retry-after": "30 Nov 2026 12:00:30" }), NOW)).toBeUndefined();
    expect(retryAfterFromHeaders(h({ "retry-after": "Mon, 31 Feb 2026 12:00:30 GMT" }), NOW)).toBeUndefined();
  });

  test("huge values are clamped to 24 h, not ignored", () => {
    expect(retryAfterFromHeaders(h({ "retry-after-ms": "99999999999999999999" }), NOW)).toBe(RETRY_AFTER_CAP_MS);
    expect(retryAfterFromHeaders(h({ "retry-after": "9".repeat(400) }), NOW)).toBe(RETRY_AFTER_CAP_MS); // Infinity as a double
    expect(retryAfterFromHeaders(h({ "retry-after": "Fri, 01 Jan 2100 00:00:00 GMT" }), NOW)).toBe(RETRY_AFTER_CAP_MS);
    expect(retryAfterFromHeaders(h({ "x-ratelimit-reset-requests": "100000h" }), NOW)).toBe(RETRY_AFTER_CAP_MS);
    expect(RETRY_AFTER_CAP_MS).toBe(86_400_000);
  });
});

describe("parsers", () => {
  test("parseGoDuration reads Go's units, fractions, signs and the bare 0; undefined on garbage", () => {
    expect(parseGoDuration("6m0s")).toBe(360_000);
    expect(parseGoDuration("1.5s")).toBe(1500);
    expect(parseGoDuration("12ms")).toBe(12);
    expect(parseGoDuration("1h2m3s")).toBe(3_723_000);
    expect(parseGoDuration("1h2m3.5s")).toBe(3_723_500);
    expect(parseGoDuration("20s")).toBe(20_000);
    expect(parseGoDuration("0s")).toBe(0);
    expect(parseGoDuration("0")).toBe(0);
    expect(parseGoDuration("250us")).toBe(0.25);
    expect(parseGoDuration("250µs")).toBe(0.25);
    expect(parseGoDuration("1500000ns")).toBe(1.5);
    expect(parseGoDuration(".5s")).toBe(500);
    expect(parseGoDuration("-1.5s")).toBe(-1500);
    expect(parseGoDuration("+2m")).toBe(120_000);
    for (const bad of ["", "-", "5", "s", ".s", "1d", "1.2.3s", "1s ", " 1s", "1 s", "abc", "1sms"]) expect(parseGoDuration(bad)).toBeUndefined();
  });

  test("parseRfc3339 and parseHttpDate give epoch ms", () => {
    expect(parseRfc3339("2026-11-30T12:00:00Z")).toBe(NOW);
    expect(parseRfc3339("2026-11-30t13:30:00.250+01:30")).toBe(NOW + 250);
    expect(parseHttpDate("Mon, 30 Nov 2026 12:00:00 GMT", NOW)).toBe(NOW);
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994", NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
  });
});

const enc = (o: unknown) => new TextEncoder().encode(typeof o === "string" ? o : JSON.stringify(o));

describe("isQuotaExhausted", () => {
  test("OpenAI's insufficient_quota 429 body says the key is spent", () => {
    const body = {
      error: {
        message: "You exceeded your current quota, please check your plan and billing details.",
        type: "insufficient_quota",
        param: null,
        code: "insufficient_quota",
      },
    };
    expect(isQuotaExhausted(enc(body))).toBe(true);
    expect(isQuotaExhausted(enc({ error: { message: "x", type: "invalid_request_error", code: "billing_hard_limit_reached" } }))).toBe(true);
    expect(isQuotaExhausted(enc({ error: { message: "x", type: "access_terminated", code: null } }))).toBe(true);
  });

  test("Anthropic billing_error and its low-credit message say so too", () => {
    expect(isQuotaExhausted(enc({ type: "error", error: { type: "billing_error", message: "billing issue" } }))).toBe(true);
    expect(
      isQuotaExhausted(enc({ type: "error", error: { type: "invalid_request_error", message: "Your credit balance is too low to access the Anthropic API." } })),
    ).toBe(true);
  });

  test("an ordinary rate limit (OpenAI rate_limit_exceeded, Anthropic rate_limit_error, overloaded) is not quota", () => {
    expect(isQuotaExhausted(enc({ error: { message: "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM)", type: "requests", param: null, code: "rate_limit_exceeded" } }))).toBe(false);
    expect(isQuotaExhausted(enc({ type: "error", error: { type: "rate_limit_error", message: "Number of request tokens has exceeded your per-minute rate limit" } }))).toBe(false);
    expect(isQuotaExhausted(enc({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }))).toBe(false);
  });

  test("non-JSON, empty, and odd JSON shapes are false, never a throw", () => {
    for (const body of ["", "<html>429 Too Many Requests</html>", "insufficient_quota", "null", "42", '"x"', "[]", "{", '{"error":"insufficient"}']) {
      expect(isQuotaExhausted(enc(body))).toBe(false);
    }
    expect(isQuotaExhausted(new Uint8Array([0xff, 0xfe, 0x00]))).toBe(false);
    expect(isQuotaExhausted(enc([{ error: { code: "insufficient_quota" } }]))).toBe(true); // an array body: its first element
  });
});

test("isRetryableStatus: exactly 408, 500, 502, 503, 504 and 529", () => {
  const yes = [];
  for (let s = 100; s < 600; s++) if (isRetryableStatus(s)) yes.push(s);
  expect(yes).toEqual([408, 500, 502, 503, 504, 529]);
});

describe("RetryBudgets", () => {
  test("100 first attempts in the window allow 20 + 50 retries (ratio 0.2, 5/s × 10 s) and refuse the next", () => {
    let now = 5_000;
    const b = new RetryBudgets({ ratio: 0.2, minPerSec: 5 }, ["openai", "anthropic"], undefined, () => now);
    for (let i = 0; i < 100; i++) b.first(0);
    let allowed = 0;
    while (b.tryRetry(0)) {
      allowed++;
      now += 1; // within the same second
      if (allowed > 1000) break;
    }
    expect(allowed).toBe(70);
    expect(b.tryRetry(0)).toBe(false); // refused ones count nothing: still refused
    // Another provider has its own budget.
    expect(b.tryRetry(1)).toBe(true);
  });

  test("ratio 0 leaves only the floor of min_per_sec × 10", () => {
    const b = new RetryBudgets({ ratio: 0, minPerSec: 5 }, ["openai"], undefined, () => 1_000);
    for (let i = 0; i < 1000; i++) b.first(0);
    let n = 0;
    while (b.tryRetry(0) && n < 1000) n++;
    expect(n).toBe(50);
  });

  test("the window slides: seconds older than 10 s drop out, for first attempts and retries alike", () => {
    let now = 0;
    const b = new RetryBudgets({ ratio: 0.5, minPerSec: 0 }, ["openai"], undefined, () => now);
    for (let i = 0; i < 10; i++) b.first(0); // second 0: budget 5
    for (let i = 0; i < 5; i++) expect(b.tryRetry(0)).toBe(true);
    expect(b.tryRetry(0)).toBe(false);
    now = 9_999; // second 9: second 0 still in the window
    expect(b.tryRetry(0)).toBe(false);
    now = 10_000; // second 10: second 0 has dropped out, with its first attempts and retries
    expect(b.tryRetry(0)).toBe(false); // nothing in the window: budget 0
    for (let i = 0; i < 4; i++) b.first(0);
    expect(b.tryRetry(0)).toBe(true);
    expect(b.tryRetry(0)).toBe(true);
    expect(b.tryRetry(0)).toBe(false);
  });

  test("shared mode: two instances over one SharedState spend from one budget", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"] });
    const now = () => 3_000;
    const a = new RetryBudgets({ ratio: 0.2, minPerSec: 1 }, ["openai", "anthropic"], shared, now);
    const b = new RetryBudgets({ ratio: 0.2, minPerSec: 1 }, ["openai", "anthropic"], shared, now);
    for (let i = 0; i < 50; i++) a.first(1); // a's first attempts raise b's budget: 0.2 × 50 + 10 = 20
    // Counted locally until a's flush (its once-a-second timer, or its own next retry decision): b sees the floor only.
    expect(b.tryRetry(1)).toBe(true);
    a.flush();
    let fromB = 1;
    while (b.tryRetry(1) && fromB < 100) fromB++;
    expect(fromB).toBe(20);
    expect(a.tryRetry(1)).toBe(false); // b's retries spent a's budget too
  });

  test("first attempts are counted at the time the oldest pending one came, however late they are flushed", () => {
    let t = 1_000;
    const b = new RetryBudgets({ ratio: 1, minPerSec: 0 }, ["openai"], undefined, () => t);
    for (let i = 0; i < 5; i++) b.first(0);
    t = 12_000; // 11 s later: those five are outside the 10 s window when the retry is decided
    expect(b.tryRetry(0)).toBe(false);
    b.first(0);
    expect(b.tryRetry(0)).toBe(true);
  });

  test("provider numbers follow the caller's list even when the state lists providers in another order", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["anthropic", "openai"] });
    const now = () => 3_000;
    const mine = new RetryBudgets({ ratio: 1, minPerSec: 0 }, ["openai", "anthropic"], shared, now);
    const theirs = new RetryBudgets({ ratio: 1, minPerSec: 0 }, ["anthropic", "openai"], shared, now);
    mine.first(0); // openai
    mine.flush();
    expect(theirs.tryRetry(1)).toBe(true); // openai in the other numbering
    expect(theirs.tryRetry(0)).toBe(false); // anthropic: no first attempts
    expect(() => new RetryBudgets({ ratio: 1, minPerSec: 0 }, ["groq"], shared)).toThrow(RangeError);
  });
});
