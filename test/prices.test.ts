// costMicros: integer micro-USD from the four disjoint token buckets, each at its own price, rounded once.
import { describe, expect, test } from "bun:test";
import { costMicros, orderingPrice, type Price } from "../src/routing/prices.ts";

const price = (input: number, output: number, cache_read = input, cache_write = input): Price => ({ input, output, cache_read, cache_write, context_window: undefined, vision: false });
const usage = (input: number, output: number, cacheRead = 0, cacheWrite = 0) => ({ input, output, cacheRead, cacheWrite });

describe("costMicros", () => {
  test("a price per million tokens in USD is micro-USD per token: 1,000 in at $2.50 and 500 out at $10 is 7,500 µUSD", () => {
    expect(costMicros(usage(1000, 500), price(2.5, 10))).toBe(7500);
  });

  test("cache tokens are billed at their own prices, not the input price", () => {
    // 2,000 uncached in × 3 + 100 out × 15 + 10,000 cache read × 0.30 + 4,000 cache write × 3.75
    // = 6,000 + 1,500 + 3,000 + 15,000 = 25,500
    expect(costMicros(usage(2000, 100, 10_000, 4000), price(3, 15, 0.3, 3.75))).toBe(25_500);
  });

  test("rounding happens once, on the sum: three buckets of 0.4 µUSD each make 1, not 0", () => {
    // Each bucket alone is 0.4 µUSD (rounds to 0); together 1.2 → 1.
    expect(costMicros(usage(1, 1, 1, 0), price(0.4, 0.4, 0.4, 0))).toBe(1);
    expect(costMicros(usage(1, 0), price(0.4, 0))).toBe(0);
  });

  test("a half micro-USD rounds up", () => {
    expect(costMicros(usage(1, 0), price(0.5, 0))).toBe(1);
    expect(costMicros(usage(3, 0), price(0.5, 0))).toBe(2);
  });

  test("float noise does not change the result (0.15 × 1,000 is 150, not 150.00000000000003 rounded oddly)", () => {
    expect(costMicros(usage(1000, 1000), price(0.15, 0.6))).toBe(750);
    expect(costMicros(usage(7, 0), price(0.1, 0))).toBe(1);
  });

  test("a million tokens of each kind at realistic prices: exact dollars in micro-USD", () => {
    expect(costMicros(usage(1_000_000, 1_000_000, 1_000_000, 1_000_000), price(0.4, 1.6, 0.1, 0))).toBe(2_100_000);
  });

  test("zero, negative or non-finite counts cost nothing (a broken usage report never makes a negative cost)", () => {
    expect(costMicros(usage(0, 0), price(5, 5))).toBe(0);
    expect(costMicros(usage(-100, Number.NaN, Number.POSITIVE_INFINITY, 10), price(5, 5, 5, 5))).toBe(50);
  });

  test("the result is always an integer", () => {
    for (let i = 1; i < 200; i++) expect(Number.isInteger(costMicros(usage(i * 37, i * 11, i * 3, i), price(0.123, 0.456, 0.0123, 0.1537)))).toBe(true);
  });
});

describe("orderingPrice", () => {
  test("is input + output per million tokens; cache prices do not count", () => {
    expect(orderingPrice(price(0.59, 0.79, 0.01, 99))).toBeCloseTo(1.38, 10);
  });
});
