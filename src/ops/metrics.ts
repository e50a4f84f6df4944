// Counters and gauges for /metrics (SPEC §9), kept as plain numbers in Maps: an increment on the hot path
// is a Map lookup, and rendering the Prometheus text happens only when scraped.

export type Labels = Record<string, string>;

/** One label set's value. The hot path holds cells bound at boot and bumps `v` directly: no lookup per request. */
export interface Cell {
  v: number;
}

class Series {
  readonly values = new Map<string, Cell>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
  ) {}
  cell(labelKey: string): Cell {
    let c = this.values.get(labelKey);
    if (c === undefined) this.values.set(labelKey, (c = { v: 0 }));
    return c;
  }
}

/**
 * Label sets are rendered once per object: the hot path passes label objects built at boot (per provider, per
 * status class, per token kind), so an increment costs a WeakMap hit and a Map update, no string building.
 */
const labelKeys = new WeakMap<Labels, string>();

function labelKey(labels: Labels | undefined): string {
  if (labels === undefined) return "";
  let key = labelKeys.get(labels);
  if (key === undefined) {
    key = "";
    for (const k in labels) key += `${key ? "," : ""}${k}="${escapeLabel(labels[k] ?? "")}"`;
    labelKeys.set(labels, key);
  }
  return key;
}

