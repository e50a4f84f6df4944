// Counters and gauges for /metrics (SPEC §9), kept as plain numbers in Maps: an increment on the hot path
// is a Map lookup, and rendering the Prometheus text happens only when scraped.

export type Labels = Record<string, string>;

class Series {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
  ) {}
  add(labelKey: string, n: number): void {
    this.values.set(labelKey, (this.values.get(labelKey) ?? 0) + n);
  }
  set(labelKey: string, n: number): void {
    this.values.set(labelKey, n);
  }
}

function labelKey(labels: Labels | undefined): string {
  if (labels === undefined) return "";
  let s = "";
  for (const k in labels) s += `${s ? "," : ""}${k}="${escapeLabel(labels[k] ?? "")}"`;
  return s;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export class Metrics {
  private readonly series = new Map<string, Series>();

  constructor() {
    this.counter("ai_requests_total", "Requests received, rejected ones included.");
    this.counter("ai_rejections_total", "Requests the gateway refused, by reason.");
    this.counter("ai_upstream_responses_total", "Upstream response heads by provider and status class.");
    this.counter("ai_connect_retries_total", "Upstream connect retries by provider.");
    this.counter("ai_tokens_total", "Tokens metered on managed traffic, by kind.");
    this.counter("ai_usage_parse_errors_total", "Managed 2xx responses whose usage could not be found.");
    this.gauge("ai_requests_in_flight", "Requests admitted and not yet finished.");
    this.gauge("ai_active_streams", "SSE responses being relayed.");
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
    this.series.get(name)?.add(labelKey(labels), n);
  }

  setGauge(name: string, value: number, labels?: Labels): void {
    this.series.get(name)?.set(labelKey(labels), value);
  }

  value(name: string, labels?: Labels): number {
    return this.series.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    let out = "";
    for (const s of this.series.values()) {
      out += `# HELP ${s.name} ${s.help}\n# TYPE ${s.name} ${s.type}\n`;
      if (s.values.size === 0 && s.type === "gauge") out += `${s.name} 0\n`;
      for (const [k, v] of s.values) out += k ? `${s.name}{${k}} ${v}\n` : `${s.name} ${v}\n`;
    }
    return out;
  }
}

/** 1xx…5xx; anything outside 100–499 counts as 5xx (seed gateway). */
export function statusClass(status: number): string {
  return status >= 100 && status < 500 ? `${Math.floor(status / 100)}xx` : "5xx";
}
