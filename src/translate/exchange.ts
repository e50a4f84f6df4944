// What the pipeline does with the translation modules (SPEC §12), in one place: which endpoints translate, the
// request read whole and translated once, and the answer turned into the client's dialect (a whole body, an error, or
// a stream event by event behind the meter's tap). The pipeline calls these only for a virtual model with a target
// of the other dialect: every other request pays nothing, not even an import's branch.

import type { ResponseObserver } from "../pipeline/forward.ts";
import { log } from "../ops/log.ts";
import { translateRequest } from "./request.ts";
import { translateErrorBody, translateResponse } from "./response.ts";
import { streamTranslator } from "./stream.ts";
import { type Dialect, TranslateError, type TranslatedRequest, type StreamTranslator } from "./types.ts";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/**
 * The target's path below its base path for a client calling `rest` (below its `/v1`), when that endpoint is
 * translated: an OpenAI client's `/chat/completions` becomes `/messages` and an Anthropic client's `/messages`
 * becomes `/chat/completions`, the query kept. Undefined for every other endpoint (embeddings, count_tokens, models…):
 * a target of the other dialect cannot serve those.
 */
export function translatedRest(client: Dialect, method: string, rest: string): string | undefined {
  if (method !== "POST") return undefined;
  const q = rest.indexOf("?");
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? "" : rest.slice(q);
  if (client === "openai" && path === "/chat/completions") return `/messages${query}`;
  if (client === "anthropic" && path === "/messages") return `/chat/completions${query}`;
  return undefined;
}

export type Prepared =
  | { readonly ok: true; readonly request: TranslatedRequest; readonly clientModel: string | undefined }
  | { readonly ok: false; readonly message: string };

/**
 * Parses the client's whole body and translates it once (model left ""; each target sets its own). A failure is the
 * 400's message: malformed JSON, or the field the translator cannot carry. Messages quote no body content beyond a
 * field path, so no key or prompt text can leak into an error or a log.
 */
export function prepareTranslation(client: Dialect, bytes: Uint8Array, defaultMaxTokens: number): Prepared {
  let parsed: unknown;
  try {
    parsed = JSON.parse(DECODER.decode(bytes));
  } catch {
    return { ok: false, message: "the request body is not valid JSON" };
  }
  try {
    const request = translateRequest(client, parsed, { model: "", defaultMaxTokens });
    const m = (parsed as { model?: unknown } | null)?.model;
    return { ok: true, request, clientModel: typeof m === "string" ? m : undefined };
  } catch (e) {
    if (e instanceof TranslateError) return { ok: false, message: `${e.field}: ${e.message}` };
    // A translator bug must not crash the request: the client gets a clear 400, the log the cause.
    log.gateway("error", "request translation failed", { error: e instanceof Error ? e.message : String(e) });
    return { ok: false, message: "the request could not be translated for this model's provider" };
  }
}

/** The translated request's bytes for one target. */
export function targetBody(request: TranslatedRequest, model: string): Uint8Array {
  (request.body as { model?: unknown }).model = model;
  return ENCODER.encode(JSON.stringify(request.body));
}

/**
 * A whole answer in the client's dialect: an error (non-2xx) in the client's error shape, a JSON body translated, an
 * SSE body (a short stream the transport held whole) run through the stream translator. Undefined when a 2xx JSON
 * body is not JSON the translator understands: the pipeline answers 502 then.
 */
export function translateWhole(client: Dialect, status: number, bytes: Uint8Array, sse: boolean, stream: { includeUsage: boolean; model: string }): Uint8Array | undefined {
  if (status < 200 || status >= 300) return ENCODER.encode(translateErrorBody(client, status, bytes));
  if (sse) {
    const t = streamTranslator(client, stream);
    const head = t.push(bytes);
    const tail = t.end();
    return tail.byteLength === 0 ? head : Buffer.concat([head, tail]);
  }
  try {
    return ENCODER.encode(JSON.stringify(translateResponse(client, JSON.parse(DECODER.decode(bytes)))));
  } catch (e) {
    log.gateway("warn", "response translation failed", { error: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
}

/**
 * The relay's observer for a translated stream: the meter's tap sees the provider's own bytes (its usage, exactly),
 * then the translator turns them into the client's events. A translator that throws ends the translation, not the
 * process: the client's stream stops there (logged once).
 */
export class TranslatingObserver implements ResponseObserver {
  private readonly t: StreamTranslator;
  private broken = false;

  constructor(
    private readonly tap: ResponseObserver | undefined,
    client: Dialect,
    opts: { includeUsage: boolean; model: string },
  ) {
    this.t = streamTranslator(client, opts);
  }

  push(chunk: Uint8Array): Uint8Array {
    const seen = this.tap === undefined ? chunk : this.tap.push(chunk);
    if (this.broken) return EMPTY;
    try {
      return this.t.push(seen);
    } catch (e) {
      return this.fail(e);
    }
  }

  end(): Uint8Array {
    const tail = this.tap?.end();
    if (this.broken) return EMPTY;
    try {
      const a = tail === undefined || tail.byteLength === 0 ? EMPTY : this.t.push(tail);
      const b = this.t.end();
      return a.byteLength === 0 ? b : b.byteLength === 0 ? a : Buffer.concat([a, b]);
    } catch (e) {
      return this.fail(e);
    }
  }

  private fail(e: unknown): Uint8Array {
    this.broken = true;
    log.gateway("error", "stream translation failed", { error: e instanceof Error ? e.message : String(e) });
    return EMPTY;
  }
}

const EMPTY = new Uint8Array(0);

/** Response headers of a translated answer: the provider's framing and encoding no longer describe the bytes. */
export function translatedHead(headers: Headers, sse: boolean, dropped: readonly string[]): void {
  headers.delete("content-length");
  headers.delete("content-encoding");
  headers.delete("transfer-encoding");
  headers.set("content-type", sse ? "text/event-stream; charset=utf-8" : "application/json");
  if (dropped.length > 0) headers.set("x-beyond-dropped-params", dropped.join(","));
}