const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabel(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

/**
 * The per-provider cells the request path bumps, bound on first use: a labelled series still appears with its
 * first sample (as before), and after that a request pays a field read, not a Map lookup per metric.
 */
export class ProviderMetrics {
  readonly labels: Labels;
  private readonly statusLabels: Labels[];
  private readonly statusCells: (Cell | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  private ttftCell: HistogramCell | undefined;
  private latencyCell: HistogramCell | undefined;
  private retriesCell: Cell | undefined;

  constructor(
    private readonly metrics: Metrics,
    name: string,
  ) {
    this.labels = { provider: name };
    this.statusLabels = CLASSES.map((c) => ({ provider: name, status: c }));
  }

  status(code: number): Cell {
    const i = statusIndex(code);
    return (this.statusCells[i] ??= this.metrics.cell("ai_upstream_responses_total", this.statusLabels[i]));
  }
  get ttft(): HistogramCell {
    return (this.ttftCell ??= this.metrics.histogramCell("ai_ttft_seconds", this.labels));
  }
  get latency(): HistogramCell {
    return (this.latencyCell ??= this.metrics.histogramCell("ai_upstream_latency_seconds", this.labels));
  }
  get retries(): Cell {
    return (this.retriesCell ??= this.metrics.cell("ai_connect_retries_total", this.labels));
  }

  // SPEC §10 series: bound on first use per label value (a handful per provider), so a request pays a Map hit.
  private readonly attemptCells = new Map<string, Cell>();
  private readonly retryCells = new Map<string, Cell>();
  private budgetCell: Cell | undefined;
  private readonly cooldownCells = new Map<string, Cell>();

  /** ai_upstream_attempts_total{provider,outcome}. */
  attempt(outcome: AttemptOutcome): Cell {
    let c = this.attemptCells.get(outcome);
    if (c === undefined) this.attemptCells.set(outcome, (c = this.metrics.cell("ai_upstream_attempts_total", { provider: this.labels.provider as string, outcome })));
    return c;
  }
  /** ai_retries_total{provider,reason}. */
  retry(reason: RetryReason): Cell {
    let c = this.retryCells.get(reason);
    if (c === undefined) this.retryCells.set(reason, (c = this.metrics.cell("ai_retries_total", { provider: this.labels.provider as string, reason })));
    return c;
  }
  get budgetExhausted(): Cell {
    return (this.budgetCell ??= this.metrics.cell("ai_retry_budget_exhausted_total", this.labels));
  }
  /** ai_pool_key_cooldowns_total{provider,key_id,reason}. */
  cooldown(keyId: string, reason: "rate_limited" | "auth" | "quota"): Cell {
    const k = `${keyId}\u0000${reason}`;
    let c = this.cooldownCells.get(k);
    if (c === undefined) this.cooldownCells.set(k, (c = this.metrics.cell("ai_pool_key_cooldowns_total", { provider: this.labels.provider as string, key_id: keyId, reason })));
    return c;
  }
}

const KEY_STATES = ["ready", "cooling", "dead"] as const;

/** ai_pool_key_state at scrape time: 1 for each key's current state, 0 for the other two (SPEC §10). */
export function setPoolKeyStates(metrics: Metrics, states: ReadonlyArray<{ provider: string; keyId: string; state: (typeof KEY_STATES)[number] }>): void {
  for (const k of states) {
    for (const st of KEY_STATES) metrics.setGauge("ai_pool_key_state", k.state === st ? 1 : 0, { provider: k.provider, key_id: k.keyId, state: st });
  }
}

/** How one upstream attempt ended (ai_upstream_attempts_total). */
export type AttemptOutcome = "ok" | "rate_limited" | "dead_key" | "server_error" | "client_error" | "in_band_error" | "connect_failure" | "reset" | "timeout";
/** Why an attempt was followed by another (ai_retries_total). */
export type RetryReason = "rate_limited" | "dead_key" | "server_error" | "in_band_error" | "reset" | "connect_failure";

/** 1xx…5xx as 0…4; anything outside 100–499 counts as 5xx (seed gateway). */
export function statusIndex(status: number): number {
  return status >= 100 && status < 500 ? Math.floor(status / 100) - 1 : 4;
}

/**
 * One label set of a fixed-bucket histogram. An observation bumps one bucket (the first bound ≥ v, found by a
 * short scan); the cumulative counts Prometheus wants are summed at scrape time, not on every request.
 */
export class HistogramCell {
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += v;
    this.count++;
  }
}

class Histogram {
  readonly byLabels = new Map<string, HistogramCell>();
  private readonly bounds: Float64Array;
  constructor(
    readonly name: string,
    readonly help: string,
    bounds: readonly number[],
  ) {
    this.bounds = Float64Array.from(bounds);
  }
  cell(labelKey: string): HistogramCell {
    let h = this.byLabels.get(labelKey);
    if (h === undefined) this.byLabels.set(labelKey, (h = new HistogramCell(this.bounds)));
    return h;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [k, h] of this.byLabels) {
      const pre = k ? `${k},` : "";
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += h.counts[i] as number;
        out += `${this.name}_bucket{${pre}le="${this.bounds[i]}"} ${cumulative}\n`;
      }
      out += `${this.name}_bucket{${pre}le="+Inf"} ${h.count}\n`;
      out += k ? `${this.name}_sum{${k}} ${h.sum}\n${this.name}_count{${k}} ${h.count}\n` : `${this.name}_sum ${h.sum}\n${this.name}_count ${h.count}\n`;
    }
    return out;
  }
}

/**
 * A worker's cells as plain data (structured-clone safe), for the main thread's scrape (SPEC §14): counters,
 * gauges and histograms by series name and rendered label key.
 */
export interface MetricsSnapshot {
  series: [name: string, cells: [labelKey: string, v: number][]][];
  histograms: [name: string, cells: [labelKey: string, counts: Float64Array, sum: number, count: number][]][];
  tokens: { input: number; output: number; cacheRead: number; cacheWrite: number; metered: boolean };
}

const TOKEN_KIND = { input: { kind: "input" }, output: { kind: "output" }, cacheRead: { kind: "cache_read" }, cacheWrite: { kind: "cache_write" } };

const LABELLED = new Set([
  "ai_rejections_total",
  "ai_upstream_responses_total",
  "ai_connect_retries_total",
  "ai_tokens_total",
  "ai_upstream_attempts_total",
  "ai_retries_total",
  "ai_retry_budget_exhausted_total",
  "ai_replay_abandoned_total",
  "ai_pool_key_state",
  "ai_pool_key_cooldowns_total",
  "ai_route_requests_total",
  "ai_fallbacks_total",
  "ai_route_decisions_total",
]);

