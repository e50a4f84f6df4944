/**
 * Model rewrite for virtual models (SPEC §11 "Model rewrite"): the bytes of the root `"model"` value are replaced by
 * the target's model while the body streams. Nothing else in the body changes and nothing is re-serialised: the
 * output is the input's own bytes around the new value (no duplicate "model" key is appended). The include_usage
 * injection (inject-usage.ts, SPEC §6) can run in the same pass, with the same rule.
 *
 * Which value: the first root `"model"` member, exactly as ModelScanner picks it (keys compared after unescaping,
 * nested "model" keys in messages/tools/metadata never count). Only a string value is replaced, quotes, escapes and
 * all, by the JSON string of the new model; a number, null, object, array or boolean is left alone (replaced false).
 * A body whose root is not an object (first non-whitespace byte not `{`) is forwarded unchanged. JSON.parse keeps
 * the LAST of duplicate root keys while we rewrite the first: such bodies are out of spec for every provider (the
 * scanner's rule, see scan-model.ts).
 *
 * What is held back: only the old value's bytes while it spans chunks (a value inside one chunk is cut out of it
 * with views, no copy). We cannot emit the new value at the opening quote and drop the old bytes as they pass: a
 * value that turns out implausible, or a body that ends inside it, must go through unchanged, and those bytes would
 * be gone. The hold is bounded by MODEL_VALUE_MAX_RAW: a model id is at most 256 bytes (the scanner's cap), and each
 * byte written as a `\u00XX` escape is 6, so a string whose raw text between the quotes is over 1,536 bytes is not a
 * plausible model. Such a value is left unchanged from there (the held bytes are released as they were,
 * replaced = false): the request then reaches the target with the client's model and the provider answers for it.
 *
 * Output pieces are views of the input chunks wherever possible (the caller must not reuse a chunk's memory while
 * its pieces are in flight); the copies are the new value (a fresh buffer per rewriter, so a consumer that transfers
 * or detaches it cannot corrupt another request), the held old value when it is released unchanged, and the
 * injection with the chunk's bytes from the root `}` on (as UsageInjector does).
 */
import { INCLUDE_USAGE_INSERT, shouldInjectUsage } from "./inject-usage.ts";
import { ModelScanner } from "./scan-model.ts";

/** Longest raw text (bytes between the quotes) of a model value that is replaced: 256 bytes × a 6-byte `\u00XX` escape each. */
export const MODEL_VALUE_MAX_RAW = 1536;

const enc = new TextEncoder();

/** The JSON string literal of `s` (quotes included, escaped as JSON.stringify does) in UTF-8: the replacement value. */
export function jsonString(s: string): Uint8Array {
  return enc.encode(JSON.stringify(s));
}

/** The same few target models come on every request: the last one's bytes, for paths that copy them (never handed out). */
let lastModel = "";
let lastBytes: Uint8Array = jsonString("");

function valueBytes(model: string): Uint8Array {
  if (model !== lastModel) {
    lastBytes = jsonString(model);
    lastModel = model;
  }
  return lastBytes;
}

export interface RewriteOptions {
  /** Apply the include_usage rule in the same pass (the caller has decided the request is eligible, SPEC §6). */
  injectUsage: boolean;
}

export interface WholeRewrite {
  body: Uint8Array;
  /** The ORIGINAL requested model, decoded, as ModelScanner reports it. */
  model: string | undefined;
  stream: boolean | undefined;
  replaced: boolean;
  injected: boolean;
}

/** Shared scanners for whole bodies (the scan ends within the call): one to the root's end for injection, one that stops early. */
const WHOLE_INJECT = new ModelScanner({ untilRootEnd: true, modelBounds: true });
const WHOLE_PLAIN = new ModelScanner({ strictRoot: true, modelBounds: true });

/**
 * One pass over a body already in memory: the root model value replaced by `newModel` (when it is a string within
 * MODEL_VALUE_MAX_RAW) and, with `injectUsage`, include_usage added under inject-usage's rule. The very same
 * `body` comes back when nothing changes; otherwise one fresh buffer of the exact new length.
 */
/**
 * A body the meter's one pass already scanned (and, when eligible, gave include_usage: `injectWhole`), with the root
 * model value's quotes at `open`/`close`: the value replaced by `newModel` without a second scan. The same result as
 * `rewriteModelWhole` on the client's body with the same injection rule (the insert sits at the root's end, after
 * the value, so the offsets hold in either body). The very same `body` comes back when nothing changes.
 */
