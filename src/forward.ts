// Phase 5, forward: send the request upstream with connect retries and a head timeout, then relay the
// response body chunk by chunk with backpressure, an idle read timeout, and prompt abort on client disconnect.

import { ERR, type GatewayError } from "./errors.ts";
import type { Stallable, StallWatch } from "./stall.ts";
import { type Cancel, classifyFailure, type Transport, type UpstreamRequest, type UpstreamResponse } from "./transport.ts";
import { TurnGate } from "./turn.ts";

/** The slice of a default reader the relay uses (bun-types and @types/node disagree on the full type). */
interface Reader {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

/** Extra attempts after a connect failure (nothing was sent), SPEC §5. */
export const CONNECT_RETRIES = 2;

/** The Cancel reason when the client kept the gateway waiting for its body for idle_timeout_secs: 408, its fault. */
export const CLIENT_TIMEOUT = Symbol("client body timeout");

/**
 * A streamed request body that can be offered to several connect attempts as long as none of them read a byte:
 * a connect failure before the first pull is retried with the same, untouched source.
 */
export class StreamedBody implements Stallable {
  private reader: Reader | undefined;
  /** True once any attempt pulled a byte: from then on a retry would lose data. */
  started = false;
  bytes = 0;
  /** True while a read of the client's body is pending: the gateway is waiting on the client, not the provider. */
  waiting = false;
  stallTick = 0;
  /** sendUpstream's head timer while it runs: each client chunk restarts it, so the provider's time to answer is
   * counted from the last byte it was given, never from time the client spent not sending. */
  upstreamTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly source: ReadableStream<Uint8Array>,
    /** Sees each chunk before it goes upstream (scanner, size cap); may return replacement bytes or throw to abort. */
    private readonly onChunk?: (chunk: Uint8Array) => Uint8Array | Uint8Array[],
    private readonly onEnd?: () => Uint8Array[] | undefined,
    /** Watches each wait for a client chunk; a stall cancels the exchange with CLIENT_TIMEOUT. */
    private readonly stalls?: StallWatch,
    private readonly cancel?: Cancel,
  ) {}

  /** One read of the client's body, timed by the stall watch (the client's time), not by the provider's timer. */
  private async read(reader: Reader): ReturnType<Reader["read"]> {
    const w = this.stalls;
    if (w === undefined) return reader.read();
    this.waiting = true;
    w.wait(this);
    try {
      return await reader.read();
    } finally {
      this.waiting = false;
      w.done(this);
      this.upstreamTimer?.refresh();
    }
  }

  onStall(): void {
    this.cancel?.abort(CLIENT_TIMEOUT);
  }

