/**
 * `stream_options.include_usage` injection for eligible OpenAI streaming requests
 * (SPEC §6; seed reference §6.6, with the [LATER] fixes). The caller decides eligibility
 * (managed, OpenAI dialect, path without query ending `/chat/completions`); this module only
 * rewrites bytes.
 *
 * Unlike the seed (which buffered the whole body and inserted after the opening `{`), the
 * member is inserted just before the root object's closing `}`: by then one streaming pass has
 * seen every root key, so the decision is final and nothing is ever held back. Output chunks
 * are the input chunks themselves (zero copy) except the one holding the root `}`, which is
 * split into a view of its head plus one fresh buffer with the insertion and its tail.
 *
 * Injected only when the root is a JSON object (first non-whitespace byte `{`), its first root
 * "stream" is the literal `true`, there is exactly one root "stream" key, and no root
 * "stream_options" key (compared after unescaping) exists anywhere in it.
 *
 * When injecting, the body grows by INCLUDE_USAGE_INSERT.length bytes and the decision is only
 * known at the root `}`; a caller that streams must therefore not forward the client's
 * content-length for an eligible request (or use injectWhole when the body is small).
 */
import { ModelScanner } from "./scan-model.ts";

const enc = new TextEncoder();

/** Bytes of `"stream_options":{"include_usage":true}`. Shared: never mutate or transfer it. */
export const INCLUDE_USAGE_MEMBER: Uint8Array = enc.encode('"stream_options":{"include_usage":true}');

/** What goes before the root `}`: `,` + INCLUDE_USAGE_MEMBER (a root "stream" key exists, so the comma is always valid). */
export const INCLUDE_USAGE_INSERT: Uint8Array = enc.encode(',"stream_options":{"include_usage":true}');

/** The include_usage rule, once the scanner (untilRootEnd) has reached the root's closing brace; shared with the model rewriter. */
export function shouldInjectUsage(s: ModelScanner): boolean {
  return s.rootClosed && s.stream === true && !s.hasStreamOptions && !s.duplicateStream;
}

export class UsageInjector {
  readonly scanner: ModelScanner = new ModelScanner({ untilRootEnd: true });
  private didInject = false;

  get injected(): boolean {
    return this.didInject;
  }

  /**
   * Bytes to forward now, in order. Returns views of `chunk` (the caller must not reuse the
   * chunk's memory while they are in flight); an empty chunk gives an empty array.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length === 0) return [];
    if (this.scanner.done) return [chunk];
    const at = this.scanner.feedFindRootEnd(chunk);
    if (at < 0 || !shouldInjectUsage(this.scanner)) return [chunk];
    this.didInject = true;
    // A fresh buffer (not the shared constant, not a second view of `chunk`), so a consumer
    // that transfers or detaches what it is handed cannot corrupt later requests or the head.
    const tail = chunk.length - at;
    const out = new Uint8Array(INCLUDE_USAGE_INSERT.length + tail);
    out.set(INCLUDE_USAGE_INSERT, 0);
    out.set(chunk.subarray(at), INCLUDE_USAGE_INSERT.length);
    return at === 0 ? [out] : [chunk.subarray(0, at), out];
  }

  /** End of body. Nothing is ever held back (see module doc), so this is always empty. */
  end(): Uint8Array[] {
    return [];
  }
}

/** One scanner for every whole-body scan: the scan ends within the call, so none is allocated per request. */
const WHOLE_SCANNER = new ModelScanner({ untilRootEnd: true, modelBounds: true });

/** One pass over a body already in memory: the possibly rewritten body, and what the scan learned. */
export function injectWhole(body: Uint8Array): {
  body: Uint8Array;
  injected: boolean;
  model: string | undefined;
  stream: boolean | undefined;
  /** The root model string value's quotes in `body` (and in the returned body: the insert comes after them), or -1. */
  modelOpen: number;
  modelClose: number;
} {
  const s = WHOLE_SCANNER;
  s.reset();
  const at = s.feedFindRootEnd(body);
  const modelOpen = s.modelValueOpen;
  const modelClose = s.modelValueClose;
  if (at < 0 || !shouldInjectUsage(s)) return { body, injected: false, model: s.model(), stream: s.stream, modelOpen, modelClose };
  const out = new Uint8Array(body.length + INCLUDE_USAGE_INSERT.length);
  out.set(body.subarray(0, at), 0);
  out.set(INCLUDE_USAGE_INSERT, at);
  out.set(body.subarray(at), at + INCLUDE_USAGE_INSERT.length);
  return { body: out, injected: true, model: s.model(), stream: s.stream, modelOpen, modelClose };
}
