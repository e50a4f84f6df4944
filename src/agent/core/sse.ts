// SSE framing over raw bytes: lines are found by splitting on 0x0A *before* decoding, so a multi-byte UTF-8
// character cut across two network chunks is decoded whole. A trailing \r is stripped (CRLF streams), `:` comment
// lines are ignored, `event:` names are kept, `data:` lines are joined with \n, and a blank line dispatches the
// record. An unterminated last record is dropped at the end (the decoder then reports the stream as truncated).

export interface SseRecord {
  event?: string;
  data: string;
}

const LF = 0x0a;

export class SseFramer {
  private readonly decoder = new TextDecoder();
  /** Bytes of a line not yet ended, as the chunks that hold them (usually none or one). */
  private pending: Uint8Array[] = [];
  private event: string | undefined;
  private data: string[] = [];

  /** Feeds one chunk; returns the records it completed (often none). */
  push(chunk: Uint8Array): SseRecord[] {
    const out: SseRecord[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, start);
      if (nl < 0) break;
      let line: Uint8Array;
      if (this.pending.length === 0) {
        line = chunk.subarray(start, nl);
      } else {
        this.pending.push(chunk.subarray(start, nl));
        line = concat(this.pending);
        this.pending = [];
      }
      this.line(line, out);
      start = nl + 1;
    }
    // Copy the tail: the caller may reuse its buffer.
    if (start < chunk.length) this.pending.push(chunk.slice(start));
    return out;
  }

  /** The end of the stream: an unterminated record is dropped. */
  end(): SseRecord[] {
    this.pending = [];
    this.event = undefined;
    this.data = [];
    return [];
  }

  private line(bytes: Uint8Array, out: SseRecord[]): void {
    let len = bytes.length;
    if (len > 0 && bytes[len - 1] === 0x0d) len--;
    if (len === 0) {
      if (this.data.length > 0) {
        const rec: SseRecord = { data: this.data.length === 1 ? this.data[0]! : this.data.join("\n") };
        if (this.event !== undefined) rec.event = this.event;
        out.push(rec);
      }
      this.event = undefined;
      this.data = [];
      return;
    }
    if (bytes[0] === 0x3a) return; // ":" comment (keep-alive)
    const text = this.decoder.decode(bytes.subarray(0, len));
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    // id, retry and unknown fields mean nothing to a model stream.
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
