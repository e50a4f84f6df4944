// Token-usage parsers for the two provider dialects (SPEC §6, reference §6).
//
// Everything here turns provider bytes into one normalised `Usage` with four DISJOINT buckets
// (input, output, cacheRead, cacheWrite) so the downstream pricer can add them without double
// counting: OpenAI reports `prompt_tokens` INCLUDING cached (and, on OpenRouter, cache-written)
// tokens, Anthropic reports them separately; we normalise to Anthropic's shape.
//
// "No usage" is always `undefined`, never zeros: a zero row would bill a real request as free and
// hide the problem from `ai_usage_parse_errors_total`.

export type Dialect = "openai" | "anthropic";

export interface Usage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  /** Only present when the provider reported it (0 is a real value, absence is not 0). */
  reasoning?: number;
}

type Obj = Record<string, unknown>;

const utf8 = new TextDecoder();

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// Token counts must be non-negative integers; anything else (string, NaN, negative) counts as
// absent so a malformed provider field can never produce negative bills.
function count(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
}

function has(o: Obj, k: string): boolean {
  return o[k] !== undefined;
}

function make(input: number, output: number, cacheRead: number, cacheWrite: number, reasoning: number | undefined): Usage {
  const u: Usage = { input, output, cacheRead, cacheWrite };
  if (reasoning !== undefined) u.reasoning = reasoning;
  return u;
}

/**
 * Map an OpenAI-dialect `usage` object (Chat Completions, Responses API, and the OpenAI-compatible
 * vendors: DeepSeek, OpenRouter, ...) to disjoint buckets. Returns undefined when the object has
 * Anthropic field names (dialect mismatch) or nothing recognisable.
 */
export function openaiUsage(u: unknown): Usage | undefined {
  if (!isObj(u)) return undefined;
  // Mismatch guard: these names exist only in Anthropic's usage; reading them as an OpenAI
  // object would meter zeros for a request that was really billed.
  if (has(u, "cache_read_input_tokens") || has(u, "cache_creation_input_tokens")) return undefined;

  if (has(u, "prompt_tokens") || has(u, "completion_tokens")) {
    const prompt = count(u.prompt_tokens) ?? 0;
    const completion = count(u.completion_tokens) ?? 0;
    const ptd = isObj(u.prompt_tokens_details) ? u.prompt_tokens_details : undefined;
    // DeepSeek reports cache hits at the top level instead of in prompt_tokens_details.
    const cached = count(ptd?.cached_tokens) ?? count(u.prompt_cache_hit_tokens) ?? 0;
    // OpenRouter: prompt_tokens includes cache writes too (its docs: prompt 194 with 100 written,
    // total 196 = 194 + 2), so they come out of `input` to keep the buckets disjoint.
    const cacheWrite = count(ptd?.cache_write_tokens) ?? 0;
    const ctd = isObj(u.completion_tokens_details) ? u.completion_tokens_details : undefined;
    return make(Math.max(0, prompt - cached - cacheWrite), completion, cached, cacheWrite, count(ctd?.reasoning_tokens));
  }

  // Responses API. `total_tokens` is what tells it apart from an Anthropic object that happens to
  // lack the cache fields (Anthropic never sends a total).
  if ((has(u, "input_tokens") || has(u, "output_tokens")) && has(u, "total_tokens")) {
    const input = count(u.input_tokens) ?? 0;
    const itd = isObj(u.input_tokens_details) ? u.input_tokens_details : undefined;
    const otd = isObj(u.output_tokens_details) ? u.output_tokens_details : undefined;
    const cached = count(itd?.cached_tokens) ?? 0;
    return make(Math.max(0, input - cached), count(u.output_tokens) ?? 0, cached, 0, count(otd?.reasoning_tokens));
  }
  return undefined;
}

/** Map an Anthropic `usage` object. Undefined on OpenAI field names (dialect mismatch) or nothing recognisable. */
export function anthropicUsage(u: unknown): Usage | undefined {
  if (!isObj(u)) return undefined;
  if (isOpenaiShaped(u)) return undefined;
  if (!has(u, "input_tokens") && !has(u, "output_tokens") && !has(u, "cache_read_input_tokens") && !has(u, "cache_creation_input_tokens")) {
    return undefined;
  }
  const otd = isObj(u.output_tokens_details) ? u.output_tokens_details : undefined;
  return make(
    count(u.input_tokens) ?? 0,
    count(u.output_tokens) ?? 0,
    count(u.cache_read_input_tokens) ?? 0,
    count(u.cache_creation_input_tokens) ?? 0,
    count(otd?.thinking_tokens),
  );
}

function isOpenaiShaped(u: Obj): boolean {
  return (
    has(u, "prompt_tokens") ||
    has(u, "completion_tokens") ||
    has(u, "total_tokens") ||
    has(u, "prompt_tokens_details") ||
    has(u, "completion_tokens_details") ||
    has(u, "input_tokens_details")
  );
}

