// Structured logs: one JSON object per line on stdout, each with "target" and "ts" (SPEC §1).
// Lines are batched into one buffered sink and flushed within a few milliseconds, so logging never
// costs a write syscall per request on the hot path; flush() drains it at shutdown.
//
// With workers ≥ 2 (SPEC §14) the main thread is the only writer of stdout: a worker's logger hands each batch of
// whole lines to main (toMain, the encoded bytes transferred, not copied), and main appends it to its own sink in
// arrival order (writeBatch). One writer and whole-line batches mean lines never interleave or split, whatever their
// length: the pipe's 4 KiB atomic-write limit never comes into it, since no two threads write fd 1.

export type Level = "error" | "warn" | "info" | "debug";
const LEVELS: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A value written into the JSON line as-is: u64 ids must stay exact, so they are emitted as digit strings, never JS numbers. */
export class RawJson {
  constructor(readonly text: string) {}
}

export type Fields = Record<string, unknown>;

const FLUSH_DELAY_MS = 5;
/** Write out early once this much is pending, so a burst never holds more than this in memory. */
const FLUSH_BYTES = 64 * 1024;
/** Placeholder for RawJson values: a control character no real field value carries; JSON.stringify escapes it. */
const RAW_MARK = "\u0000raw";
const RAW_MARK_JSON = "\\u0000raw";

class Logger {
  private threshold: number;
  private sink = Bun.stdout.writer({ highWaterMark: 64 * 1024 });
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    this.threshold = levelFrom(process.env.AI_LOG_LEVEL);
  }

  setLevel(level: string | undefined): void {
    this.threshold = levelFrom(level);
  }

  enabled(level: Level): boolean {
    return LEVELS[level] <= this.threshold;
  }

  /** Write one line. `fields` must not contain secrets: Secret values serialise as "***" anyway. */
  write(target: string, level: Level, msg: string | undefined, fields: Fields): void {
    if (LEVELS[level] > this.threshold) return;
    // One JSON.stringify per line (not one per field); exact-u64 RawJson values go in as placeholders and are
    // spliced in afterwards, since JSON numbers from JS would lose precision.
    const obj: Fields = { ts: this.timestamp(), level, target };
    if (msg !== undefined) obj.msg = msg;
    let raw: RawJson[] | undefined;
    for (const key in fields) {
      const v = fields[key];
      if (v instanceof RawJson) {
        obj[key] = `${RAW_MARK}${(raw ??= []).length}`;
        raw.push(v);
      } else obj[key] = v;
    }
    let line = JSON.stringify(obj);
    if (raw !== undefined) for (let i = 0; i < raw.length; i++) line = line.replace(`"${RAW_MARK_JSON}${i}"`, (raw[i] as RawJson).text);
    // Lines collect in a JS string and reach the sink once per flush: the sink itself issues a write(2) per call.
    this.pending += `${line}\n`;
    if (this.pending.length >= FLUSH_BYTES) this.drain();
    else if (this.flushTimer === undefined) this.flushTimer = setTimeout(this.flushSoon, FLUSH_DELAY_MS);
  }

  /**
   * Hot-path form of write(): `body` is the rest of the JSON object, already serialised by the caller (members
   * after "target", without braces). Callers build it from values that need no escaping or escape them themselves.
   */
  writeRaw(target: string, level: Level, body: string): void {
    if (LEVELS[level] > this.threshold) return;
    const line = `{"ts":"${this.timestamp()}","level":"${level}","target":"${target}",${body}}\n`;
    // Worker threads: resolve the line now. The template and the caller's body are ropes of many small pieces, and a
    // batch of them resolved at once for the hand-off to the main thread (encode) took ~90 µs per 64 KiB, all of it
    // on whichever request was in flight: half the requests at or above the in-process p99 (bench/gc-position.ts).
    // Line by line it is the same work spread thin (p99 -5 to -13 % at one connection with two workers, tail-ab.sh).
    // The single thread writes its batch to stdout itself: there the write system call (~40-60 µs per batch on the
    // VMs measured) stays on the request thread either way, resolving early measured no tail gain at one connection
    // and 2-4 % less throughput at 64, so it keeps the one resolution per batch.
    // Reading a character resolves a JSC rope; storing it keeps the JIT from dropping the read.
    if (this.forward !== undefined) this.lastChar = line.charCodeAt(line.length - 2);
    this.pending += line;
    if (this.pending.length >= FLUSH_BYTES) this.drain();
    else if (this.flushTimer === undefined) this.flushTimer = setTimeout(this.flushSoon, FLUSH_DELAY_MS);
  }

  /** See writeRaw: the last character read from a line, so that read is never optimised away. */
  private lastChar = 0;

  /** RFC 3339 timestamp, formatted at most once per millisecond. */
  private timestamp(): string {
    const now = Date.now();
    if (now !== this.tsMs) {
      this.tsMs = now;
      this.tsText = new Date(now).toISOString();
    }
    return this.tsText;
  }

  private tsMs = 0;
  private tsText = "";

  private pending = "";

  /** Worker mode: batches go here (to the main thread) instead of to stdout. */
  private forward: ((batch: Uint8Array) => void) | undefined;
  private readonly encoder = new TextEncoder();

  /** Worker threads: send every batch of whole lines to `post` instead of writing stdout. */
  toMain(post: (batch: Uint8Array) => void): void {
    this.forward = post;
  }

  /** Main thread: a worker's batch of whole lines, written after every line this thread has logged so far. */
  writeBatch(batch: Uint8Array): void {
    if (this.pending.length > 0) {
      this.sink.write(this.pending);
      this.pending = "";
    }
    this.sink.write(batch);
    void this.sink.flush();
  }

  private drain(): void {
    if (this.pending.length === 0) return;
    if (this.forward !== undefined) {
      const text = this.pending;
      this.pending = "";
      this.forward(this.encoder.encode(text));
      return;
    }
    this.sink.write(this.pending);
    this.pending = "";
    void this.sink.flush();
  }

  private flushSoon = (): void => {
    this.flushTimer = undefined;
    this.drain();
  };

  async flush(): Promise<void> {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.drain();
    if (this.forward === undefined) await this.sink.flush();
  }

  gateway(level: Level, msg: string, fields: Fields = {}): void {
    this.write("ai.gateway", level, msg, fields);
  }
}

function levelFrom(text: string | undefined): number {
  const t = (text ?? "info").trim().toLowerCase();
  return t in LEVELS ? LEVELS[t as Level] : LEVELS.info;
}

export const log = new Logger();
