// The response tap: sees every upstream response chunk on its way to the client and meters it
// (SPEC §5 "the client receives exactly the bytes the provider sent", §6 usage metering).
//
// Design, and why:
// - SSE events are parsed AS THEY PASS, so a long Anthropic stream never loses `message_start`
//   (the root gateway's tail-only tap billed input 0 on any stream over ~64 KiB). Only the
//   incomplete trailing line is copied; complete lines are scanned in place.
// - Scanning is a small byte tokenizer per data line; JSON.parse runs only on events that carry a
//   non-null `usage` object, plus the first few events until the model is known.
// - JSON bodies keep only a bounded tail (64 KiB window, never more than 128 KiB held) and parse at
//   end(); a body longer than the window is metered from the value after its last `"usage"` key.
// - With `stripUsageChunk` (an OpenAI chat stream whose `include_usage` the GATEWAY injected) the
//   client view drops the `choices:[]` usage chunk and the top-level `"usage":null` member, so the
//   client gets what the provider would have sent without the injection.
// - Compressed bodies pass to the client untouched; a COPY is decompressed synchronously and
//   incrementally (native zlib/brotli/zstd handle, fixed scratch output) so usage() is ready the
//   moment end() returns.

import * as zlib from "node:zlib";
import { UsageAccumulator, isWs, parseJsonBody, usageFromTail } from "./usage.ts";
import type { Dialect, Usage } from "./usage.ts";

export type { Dialect, Usage } from "./usage.ts";

/** Content encodings the tap can meter through. */
export type TapEncoding = "gzip" | "br" | "deflate" | "zstd";

export interface TapOptions {
  dialect: Dialect;
  /** The response is `text/event-stream`. */
  sse: boolean;
  /**
   * The gateway injected `stream_options.include_usage` into an OpenAI chat request, so the usage
   * chunk and `"usage":null` members are removed from the client's view. Ignored unless the dialect
   * is OpenAI and the response is SSE and not compressed: the gateway asks upstream for
   * `accept-encoding: identity` on injected requests; if a provider compresses anyway the bytes
   * pass untouched (client sees the usage chunk, which stock SDKs tolerate) and are still metered.
   */
  stripUsageChunk: boolean;
  /**
   * Content-Encoding of the bytes given to push(). `null`/absent: identity. "unsupported": an
   * encoding the tap cannot decode (see tapEncoding()); the bytes pass and nothing is metered
   * (usage() stays undefined, so the request counts as a parse error rather than a zero bill).
   * "deflate" accepts both the zlib-wrapped form (RFC 9110) and the raw DEFLATE some servers send:
   * the first two bytes decide (a valid zlib header: CM=8, CINFO<=7, header%31==0).
   */
  encoding?: TapEncoding | "unsupported" | null;
}

/** Map a Content-Encoding header to TapOptions.encoding. Stacked encodings ("gzip, br") are "unsupported". */
export function tapEncoding(contentEncoding: string | null | undefined): TapEncoding | "unsupported" | null {
  if (contentEncoding === null || contentEncoding === undefined) return null;
  const v = contentEncoding.trim().toLowerCase();
  switch (v) {
    case "":
    case "identity":
      return null;
    case "gzip":
    case "x-gzip":
      return "gzip";
    case "br":
      return "br";
    case "deflate":
      return "deflate";
    case "zstd":
      return "zstd";
    default:
      return "unsupported";
  }
}

const KiB = 1024;
/** Window of a JSON body kept for the usage parse (reference §6.1). */
const TAIL = 64 * KiB;
/** Hard cap of any buffer the tap holds; compaction back to TAIL happens when it would be exceeded. */
const TAIL_CAP = 128 * KiB;
/** Longest incomplete SSE line held whole; longer lines keep only their last TAIL bytes. */
const LINE_CAP = 64 * KiB;
/** A held-line buffer larger than this is released once its line is done. */
const SHRINK_ABOVE = 16 * KiB;
/** Prefix of a long JSON body searched for the root model before the tail drops it. */
const HEAD = 8 * KiB;
/** JSON.parse attempts spent looking for the model (Azure's first chunk has `"model":""`). */
const MODEL_TRIES = 8;
/** Cut-short estimate constants (reference §12.3). */
const REQUEST_BYTES_PER_INPUT_TOKEN = 5;
const TEXT_BYTES_PER_OUTPUT_TOKEN = 4.5;

