import { describe, expect, test } from "bun:test";
import { Metrics, ProviderMetrics } from "../src/metrics.ts";

function line(text: string, prefix: string): number | undefined {
  const l = text.split("\n").find((x) => x.startsWith(`${prefix} `));
  return l === undefined ? undefined : Number(l.slice(prefix.length + 1));
}

describe("metrics cells", () => {
  test("histogram buckets render cumulative: a value equal to a bound counts in that bucket, +Inf equals the count", () => {
    const m = new Metrics();
    const h = m.histogramCell("ai_gateway_overhead_seconds");
    for (const v of [0.000005, 0.00001, 0.00003, 0.2, 5]) h.observe(v);
    const out = m.render();
    expect(line(out, 'ai_gateway_overhead_seconds_bucket{le="0.00001"}')).toBe(2);
    expect(line(out, 'ai_gateway_overhead_seconds_bucket{le="0.000025"}')).toBe(2);
    expect(line(out, 'ai_gateway_overhead_seconds_bucket{le="0.00005"}')).toBe(3);
    expect(line(out, 'ai_gateway_overhead_seconds_bucket{le="0.1"}')).toBe(3);
    expect(line(out, 'ai_gateway_overhead_seconds_bucket{le="+Inf"}')).toBe(5);
    expect(line(out, "ai_gateway_overhead_seconds_count")).toBe(5);
    expect(line(out, "ai_gateway_overhead_seconds_sum")).toBeCloseTo(5.200045, 9);
  });

  test("a bound cell and the name-based inc() update the same series", () => {
    const m = new Metrics();
    const c = m.cell("ai_requests_total");
    c.v++;
    m.inc("ai_requests_total");
    expect(m.value("ai_requests_total")).toBe(2);
    expect(line(m.render(), "ai_requests_total")).toBe(2);
  });

  test("provider cells appear only with their first sample, labelled by provider and status class", () => {
    const m = new Metrics();
    const pm = new ProviderMetrics(m, "groq");
    expect(m.render()).not.toContain('provider="groq"');
    pm.status(201).v++;
    pm.status(503).v++;
    pm.status(999).v++; // outside 100-499 counts as 5xx
    pm.ttft.observe(0.07);
    const out = m.render();
    expect(line(out, 'ai_upstream_responses_total{provider="groq",status="2xx"}')).toBe(1);
    expect(line(out, 'ai_upstream_responses_total{provider="groq",status="5xx"}')).toBe(2);
    expect(line(out, 'ai_ttft_seconds_bucket{provider="groq",le="0.05"}')).toBe(0);
    expect(line(out, 'ai_ttft_seconds_bucket{provider="groq",le="0.1"}')).toBe(1);
    expect(out).not.toContain('ai_upstream_latency_seconds_count{provider="groq"}');
  });

  test("unknown series names are refused at bind time, not silently dropped", () => {
    const m = new Metrics();
    expect(() => m.cell("ai_nope_total")).toThrow();
    expect(() => m.histogramCell("ai_nope_seconds")).toThrow();
  });
});
