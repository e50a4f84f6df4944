// The commit point for SSE (SPEC §10): a managed stream's head and preamble are held until its first content event, so
// an in-band error that arrives before any content (Anthropic `event: error` with `overloaded_error` inside a 200,
// OpenAI `data: {"error":…}`) can still be retried and the client sees one clean stream, never two `message_start`s.
// The hold is bounded by commit_hold_ms and commit_hold_bytes; when either runs out the stream is committed as it is.
//
// Memory: the held raw chunks (≤ commit_hold_bytes plus the one chunk that crossed it) and the text of the event being
// read; nothing after the commit point passes through here.

/** The slice of a default reader the hold uses (the same shape forward.ts relays from). */
export interface HoldReader {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

export type ReadResult = Awaited<ReturnType<HoldReader["read"]>>;

export type HoldResult =
  /** Relay now: `held` first (raw upstream bytes), then `pending` (a read already in flight) or the reader. */
  | { kind: "commit"; held: Uint8Array[]; pending: Promise<ReadResult> | undefined; why: "content" | "bytes" | "time" | "end" }
  /** An in-band error before any content: discard this attempt (or, when nothing retries it, relay `held` and read
   * on, as the stream would have gone without the gateway). `inputTokens`: what its preamble reported (wasted). */
  | { kind: "in_band_error"; inputTokens: number; held: Uint8Array[] }
  /** The upstream body broke before any content (`held`: what came before the break). */
  | { kind: "reset"; inputTokens: number; held: Uint8Array[] };

export interface HoldOptions {
  maxMs: number;
  maxBytes: number;
}

const TIMEOUT = Symbol("commit hold time");

/** Event names that carry no content: held (SPEC §10's preamble, plus the Responses API's opening events). */
const PREAMBLE_EVENTS = new Set(["message_start", "content_block_start", "ping", "response.created", "response.in_progress"]);

type EventKind = "preamble" | "content" | "error";

/**
 * Classifies SSE events as their bytes arrive. Only the event being read is kept as text; a complete event is
 * classified once and forgotten.
 */
export class PreambleScanner {
  private text = "";
  private readonly decoder = new TextDecoder();
  /** Input tokens the preamble reported (Anthropic message_start), for wasted_input_tokens. */
  inputTokens = 0;

  /** Feeds one chunk; returns the kind of the first non-preamble event completed in it, else undefined. */
  push(chunk: Uint8Array): EventKind | undefined {
    this.text += this.decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = eventEnd(this.text);
      if (end === undefined) return undefined;
      const event = this.text.slice(0, end.at);
      this.text = this.text.slice(end.at + end.len);
      const kind = this.classify(event);
      if (kind !== "preamble") return kind;
    }
  }

  private classify(event: string): EventKind {
    let name = "";
    let data = "";
    for (const raw of event.split(/\r\n|\r|\n/)) {
      if (raw.startsWith("event:")) name = raw.slice(6).trim();
      else if (raw.startsWith("data:")) data += (data === "" ? "" : "\n") + raw.slice(raw.charCodeAt(5) === 32 ? 6 : 5);
    }
    if (name === "error") return "error";
    if (PREAMBLE_EVENTS.has(name)) {
      if (name === "message_start") this.inputTokens = messageStartInput(data);
      return "preamble";
    }
    // A comment or an event with no data (keep-alives) carries nothing.
    if (data === "") return name === "" ? "preamble" : "content";
    if (data.trimStart().charCodeAt(0) !== 123 /* { */) return "content";
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      return "content";
    }
    if (obj === null || typeof obj !== "object") return "content";
    const o = obj as Record<string, unknown>;
    if (o["type"] === "error" || (o["error"] !== undefined && o["error"] !== null && o["choices"] === undefined)) return "error";
    return openaiPreamble(o) ? "preamble" : "content";
  }
}

/** Where the first complete SSE event ends (a blank line, any of the three line endings), or undefined. */
function eventEnd(s: string): { at: number; len: number } | undefined {
  let best: { at: number; len: number } | undefined;
  for (const sep of ["\n\n", "\r\n\r\n", "\r\r"]) {
    const i = s.indexOf(sep);
    if (i >= 0 && (best === undefined || i < best.at)) best = { at: i, len: sep.length };
  }
  return best;
}

/** OpenAI's opening chunk: choices whose deltas carry only the role (empty content, no tool calls), nothing finished. */
function openaiPreamble(o: Record<string, unknown>): boolean {
  const choices = o["choices"];
  if (!Array.isArray(choices)) return false;
  // A `choices: []` chunk without usage (Azure's prompt-filter results) carries no content either.
  if (choices.length === 0) return o["usage"] === undefined || o["usage"] === null;
  for (const c of choices) {
    if (c === null || typeof c !== "object") return false;
    const ch = c as Record<string, unknown>;
    if (ch["finish_reason"] !== null && ch["finish_reason"] !== undefined) return false;
    const d = ch["delta"];
    if (d === null || typeof d !== "object") return false;
    for (const [k, v] of Object.entries(d as Record<string, unknown>)) {
      if (k === "role") continue;
      if ((k === "content" || k === "refusal") && (v === "" || v === null)) continue;
      return false;
    }
  }
  return true;
}

function messageStartInput(data: string): number {
  try {
    const o = JSON.parse(data) as { message?: { usage?: { input_tokens?: unknown; cache_creation_input_tokens?: unknown; cache_read_input_tokens?: unknown } } };
    const u = o.message?.usage;
    const n = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0);
    return n(u?.input_tokens) + n(u?.cache_creation_input_tokens) + n(u?.cache_read_input_tokens);
  } catch {
    return 0;
  }
}

/**
 * Reads the stream's opening events until the first content event (commit), an in-band error or a break (discard), or
 * the hold's time or byte limit (commit as it is). Never throws: a read error is a "reset".
 */
export async function holdPreamble(reader: HoldReader, opts: HoldOptions): Promise<HoldResult> {
  const scanner = new PreambleScanner();
  const held: Uint8Array[] = [];
  let bytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(resolve, opts.maxMs, TIMEOUT);
  });
  try {
    for (;;) {
      const next = reader.read();
      let r: ReadResult | typeof TIMEOUT;
      try {
        r = await Promise.race([next, timeout]);
      } catch {
        return { kind: "reset", inputTokens: scanner.inputTokens, held };
      }
      if (r === TIMEOUT) return { kind: "commit", held, pending: next, why: "time" };
      if (r.done) return { kind: "commit", held, pending: Promise.resolve(r), why: "end" };
      const chunk = r.value;
      held.push(chunk);
      bytes += chunk.byteLength;
      const kind = scanner.push(chunk);
      if (kind === "error") return { kind: "in_band_error", inputTokens: scanner.inputTokens, held };
      if (kind === "content") return { kind: "commit", held, pending: undefined, why: "content" };
      if (bytes >= opts.maxBytes) return { kind: "commit", held, pending: undefined, why: "bytes" };
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The same decision for an SSE body that arrived whole with its head: undefined (relay it) or the in-band error. */
export function scanWhole(bytes: Uint8Array): HoldResult | undefined {
  const scanner = new PreambleScanner();
  return scanner.push(bytes) === "error" ? { kind: "in_band_error", inputTokens: scanner.inputTokens, held: [] } : undefined;
}
