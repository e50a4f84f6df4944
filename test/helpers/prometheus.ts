// A small, strict parser for the Prometheus text exposition format (0.0.4), so tests can check what
// /metrics serves the way a scraper would read it rather than with substring matches. It throws on the
// first line a scraper would reject, and `checkExposition` adds the family-level rules (a TYPE for every
// sample, contiguous families, no duplicate series, histograms that add up).

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum` … for histograms). */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp: number | undefined;
  /** 1-based line number in the exposition. */
  line: number;
}

export interface Family {
  name: string;
  type: MetricType | undefined;
  help: string | undefined;
  samples: Sample[];
}

export interface Exposition {
  /** Families by name, in first-seen order (a family is created by its HELP, TYPE or first sample). */
  families: Map<string, Family>;
  /** Every sample, in order. */
  samples: Sample[];
}

export class PrometheusParseError extends Error {
  constructor(
    readonly lineNo: number,
    readonly lineText: string,
    why: string,
  ) {
    super(`line ${lineNo}: ${why}: ${JSON.stringify(lineText)}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: ReadonlySet<string> = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** Go's ParseFloat as Prometheus uses it: decimal or exponent forms, `NaN`, `+Inf`, `-Inf` (case-insensitive). */
function parseValue(s: string): number | undefined {
  const lower = s.toLowerCase();
  if (lower === "nan") return NaN;
  if (lower === "+inf" || lower === "inf") return Infinity;
  if (lower === "-inf") return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** Parses `{a="x",b="y\"z"}` starting at `text[start] === "{"`; returns the labels and the index after `}`. */
function parseLabels(text: string, start: number, fail: (why: string) => never): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  const skipSpaces = () => {
    while (text[i] === " " || text[i] === "\t") i++;
  };
  for (;;) {
    skipSpaces();
    if (text[i] === "}") return { labels, end: i + 1 };
    const nameStart = i;
    while (i < text.length && /[a-zA-Z0-9_]/.test(text[i] as string)) i++;
    const name = text.slice(nameStart, i);
    if (!LABEL_NAME.test(name)) fail(`bad label name ${JSON.stringify(name)}`);
    if (name.startsWith("__")) fail(`label name ${name} is reserved`);
    skipSpaces();
    if (text[i] !== "=") fail(`expected "=" after label ${name}`);
    i++;
    skipSpaces();
    if (text[i] !== '"') fail(`expected a quoted value for label ${name}`);
    i++;
    let value = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) fail(`unterminated value for label ${name}`);
      if (c === '"') {
        i++;
        break;
      }
      if (c === "\\") {
        const n = text[i + 1];
        if (n === "\\") value += "\\";
        else if (n === '"') value += '"';
        else if (n === "n") value += "\n";
        else fail(`bad escape \\${n ?? ""} in label ${name}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    if (Object.hasOwn(labels, name)) fail(`label ${name} repeated`);
    labels[name] = value;
    skipSpaces();
    if (text[i] === ",") {
      i++;
      continue;
    }
    if (text[i] === "}") return { labels, end: i + 1 };
    fail(`expected "," or "}" after label ${name}`);
  }
}

/** Parses the exposition line by line; throws PrometheusParseError on the first malformed line. */
export function parsePrometheus(text: string): Exposition {
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { name, type: undefined, help: undefined, samples: [] }));
    return f;
  };
  const lines = text.split("\n");
  // A trailing newline leaves one empty string; the format requires lines to end with "\n".
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, idx) => {
    const lineNo = idx + 1;
    const fail = (why: string): never => {
      throw new PrometheusParseError(lineNo, raw, why);
    };
    const line = raw.replace(/^[ \t]+/, "");
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (m === null) return; // any other comment
      const [, kind, name = "", rest = ""] = m;
      if (!METRIC_NAME.test(name)) fail(`bad metric name in ${kind}`);
      const f = family(name);
      if (kind === "HELP") {
        if (f.help !== undefined) fail(`second HELP for ${name}`);
        if (/\\(?!n)/.test(rest.replace(/\\\\/g, ""))) fail(`bad escape in HELP for ${name}`);
        f.help = rest.replace(/\\(\\|n)/g, (_s, c: string) => (c === "n" ? "\n" : "\\"));
      } else {
        const t = rest.trim();
        if (!TYPES.has(t)) fail(`unknown type ${JSON.stringify(t)}`);
        if (f.type !== undefined) fail(`second TYPE for ${name}`);
        if (samples.some((s) => s.name === name || s.name === `${name}_bucket` || s.name === `${name}_sum` || s.name === `${name}_count`)) {
          fail(`TYPE for ${name} after its samples`);
        }
        f.type = t as MetricType;
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (nameMatch === null) fail("not a comment and not a sample");
    const name = (nameMatch as RegExpExecArray)[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    let j = i;
    while (line[j] === " " || line[j] === "\t") j++;
    if (line[j] === "{") {
      const parsed = parseLabels(line, j, fail);
      labels = parsed.labels;
      i = parsed.end;
    }
    const rest = line.slice(i);
    if (!/^[ \t]/.test(rest)) fail("expected whitespace before the value");
    const fields = rest.trim().split(/[ \t]+/);
    if (fields.length < 1 || fields.length > 2 || fields[0] === "") fail("expected a value and an optional timestamp");
    const value = parseValue(fields[0] as string);
    if (value === undefined) fail(`bad value ${JSON.stringify(fields[0])}`);
    let timestamp: number | undefined;
    if (fields.length === 2) {
      if (!/^-?\d+$/.test(fields[1] as string)) fail(`bad timestamp ${JSON.stringify(fields[1])}`);
      timestamp = Number(fields[1]);
    }
    const sample: Sample = { name, labels, value: value as number, timestamp, line: lineNo };
    samples.push(sample);
    family(familyName(name, families)).samples.push(sample);
  });
  return { families, samples };
}

/** The family a sample belongs to: its own name when that has a TYPE (or nothing else fits), else the histogram or
 * summary whose `_bucket` / `_sum` / `_count` it is. */
export function familyName(sampleName: string, families: ReadonlyMap<string, Family>): string {
  if (families.get(sampleName)?.type !== undefined) return sampleName;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sampleName.endsWith(suffix)) continue;
    const base = sampleName.slice(0, -suffix.length);
    const t = families.get(base)?.type;
    if (t === "histogram" || (t === "summary" && suffix !== "_bucket")) return base;
  }
  return sampleName;
}

function seriesKey(name: string, labels: Record<string, string>, omit?: string): string {
  const keys = Object.keys(labels)
    .filter((k) => k !== omit)
    .sort();
  return `${name}{${keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",")}}`;
}

/**
 * Family-level rules a scraper or a dashboard relies on; returns every problem found (empty when valid):
 * every sample's family has a TYPE; a family's lines are contiguous; no series appears twice; a histogram's
 * buckets per label set have numeric `le` in increasing order, cumulative counts, end with `le="+Inf"`,
 * and that bucket equals `_count`, with `_sum` present.
 */
export function checkExposition(text: string): string[] {
  const problems: string[] = [];
  let exp: Exposition;
  try {
    exp = parsePrometheus(text);
  } catch (e) {
    return [(e as Error).message];
  }
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current: string | undefined;
  for (const s of exp.samples) {
    const fam = familyName(s.name, exp.families);
    if (exp.families.get(fam)?.type === undefined) problems.push(`line ${s.line}: sample ${s.name} has no TYPE`);
    if (fam !== current) {
      if (current !== undefined) closed.add(current);
      if (closed.has(fam)) problems.push(`line ${s.line}: family ${fam} is split across the exposition`);
      current = fam;
    }
    const key = seriesKey(s.name, s.labels);
    if (seen.has(key)) problems.push(`line ${s.line}: duplicate series ${key}`);
    seen.add(key);
  }
  for (const f of exp.families.values()) {
    if (f.type === "histogram") problems.push(...checkHistogram(f));
    if (f.type === "counter") {
      for (const s of f.samples) if (!(s.value >= 0)) problems.push(`line ${s.line}: counter ${s.name} is ${s.value}`);
    }
  }
  return problems;
}

function checkHistogram(f: Family): string[] {
  const problems: string[] = [];
  interface Group {
    buckets: Array<{ le: number; value: number; line: number }>;
    sum: number | undefined;
    count: number | undefined;
  }
  const groups = new Map<string, Group>();
  const group = (labels: Record<string, string>, omitLe: boolean): Group => {
    const k = seriesKey(f.name, labels, omitLe ? "le" : undefined);
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = { buckets: [], sum: undefined, count: undefined }));
    return g;
  };
  for (const s of f.samples) {
    if (s.name === `${f.name}_bucket`) {
      const le = s.labels["le"];
      const bound = le === undefined ? undefined : parseValue(le);
      if (bound === undefined || Number.isNaN(bound)) {
        problems.push(`line ${s.line}: ${s.name} without a numeric le`);
        continue;
      }
      group(s.labels, true).buckets.push({ le: bound, value: s.value, line: s.line });
    } else if (s.name === `${f.name}_sum`) {
      group(s.labels, false).sum = s.value;
    } else if (s.name === `${f.name}_count`) {
      group(s.labels, false).count = s.value;
    } else {
      problems.push(`line ${s.line}: ${s.name} is not a sample of histogram ${f.name}`);
    }
  }
  for (const [key, g] of groups) {
    if (g.buckets.length === 0) {
      problems.push(`${key}: no buckets`);
      continue;
    }
    for (let i = 1; i < g.buckets.length; i++) {
      const prev = g.buckets[i - 1] as { le: number; value: number };
      const cur = g.buckets[i] as { le: number; value: number; line: number };
      if (!(cur.le > prev.le)) problems.push(`line ${cur.line}: ${key} le ${cur.le} does not increase`);
      if (cur.value < prev.value) problems.push(`line ${cur.line}: ${key} bucket le=${cur.le} (${cur.value}) below le=${prev.le} (${prev.value}): not cumulative`);
    }
    const last = g.buckets[g.buckets.length - 1] as { le: number; value: number };
    if (last.le !== Infinity) problems.push(`${key}: last bucket is le=${last.le}, not +Inf`);
    if (g.count === undefined) problems.push(`${key}: no _count`);
    else if (last.le === Infinity && last.value !== g.count) problems.push(`${key}: le="+Inf" is ${last.value} but _count is ${g.count}`);
    if (g.sum === undefined) problems.push(`${key}: no _sum`);
  }
  return problems;
}

function labelsMatch(have: Record<string, string>, want: Record<string, string>): boolean {
  const hk = Object.keys(have);
  const wk = Object.keys(want);
  return hk.length === wk.length && wk.every((k) => have[k] === want[k]);
}

/** The value of the sample with exactly these labels, or undefined when absent. */
export function sampleValue(exp: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exp.samples.find((s) => s.name === name && labelsMatch(s.labels, labels))?.value;
}

/** A histogram's `_count` for one label set (without `le`), 0 when the label set has no observations yet. */
export function histogramCount(exp: Exposition, name: string, labels: Record<string, string> = {}): number {
  return sampleValue(exp, `${name}_count`, labels) ?? 0;
}

/** Fetches `<metricsUrl>/metrics` and parses it (throws if it does not parse). */
export async function scrape(metricsUrl: string): Promise<{ text: string; exp: Exposition; contentType: string | null }> {
  const res = await fetch(`${metricsUrl}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text.slice(0, 300)}`);
  return { text, exp: parsePrometheus(text), contentType: res.headers.get("content-type") };
}