const EMPTY: Uint8Array = new Uint8Array(0);
const utf8 = new TextDecoder();

const NL = 0x0a;
const Q = 0x22;
const BS = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACK = 0x5b;
const RBRACK = 0x5d;

// Key classes for the event scanner. Values >= K_TEXT are keys whose string value is model output.
const K_NONE = 0;
const K_USAGE = 1;
const K_CHOICES = 2;
const K_MODEL = 3;
const K_TEXT = 10;
const K_DELTA = 11;

// Line actions in strip mode.
const KEEP = 0;
const DROP = 1;
const CUT = 2;

function eq(b: Uint8Array, s: number, lit: string): boolean {
  for (let i = 0; i < lit.length; i++) if (b[s + i] !== lit.charCodeAt(i)) return false;
  return true;
}

/**
 * Classify a key by its raw bytes [s, e). Text keys are the streamed output of both dialects:
 * OpenAI chat `content`/`refusal`/`arguments`/`reasoning`/`reasoning_content` (DeepSeek,
 * OpenRouter), Responses API `delta` strings, Anthropic `text`/`thinking`/`partial_json`.
 */
function classifyKey(b: Uint8Array, s: number, e: number): number {
  switch (e - s) {
    case 4:
      return eq(b, s, "text") ? K_TEXT : K_NONE;
    case 5:
      if (eq(b, s, "usage")) return K_USAGE;
      if (eq(b, s, "delta")) return K_DELTA;
      if (eq(b, s, "model")) return K_MODEL;
      return K_NONE;
    case 7:
      if (eq(b, s, "choices")) return K_CHOICES;
      return eq(b, s, "content") || eq(b, s, "refusal") ? K_TEXT : K_NONE;
    case 8:
      return eq(b, s, "thinking") ? K_TEXT : K_NONE;
    case 9:
      return eq(b, s, "arguments") || eq(b, s, "reasoning") ? K_TEXT : K_NONE;
    case 12:
      return eq(b, s, "partial_json") ? K_TEXT : K_NONE;
    case 17:
      return eq(b, s, "reasoning_content") ? K_TEXT : K_NONE;
    default:
      return K_NONE;
  }
}

/** Index of the quote closing the string opened at `open`, or -1 if cut off before `end`. */
function stringClose(b: Uint8Array, open: number, end: number): number {
  let j = open + 1;
  while (j < end) {
    const c = b[j];
    if (c === Q) return j;
    j += c === BS ? 2 : 1;
  }
  return -1;
}

/** Index just past the string opened at `open` (or `end` if cut off). */
function skipString(b: Uint8Array, open: number, end: number): number {
  const c = stringClose(b, open, end);
  return c < 0 ? end : c + 1;
}

/** Root-level string value of `key` within a (possibly cut-off) JSON prefix. */
function rootStringInPrefix(b: Uint8Array, s: number, e: number, key: number): string | undefined {
  let depth = 0;
  let i = s;
  while (i < e) {
    const c = b[i]!;
    if (c === Q) {
      const after = skipString(b, i, e);
      let k = after;
      while (k < e && isWs(b[k])) k++;
      if (depth === 1 && b[k] === COLON && classifyKey(b, i + 1, after - 1) === key) {
        k++;
        while (k < e && isWs(b[k])) k++;
        if (b[k] !== Q) return undefined;
        const close = stringClose(b, k, e);
        if (close < 0) return undefined;
        try {
          const v: unknown = JSON.parse(utf8.decode(b.subarray(k, close + 1)));
          return typeof v === "string" && v.length > 0 && v.length <= 256 ? v : undefined;
        } catch {
          return undefined;
        }
      }
      i = after;
    } else {
      if (c === LBRACE || c === LBRACK) depth++;
      else if (c === RBRACE || c === RBRACK) depth--;
      i++;
    }
  }
  return undefined;
}

// --- Decompression -------------------------------------------------------------------------

/**
 * The native handle behind node:zlib streams (same shape in Node and Bun). Its synchronous
 * `writeSync` keeps the decoder context between calls, which no public sync API does
 * (inflateSync & co. treat every call as a whole stream). Feature-detected: if a runtime lacks it,
 * compressed responses are passed through unmetered rather than breaking traffic.
 */
interface NativeHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  close(): void;
  onerror: ((message: string, errno: number) => void) | null;
}

interface ZlibInternals {
  _handle?: NativeHandle | null;
  _writeState?: Uint32Array;
}

