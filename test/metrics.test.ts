import { describe, expect, test } from "bun:test";
import { Metrics, ProviderMetrics } from "../src/ops/metrics.ts";

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

describe("process totals from worker snapshots (workers >= 2)", () => {
  test("counters, labelled counters, histograms and tokens sum across snapshots; main's own gauges stay as main set them", () => {
    const main = new Metrics();
    main.setGauge("ai_deny_set_size", 3);
    main.setGauge("ai_workers", 2);
    const a = new Metrics();
    const b = new Metrics();
    a.cell("ai_requests_total").v += 5;
    b.cell("ai_requests_total").v += 7;
    a.inc("ai_rejections_total", { reason: "auth" }, 2);
    b.inc("ai_rejections_total", { reason: "auth" }, 1);
    b.inc("ai_rejections_total", { reason: "rate_limited" }, 4);
    a.cell("ai_requests_in_flight").v = 1;
    b.cell("ai_requests_in_flight").v = 2;
    a.histogramCell("ai_ttft_seconds", { provider: "openai" }).observe(0.07);
    b.histogramCell("ai_ttft_seconds", { provider: "openai" }).observe(3);
    a.tokens.input += 10;
    a.tokens.metered = true;
    b.tokens.output += 4;
    const out = main.renderMerged([a.snapshot(), b.snapshot()]);
    expect(line(out, "ai_requests_total")).toBe(12);
    expect(line(out, 'ai_rejections_total{reason="auth"}')).toBe(3);
    expect(line(out, 'ai_rejections_total{reason="rate_limited"}')).toBe(4);
    expect(line(out, "ai_requests_in_flight")).toBe(3);
    expect(line(out, "ai_deny_set_size")).toBe(3);
    expect(line(out, "ai_workers")).toBe(2);
    expect(line(out, 'ai_ttft_seconds_bucket{provider="openai",le="0.1"}')).toBe(1);
    expect(line(out, 'ai_ttft_seconds_bucket{provider="openai",le="5"}')).toBe(2);
    expect(line(out, 'ai_ttft_seconds_count{provider="openai"}')).toBe(2);
    expect(line(out, 'ai_tokens_total{kind="input"}')).toBe(10);
    expect(line(out, 'ai_tokens_total{kind="output"}')).toBe(4);
    // Rendering the totals changes nothing in main's own cells.
    expect(main.value("ai_requests_total")).toBe(0);
  });

  test("a snapshot survives structured cloning (it crosses threads by postMessage)", () => {
    const a = new Metrics();
    a.cell("ai_requests_total").v += 2;
    a.histogramCell("ai_upstream_latency_seconds", { provider: "x" }).observe(1);
    const cloned = structuredClone(a.snapshot());
    const out = new Metrics().renderMerged([cloned]);
    expect(line(out, "ai_requests_total")).toBe(2);
    expect(line(out, 'ai_upstream_latency_seconds_count{provider="x"}')).toBe(1);
  });

  test("a dead worker's last snapshot merged counters-only keeps its counts and drops its gauges", () => {
    const dead = new Metrics();
    dead.cell("ai_requests_total").v += 9;
    dead.cell("ai_active_streams").v = 4;
    const retired = new Metrics();
    retired.merge(dead.snapshot(), true);
    const out = new Metrics().renderMerged([retired.snapshot()]);
    expect(line(out, "ai_requests_total")).toBe(9);
    expect(line(out, "ai_active_streams")).toBe(0);
  });
});