export class Metrics {
  private readonly series = new Map<string, Series>();
  /**
   * ai_tokens_total, kept as plain fields: a managed request adds four numbers here, and the labelled series are
   * filled in at scrape time (they appear with the first metered request).
   */
  readonly tokens = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, metered: false };
  private readonly histograms = new Map<string, Histogram>();

  constructor() {
    this.counter("ai_requests_total", "Requests received, rejected ones included.");
    this.counter("ai_rejections_total", "Requests the gateway refused, by reason.");
    this.counter("ai_upstream_responses_total", "Upstream response heads by provider and status class.");
    this.counter("ai_connect_retries_total", "Upstream connect retries by provider.");
    this.counter("ai_tokens_total", "Tokens metered on managed traffic, by kind.");
    this.counter("ai_usage_parse_errors_total", "Managed 2xx responses whose usage could not be found.");
    this.gauge("ai_requests_in_flight", "Requests admitted and not yet finished.");
    this.gauge("ai_active_streams", "SSE responses being relayed.");
    this.gauge("ai_deny_set_size", "Tenants currently denied.");
    this.gauge("ai_deny_set_revision", "Last deny-set revision (JetStream sequence) applied.");
    this.gauge("ai_nats_connected", "1 while the deny-set watch is connected to NATS, else 0.");
    this.gauge("ai_workers", "Worker threads serving the client listener now.");
    this.counter("ai_upstream_attempts_total", "Upstream attempts of managed requests by provider and outcome.");
    this.counter("ai_retries_total", "Managed attempts followed by another, by provider and reason.");
    this.counter("ai_retry_budget_exhausted_total", "Retries refused because the provider's retry budget was spent.");
    this.counter("ai_replay_abandoned_total", "Request bodies whose replay copy was dropped (the request cannot be retried), by reason.");
    this.gauge("ai_pool_key_state", "1 for each pool key's current state (ready, cooling, dead), else 0.");
    this.counter("ai_pool_key_cooldowns_total", "Pool keys taken out of use, by provider, key id and reason.");
    this.counter("ai_route_requests_total", "Virtual-model requests by alias and the provider/model target that answered.");
    this.counter("ai_fallbacks_total", "Virtual-model requests moved to their next target, by alias and reason.");
    this.counter("ai_route_decisions_total", "model \"auto\" decisions by tier and mode (enforce, shadow, or override: the x-beyond-tier header).");
    this.counter("ai_worker_restarts_total", "Worker threads that died and were replaced.");
    this.histogram("ai_ttft_seconds", "Time from admission to the upstream response head.", [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
    this.histogram("ai_upstream_latency_seconds", "Time from admission to the end of the response.", [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]);
    this.histogram("ai_gateway_overhead_seconds", "Time the gateway itself adds: before the upstream request is sent, and from the upstream head to the client head.", [
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
    ]);
  }

  histogram(name: string, help: string, bounds: readonly number[]): void {
    if (!this.histograms.has(name)) this.histograms.set(name, new Histogram(name, help, bounds));
  }

  /** A counter or gauge cell bound once (at boot) for the hot path. */
  cell(name: string, labels?: Labels): Cell {
    const s = this.series.get(name);
    if (s === undefined) throw new Error(`unknown series ${name}`);
    return s.cell(labelKey(labels));
  }

  /** A histogram cell bound once (at boot) for the hot path. */
  histogramCell(name: string, labels?: Labels): HistogramCell {
    const h = this.histograms.get(name);
    if (h === undefined) throw new Error(`unknown histogram ${name}`);
    return h.cell(labelKey(labels));
  }

  counter(name: string, help: string): Series {
    let s = this.series.get(name);
    if (s === undefined) this.series.set(name, (s = new Series(name, help, "counter")));
    return s;
  }

  gauge(name: string, help: string): Series {
    let s = this.series.get(name);
    if (s === undefined) this.series.set(name, (s = new Series(name, help, "gauge")));
    return s;
  }

  inc(name: string, labels?: Labels, n = 1): void {
    const s = this.series.get(name);
    if (s !== undefined) s.cell(labelKey(labels)).v += n;
  }

  setGauge(name: string, value: number, labels?: Labels): void {
    const s = this.series.get(name);
    if (s !== undefined) s.cell(labelKey(labels)).v = value;
  }

  value(name: string, labels?: Labels): number {
    return this.series.get(name)?.values.get(labelKey(labels))?.v ?? 0;
  }

  /** This thread's cells as plain data (a worker answering a scrape). */
  snapshot(): MetricsSnapshot {
    const series: MetricsSnapshot["series"] = [];
    for (const s of this.series.values()) {
      if (s.values.size === 0) continue;
      const cells: [string, number][] = [];
      for (const [k, c] of s.values) cells.push([k, c.v]);
      series.push([s.name, cells]);
    }
    const histograms: MetricsSnapshot["histograms"] = [];
    for (const h of this.histograms.values()) {
      if (h.byLabels.size === 0) continue;
      const cells: [string, Float64Array, number, number][] = [];
      for (const [k, c] of h.byLabels) cells.push([k, c.counts.slice(), c.sum, c.count]);
      histograms.push([h.name, cells]);
    }
    return { series, histograms, tokens: { ...this.tokens } };
  }

  /**
   * Adds a snapshot's values into these cells: counters and histograms sum; gauges sum too, which is right for the
   * per-worker counts workers own (in-flight requests, active streams). Process-level gauges (deny-set, NATS,
   * ai_workers) are set by the main thread only, never by a worker, so summing leaves them as main set them.
   * `countersOnly`: a dead worker's last snapshot, kept so totals never go backwards (its gauges died with it).
   */
  merge(snap: MetricsSnapshot, countersOnly = false): void {
    for (const [name, cells] of snap.series) {
      const s = this.series.get(name);
      if (s === undefined || (countersOnly && s.type !== "counter")) continue;
      for (const [k, v] of cells) s.cell(k).v += v;
    }
    for (const [name, cells] of snap.histograms) {
      const h = this.histograms.get(name);
      if (h === undefined) continue;
      for (const [k, counts, sum, count] of cells) {
        const c = h.cell(k);
        for (let i = 0; i < c.counts.length && i < counts.length; i++) c.counts[i] = (c.counts[i] as number) + (counts[i] as number);
        c.sum += sum;
        c.count += count;
      }
    }
    const t = this.tokens;
    t.input += snap.tokens.input;
    t.output += snap.tokens.output;
    t.cacheRead += snap.tokens.cacheRead;
    t.cacheWrite += snap.tokens.cacheWrite;
    t.metered ||= snap.tokens.metered;
  }

  /** The process totals: this thread's cells plus every worker's snapshot, rendered (nothing here is changed). */
  renderMerged(snaps: readonly MetricsSnapshot[]): string {
    const total = new Metrics();
    total.merge(this.snapshot());
    for (const s of snaps) total.merge(s);
    return total.render();
  }

  render(): string {
    if (this.tokens.metered) {
      const t = this.tokens;
      this.setGauge("ai_tokens_total", t.input, TOKEN_KIND.input);
      this.setGauge("ai_tokens_total", t.output, TOKEN_KIND.output);
      this.setGauge("ai_tokens_total", t.cacheRead, TOKEN_KIND.cacheRead);
      this.setGauge("ai_tokens_total", t.cacheWrite, TOKEN_KIND.cacheWrite);
    }
    let out = "";
    for (const s of this.series.values()) {
      out += `# HELP ${s.name} ${s.help}\n# TYPE ${s.name} ${s.type}\n`;
      // An unlabelled series is exported at 0 from boot (as Prometheus clients do), so rate() and "== 0" alerts have data
      // after a restart; labelled series appear with their first label set.
      if (s.values.size === 0 && !LABELLED.has(s.name)) out += `${s.name} 0\n`;
      for (const [k, c] of s.values) out += k ? `${s.name}{${k}} ${c.v}\n` : `${s.name} ${c.v}\n`;
    }
    for (const h of this.histograms.values()) out += h.render();
    return out;
  }
}