// One scratch output buffer for every tap: decoding and the metering sink run synchronously and
// the sink copies whatever it keeps, so sharing it is safe and saves 32 KiB per response.
const SCRATCH = new Uint8Array(32 * KiB);
// Node's smallest allowed stream chunk: the stream object's own output buffer is never used.
const STREAM_OPTS = { chunkSize: 64 };
// zlib inflate state (~7 KiB) plus its 32 KiB window; brotli/zstd windows are sized by the sender
// (brotli at most 16 MiB, zstd capped here at 8 MiB, the RFC 8878 HTTP limit) and not counted.
const ZLIB_NATIVE_BYTES = 40 * KiB;
const ZSTD_WINDOW_LOG_MAX = 23;

/**
 * Length of the gzip member header (RFC 1952) starting at s, -1 if more bytes are needed, -2 if
 * this is not a gzip header.
 */
export function gzipHeaderLength(b: Uint8Array, s: number, e: number): number {
  if (e - s < 10) return e - s >= 1 && b[s] !== 0x1f ? -2 : -1;
  if (b[s] !== 0x1f || b[s + 1] !== 0x8b || b[s + 2] !== 8) return -2;
  const flg = b[s + 3]!;
  if (flg & 0xe0) return -2;
  let p = s + 10;
  if (flg & 4) {
    if (e - p < 2) return -1;
    p += 2 + (b[p]! | (b[p + 1]! << 8));
  }
  for (const bit of [8, 16]) {
    if (!(flg & bit)) continue;
    if (p >= e) return -1;
    const z = b.indexOf(0, p);
    if (z < 0 || z >= e) return -1;
    p = z + 1;
  }
  if (flg & 2) p += 2;
  return p > e ? -1 : p - s;
}

const GZ_HEADER = 0;
const GZ_BODY = 1;
const GZ_TRAILER = 2;
/** A gzip header with a longer FNAME/FCOMMENT/FEXTRA than this is treated as corrupt. */
const GZ_HEADER_MAX = 16 * KiB;

class Decompressor {
  private handle: NativeHandle | null = null;
  private state: Uint32Array | null = null;
  private flush = 0;
  private pending: Uint8Array | null = null; // deflate: bytes held until the header is sniffed
  // gzip is parsed here and inflated raw: Node/Bun's gunzip reports trailing junk after the
  // member as an error BEFORE reporting that call's output, which would lose the body's end
  // (where the usage is). Raw inflate just leaves unused input behind.
  private gzStage = GZ_HEADER;
  private gzHead: Uint8Array | null = null;
  private gzTrailer = 0;
  /** Decoding stopped (corrupt input, unsupported runtime, or closed); the bytes still pass. */
  failed = false;

  constructor(
    private readonly enc: TapEncoding,
    private readonly sink: (b: Uint8Array) => void,
  ) {
    if (enc === "br") this.open(zlib.createBrotliDecompress(STREAM_OPTS), zlib.constants.BROTLI_OPERATION_PROCESS);
    else if (enc === "zstd") this.openZstd();
    // gzip opens a raw inflater per member once its header is parsed; deflate opens on the first
    // two bytes (zlib-wrapped or raw).
  }

  private openZstd(): void {
    const z = zlib as unknown as {
      createZstdDecompress?: (o: object) => object;
      constants: Record<string, number | undefined>;
    };
    const param = z.constants.ZSTD_d_windowLogMax;
    if (typeof z.createZstdDecompress !== "function" || param === undefined) {
      this.failed = true;
      return;
    }
    this.open(z.createZstdDecompress({ ...STREAM_OPTS, params: { [param]: ZSTD_WINDOW_LOG_MAX } }), z.constants.ZSTD_e_continue ?? 0);
  }

  private open(stream: object, flush: number): void {
    const z = stream as ZlibInternals;
    const h = z._handle;
    const st = z._writeState;
    if (!h || typeof h.writeSync !== "function" || !(st instanceof Uint32Array)) {
      this.failed = true;
      return;
    }
    // Replacing onerror keeps a corrupt body from destroying the stream object, which would emit
    // an unhandled 'error' event on the next tick. The failure is reported synchronously instead.
    h.onerror = () => {
      this.failed = true;
    };
    this.handle = h;
    this.state = st;
    this.flush = flush;
  }