export function spliceModelAt(body: Uint8Array, open: number, close: number, newModel: string): Uint8Array {
  if (!(open >= 0 && close > open && close - open - 1 <= MODEL_VALUE_MAX_RAW)) return body;
  const value = valueBytes(newModel);
  const oldLen = close + 1 - open;
  if (value.length === oldLen && sameBytes(body, open, value)) return body;
  const out = new Uint8Array(body.length - oldLen + value.length);
  out.set(body.subarray(0, open), 0);
  out.set(value, open);
  out.set(body.subarray(close + 1), open + value.length);
  return out;
}

/** True when `body` holds `value` at `at`. */
function sameBytes(body: Uint8Array, at: number, value: Uint8Array): boolean {
  for (let i = 0; i < value.length; i++) if (body[at + i] !== value[i]) return false;
  return true;
}

export function rewriteModelWhole(body: Uint8Array, newModel: string, opts: RewriteOptions): WholeRewrite {
  const s = opts.injectUsage ? WHOLE_INJECT : WHOLE_PLAIN;
  s.reset();
  const at = s.feedFindRootEnd(body);
  const open = s.modelValueOpen;
  const close = s.modelValueClose;
  const replace = open >= 0 && close > open && close - open - 1 <= MODEL_VALUE_MAX_RAW;
  const inject = opts.injectUsage && at >= 0 && shouldInjectUsage(s);
  const model = s.model();
  const stream = s.stream;
  if (!replace && !inject) return { body, model, stream, replaced: false, injected: false };

  const value = replace ? valueBytes(newModel) : undefined;
  const oldLen = replace ? close + 1 - open : 0;
  // The target's model spelled exactly as the client's (an alias named after its one target's model): no copy.
  if (!inject && value !== undefined && value.length === oldLen && sameBytes(body, open, value)) return { body, model, stream, replaced: true, injected: false };
  const out = new Uint8Array(body.length - oldLen + (value?.length ?? 0) + (inject ? INCLUDE_USAGE_INSERT.length : 0));
  let o = 0;
  let from = 0;
  if (value !== undefined) {
    out.set(body.subarray(0, open), 0);
    out.set(value, open);
    o = open + value.length;
    from = close + 1;
  }
  if (inject) {
    out.set(body.subarray(from, at), o);
    o += at - from;
    out.set(INCLUDE_USAGE_INSERT, o);
    o += INCLUDE_USAGE_INSERT.length;
    from = at;
  }
  out.set(body.subarray(from), o);
  return { body: out, model, stream, replaced: replace, injected: inject };
}

const SEEK = 0; // the root model value has not started
const HOLD = 1; // inside it, its bytes so far held
const DONE = 2; // replaced, or decided to stay unchanged (absent handled by the scanner's end)

/** Streams a body through the rewrite: push each chunk, forward what comes back, in order, then forward end()'s tail. */
export class ModelRewriter {
  /** The model/stream state of the request as ModelScanner reports it (for the meter). */
  readonly scanner: ModelScanner;
  private readonly inject: boolean;
  /** The replacement, a fresh buffer of this rewriter's own (it is handed out). */
  private readonly value: Uint8Array;
  private state = SEEK;
  private hold: Uint8Array | null = null;
  private holdLen = 0;
  /** Raw length of the replaced value, quotes included. */
  private oldLen = 0;
  private didReplace = false;
  private didInject = false;
  private ended = false;

  constructor(newModel: string, opts: RewriteOptions) {
    this.inject = opts.injectUsage;
    // Without injection nothing after the model value and the stream flag matters: the strict scanner is done then,
    // and later chunks pass at no cost. With it, the scan goes on to the root's closing brace (the injection point).
    this.scanner = new ModelScanner(opts.injectUsage ? { untilRootEnd: true, modelBounds: true } : { strictRoot: true, modelBounds: true });
    this.value = valueBytes(newModel).slice();
  }

  /** The root model value was replaced. */
  get replaced(): boolean {
    return this.didReplace;
  }

  /** include_usage was added. */
  get injected(): boolean {
    return this.didInject;
  }