  /** A fresh stream view for one attempt. Cancelling it (a failed attempt) does not cancel the client's body. */
  attempt(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          const reader = (this.reader ??= this.source.getReader() as Reader);
          this.started = true;
          // A pull must enqueue something before it returns: with highWaterMark 0 the stream calls pull again only
          // on a new read, and the consumer's one read stays pending, so an empty-handed pull would stall the
          // upload for good. onChunk may give nothing back for a read (an empty chunk, or bytes held), so read on.
          for (;;) {
            const r = await this.read(reader);
            if (r.done) {
              const tail = this.onEnd?.();
              if (tail !== undefined) for (const t of tail) if (t.byteLength > 0) c.enqueue(t);
              c.close();
              return;
            }
            this.bytes += r.value.byteLength;
            const out = this.onChunk === undefined ? r.value : this.onChunk(r.value);
            if (enqueueAll(c, out)) return;
          }
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** Release the client's body when the exchange is over early (error, timeout, client gone). */
  discard(reason?: unknown): void {
    if (this.reader !== undefined) this.reader.cancel(reason).catch(() => {});
    else this.source.cancel(reason).catch(() => {});
  }
}

/** Enqueues the non-empty pieces of `out`; true when at least one byte was enqueued. */
function enqueueAll(c: ReadableStreamDefaultController<Uint8Array>, out: Uint8Array | Uint8Array[]): boolean {
  if (!Array.isArray(out)) {
    if (out.byteLength === 0) return false;
    c.enqueue(out);
    return true;
  }
  let any = false;
  for (const t of out) {
    if (t.byteLength > 0) {
      c.enqueue(t);
      any = true;
    }
  }
  return any;
}

/** `cause`: the transport's error code (ENOTFOUND, ECONNREFUSED …) when the provider side failed, for the log. */
export type SendResult = { ok: true; response: UpstreamResponse } | { ok: false; error: GatewayError; reason: string; cause?: string };

export interface SendOptions {
  transport: Transport;
  url: string;
  method: string;
  headers: Headers;
  body: Uint8Array | StreamedBody | null;
  /** Fired by the gateway (timeouts) or because the client went away. */
  cancel: Cancel;
  headTimeoutMs: number;
  /** Called once per connect retry (metrics, logs). */
  onRetry?: (attempt: number, err: unknown) => void;
}

const TIMEOUT = Symbol("upstream timeout");

/** The head timer fired. While the gateway waits on the client's body, the client's idle watch governs instead: the
 * timer restarts with the client's next chunk (StreamedBody.read), so a slow or stalled upload is never the provider's
 * timeout. */
function headTimedOut(cancel: Cancel, body: StreamedBody | undefined): void {
  if (body?.waiting === true) return;
  cancel.abort(TIMEOUT);
}

/**
 * Send with up to CONNECT_RETRIES retries on connect failures; map failures to 502/504 in the caller's terms (408 when
 * the client stalled its upload). The head timeout counts only time spent waiting on the provider.
 */
export async function sendUpstream(o: SendOptions): Promise<SendResult & { attempts: number }> {
  const streamed = o.body instanceof StreamedBody ? o.body : undefined;
  const timer = setTimeout(headTimedOut, o.headTimeoutMs, o.cancel, streamed);
  if (streamed !== undefined) streamed.upstreamTimer = timer;
  let attempts = 0;
  try {
    for (;;) {
      attempts++;
      const body = o.body instanceof StreamedBody ? o.body.attempt() : o.body;
      const req: UpstreamRequest = { url: o.url, method: o.method, headers: o.headers, body, cancel: o.cancel };
      try {
        const response = await o.transport.send(req);
        return { ok: true, response, attempts };
      } catch (e) {
        if (o.cancel.aborted) {
          const why = o.cancel.reason;
          if (why === TIMEOUT) return { ok: false, error: ERR.upstreamTimeout, reason: "upstream_timeout", attempts };
          if (why === CLIENT_TIMEOUT) return { ok: false, error: ERR.requestTimeout, reason: "client_timeout", attempts };
          return { ok: false, error: ERR.upstreamReset, reason: "client_closed", attempts };
        }
        const kind = classifyFailure(e);
        const replayable = !(o.body instanceof StreamedBody) || !o.body.started;
        if (kind === "connect" && replayable && attempts <= CONNECT_RETRIES) {
          o.onRetry?.(attempts, e);
          continue;
        }
        const cause = errorCode(e);
        return kind === "connect"
          ? { ok: false, error: ERR.upstreamUnreachable, reason: "upstream_unreachable", cause, attempts }
          : { ok: false, error: ERR.upstreamReset, reason: "upstream_reset", cause, attempts };
      }
    }
  } finally {
    clearTimeout(timer);
    if (streamed !== undefined) streamed.upstreamTimer = undefined;
  }
}

/** A transport error's code (ENOTFOUND, ECONNRESET …), else its name: never its message, which may quote anything. */
export function errorCode(e: unknown): string {
  const err = e as { code?: string; name?: string } | undefined;
  return err?.code ?? err?.name ?? "error";
}

export type WholeRead = { ok: true; bytes: Uint8Array } | { ok: false; how: "upstream_reset" | "upstream_timeout" | "client_closed" };

/**
 * A small response with a declared length (≤ 64 KiB, not SSE) is read in one piece and answered with plain bytes:
 * the same bounded memory as one relayed chunk, and it skips the JS stream between provider and client, which
 * was the largest per-request cost measured on the hot path. A body the transport already holds (the usual small
 * answer) is returned as it is, synchronously: no promise and no microtask for it.
 */
export function readWhole(response: UpstreamResponse, cancel: Cancel, readTimeoutMs: number): WholeRead | Promise<WholeRead> {
  if (response.whole !== undefined) return { ok: true, bytes: response.whole };
  if (response.body === null) return { ok: true, bytes: new Uint8Array(0) };
  return readStream(response.body, cancel, readTimeoutMs);
}

async function readStream(body: ReadableStream<Uint8Array>, cancel: Cancel, readTimeoutMs: number): Promise<WholeRead> {
  const timer = setTimeout(() => cancel.abort(TIMEOUT), readTimeoutMs);
  try {
    return { ok: true, bytes: await Bun.readableStreamToBytes(body) };
  } catch {
    if (cancel.aborted) return { ok: false, how: cancel.reason === TIMEOUT ? "upstream_timeout" : "client_closed" };
    return { ok: false, how: "upstream_reset" };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whole answers (the body already in hand) go to Bun to write: the turn's first at once, later ones in the same turn
 * together at its end, so their writes to the clients go out back to back (turn.ts). Measured in alternating rounds
 * under compare.sh's load: +6-8% throughput; at one connection unchanged within noise.
 */
export class HeldResponses {
  private readonly resolves: Array<(r: Response) => void> = [];
  private readonly responses: Response[] = [];
  private readonly turn = new TurnGate(() => {
    const resolves = this.resolves;
    const responses = this.responses;
    for (let i = 0; i < resolves.length; i++) (resolves[i] as (r: Response) => void)(responses[i] as Response);
    resolves.length = 0;
    responses.length = 0;
  });

  release(r: Response): Response | Promise<Response> {
    if (this.turn.first()) return r;
    return new Promise<Response>((resolve) => {
      this.resolves.push(resolve);
      this.responses.push(r);
    });
  }
}

/** How a relayed body ended, for the log phase. */
export type RelayEnd = "complete" | "client_closed" | "upstream_reset" | "upstream_timeout";

/** Sees response chunks on their way to the client (metering); returns the bytes to send. */
export interface ResponseObserver {
  push(chunk: Uint8Array): Uint8Array;
  end(): Uint8Array;
}

export interface RelayOptions {
  body: ReadableStream<Uint8Array>;
  cancel: Cancel;
  readTimeoutMs: number;
  observer?: ResponseObserver | undefined;
  onBytes?: (n: number) => void;
  /** Called exactly once, when the body ended for any reason. */
  onEnd: (how: RelayEnd) => void;
}

/**
 * Pull-driven relay (highWaterMark 0): a chunk is read from the provider only when the client can take one,
 * so a slow client slows the provider instead of filling gateway memory.
 */
export function relayBody(o: RelayOptions): ReadableStream<Uint8Array> {
  const reader = o.body.getReader() as Reader;
  let ended = false;
  let timedOut = false;
  const finish = (how: RelayEnd) => {
    if (ended) return;
    ended = true;
    clearTimeout(idle);
    o.onEnd(how);
  };
  // One timer per stream, re-armed on every chunk: a stalled provider is cut after read_timeout_secs of silence,
  // while a live stream (any byte within the window) is never cut.
  const idle = setTimeout(() => {
    timedOut = true;
    o.cancel.abort(TIMEOUT);
  }, o.readTimeoutMs);
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        // Read until a byte goes out or the body ends. The observer may turn a read into nothing (the usage-only
        // chunk the gateway caused, or part of an SSE line it holds until the line is whole), and a pull that
        // returns without enqueueing is never called again (highWaterMark 0: only a new read by the consumer
        // would, and the consumer's one read is still pending), so returning empty-handed would stall the stream.
        for (;;) {
          let r: Awaited<ReturnType<Reader["read"]>>;
          try {
            r = await reader.read();
          } catch (e) {
            finish(timedOut ? "upstream_timeout" : "upstream_reset");
            c.error(e);
            return;
          }
          // The client went away while this read was pending (cancel() already finished the exchange).
          if (ended) return;
          if (r.done) {
            const tail = o.observer?.end();
            if (tail !== undefined && tail.byteLength > 0) {
              o.onBytes?.(tail.byteLength);
              c.enqueue(tail);
            }
            finish("complete");
            c.close();
            return;
          }
          idle.refresh();
          const out = o.observer === undefined ? r.value : o.observer.push(r.value);
          if (out.byteLength > 0) {
            o.onBytes?.(out.byteLength);
            c.enqueue(out);
            return;
          }
        }
      },
      cancel(reason) {
        finish("client_closed");
        o.cancel.abort(reason);
        return reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}