function isAnthropicShaped(u: Obj): boolean {
  return has(u, "cache_read_input_tokens") || has(u, "cache_creation_input_tokens") || ((has(u, "input_tokens") || has(u, "output_tokens")) && !has(u, "total_tokens"));
}

function mapUsage(dialect: Dialect, u: unknown): Usage | undefined {
  return dialect === "openai" ? openaiUsage(u) : anthropicUsage(u);
}

function mismatched(dialect: Dialect, u: unknown): boolean {
  if (!isObj(u)) return false;
  return dialect === "openai" ? isAnthropicShaped(u) : isOpenaiShaped(u);
}

/** Usage of a parsed JSON (non-streaming) response body: the root `usage` object. */
export function usageFromRoot(dialect: Dialect, root: unknown): Usage | undefined {
  return isObj(root) ? mapUsage(dialect, root.usage) : undefined;
}

/** The billed model of a parsed body or SSE event, wherever the dialect keeps it. */
export function modelFromRoot(root: unknown): string | undefined {
  if (!isObj(root)) return undefined;
  const m = validModel(root.model);
  if (m !== undefined) return m;
  // Anthropic message_start nests it in `message`, Responses API events in `response`.
  if (isObj(root.message)) return validModel(root.message.model);
  if (isObj(root.response)) return validModel(root.response.model);
  return undefined;
}

// Empty strings are skipped because Azure's first SSE chunk (prompt_filter_results) carries
// `"model":""`; over-long values are not a model name and would bloat the usage line.
function validModel(v: unknown): string | undefined {
  return typeof v === "string" && v.length > 0 && v.length <= 256 ? v : undefined;
}

/**
 * Usage of a JSON response body: the whole body, or a tail cut off at the front. When the body
 * does not parse as JSON (cut-off tail, or trailing junk) the value after the LAST `"usage"` key
 * is parsed on its own (reference §6.1 LATER fix), so bodies longer than the tail still meter.
 */
export function usageFromJsonBody(dialect: Dialect, body: Uint8Array): Usage | undefined {
  return parseJsonBody(dialect, body).usage;
}

/** Parse result of a whole JSON body: usage and model. Model is only known when the whole body parsed. */
export function parseJsonBody(dialect: Dialect, body: Uint8Array): { usage: Usage | undefined; model: string | undefined } {
  let root: unknown;
  try {
    root = JSON.parse(utf8.decode(body));
  } catch {
    return { usage: usageFromTail(dialect, body), model: undefined };
  }
  return { usage: usageFromRoot(dialect, root), model: modelFromRoot(root) };
}

const Q = 0x22; // "
const BS = 0x5c; // \
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACK = 0x5b;
const RBRACK = 0x5d;
const COLON = 0x3a;

export function isWs(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

// `"usage"` as bytes, for the backwards key search of the tail recovery.
const USAGE_KEY = new TextEncoder().encode('"usage"');
const MAX_TAIL_CANDIDATES = 16;

/**
 * Recover usage from a cut-off JSON text: try the `"usage"` keys from the last one backwards and
 * take the first whose object value maps to a usage of this dialect. A `null` value stops the
 * search (the provider said "no usage"). Only the small value is decoded and parsed.
 */
export function usageFromTail(dialect: Dialect, tail: Uint8Array, start = 0, end = tail.length): Usage | undefined {
  let from = end - USAGE_KEY.length;
  for (let tries = 0; tries < MAX_TAIL_CANDIDATES && from >= start; tries++) {
    const k = lastIndexOfBytes(tail, USAGE_KEY, start, from);
    if (k < 0) return undefined;
    from = k - 1;
    // Inside a JSON string every quote is escaped, so an unescaped `"usage"` followed by a colon
    // is always a real key; a preceding backslash means we are inside a string after all.
    if (k > start && tail[k - 1] === BS) continue;
    let p = k + USAGE_KEY.length;
    while (p < end && isWs(tail[p])) p++;
    if (tail[p] !== COLON) continue;
    p++;
    while (p < end && isWs(tail[p])) p++;
    if (p >= end) continue;
    const c = tail[p];
    if (c === 0x6e /* n */) return undefined;
    if (c !== LBRACE) continue;
    const close = matchClose(tail, p, end);
    if (close < 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(tail.subarray(p, close + 1)));
    } catch {
      continue;
    }
    const u = mapUsage(dialect, value);
    if (u !== undefined) return u;
    if (mismatched(dialect, value)) return undefined;
  }
  return undefined;
}

/** Index of the bracket closing the object/array opened at `open`, skipping strings; -1 if cut off. */
export function matchClose(b: Uint8Array, open: number, end: number): number {
  let depth = 0;
  for (let i = open; i < end; i++) {
    const c = b[i];
    if (c === Q) {
      i++;
      while (i < end && b[i] !== Q) {
        if (b[i] === BS) i++;
        i++;
      }
    } else if (c === LBRACE || c === LBRACK) {
      depth++;
    } else if (c === RBRACE || c === RBRACK) {
      if (--depth === 0) return i;
    }
  }
  return -1;
}