  push(chunk: Uint8Array): void {
    if (this.failed) return;
    if (this.enc === "gzip") {
      this.pushGzip(chunk);
      return;
    }
    let input = chunk;
    if (this.handle === null) {
      // Only deflate gets here: decide zlib vs raw from the first two bytes.
      input = this.pending === null ? chunk : concat(this.pending, chunk);
      if (input.length < 2) {
        this.pending = input.slice();
        return;
      }
      this.pending = null;
      const cmf = input[0]!;
      const flg = input[1]!;
      const zlibWrapped = (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | flg) % 31 === 0;
      this.open(zlibWrapped ? zlib.createInflate(STREAM_OPTS) : zlib.createInflateRaw(STREAM_OPTS), zlib.constants.Z_SYNC_FLUSH);
      if (this.failed) return;
    }
    let off = this.inflate(input, 0);
    // zstd may carry several frames; the decoder stops at each frame end. Other formats have one
    // stream: what follows its end is junk, ignored.
    while (off >= 0 && this.enc === "zstd" && !this.failed) {
      const next = this.inflate(input, off);
      if (next === off) break;
      off = next;
    }
    if (off >= 0 && this.enc !== "zstd") this.close();
  }

  private pushGzip(input: Uint8Array): void {
    let off = 0;
    const end = input.length;
    while (off < end && !this.failed) {
      if (this.gzStage === GZ_HEADER) {
        off = this.takeGzipHeader(input, off);
        if (off < 0) return;
        this.open(zlib.createInflateRaw(STREAM_OPTS), zlib.constants.Z_SYNC_FLUSH);
        this.gzStage = GZ_BODY;
      } else if (this.gzStage === GZ_BODY) {
        const r = this.inflate(input, off);
        if (r < 0) return;
        // Member complete: its 8-byte trailer (CRC32, ISIZE) may be followed by another member.
        this.closeHandle();
        this.gzStage = GZ_TRAILER;
        this.gzTrailer = 8;
        off = r;
      } else {
        const n = Math.min(this.gzTrailer, end - off);
        off += n;
        this.gzTrailer -= n;
        if (this.gzTrailer === 0) this.gzStage = GZ_HEADER;
      }
    }
  }

  /** Consume a gzip header from input[off..]; returns the offset after it, or -1 (need more / corrupt). */
  private takeGzipHeader(input: Uint8Array, off: number): number {
    if (this.gzHead === null) {
      const n = gzipHeaderLength(input, off, input.length);
      if (n >= 0) return off + n;
      if (n === -2) {
        this.close();
        return -1;
      }
      this.gzHead = input.slice(off);
      return -1;
    }
    const prev = this.gzHead.length;
    const all = concat(this.gzHead, input.subarray(off));
    const n = gzipHeaderLength(all, 0, all.length);
    if (n >= 0) {
      this.gzHead = null;
      return off + (n - prev);
    }
    if (n === -2 || all.length > GZ_HEADER_MAX) {
      this.close();
      return -1;
    }
    this.gzHead = all;
    return -1;
  }

  /**
   * Decode input[off..] through the open handle, handing each output slice to the sink.
   * Returns -1 when all input was consumed, else the offset where the compressed stream ended.
   */
  private inflate(input: Uint8Array, off: number): number {
    const h = this.handle;
    const st = this.state;
    if (h === null || st === null) return -1;
    let avail = input.length - off;
    for (;;) {
      h.writeSync(this.flush, input, off, avail, SCRATCH, 0, SCRATCH.length);
      if (this.failed) {
        this.close();
        return -1;
      }
      const outLeft = st[0]!;
      const inLeft = st[1]!;
      const have = SCRATCH.length - outLeft;
      if (have > 0) this.sink(SCRATCH.subarray(0, have));
      off += avail - inLeft;
      avail = inLeft;
      // A full output buffer may hide more pending output. Otherwise the decoder stopped for
      // want of input (all consumed) or because the compressed stream ended.
      if (outLeft !== 0) return avail > 0 ? off : -1;
    }
  }

  retained(): number {
    const held = (this.pending?.length ?? 0) + (this.gzHead?.length ?? 0);
    if (this.handle === null) return held;
    return held + (this.enc === "gzip" || this.enc === "deflate" ? ZLIB_NATIVE_BYTES : 0);
  }

  private closeHandle(): void {
    const h = this.handle;
    this.handle = null;
    this.state = null;
    if (h !== null) {
      try {
        h.close();
      } catch {
        // Closing an errored handle may throw; nothing is left to free.
      }
    }
  }

