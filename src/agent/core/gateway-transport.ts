// The fetch-based ModelTransport (reference §B.5): one POST per attempt to `${base}/v1/messages` or
// `${base}/v1/chat/completions`, retried before the first byte on network errors and on 408 409 429 500 502 503 504
// 524 (3 retries, 250·2^(n-1) ms capped at 10 s, a Retry-After honoured up to 60 s), never on any other status. Once
// a 2xx head arrives its SSE bytes are framed and decoded as they come; a failure from then on is a retryable
// TransportError for the loop's mid-stream retry. The key is sent in one header and never appears in an error.

import { type Dialect, type DialectName, dialect as dialectNamed, dialectFor } from "./dialects/index.ts";
import type { StreamEvent } from "./events.ts";
import { SseFramer } from "./sse.ts";
import { type ModelRequest, type ModelTransport, TransportError, type TransportErrorOptions } from "./transport.ts";
import { ANTHROPIC_VERSION } from "./dialects/anthropic.ts";
import { abortableSleep } from "./loop.ts";

export interface GatewayTransportOptions {
  /** The gateway (or, direct, the provider) base URL; may carry a path prefix. The dialect's path is appended. */
  baseUrl: string;
  key: string;
  /** "auto" picks per request from the model (so a model switch may change dialect). */
  dialect: DialectName | "auto";
  /** Talking to the provider itself: Anthropic then takes `x-api-key`. */
  direct?: boolean;
  userAgent: string;
  fetch?: typeof fetch;
  /** Abortable wait (tests inject a recorder). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Retries before the first byte (default 3). */
  maxRetries?: number;
  /** Silence between chunks (and before the head) that ends an attempt; default 600 s. */
  idleTimeoutMs?: number;
  /** For tests and policy: sees the JSON body before it is serialised. */
  beforePayload?: (body: Record<string, unknown>) => void;
}

export const PRE_FIRST_BYTE_RETRIES = 3;
export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 10_000;
export const RETRY_AFTER_CAP_MS = 60_000;
export const IDLE_TIMEOUT_MS = 600_000;
const RETRY_STATUSES = new Set([408, 409, 429, 500, 502, 503, 504, 524]);
const ERROR_EXCERPT_BYTES = 512;
/** An error body is read this far at most (a JSON error is far smaller; an HTML page need not be read whole). */
const ERROR_BODY_LIMIT = 64 * 1024;

function abortError(): Error {
  return new DOMException("The operation was aborted.", "AbortError");
}


