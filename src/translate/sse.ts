// An SSE event splitter over byte chunks, for the stream translator (SPEC §12): the provider's stream arrives in
// chunks cut anywhere (inside a multi-byte UTF-8 character, between a `\r` and its `\n`), and each complete event
// is handed on as its `event` name and joined `data` the moment its blank line arrives.
//
// Parsing follows the WHATWG event-stream rules: lines end in `\r\n`, `\n` or `\r`; a blank line ends an event;
// `:` starts a comment; `field: value` drops one space after the colon; a line without a colon is a field with an
// empty value; several `data` lines join with `\n`; fields other than `event` and `data` (`id`, `retry`) carry
// nothing a translation needs and are skipped; a leading byte-order mark is ignored.
//
// Memory: only the event being read is held (its `event` and `data` so far, and the bytes of a line that has not
// ended yet). Line terminators are ASCII, so a complete line never ends inside a UTF-8 sequence: each line is decoded
// on its own, with no decoder state carried between chunks. `maxEventBytes` bounds the one event held; past it the
// splitter stops (`overflowed`) and the caller ends the stream with an error.

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;

/** One event a provider could plausibly send is far below this; a stream that never ends an event is cut here. */
export const DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024;

/** Called once per complete event: `event` is "" when the event had no `event:` field. */
export type SseEventHandler = (event: string, data: string) => void;

export class SseSplitter {
  private readonly decoder = new TextDecoder();
  /** Bytes of a line that has not ended yet (its own copy: the caller's chunk may be reused). */
  private line: Uint8Array = new Uint8Array(0);
  private lineLen = 0;
  /** The last chunk ended in `\r`: a `\n` that starts the next chunk belongs to that terminator. */
  private afterCR = false;
  /** No line seen yet: the first may start with a byte-order mark. */
  private firstLine = true;
  private event = "";
  private data = "";
  private hasData = false;
  /** Bytes of the current event's completed lines. */
  private eventBytes = 0;
  /** The current event outgrew `maxEventBytes`; nothing more is read. */
  overflowed = false;

  constructor(
    private readonly onEvent: SseEventHandler,
    private readonly maxEventBytes: number = DEFAULT_MAX_EVENT_BYTES,
  ) {}

  /** Bytes held for the event being read (its completed lines and the unfinished line). */
  get heldBytes(): number {
    return this.eventBytes + this.lineLen;
  }

  /** Reads one chunk; every event it completes is handed to `onEvent` before this returns. */
  push(chunk: Uint8Array): void {
    if (this.overflowed) return;
    const n = chunk.length;
    let i = 0;
    if (this.afterCR && n > 0) {
      this.afterCR = false;
      if (chunk[0] === LF) i = 1;
    }
    let start = i;
    // indexOf is native; a `\r` is rare, so its next position is looked up again only once passed.
    let cr = chunk.indexOf(CR, i);
    while (i < n) {
      let lf = chunk.indexOf(LF, i);
      if (lf < 0) lf = n;
      if (cr >= 0 && cr < i) cr = chunk.indexOf(CR, i);
      const end = cr >= 0 && cr < lf ? cr : lf;
      if (end === n) break;
      this.completeLine(chunk, start, end);
      if (this.overflowed) return;
      if (end === cr) {
        if (end + 1 < n) {
          i = chunk[end + 1] === LF ? end + 2 : end + 1;
        } else {
          this.afterCR = true;
          i = n;
        }
      } else {
        i = end + 1;
      }
      start = i;
    }
    if (start < n) this.hold(chunk, start, n);
  }

  /** The stream ended: a last line without its terminator, and an event without its blank line, still count
   *  (providers that end on `data: [DONE]\n` or with no newline at all lose nothing). */
  finish(): void {
    if (this.overflowed) return;
    if (this.lineLen > 0) {
      const len = this.lineLen;
      this.lineLen = 0;
      this.fieldLine(this.line, 0, len);
    }
    if (!this.overflowed) this.dispatch();
  }

  private completeLine(chunk: Uint8Array, start: number, end: number): void {
    if (this.lineLen === 0) {
      this.fieldLine(chunk, start, end);
      return;
    }
    this.hold(chunk, start, end);
    if (this.overflowed) return;
    const len = this.lineLen;
    this.lineLen = 0;
    this.fieldLine(this.line, 0, len);
  }

  /** Appends bytes of an unfinished line to the held copy. */
  private hold(chunk: Uint8Array, start: number, end: number): void {
    const add = end - start;
    const need = this.lineLen + add;
    if (this.eventBytes + need > this.maxEventBytes) {
      this.overflow();
      return;
    }
    if (need > this.line.length) {
      const grown = new Uint8Array(Math.max(need, this.line.length * 2, 256));
      grown.set(this.line.subarray(0, this.lineLen));
      this.line = grown;
    }
    this.line.set(chunk.subarray(start, end), this.lineLen);
    this.lineLen = need;
  }

  private fieldLine(buf: Uint8Array, start: number, end: number): void {
    if (this.firstLine) {
      this.firstLine = false;
      if (end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf) start += 3;
    }
    if (start === end) {
      this.dispatch();
      return;
    }
    if (buf[start] === COLON) return; // a comment (keep-alives such as `: ping`)
    this.eventBytes += end - start;
    if (this.eventBytes > this.maxEventBytes) {
      this.overflow();
      return;
    }
    let colon = buf.indexOf(COLON, start);
    if (colon < 0 || colon > end) colon = end;
    const nameLen = colon - start;
    let v = colon < end ? colon + 1 : end;
    if (v < end && buf[v] === SPACE) v++;
    if (nameLen === 4 && buf[start] === 100 && buf[start + 1] === 97 && buf[start + 2] === 116 && buf[start + 3] === 97) {
      // "data"
      const value = v < end ? this.decoder.decode(buf.subarray(v, end)) : "";
      this.data = this.hasData ? this.data + "\n" + value : value;
      this.hasData = true;
    } else if (
      nameLen === 5 &&
      buf[start] === 101 &&
      buf[start + 1] === 118 &&
      buf[start + 2] === 101 &&
      buf[start + 3] === 110 &&
      buf[start + 4] === 116
    ) {
      // "event"
      this.event = v < end ? this.decoder.decode(buf.subarray(v, end)) : "";
    }
  }

  private dispatch(): void {
    if (this.hasData || this.event !== "") {
      const event = this.event;
      const data = this.data;
      this.event = "";
      this.data = "";
      this.hasData = false;
      this.eventBytes = 0;
      this.onEvent(event, data);
      return;
    }
    this.eventBytes = 0;
  }

  private overflow(): void {
    this.overflowed = true;
    this.event = "";
    this.data = "";
    this.hasData = false;
    this.eventBytes = 0;
    this.lineLen = 0;
    this.line = new Uint8Array(0);
  }
}