  /** Stop decoding for good and free the native state. */
  close(): void {
    this.failed = true;
    this.pending = null;
    this.gzHead = null;
    this.closeHandle();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// --- The tap --------------------------------------------------------------------------------

export class ResponseTap {
  private readonly dialect: Dialect;
  private readonly sse: boolean;
  private readonly strip: boolean;
  private readonly opaque: boolean;
  private readonly acc = new UsageAccumulator();
  private readonly decomp: Decompressor | null = null;

  private seen = 0;
  private textBytes = 0;
  private ended = false;

  // SSE: the incomplete trailing line. JSON: the tail window. Grows lazily up to TAIL_CAP.
  private buf: Uint8Array = EMPTY;
  private bufLen = 0;

  // SSE line state.
  private overflow = false; // current line outgrew LINE_CAP: only its tail is kept
  private overflowIsData = false;
  private dropBlank = false; // strip mode: the blank line ending a dropped usage event is next
  private modelTries = 0;

  // Results of the last scanEvent(), kept in fields so scanning allocates nothing.
  private evText = 0;
  private evDelta = false;
  private evUsageObj = false;
  private evTopUsageObj = false;
  private evChoicesEmpty = false;
  private evNullS = -1;
  private evNullE = -1;
  private cutS = 0;
  private cutE = 0;

  // Strip mode output assembly for the current push().
  private out: Uint8Array = EMPTY;
  private outLen = 0;

  // JSON.
  private truncated = false;
  private headModel: string | undefined = undefined;
  private jsonUsage: Usage | undefined = undefined;
  private jsonModel: string | undefined = undefined;

  constructor(opts: TapOptions) {
    this.dialect = opts.dialect;
    this.sse = opts.sse;
    const enc = opts.encoding ?? null;
    this.opaque = enc === "unsupported";
    this.strip = opts.stripUsageChunk && opts.sse && opts.dialect === "openai" && enc === null;
    if (enc !== null && enc !== "unsupported") this.decomp = new Decompressor(enc, (b) => this.meter(b));
  }

  /** Decoded bytes seen so far. */
  get bytesSeen(): number {
    return this.seen;
  }

  push(chunk: Uint8Array): Uint8Array {
    if (this.ended || this.opaque) return chunk;
    if (this.decomp !== null) {
      this.decomp.push(chunk);
      return chunk;
    }
    if (!this.strip) {
      this.meter(chunk);
      return chunk;
    }
    return this.pushStrip(chunk);
  }

  end(): Uint8Array {
    if (this.ended) return EMPTY;
    this.ended = true;
    this.decomp?.close();
    let rest: Uint8Array = EMPTY;
    if (this.sse) {
      if (this.overflow) {
        this.finishOverflow();
      } else if (this.bufLen > 0) {
        const act = this.line(this.buf, 0, this.bufLen);
        if (this.strip) rest = this.render(this.buf, 0, this.bufLen, act);
      }
    } else {
      this.finishJson();
    }
    this.buf = EMPTY;
    this.bufLen = 0;
    return rest;
  }

  usage(): Usage | undefined {
    return this.sse ? this.acc.result() : this.jsonUsage;
  }

  /** True when the provider's closing usage was seen (SSE) or a JSON body's usage was parsed. */
  usageComplete(): boolean {
    return this.sse ? this.acc.complete : this.jsonUsage !== undefined;
  }

  /** A usage object in the other dialect's field names was seen (and ignored). */
  dialectMismatch(): boolean {
    return this.acc.mismatched;
  }

  model(): string | undefined {
    return this.sse ? this.acc.model : this.jsonModel;
  }

  /**
   * Usage for a response cut short (reference §12.3): input ≈ requestBytes/5, output ≈ streamed
   * text bytes/4.5 (for JSON, all body bytes seen: the text is not separable without parsing).
   * Whatever the provider already reported is used instead of guessing: a complete usage is
   * returned as is; Anthropic's message_start input/cache counts replace the input estimate.
   */
  estimate(requestBytes: number): Usage {
    const known = this.usage();
    if (known !== undefined && this.usageComplete()) return known;
    const textBytes = this.sse ? this.textBytes : this.seen;
    const output = Math.ceil(textBytes / TEXT_BYTES_PER_OUTPUT_TOKEN);
    if (known !== undefined) {
      return { input: known.input, output: Math.max(known.output, output), cacheRead: known.cacheRead, cacheWrite: known.cacheWrite };
    }
    return { input: Math.ceil(Math.max(0, requestBytes) / REQUEST_BYTES_PER_INPUT_TOKEN), output, cacheRead: 0, cacheWrite: 0 };
  }

  /** Bytes held for this response: line/tail buffer plus decoder state (nominal for zlib). */
  retainedBytes(): number {
    return this.buf.byteLength + (this.decomp?.retained() ?? 0);
  }

  // --- metering (decoded bytes) ---

  private meter(b: Uint8Array): void {
    this.seen += b.length;
    if (this.sse) this.meterSse(b);
    else this.meterJson(b);
  }

  private meterSse(b: Uint8Array): void {
    const end = b.length;
    let p = 0;
    if (this.bufLen > 0 || this.overflow) {
      const nl = b.indexOf(NL);
      if (nl < 0) {
        this.hold(b, 0, end);
        return;
      }
      this.hold(b, 0, nl);
      this.finishHeld();
      p = nl + 1;
    }
    for (;;) {
      const nl = b.indexOf(NL, p);
      if (nl < 0) break;
      this.line(b, p, nl);
      p = nl + 1;
    }
    if (p < end) this.hold(b, p, end);
  }

  /** Process the held line (its newline has arrived) and clear it. */
  private finishHeld(): void {
    if (this.overflow) this.finishOverflow();
    else this.line(this.buf, 0, this.bufLen);
    this.bufLen = 0;
    this.shrink();
  }

  /** After one long line, do not keep its large buffer for the rest of a long stream. */
  private shrink(): void {
    if (this.bufLen === 0 && this.buf.length > SHRINK_ABOVE) this.buf = EMPTY;
  }

  /**
   * Append to the held partial line. Past LINE_CAP only the last TAIL bytes are kept: such a line is
   * a Responses API `response.completed` carrying the whole output, and its usage sits at the end.
   */
  private hold(b: Uint8Array, s: number, e: number): void {
    if (!this.overflow && this.bufLen + (e - s) > LINE_CAP) {
      // Note the line kind before its head is dropped.
      const fill = Math.min(e - s, Math.max(0, 5 - this.bufLen));
      this.append(b, s, s + fill);
      this.overflowIsData = eq(this.buf, 0, "data:");
      this.overflow = true;
      s += fill;
    }
    this.append(b, s, e);
  }

  private finishOverflow(): void {
    this.overflow = false;
    if (this.overflowIsData && this.dialect === "openai") {
      const u = usageFromTail("openai", this.buf, 0, this.bufLen);
      if (u !== undefined) this.acc.assign(u);
    }
    this.bufLen = 0;
  }

  /**
   * Append bytes to buf, growing it up to TAIL_CAP; when that is not enough, keep only the last
   * TAIL bytes (amortised O(1) per byte: a compaction frees at least TAIL - chunk bytes).
   */
  private append(b: Uint8Array, s: number, e: number): void {
    const n = e - s;
    if (n <= 0) return;
    const need = this.bufLen + n;
    if (need <= TAIL_CAP) {
      this.ensureCap(need);
      this.buf.set(b.subarray(s, e), this.bufLen);
      this.bufLen = need;
      return;
    }
    this.ensureCap(TAIL);
    if (n >= TAIL) {
      this.buf.set(b.subarray(e - TAIL, e), 0);
    } else {
      const keep = TAIL - n;
      this.buf.copyWithin(0, this.bufLen - keep, this.bufLen);
      this.buf.set(b.subarray(s, e), keep);
    }
    this.bufLen = TAIL;
  }

  private ensureCap(need: number): void {
    if (need <= this.buf.length) return;
    let cap = Math.max(this.buf.length * 2, 1 * KiB);
    while (cap < need) cap *= 2;
    cap = Math.min(cap, TAIL_CAP);
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.bufLen), 0);
    this.buf = nb;
  }