/** Retry-After (delta-seconds or an HTTP date) or retry-after-ms, in ms; undefined when absent or unreadable. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms.trim()));
  const v = headers.get("retry-after");
  if (v === null) return undefined;
  const t = v.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.ceil(Number(t) * 1000);
  const date = Date.parse(t);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export class GatewayTransport implements ModelTransport {
  private readonly base: string;
  private readonly key: string;
  private readonly dialectChoice: DialectName | "auto";
  private readonly direct: boolean;
  private readonly userAgent: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly maxRetries: number;
  private readonly idleMs: number;
  private readonly beforePayload: ((body: Record<string, unknown>) => void) | undefined;

  constructor(opts: GatewayTransportOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.key = opts.key;
    this.dialectChoice = opts.dialect;
    this.direct = opts.direct ?? false;
    this.userAgent = opts.userAgent;
    this.fetchImpl = opts.fetch ?? fetch;
    this.sleep = opts.sleep ?? abortableSleep;
    this.maxRetries = Math.max(0, opts.maxRetries ?? PRE_FIRST_BYTE_RETRIES);
    this.idleMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.beforePayload = opts.beforePayload;
  }

  /** The dialect this request goes out in. */
  dialectOf(model: string): Dialect {
    return dialectNamed(dialectFor(model, this.dialectChoice));
  }

  private headers(d: Dialect): Record<string, string> {
    const h: Record<string, string> = {
      "content-type": "application/json",
      accept: "text/event-stream",
      "user-agent": this.userAgent,
    };
    if (d.name === "anthropic") {
      h["anthropic-version"] = ANTHROPIC_VERSION;
      if (this.direct) h["x-api-key"] = this.key;
      else h.authorization = `Bearer ${this.key}`;
    } else {
      h.authorization = `Bearer ${this.key}`;
    }
    return h;
  }

  /** Any text we echo (a server's error message) with the key and key-shaped tokens blanked. */
  private redact(text: string): string {
    let t = text;
    if (this.key !== "") t = t.split(this.key).join("***");
    return t.replace(/bai_v1\.[A-Za-z0-9._~+/=-]+/g, "bai_v1.***").replace(/\bsk-[A-Za-z0-9_-]{6,}/g, "sk-***");
  }

  async *stream(req: ModelRequest, signal: AbortSignal): AsyncIterable<StreamEvent> {
    const d = this.dialectOf(req.model);
    const json = d.buildBody(req);
    this.beforePayload?.(json);
    const body = JSON.stringify(json);
    const url = this.base + d.path;
    const headers = this.headers(d);
    const who = this.direct ? "provider" : "gateway";

    for (let retry = 0; ; retry++) {
      if (signal.aborted) throw abortError();
      // One controller per attempt: the caller's abort and our idle timer both end it.
      const ac = new AbortController();
      const onAbort = (): void => ac.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      let idleFired = false;
      let last = Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = (ms: number): void => {
        timer = setTimeout(() => {
          // Re-armed only when it fires: one timer per attempt, not one per chunk.
          const quiet = Date.now() - last;
          if (quiet >= this.idleMs) {
            idleFired = true;
            ac.abort(new DOMException("idle timeout", "TimeoutError"));
          } else arm(this.idleMs - quiet);
        }, ms);
      };
      arm(this.idleMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };

      let res: Response;
      try {
        res = await this.fetchImpl(url, { method: "POST", headers, body, signal: ac.signal });
      } catch (e) {
        cleanup();
        if (signal.aborted) throw abortError();
        const why = idleFired ? `no answer within ${span(this.idleMs)}` : this.redact(e instanceof Error ? e.message : String(e));
        if (retry < this.maxRetries) {
          await this.sleep(this.backoff(retry + 1, undefined), signal);
          continue;
        }
        throw new TransportError(`could not reach the ${who}: ${why}`, { retryable: false, phase: "connect" });
      }

      const requestId = res.headers.get("x-beyond-request-id") ?? undefined;
      if (res.status < 200 || res.status > 299) {
        const text = await readPrefix(res, ERROR_BODY_LIMIT);
        cleanup();
        if (signal.aborted) throw abortError();
        const status = res.status;
        const asked = retryAfterMs(res.headers);
        if (RETRY_STATUSES.has(status) && retry < this.maxRetries) {
          await this.sleep(this.backoff(retry + 1, asked), signal);
          continue;
        }
        const opts: TransportErrorOptions = { retryable: false, status, phase: "headers" };
        if (requestId !== undefined) opts.requestId = requestId;
        if (asked !== undefined) opts.retryAfterMs = asked;
        if (status === 401) {
          throw new TransportError(this.direct ? "provider rejected the key (401): check AI_API_KEY" : "gateway rejected the key (401): check AI_AGENT_KEY", opts);
        }
        throw new TransportError(`${who} returned ${status}: ${this.redact(errorText(text))}`, opts);
      }

      // 2xx: from here on a failure is the loop's to retry (the turn may already have shown deltas).
      const reader = res.body?.getReader();
      const framer = new SseFramer();
      const decoder = d.decoder(requestId);
      const out: StreamEvent[] = [];
      try {
        if (reader === undefined) throw new TransportError("stream truncated", withId({ retryable: true, phase: "stream" }, requestId));
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (signal.aborted) throw abortError();
            if (idleFired) throw new TransportError(`stream idle for ${span(this.idleMs)}`, withId({ retryable: true, phase: "stream" }, requestId));
            throw new TransportError(`stream failed: ${this.redact(e instanceof Error ? e.message : String(e))}`, withId({ retryable: true, phase: "stream" }, requestId));
          }
          if (chunk.done) break;
          last = Date.now();
          for (const rec of framer.push(chunk.value)) {
            decodeInto(decoder, rec, out, requestId);
            if (decoder.complete) break;
          }
          if (out.length > 0) {
            for (const ev of out) yield ev;
            out.length = 0;
          }
          if (decoder.complete) return;
          if (signal.aborted) throw abortError();
        }
        try {
          decoder.end(out);
        } catch (e) {
          throw e instanceof TransportError ? new TransportError(e.message, withId(e.opts, requestId)) : e;
        }
        for (const ev of out) yield ev;
        return;
      } finally {
        cleanup();
        // Ends the fetch whether we finished, failed or the consumer stopped early (the gateway sees the client go).
        if (reader !== undefined) void reader.cancel().catch(() => {});
        ac.abort();
      }
    }
  }

  /** Wait before retry n (1-based): the server's Retry-After (≤ 60 s) when it said, else 250·2^(n-1) ms (≤ 10 s). */
  private backoff(n: number, asked: number | undefined): number {
    if (asked !== undefined) return Math.min(asked, RETRY_AFTER_CAP_MS);
    return Math.min(BACKOFF_BASE_MS * 2 ** (n - 1), BACKOFF_CAP_MS);
  }
}

function span(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function withId(opts: TransportErrorOptions, requestId: string | undefined): TransportErrorOptions {
  if (requestId === undefined || opts.requestId !== undefined) return opts;
  return { ...opts, requestId };
}

function decodeInto(decoder: ReturnType<Dialect["decoder"]>, rec: Parameters<ReturnType<Dialect["decoder"]>["push"]>[0], out: StreamEvent[], requestId: string | undefined): void {
  try {
    decoder.push(rec, out);
  } catch (e) {
    if (e instanceof TransportError) throw new TransportError(e.message, withId(e.opts, requestId));
    throw e;
  }
}

/** At most `limit` bytes of a body, decoded; the rest is cancelled. Never throws. */
async function readPrefix(res: Response, limit: number): Promise<string> {
  const reader = res.body?.getReader();
  if (reader === undefined) return "";
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < limit) {
      const r = await reader.read();
      if (r.done) break;
      parts.push(r.value);
      n += r.value.length;
    }
  } catch {
    // what arrived is enough for a message
  } finally {
    void reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(Math.min(n, limit));
  let o = 0;
  for (const p of parts) {
    const take = Math.min(p.length, all.length - o);
    all.set(p.subarray(0, take), o);
    o += take;
    if (o >= all.length) break;
  }
  return new TextDecoder().decode(all);
}

/** An error body's message: `error.message` of provider/gateway JSON, else its first 512 bytes. */
function errorText(text: string): string {
  try {
    const j: unknown = JSON.parse(text);
    if (j !== null && typeof j === "object") {
      const err = (j as Record<string, unknown>).error;
      if (err !== null && typeof err === "object") {
        const m = (err as Record<string, unknown>).message;
        if (typeof m === "string" && m !== "") return m;
      }
      if (typeof err === "string" && err !== "") return err;
      const m = (j as Record<string, unknown>).message;
      if (typeof m === "string" && m !== "") return m;
    }
  } catch {
    // not JSON
  }
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= ERROR_EXCERPT_BYTES) return text.trim() === "" ? "(empty body)" : text.trim();
  return new TextDecoder().decode(bytes.subarray(0, ERROR_EXCERPT_BYTES)).replace(/\uFFFD$/, "").trim();
}