  /**
   * Bytes the rewrite adds to the body (negative when it shrinks): new value length − old value length when
   * replaced, plus the injection's length when injected. undefined until both are final: the model part once the
   * old value has been seen to its end (or is known to be absent, not a string, or over the cap); the injection
   * part, when asked for, once its rule is decided (the first root `stream` is not `true`, `stream_options` or a
   * second `stream` was seen, or the root closed). So a caller may set an exact content-length as soon as this is
   * defined; with injection on, that is usually only at the body's end.
   */
  delta(): number | undefined {
    const s = this.scanner;
    const modelFinal = this.state === DONE || this.ended || (this.state === SEEK && s.done);
    if (!modelFinal) return undefined;
    const injectFinal =
      !this.inject ||
      this.didInject ||
      this.ended ||
      s.done ||
      s.hasStreamOptions ||
      s.duplicateStream ||
      (s.streamDecided && s.stream !== true);
    if (!injectFinal) return undefined;
    return (this.didReplace ? this.value.length - this.oldLen : 0) + (this.didInject ? INCLUDE_USAGE_INSERT.length : 0);
  }

  /** Pieces to forward now, in order: views of `chunk` except the new value, a released hold and the injection. */
  push(chunk: Uint8Array): Uint8Array[] {
    const len = chunk.length;
    if (len === 0) return [];
    const s = this.scanner;
    // A held value keeps the scanner busy (modelBounds: not done inside the model value), so done means pass-through.
    if (s.done) return [chunk];
    const at = s.feedFindRootEnd(chunk);
    const open = s.modelValueOpen;
    const close = s.modelValueClose;
    const out: Uint8Array[] = [];
    let from = 0; // the rest of the chunk from here is forwarded as it is (bar the injection)
    if (this.state === SEEK) {
      if (open >= 0) {
        if (close >= 0) {
          // The whole value is in this chunk: cut it out with views, no hold.
          if (close - open - 1 <= MODEL_VALUE_MAX_RAW) {
            if (open > 0) out.push(chunk.subarray(0, open));
            out.push(this.value);
            from = close + 1;
            this.replaced_(close + 1 - open);
          }
          this.state = DONE;
        } else if (len - open - 1 <= MODEL_VALUE_MAX_RAW) {
          if (open > 0) out.push(chunk.subarray(0, open));
          this.hold = new Uint8Array(MODEL_VALUE_MAX_RAW + 1);
          this.hold.set(chunk.subarray(open), 0);
          this.holdLen = len - open;
          this.state = HOLD;
          return out;
        } else {
          this.state = DONE; // over the cap already: unchanged
        }
      } else if (s.model() !== undefined) {
        this.state = DONE; // the first root model is not a string: unchanged
      }
    } else if (this.state === HOLD) {
      const held = this.holdLen - 1; // raw text bytes held so far (the opening quote is the first held byte)
      if (close >= 0) {
        if (held + close <= MODEL_VALUE_MAX_RAW) {
          out.push(this.value);
          from = close + 1;
          this.replaced_(this.holdLen + close + 1);
        } else {
          out.push(this.hold!.subarray(0, this.holdLen));
        }
        this.hold = null;
        this.state = DONE;
      } else if (held + len <= MODEL_VALUE_MAX_RAW) {
        this.hold!.set(chunk, this.holdLen);
        this.holdLen += len;
        return out;
      } else {
        // Over the cap: not a plausible model. Release what was held and forward the body unchanged from here.
        out.push(this.hold!.subarray(0, this.holdLen));
        this.hold = null;
        this.state = DONE;
      }
    }

    if (at >= 0 && this.inject && shouldInjectUsage(s)) {
      // The root `}` (always after the model value) is in this chunk: the insertion plus the chunk's tail from the
      // brace in one fresh buffer, as UsageInjector writes it.
      this.didInject = true;
      if (at > from) out.push(chunk.subarray(from, at));
      const ins = new Uint8Array(INCLUDE_USAGE_INSERT.length + len - at);
      ins.set(INCLUDE_USAGE_INSERT, 0);
      ins.set(chunk.subarray(at), INCLUDE_USAGE_INSERT.length);
      out.push(ins);
    } else if (from === 0) {
      out.push(chunk);
    } else if (from < len) {
      out.push(chunk.subarray(from));
    }
    return out;
  }

  /** End of body: a value still held (the body ended inside it) is released unchanged. */
  end(): Uint8Array[] {
    this.ended = true;
    if (this.state !== HOLD) return [];
    const tail = this.hold!.subarray(0, this.holdLen);
    this.hold = null;
    this.state = DONE;
    return [tail];
  }

  private replaced_(oldLen: number): void {
    this.didReplace = true;
    this.oldLen = oldLen;
  }
}