  /**
   * One complete SSE line [s, e) (newline excluded). Meters it and, for strip mode, returns what
   * to do with it in the client's view (KEEP / DROP / CUT with cutS..cutE removed).
   */
  private line(b: Uint8Array, s: number, e: number): number {
    if (this.dropBlank) {
      this.dropBlank = false;
      let k = s;
      while (k < e && isWs(b[k])) k++;
      if (k === e) return DROP;
    }
    if (e - s < 5 || b[s] !== 0x64 /* d */ || !eq(b, s, "data:")) return KEEP;
    let p = s + 5;
    let q = e;
    while (p < q && isWs(b[p])) p++;
    while (q > p && isWs(b[q - 1])) q--;
    if (p === q || (q - p === 6 && eq(b, p, "[DONE]"))) return KEEP;

    this.scanEvent(b, p, q);
    if (this.evDelta) this.textBytes += this.evText;
    if (this.evUsageObj || (this.acc.model === undefined && this.modelTries < MODEL_TRIES)) {
      if (!this.evUsageObj) this.modelTries++;
      let ev: unknown;
      try {
        ev = JSON.parse(utf8.decode(b.subarray(p, q)));
      } catch {
        ev = undefined;
      }
      if (ev !== undefined) this.acc.addEvent(this.dialect, ev);
    }

    if (!this.strip) return KEEP;
    if (this.evChoicesEmpty && this.evTopUsageObj) {
      this.dropBlank = true;
      return DROP;
    }
    if (this.evNullS < 0) return KEEP;
    // Remove the member with the comma that joins it to its neighbour.
    let a = this.evNullS - 1;
    while (a > p && isWs(b[a])) a--;
    if (b[a] === COMMA) {
      this.cutS = a;
      this.cutE = this.evNullE;
    } else {
      let z = this.evNullE;
      while (z < q && isWs(b[z])) z++;
      if (b[z] === COMMA) {
        z++;
        while (z < q && isWs(b[z])) z++;
      } else {
        z = this.evNullE;
      }
      this.cutS = this.evNullS;
      this.cutE = z;
    }
    return CUT;
  }

