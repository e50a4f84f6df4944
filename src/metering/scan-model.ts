/**
 * Incremental scanner for the root-level `"model"` and `"stream"` members of a JSON body
 * (SPEC §6; seed reference §5), fed chunk by chunk as the body streams past.
 *
 * Design points (why it looks the way it does):
 * - O(1) memory: the only buffer is a 256-byte model capture, allocated on first use. Keys are
 *   matched on the fly against the three names we care about, so no key text is kept.
 * - String contents we do not need (prompts, base64 images) are skipped with
 *   `Uint8Array#indexOf` (memchr in JSC) from quote to quote; whether a quote is escaped is
 *   read from the parity of the backslash run just before it, so escapes such as `\n` are never
 *   visited one by one. A backslash run that ends a chunk carries over as one flag.
 * - Only the FIRST root-level `"model"` / `"stream"` key counts (the seed gateway's rule; it also
 *   lets the scanner stop early). JSON.parse keeps the LAST duplicate, so bodies with duplicate
 *   root keys may disagree with JSON.parse; such bodies are out of spec for every provider.
 * - Keys are compared after JSON-unescaping (`"mod\u0065l"` IS the key `model` to every JSON
 *   parser, including the provider's). The seed compared raw bytes, so an escaped key there
 *   never matched; we deliberately agree with JSON.parse instead. This matters most for
 *   `stream_options`: an escaped spelling must still suppress injection, or the provider would
 *   see the member twice.
 * - The model value is reported decoded. Anything that cannot be logged safely (not a string,
 *   over 256 bytes of UTF-8, invalid UTF-8, lone surrogates, or containing control characters,
 *   DEL, `"` or `\` after decoding) is reported as "unknown". An oversized value is skipped at
 *   memchr speed and does not end the scan: `stream` may still follow it.
 * - `done` (default mode) = model decided and stream decided (or `modelOnly`); hasStreamOptions is
 *   therefore only complete in untilRootEnd mode.
 * - `modelBounds` (for the model rewriter): each feed reports where in its chunk the root model
 *   value's opening and closing quotes are (`modelValueOpen` / `modelValueClose`), whatever the
 *   value decodes to, and `done` waits for that value's closing quote even when the model is
 *   already decided ("unknown" after 256 bytes), so the rewriter always learns where it ends.
 *
 * Two root modes:
 * - default (lax): bytes outside any `{...}` at depth 0 are noise, so an SSE line such as
 *   `data: {"model":"gpt-4o",...}` yields its model (used on responses). Several root objects in
 *   a row are scanned in turn; the first root `model` wins.
 * - `untilRootEnd` (strict): the first non-whitespace byte must be `{` (else nothing is learned
 *   and `done` is set), and the scanner keeps going until that object's closing brace, whose
 *   offset `feedFindRootEnd` reports. This is what the usage injector needs: at that brace every
 *   root key has been seen, so the decision to inject is final.
 * - `strictRoot` alone: the same strict root, but `done` comes as in the default mode (model and
 *   stream decided), or at the root's closing brace. For a request body whose rewrite needs only
 *   the model (no injection): a garbage prefix or a second root object is never read as a root.
 */

const QUOTE = 0x22;
const BSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACK = 0x5b;
const RBRACK = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;

/** Longest model value (decoded UTF-8 bytes) reported as itself; longer is "unknown". */
export const MODEL_MAX_BYTES = 256;
export const UNKNOWN_MODEL = "unknown";

// What the string being walked is used for.
const STR_SKIP = 0;
const STR_KEY = 1;
const STR_MODEL = 2;

// Position inside the current root object (only meaningful at depth 1).
const ROOT_NONE = 0;
const ROOT_KEY = 1; // expecting a key (after `{` or `,`)
const ROOT_COLON = 2; // key read, expecting `:`
const ROOT_VALUE = 3; // expecting the first byte of a value
const ROOT_AFTER = 4; // inside / after a value, expecting `,` or `}`

// Which interesting key the last root key was.
const K_OTHER = 0;
const K_MODEL = 1;
const K_STREAM = 2;

