// Bash output capture (pi's OutputAccumulator, reference §B.8): stdout and stderr chunks in arrival order go into
// one rolling tail of 2×51,200 bytes, every line is counted, and once the output passes 102,400 bytes or 2000 lines
// all of it is also written to `$TMPDIR/beyond-agent-bash-<16hex>.log` (mode 0600), so memory stays bounded however
// much a command prints and the model can still be pointed at the full text.

import { closeSync, openSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES, formatSize, truncateTail, truncationInfo, type TruncationInfo } from "./truncate.ts";

export interface OutputAccumulatorOptions {
  /** Directory of the spill file (default: os.tmpdir(), which honours $TMPDIR). */
  tmpDir?: string;
  maxLines?: number;
  maxBytes?: number;
}

export interface OutputSnapshot {
  /** The tail-truncated output, with no trailing newline. */
  text: string;
  /** Counts of the whole output (not just the tail) when it was truncated. */
  truncation?: TruncationInfo;
  fullOutputPath?: string;
  /** `[Showing …]` notice for a truncated output, else undefined. */
  notice?: string;
}

export class OutputAccumulator {
  private readonly tmpDir: string;
  private readonly maxLines: number;
  private readonly maxBytes: number;
  private readonly tailCap: number;
  private readonly spillBytes: number;
  private readonly spillLines: number;
  private chunks: Uint8Array[] = [];
  private held = 0;
  /** Bytes dropped from the front of the tail so far. */
  private dropped = 0;
  private newlines = 0;
  /** Bytes since the last LF (the open line), and the length of the line the last LF closed. */
  private openLineBytes = 0;
  private lastClosedLineBytes = 0;
  private fd: number | undefined;
  private spillPath: string | undefined;
  totalBytes = 0;

  constructor(opts: OutputAccumulatorOptions = {}) {
    this.tmpDir = opts.tmpDir ?? tmpdir();
    this.maxLines = opts.maxLines ?? DEFAULT_MAX_LINES;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.tailCap = 2 * this.maxBytes;
    this.spillBytes = 2 * this.maxBytes;
    this.spillLines = this.maxLines;
  }

  /** Lines so far: LFs, plus one when the last line is still open (so `seq 1 5000` counts 5000). */
  get totalLines(): number {
    return this.newlines + (this.openLineBytes > 0 ? 1 : 0);
  }

  get fullOutputPath(): string | undefined {
    return this.spillPath;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.totalBytes += chunk.length;
    let from = 0;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
      this.newlines++;
      this.lastClosedLineBytes = this.openLineBytes + (i - from);
      this.openLineBytes = 0;
      from = i + 1;
    }
    this.openLineBytes += chunk.length - from;
    this.chunks.push(chunk);
    this.held += chunk.length;
    // Spill before trimming: the tail holds 2×maxBytes, which is also the byte threshold, so until the first spill
    // nothing has been dropped and the file gets every byte.
    if (this.fd === undefined && (this.totalBytes > this.spillBytes || this.totalLines > this.spillLines)) {
      this.openSpill();
    } else if (this.fd !== undefined) {
      writeSync(this.fd, chunk);
    }
    this.trim();
  }

  /** The output as the model sees it now: tail-truncated, with the notice when something was cut. */
  snapshot(): OutputSnapshot {
    const text = this.tailText();
    const t = truncateTail(text, { maxLines: this.maxLines, maxBytes: this.maxBytes });
    const total = this.totalLines;
    // Lines dropped from the tail (or a line it cut into) make the whole output truncated even when the tail fits.
    const truncated = t.truncated || this.dropped > 0;
    if (!truncated) return { text: t.content };
    const path = this.spillPath ?? this.openSpill();
    let notice: string;
    if (t.lastLinePartial) {
      const lineLen = this.openLineBytes > 0 ? this.openLineBytes : this.lastClosedLineBytes;
      notice = `[Showing last ${formatSize(t.outputBytes)} of line ${total} (line is ${formatSize(lineLen)}). Full output: ${path}]`;
    } else {
      const first = total - t.outputLines + 1;
      const limit = t.truncatedBy === "bytes" ? ` (${formatSize(this.maxBytes)} limit)` : "";
      notice = `[Showing lines ${first}-${total} of ${total}${limit}. Full output: ${path}]`;
    }
    return { text: t.content, truncation: truncationInfo(t, total, this.totalBytes), fullOutputPath: path, notice };
  }

  /** Closes the spill file. Later snapshots still work from the tail. */
  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  private openSpill(): string {
    const name = `beyond-agent-bash-${randomHex(8)}.log`;
    const path = join(this.tmpDir, name);
    // wx: never follow or reuse an existing file; 0600: the output may hold whatever the command printed.
    const fd = openSync(path, "wx", 0o600);
    for (const c of this.chunks) writeSync(fd, c);
    this.spillPath = path;
    if (this.fd === -1) closeSync(fd); // opened after close(): the file is complete already
    else this.fd = fd;
    return path;
  }

  private trim(): void {
    while (this.held > this.tailCap && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.held - this.tailCap;
      if (first.length <= excess) {
        this.chunks.shift();
        this.held -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.held -= excess;
        this.dropped += excess;
      }
    }
  }

  private tailText(): string {
    let bytes: Uint8Array;
    if (this.chunks.length === 1) bytes = this.chunks[0]!;
    else {
      bytes = new Uint8Array(this.held);
      let o = 0;
      for (const c of this.chunks) {
        bytes.set(c, o);
        o += c.length;
      }
    }
    if (this.dropped > 0) {
      // The tail starts inside a line: drop that partial line when a whole one follows it; otherwise the tail is
      // all one (long) line, cut at a character boundary.
      const lf = bytes.indexOf(10);
      if (lf !== -1 && lf < bytes.length - 1) bytes = bytes.subarray(lf + 1);
      else {
        let s = 0;
        while (s < bytes.length && (bytes[s]! & 0xc0) === 0x80) s++;
        bytes = bytes.subarray(s);
      }
    }
    return new TextDecoder().decode(bytes);
  }
}

function randomHex(n: number): string {
  const b = crypto.getRandomValues(new Uint8Array(n));
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}