  /**
   * Byte tokenizer over one event's JSON [s, e). In one pass it measures the streamed text, notes
   * `usage` keys (any depth, object vs null), the top-level `"usage":null` member and a top-level
   * empty `choices` array. Strings are skipped without decoding; nothing is allocated.
   */
  private scanEvent(b: Uint8Array, s: number, e: number): void {
    let depth = 0;
    let key = K_NONE;
    let keyDepth = 0;
    let keyPos = -1;
    let text = 0;
    let delta = false;
    let usageObj = false;
    let topUsageObj = false;
    let choicesEmpty = false;
    let nullS = -1;
    let nullE = -1;
    let i = s;
    while (i < e) {
      const c = b[i]!;
      if (c === Q) {
        const after = skipString(b, i, e);
        let k = after;
        while (k < e && isWs(b[k])) k++;
        if (b[k] === COLON) {
          key = classifyKey(b, i + 1, after - 1);
          if (key === K_DELTA) delta = true;
          keyDepth = depth;
          keyPos = i;
          i = k + 1;
        } else {
          if (key >= K_TEXT) text += after - i - 2;
          key = K_NONE;
          i = after;
        }
      } else if (c === LBRACE || c === LBRACK) {
        if (key === K_USAGE) {
          usageObj = true;
          if (keyDepth === 1) topUsageObj = true;
        } else if (key === K_CHOICES && keyDepth === 1 && c === LBRACK) {
          let k = i + 1;
          while (k < e && isWs(b[k])) k++;
          if (b[k] === RBRACK) choicesEmpty = true;
        }
        depth++;
        key = K_NONE;
        i++;
      } else if (c === RBRACE || c === RBRACK) {
        depth--;
        key = K_NONE;
        i++;
      } else if (c === 0x6e /* n */ && key === K_USAGE) {
        if (keyDepth === 1) {
          nullS = keyPos;
          nullE = i + 4;
        }
        key = K_NONE;
        i += 4;
      } else {
        i++;
      }
    }
    this.evText = text;
    this.evDelta = delta;
    this.evUsageObj = usageObj;
    this.evTopUsageObj = topUsageObj;
    this.evChoicesEmpty = choicesEmpty;
    this.evNullS = nullS;
    this.evNullE = nullE;
  }

  // --- strip mode ---