/** Last start index s of `pat` with start <= s <= from, or -1. */
function lastIndexOfBytes(b: Uint8Array, pat: Uint8Array, start: number, from: number): number {
  const first = pat[0];
  const n = pat.length;
  outer: for (let s = Math.min(from, b.length - n); s >= start; s--) {
    // lastIndexOf on the first byte is native; it jumps over the long runs of content text.
    s = b.lastIndexOf(first!, s);
    if (s < start) return -1;
    for (let j = 1; j < n; j++) if (b[s + j] !== pat[j]) continue outer;
    return s;
  }
  return -1;
}

/**
 * Streaming usage state for one SSE response. Fields are ASSIGNED, never added, so seeing the same
 * event twice (e.g. a retried parse) cannot inflate a bill.
 *
 * - OpenAI (chat chunks and Responses API events): the last non-null usage wins.
 * - Anthropic: `message_start` `message.usage` sets input/cacheRead/cacheWrite; a top-level `usage`
 *   (`message_delta`) sets each field it reports with a value > 0 (output is cumulative, so the
 *   latest wins; newer API versions also repeat input/cache there).
 */
export class UsageAccumulator {
  private input = 0;
  private output = 0;
  private cacheRead = 0;
  private cacheWrite = 0;
  private reasoning: number | undefined = undefined;
  private seen = false;
  private final = false;
  /** First non-empty model seen in the stream. */
  model: string | undefined = undefined;
  /** A usage object in the other dialect's field names was seen and ignored. */
  mismatched = false;

  result(): Usage | undefined {
    return this.seen ? make(this.input, this.output, this.cacheRead, this.cacheWrite, this.reasoning) : undefined;
  }

  /**
   * True once the provider reported its closing usage (OpenAI usage chunk or `response.*` usage,
   * Anthropic `message_delta` usage). False on a stream cut before that: the counts are then partial.
   */
  get complete(): boolean {
    return this.final;
  }

  /** Record a complete usage reported by the provider (last wins). */
  assign(u: Usage): void {
    this.input = u.input;
    this.output = u.output;
    this.cacheRead = u.cacheRead;
    this.cacheWrite = u.cacheWrite;
    this.reasoning = u.reasoning;
    this.seen = true;
    this.final = true;
  }

  /** Feed one parsed SSE data object. */
  addEvent(dialect: Dialect, ev: unknown): void {
    if (!isObj(ev)) return;
    if (this.model === undefined) this.model = modelFromRoot(ev);
    if (dialect === "openai") this.addOpenai(ev);
    else this.addAnthropic(ev);
  }

  private addOpenai(ev: Obj): void {
    let raw: unknown = ev.usage;
    // Responses API: response.completed / response.incomplete / response.failed carry the usage
    // inside `response`; the earlier response.created has `usage: null` there.
    if ((raw === undefined || raw === null) && isObj(ev.response)) raw = ev.response.usage;
    if (raw === undefined || raw === null) return;
    const u = openaiUsage(raw);
    if (u !== undefined) this.assign(u);
    else if (mismatched("openai", raw)) this.mismatched = true;
  }

  private addAnthropic(ev: Obj): void {
    if (isObj(ev.message) && isObj(ev.message.usage)) {
      const raw = ev.message.usage;
      const u = anthropicUsage(raw);
      if (u !== undefined) {
        this.input = u.input;
        this.cacheRead = u.cacheRead;
        this.cacheWrite = u.cacheWrite;
        this.seen = true;
      } else if (mismatched("anthropic", raw)) this.mismatched = true;
    }
    if (isObj(ev.usage)) {
      const raw = ev.usage;
      const u = anthropicUsage(raw);
      if (u === undefined) {
        if (mismatched("anthropic", raw)) this.mismatched = true;
        return;
      }
      if (u.output > 0) this.output = u.output;
      if (u.input > 0) this.input = u.input;
      if (u.cacheRead > 0) this.cacheRead = u.cacheRead;
      if (u.cacheWrite > 0) this.cacheWrite = u.cacheWrite;
      if (u.reasoning !== undefined && u.reasoning > 0) this.reasoning = u.reasoning;
      this.seen = true;
      this.final = true;
    }
  }
}

const DATA_PREFIX = "data:";

/**
 * Feed one SSE event's data payload (the text after `data:`; a whole `data: ...` line is accepted
 * too). Whitespace and CR are trimmed, `[DONE]` and non-JSON payloads are skipped (reference §6.3).
 * Payloads without a `"usage"` key are not parsed once the model is known.
 */
export function usageFromSseData(dialect: Dialect, data: Uint8Array | string, acc: UsageAccumulator): void {
  let text = typeof data === "string" ? data : utf8.decode(data);
  text = text.trim();
  if (text.startsWith(DATA_PREFIX)) text = text.slice(DATA_PREFIX.length).trim();
  if (text.length === 0 || text === "[DONE]") return;
  if (acc.model !== undefined && !text.includes('"usage"')) return;
  let ev: unknown;
  try {
    ev = JSON.parse(text);
  } catch {
    return;
  }
  acc.addEvent(dialect, ev);
}