// Bits of the on-the-fly key matcher.
const M_MODEL = 1;
const M_STREAM = 2;
const M_STREAM_OPTIONS = 4;
const M_ALL = M_MODEL | M_STREAM | M_STREAM_OPTIONS;
const NAME_MODEL = bytesOf("model");
const NAME_STREAM_OPTIONS = bytesOf("stream_options"); // "stream" is its 6-byte prefix

const MODEL_UNSEEN = 0;
const MODEL_CAPTURING = 1;
const MODEL_DONE = 2;

const LIT_NONE = 0;
const LIT_TRUE = 1;
const LIT_FALSE = 2;
const TRUE_BYTES = bytesOf("true");
const FALSE_BYTES = bytesOf("false");

// fatal: invalid UTF-8 in a model value must become "unknown", not U+FFFD.
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The last model value decoded (any scanner): its bytes and string, for endModelValue's reuse. */
const lastModelBytes = new Uint8Array(MODEL_MAX_BYTES);
let lastModelLen = -1;
let lastModel = "";

function bytesOf(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function isWs(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Decoded code unit of a one-letter JSON escape (`\n` → 0x0a), or -1 when invalid. */
function simpleEscape(c: number): number {
  switch (c) {
    case QUOTE:
      return QUOTE;
    case BSLASH:
      return BSLASH;
    case 0x2f: // '/'
      return 0x2f;
    case 0x62: // b
      return 0x08;
    case 0x66: // f
      return 0x0c;
    case 0x6e: // n
      return 0x0a;
    case 0x72: // r
      return 0x0d;
    case 0x74: // t
      return 0x09;
    default:
      return -1;
  }
}

export interface ModelScannerOptions {
  /** Strict root, and keep tracking to the root object's closing brace (needed for injection). */
  untilRootEnd?: boolean;
  /** Only the model is wanted (response side): `done` as soon as the model is known. */
  modelOnly?: boolean;
  /** Strict root (first non-whitespace byte `{`, nothing read after its closing brace) without untilRootEnd's late `done`. */
  strictRoot?: boolean;
  /** Report the root model value's quote offsets per feed, and hold `done` until that value has closed (model rewriter). */
  modelBounds?: boolean;
}

export class ModelScanner {
  private readonly untilRootEnd: boolean;
  private readonly modelOnly: boolean;
  private readonly strict: boolean;
  private readonly bounds: boolean;

  private depth!: number;
  private rootState!: number;
  private started!: boolean;
  private finished!: boolean;
  private rootObject!: boolean;
  private rootEnded!: boolean;

  private inString!: boolean;
  private strKind!: number;
  private escNext!: boolean; // skip mode: the next byte is escaped (a `\` ended the last chunk)
  private esc!: number; // capture mode: 0 none, 1 after `\`, 2..5 = `\u` with (esc-2) hex digits read
  private hex!: number;

  private keyMask!: number;
  private keyLen!: number;
  private lastKey!: number;

  private modelState!: number;
  private modelBuf: Uint8Array | null = null;
  private modelLen!: number;
  private highSurrogate!: number;
  private modelValue!: string | undefined;

  private streamValue!: boolean | undefined;
  private streamDecidedFlag!: boolean;
  private streamKeySeen!: boolean;
  private dupStream!: boolean;
  private lit!: number;
  private litIdx!: number;
  private streamOptions!: boolean;

  private inModelValue!: boolean;
  private openAt!: number;
  private closeAt!: number;

  constructor(opts?: ModelScannerOptions) {
    this.untilRootEnd = opts?.untilRootEnd === true;
    this.modelOnly = opts?.modelOnly === true;
    this.strict = this.untilRootEnd || opts?.strictRoot === true;
    this.bounds = opts?.modelBounds === true;
    this.reset();
  }

  /**
   * Back to the state of a new scanner with the same options, keeping the model capture buffer: a body scanned whole
   * in one call can use one shared scanner (injectWhole, Meter.wholeBody) instead of allocating a scanner and its buffer per request.
   */
  reset(): void {
    this.depth = 0;
    this.rootState = ROOT_NONE;
    this.started = false;
    this.finished = false;
    this.rootObject = false;
    this.rootEnded = false;
    this.inString = false;
    this.strKind = STR_SKIP;
    this.escNext = false;
    this.esc = 0;
    this.hex = 0;
    this.keyMask = 0;
    this.keyLen = 0;
    this.lastKey = K_OTHER;
    this.modelState = MODEL_UNSEEN;
    this.modelLen = 0;
    this.highSurrogate = 0;
    this.modelValue = undefined;
    this.streamValue = undefined;
    this.streamDecidedFlag = false;
    this.streamKeySeen = false;
    this.dupStream = false;
    this.lit = LIT_NONE;
    this.litIdx = 0;
    this.streamOptions = false;
    this.inModelValue = false;
    this.openAt = -1;
    this.closeAt = -1;
  }

  /** Nothing more to learn; further chunks are ignored at no cost. */
  get done(): boolean {
    return this.finished;
  }

  /**
   * undefined: no root "model" key seen. "unknown": the value is unusable (see module doc) or
   * was cut off by the end of input. Otherwise the decoded model id.
   */
  model(): string | undefined {
    if (this.modelState === MODEL_UNSEEN) return undefined;
    if (this.modelState === MODEL_CAPTURING) return UNKNOWN_MODEL;
    return this.modelValue;
  }

  /** The first root "model" member's value has been read to its end (a string, or a value that is not one). */
  get modelDecided(): boolean {
    return this.modelState === MODEL_DONE;
  }

  /** The first root "stream" member when it is the literal true/false; else undefined. */
  get stream(): boolean | undefined {
    return this.streamValue;
  }

  /** A root key "stream_options" was seen (complete only in untilRootEnd mode, or once the root closed). */
  get hasStreamOptions(): boolean {
    return this.streamOptions;
  }

  /** More than one root "stream" key was seen (injection stays off: providers may read either). */
  get duplicateStream(): boolean {
    return this.dupStream;
  }

  get rootIsObject(): boolean {
    return this.rootObject;
  }

  /** The first root "stream" member's value has been read (so `stream` is final), or it was not a literal. */
  get streamDecided(): boolean {
    return this.streamDecidedFlag;
  }

  /**
   * modelBounds mode: offset in the chunk of the last feed of the root model value's opening quote, or -1 when that
   * quote was not in it. Only a string value has one (the first root "model" member's, as `model()` reports).
   */
  get modelValueOpen(): number {
    return this.openAt;
  }

  /** modelBounds mode: offset in the chunk of the last feed of that value's closing quote, or -1. */
  get modelValueClose(): number {
    return this.closeAt;
  }

  /** strict modes: the root object's closing brace has been seen. */
  get rootClosed(): boolean {
    return this.rootEnded;
  }

  /** Bytes held by internal buffers; constant whatever the body size (asserted in tests). */
  retainedBytes(): number {
    return this.modelBuf === null ? 0 : this.modelBuf.byteLength;
  }

  feed(chunk: Uint8Array): void {
    if (!this.finished) this.scan(chunk);
  }

  /**
   * Like feed, and returns the offset in `chunk` of the root object's closing `}` when this
   * chunk holds it (untilRootEnd mode only), else -1. Bytes after it are not scanned.
   */
  feedFindRootEnd(chunk: Uint8Array): number {
    if (this.finished) return -1;
    return this.scan(chunk);
  }

  private scan(buf: Uint8Array): number {
    const len = buf.length;
    let i = 0;
    this.openAt = -1;
    this.closeAt = -1;
    while (i < len) {
      if (this.inString) {
        if (this.strKind === STR_SKIP) {
          if (this.escNext) {
            this.escNext = false;
            i++;
            continue;
          }
          // Jump from quote to quote; a quote is escaped when an odd run of backslashes
          // precedes it. Other escapes (`\n`, `\uXXXX`) are never visited, so prose and
          // base64 cost one memchr per quote rather than one per escape. Position i is known
          // to be unescaped, so a run is counted back no further than i.
          const q = buf.indexOf(QUOTE, i);
          if (q < 0) {
            let k = len - 1;
            while (k >= i && buf[k] === BSLASH) k--;
            this.escNext = ((len - 1 - k) & 1) === 1;
            return -1; // the string goes on in the next chunk
          }
          let k = q - 1;
          while (k >= i && buf[k] === BSLASH) k--;
          i = q + 1;
          if (((q - 1 - k) & 1) === 0) {
            this.closeString(q);
            if (this.finished) return -1;
          }
          continue;
        }
        i = this.strKind === STR_KEY ? this.captureKey(buf, i) : this.captureModel(buf, i);
        if (this.finished) return -1;
        continue;
      }

      const c = buf[i]!;
      i++;
      if (this.lit !== LIT_NONE && this.depth === 1) {
        const want = this.lit === LIT_TRUE ? TRUE_BYTES : FALSE_BYTES;
        if (this.litIdx < want.length && c === want[this.litIdx]) {
          this.litIdx++;
          continue;
        }
        const ok = this.litIdx === want.length && (isWs(c) || c === COMMA || c === RBRACE);
        if (ok) this.streamValue = this.lit === LIT_TRUE;
        this.lit = LIT_NONE;
        this.decideStream();
        if (this.finished) return -1;
      }

      switch (c) {
        case QUOTE:
          this.openString(i - 1);
          break;
        case LBRACE:
          if (this.depth === 0) {
            if (this.strict && this.started) {
              this.finished = true; // unreachable in practice: strict mode stops at root end
              return -1;
            }
            this.started = true;
            this.rootObject = true;
            this.depth = 1;
            this.rootState = ROOT_KEY;
            this.lastKey = K_OTHER;
          } else {
            if (this.depth === 1 && this.rootState === ROOT_VALUE) this.valueStart(c);
            this.depth++;
          }
          break;
        case LBRACK:
          if (this.depth === 0 && this.strict) {
            this.started = true;
            this.finished = true;
            return -1;
          }
          if (this.depth === 1 && this.rootState === ROOT_VALUE) this.valueStart(c);
          this.depth++;
          break;
        case RBRACE:
        case RBRACK:
          if (this.depth === 0) break;
          if (this.depth === 1 && this.rootState !== ROOT_NONE) {
            this.depth = 0;
            this.rootState = ROOT_NONE;
            if (this.strict) {
              this.finished = true;
              if (c === RBRACE) {
                this.rootEnded = true;
                return i - 1;
              }
              return -1;
            }
            break;
          }
          this.depth--;
          break;
        case COMMA:
          if (this.depth === 1) {
            this.rootState = ROOT_KEY;
            this.lastKey = K_OTHER;
          }
          break;
        case COLON:
          if (this.depth === 1 && this.rootState === ROOT_COLON) this.rootState = ROOT_VALUE;
          break;
        default:
          if (isWs(c)) break;
          if (this.depth === 1) {
            if (this.rootState === ROOT_VALUE) this.valueStart(c);
          } else if (this.depth === 0 && this.strict) {
            // Strict root: anything but whitespace before `{` means not a JSON object.
            this.started = true;
            this.finished = true;
            return -1;
          }
          break;
      }
      if (this.finished) return -1;
    }
    return -1;
  }

  /** First byte of a value at depth 1: decides what the model / stream key's value is. */
  private valueStart(c: number): void {
    this.rootState = ROOT_AFTER;
    if (this.lastKey === K_MODEL) {
      if (c === QUOTE) {
        this.modelState = MODEL_CAPTURING;
        this.modelLen = 0;
        this.highSurrogate = 0;
        if (this.modelBuf === null) this.modelBuf = new Uint8Array(MODEL_MAX_BYTES);
      } else {
        this.finishModel(UNKNOWN_MODEL);
      }
    } else if (this.lastKey === K_STREAM) {
      if (c === 0x74) {
        this.lit = LIT_TRUE;
        this.litIdx = 1;
      } else if (c === 0x66) {
        this.lit = LIT_FALSE;
        this.litIdx = 1;
      } else {
        this.decideStream();
      }
    }
  }

  /** `pos`: the opening quote's offset in the chunk being scanned. */
  private openString(pos: number): void {
    this.inString = true;
    this.strKind = STR_SKIP;
    this.escNext = false;
    this.esc = 0;
    if (this.depth !== 1) return;
    if (this.rootState === ROOT_KEY) {
      this.strKind = STR_KEY;
      this.keyMask = M_ALL;
      this.keyLen = 0;
    } else if (this.rootState === ROOT_VALUE) {
      this.valueStart(QUOTE);
      if (this.modelState === MODEL_CAPTURING) {
        this.strKind = STR_MODEL;
        if (this.bounds) {
          this.inModelValue = true;
          this.openAt = pos;
        }
      }
    }
  }

  /** `pos`: the closing quote's offset in the chunk being scanned. */
  private closeString(pos: number): void {
    this.inString = false;
    if (this.depth !== 1) return;
    if (this.rootState === ROOT_KEY) {
      this.finishKey();
      this.rootState = ROOT_COLON;
    } else if (this.inModelValue) {
      // The model value was skipped ("unknown": too long or unloggable) and ends here.
      this.inModelValue = false;
      this.closeAt = pos;
      this.checkDone();
    }
  }

  private finishKey(): void {
    const mask = this.keyMask;
    const n = this.keyLen;
    let id = K_OTHER;
    if (n === 5 && (mask & M_MODEL) !== 0) {
      if (this.modelState === MODEL_UNSEEN) id = K_MODEL;
    } else if (n === 6 && (mask & M_STREAM) !== 0) {
      if (this.streamKeySeen) this.dupStream = true;
      else id = K_STREAM;
      this.streamKeySeen = true;
    } else if (n === 14 && (mask & M_STREAM_OPTIONS) !== 0) {
      this.streamOptions = true;
    }
    this.lastKey = id;
  }

  /** Narrows the key matcher by one decoded code unit. */
  private keyUnit(cu: number): void {
    const p = this.keyLen++;
    let m = 0;
    const mask = this.keyMask;
    if ((mask & M_MODEL) !== 0 && NAME_MODEL[p] === cu) m |= M_MODEL;
    if ((mask & M_STREAM) !== 0 && p < 6 && NAME_STREAM_OPTIONS[p] === cu) m |= M_STREAM;
    if ((mask & M_STREAM_OPTIONS) !== 0 && NAME_STREAM_OPTIONS[p] === cu) m |= M_STREAM_OPTIONS;
    this.keyMask = m;
  }

  /** Walks a root key byte by byte (keys are short), decoding escapes; returns the next index. */
  private captureKey(buf: Uint8Array, start: number): number {
    const len = buf.length;
    let i = start;
    while (i < len) {
      const c = buf[i]!;
      i++;
      let cu: number;
      if (this.esc === 0) {
        if (c === QUOTE) {
          this.closeString(i - 1);
          return i;
        }
        if (c === BSLASH) {
          this.esc = 1;
          continue;
        }
        cu = c;
      } else if (this.esc === 1) {
        if (c === 0x75) {
          this.esc = 2;
          this.hex = 0;
          continue;
        }
        this.esc = 0;
        cu = simpleEscape(c);
      } else {
        const h = hexDigit(c);
        if (h < 0) {
          this.esc = 0;
          cu = -1;
        } else {
          this.hex = this.hex * 16 + h;
          if (++this.esc < 6) continue;
          this.esc = 0;
          cu = this.hex;
        }
      }
      if (cu >= 0) this.keyUnit(cu);
      else this.keyMask = 0;
      if (this.keyMask === 0) {
        // Not a key we care about: skip the rest of it at memchr speed (at an escape boundary).
        this.strKind = STR_SKIP;
        return i;
      }
    }
    return i;
  }

  /** Walks the model value byte by byte into the capture buffer, decoding escapes. */
  private captureModel(buf: Uint8Array, start: number): number {
    const len = buf.length;
    let i = start;
    while (i < len) {
      const c = buf[i]!;
      i++;
      let ok: boolean;
      if (this.esc === 0) {
        if (c === QUOTE) {
          this.inString = false;
          if (this.inModelValue) {
            this.inModelValue = false;
            this.closeAt = i - 1;
          }
          this.endModelValue();
          return i;
        }
        if (c === BSLASH) {
          this.esc = 1;
          continue;
        }
        // Raw control bytes are invalid JSON and unloggable; a raw byte cannot complete a
        // pending \uD8xx surrogate escape.
        ok = c >= SPACE && c !== 0x7f && this.highSurrogate === 0 && this.appendByte(c);
      } else if (this.esc === 1) {
        if (c === 0x75) {
          this.esc = 2;
          this.hex = 0;
          continue;
        }
        this.esc = 0;
        // Of the one-letter escapes only `\/` decodes to something loggable.
        ok = c === 0x2f && this.highSurrogate === 0 && this.appendByte(c);
      } else {
        const h = hexDigit(c);
        if (h < 0) {
          this.esc = 0;
          ok = false;
        } else {
          this.hex = this.hex * 16 + h;
          if (++this.esc < 6) continue;
          this.esc = 0;
          ok = this.appendUnit(this.hex);
        }
      }
      if (!ok) {
        // Already "unknown": skip the rest of the value fast.
        this.strKind = STR_SKIP;
        this.finishModel(UNKNOWN_MODEL);
        return i;
      }
    }
    return i;
  }

  private appendByte(b: number): boolean {
    if (this.modelLen >= MODEL_MAX_BYTES) return false;
    this.modelBuf![this.modelLen++] = b;
    return true;
  }

  /** Appends one UTF-16 code unit from a `\uXXXX` escape as UTF-8, pairing surrogates. */
  private appendUnit(cu: number): boolean {
    if (this.highSurrogate !== 0) {
      if (cu < 0xdc00 || cu > 0xdfff) return false;
      const cp = 0x10000 + ((this.highSurrogate - 0xd800) << 10) + (cu - 0xdc00);
      this.highSurrogate = 0;
      return (
        this.appendByte(0xf0 | (cp >> 18)) &&
        this.appendByte(0x80 | ((cp >> 12) & 0x3f)) &&
        this.appendByte(0x80 | ((cp >> 6) & 0x3f)) &&
        this.appendByte(0x80 | (cp & 0x3f))
      );
    }
    if (cu >= 0xd800 && cu <= 0xdbff) {
      this.highSurrogate = cu;
      return true;
    }
    if (cu >= 0xdc00 && cu <= 0xdfff) return false;
    if (cu < 0x80) {
      if (cu < SPACE || cu === 0x7f || cu === QUOTE || cu === BSLASH) return false;
      return this.appendByte(cu);
    }
    if (cu < 0x800) return this.appendByte(0xc0 | (cu >> 6)) && this.appendByte(0x80 | (cu & 0x3f));
    return (
      this.appendByte(0xe0 | (cu >> 12)) &&
      this.appendByte(0x80 | ((cu >> 6) & 0x3f)) &&
      this.appendByte(0x80 | (cu & 0x3f))
    );
  }

  private endModelValue(): void {
    if (this.highSurrogate !== 0) {
      this.finishModel(UNKNOWN_MODEL);
      return;
    }
    const buf = this.modelBuf!;
    const n = this.modelLen;
    // The same few model ids arrive on every request: when these bytes are the last model's, reuse its string
    // (no decode, and later Set lookups find its hash already computed).
    if (n === lastModelLen) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (buf[i] !== lastModelBytes[i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.finishModel(lastModel);
        return;
      }
    }
    let ascii = true;
    for (let i = 0; i < n; i++) if (buf[i]! >= 0x80) ascii = false;
    let s = "";
    if (ascii) {
      // The common case; building the string by hand avoids a subarray of a fresh typed
      // array (JSC then materialises its ArrayBuffer), which cost several times the scan.
      for (let i = 0; i < n; i++) s += String.fromCharCode(buf[i]!);
    } else {
      try {
        s = utf8.decode(buf.subarray(0, n));
      } catch {
        s = UNKNOWN_MODEL;
      }
    }
    lastModelBytes.set(buf.subarray(0, n));
    lastModelLen = n;
    lastModel = s;
    this.finishModel(s);
  }

  private finishModel(value: string): void {
    this.modelState = MODEL_DONE;
    this.modelValue = value;
    this.checkDone();
  }

  private decideStream(): void {
    this.streamDecidedFlag = true;
    this.checkDone();
  }

  private checkDone(): void {
    if (this.untilRootEnd || this.inModelValue) return;
    if (this.modelState === MODEL_DONE && (this.modelOnly || this.streamDecidedFlag)) this.finished = true;
  }
}