  private pushStrip(chunk: Uint8Array): Uint8Array {
    this.seen += chunk.length;
    const end = chunk.length;
    let p = 0;
    let run = 0; // start of the chunk bytes not yet copied to out (they pass unmodified)
    this.out = EMPTY;
    this.outLen = 0;

    if (this.overflow) {
      // A line too long to hold: it already went to the client unmodified; keep passing it.
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.append(chunk, 0, end);
        return chunk;
      }
      this.append(chunk, 0, nl);
      this.finishOverflow();
      this.shrink();
      p = nl + 1;
    } else if (this.bufLen > 0) {
      const nl = chunk.indexOf(NL);
      const lineEnd = nl < 0 ? end : nl;
      if (this.bufLen + lineEnd > LINE_CAP) {
        // Give up holding: send what was held and let the rest of the line pass.
        this.reserve(end + this.bufLen);
        this.emit(this.buf, 0, this.bufLen);
        this.hold(chunk, 0, lineEnd);
        if (nl < 0) return this.take(chunk, 0, end);
        this.finishOverflow();
        this.shrink();
        p = nl + 1;
      } else {
        if (nl < 0) {
          this.append(chunk, 0, end);
          return EMPTY;
        }
        this.append(chunk, 0, nl + 1);
        const held = this.bufLen;
        this.bufLen = 0;
        const act = this.line(this.buf, 0, held - 1);
        this.reserve(end + held);
        this.emitLine(this.buf, 0, held, act);
        this.shrink();
        p = nl + 1;
        run = p;
      }
    }

    for (;;) {
      const nl = chunk.indexOf(NL, p);
      if (nl < 0) break;
      const act = this.line(chunk, p, nl);
      if (act !== KEEP) {
        this.reserve(end);
        this.emit(chunk, run, p);
        this.emitLine(chunk, p, nl + 1, act);
        run = nl + 1;
      }
      p = nl + 1;
    }

    let passEnd = p;
    if (p < end) {
      if (end - p > LINE_CAP) {
        this.hold(chunk, p, end);
        passEnd = end;
      } else {
        this.hold(chunk, p, end);
      }
    }
    if (this.out === EMPTY && run === 0 && passEnd === end) return chunk;
    return this.take(chunk, run, passEnd);
  }

  private reserve(n: number): void {
    if (this.out === EMPTY) this.out = new Uint8Array(n);
  }

  private emit(b: Uint8Array, s: number, e: number): void {
    if (e <= s) return;
    this.out.set(b.subarray(s, e), this.outLen);
    this.outLen += e - s;
  }

  /** Emit line [s, e) (newline included) according to its action. */
  private emitLine(b: Uint8Array, s: number, e: number, act: number): void {
    if (act === DROP) return;
    if (act === CUT) {
      this.emit(b, s, this.cutS);
      this.emit(b, this.cutE, e);
    } else {
      this.emit(b, s, e);
    }
  }

  /** Finish the output: pending unmodified bytes [s, e) of the chunk plus everything emitted. */
  private take(chunk: Uint8Array, s: number, e: number): Uint8Array {
    if (this.out === EMPTY) {
      if (e <= s) return EMPTY;
      return s === 0 && e === chunk.length ? chunk : chunk.subarray(s, e);
    }
    this.emit(chunk, s, e);
    const r = this.out.subarray(0, this.outLen);
    this.out = EMPTY;
    return r;
  }

  /** end() in strip mode: the final line had no newline. */
  private render(b: Uint8Array, s: number, e: number, act: number): Uint8Array {
    if (act === DROP) return EMPTY;
    if (act === CUT) return concat(b.subarray(s, this.cutS), b.subarray(this.cutE, e));
    return b.slice(s, e);
  }

  // --- JSON ---

  private meterJson(b: Uint8Array): void {
    const n = b.length;
    if (n === 0) return;
    if (!this.truncated && this.bufLen + n > TAIL_CAP) {
      // The next append drops the body's start: look for the root model while it is still here.
      this.truncated = true;
      if (this.bufLen >= HEAD) {
        this.headModel = rootStringInPrefix(this.buf, 0, HEAD, K_MODEL);
      } else {
        const head = concat(this.buf.subarray(0, this.bufLen), b.subarray(0, HEAD - this.bufLen));
        this.headModel = rootStringInPrefix(head, 0, head.length, K_MODEL);
      }
    }
    this.append(b, 0, n);
  }

  private finishJson(): void {
    if (this.bufLen === 0) return;
    if (this.truncated) {
      this.jsonUsage = usageFromTail(this.dialect, this.buf, 0, this.bufLen);
      this.jsonModel = this.headModel;
    } else {
      const r = parseJsonBody(this.dialect, this.buf.subarray(0, this.bufLen));
      this.jsonUsage = r.usage;
      this.jsonModel = r.model;
    }
  }
}
