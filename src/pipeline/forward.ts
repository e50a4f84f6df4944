// Phase 5, forward: send the request upstream with connect retries and a head timeout, then relay the
// response body chunk by chunk with backpressure, an idle read timeout, and prompt abort on client disconnect.

import { ERR, type GatewayError } from "./errors.ts";
import type { Stallable, StallWatch } from "./stall.ts";
import { type Cancel, classifyFailure, type HeaderFields, type Transport, type UpstreamRequest, type UpstreamResponse } from "../transport/transport.ts";
import { TurnGate } from "./turn.ts";
import type { ReadResult } from "./commit.ts";

/** The slice of a default reader the relay uses (bun-types and @types/node disagree on the full type). */
export interface Reader {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

/** Extra attempts after a connect failure (nothing was sent), SPEC §5. */
export const CONNECT_RETRIES = 2;

/** The Cancel reason when the client kept the gateway waiting for its body for idle_timeout_secs: 408, its fault. */
export const CLIENT_TIMEOUT = Symbol("client body timeout");

/** Where a request's replay copy reserves its bytes (SPEC §10 replay_pool_bytes): key-pool.ts's ReplayPool. */
export interface ReplayReserve {
  reserve(n: number): boolean;
  release(n: number): void;
}

/** Edits one attempt's body as it streams (a virtual model's ModelRewriter). */
export interface BodyTransform {
  push(chunk: Uint8Array): Uint8Array[];
  end(): Uint8Array[];
}

/** Why a replay copy was dropped (ai_replay_abandoned_total{reason}). */
export type ReplayAbandon = "request_limit" | "pool_limit";

export interface ReplayOptions {
  /** max_replay_bytes: a copy that would grow past this is dropped. */
  maxBytes: number;
  pool: ReplayReserve;
  onAbandon: (reason: ReplayAbandon) => void;
}

/**
 * A streamed request body that can be offered to several attempts. Without a replay copy (BYO, retries off) it is the
 * body of connect retries only: a connect failure before the first pull is retried with the same, untouched source.
 * With one (managed, SPEC §10) every chunk the first attempt pulls is forwarded at once and also kept, so a later
 * attempt replays the kept chunks and then keeps pulling from the client: no delay for the first attempt, and a retry
 * may start while the client is still uploading. The copy is bounded per request (maxBytes) and per process (the
 * pool); past either it is dropped and the request simply cannot be retried. release() drops it at the commit point.
 *
 * Memory: the queue holds the kept chunks (≤ maxBytes) while a copy is kept, else only the pieces one read produced
 * that the current attempt has not taken yet (one client chunk, at most).
 */
export class StreamedBody implements Stallable {
  private reader: Reader | undefined;
  /** True once any attempt pulled a byte: from then on a retry needs the replay copy. */
  started = false;
  bytes = 0;
  /** True while a read of the client's body is pending: the gateway is waiting on the client, not the provider. */
  waiting = false;
  stallTick = 0;
  /** sendUpstream's head wait while it runs: each client chunk restarts it, so the provider's time to answer is
   * counted from the last byte it was given, never from time the client spent not sending. */
  upstreamWait: HeadWait | undefined;
  /** Pieces read from the client (after onChunk), in order. While `keep`, every piece since the start; else only the
   * ones the current attempt has not taken. */
  private readonly queue: Uint8Array[] = [];
  /** The current attempt's position in `queue`. */
  private cursor = 0;
  /** Bytes of the replay copy reserved in the pool. */
  private kept = 0;
  private keep: boolean;
  /** The source is read to its end (onEnd's tail queued). */
  private ended = false;
  /** A read of the client's body in flight, shared by whichever attempt needs the next piece. */
  private pending: Promise<void> | undefined;
  /** Attempt generation: a superseded attempt's stream delivers nothing more. */
  private gen = 0;

  constructor(
    private readonly source: ReadableStream<Uint8Array>,
    /** Sees each chunk before it goes upstream (scanner, size cap); may return replacement bytes or throw to abort. */
    private readonly onChunk?: (chunk: Uint8Array) => Uint8Array | Uint8Array[],
    private readonly onEnd?: () => Uint8Array[] | undefined,
    /** Watches each wait for a client chunk; a stall cancels the exchange with CLIENT_TIMEOUT. */
    private readonly stalls?: StallWatch,
    private readonly cancel?: Cancel,
    private readonly replay?: ReplayOptions,
  ) {
    this.keep = replay !== undefined && replay.maxBytes > 0;
  }

  /** True when another attempt can send the whole body: nothing was read yet, or every byte read is still kept. */
  get replayable(): boolean {
    return !this.started || this.keep;
  }

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
      this.upstreamWait?.restart();
    }
  }

  onStall(): void {
    this.cancel?.abort(CLIENT_TIMEOUT);
  }

  /** Reads one chunk from the client into the queue (its pieces after onChunk; the tail at the end). */
  private more(): Promise<void> {
    return (this.pending ??= this.readOnce().finally(() => {
      this.pending = undefined;
    }));
  }

  private async readOnce(): Promise<void> {
    const reader = (this.reader ??= this.source.getReader() as Reader);
    this.started = true;
    const r = await this.read(reader);
    if (r.done) {
      const tail = this.onEnd?.();
      if (tail !== undefined) for (const t of tail) this.push(t);
      this.ended = true;
      return;
    }
    this.bytes += r.value.byteLength;
    const out = this.onChunk === undefined ? r.value : this.onChunk(r.value);
    if (Array.isArray(out)) for (const t of out) this.push(t);
    else this.push(out);
  }

  private push(piece: Uint8Array): void {
    const n = piece.byteLength;
    if (n === 0) return;
    this.queue.push(piece);
    if (!this.keep) return;
    const o = this.replay as ReplayOptions;
    if (this.kept + n > o.maxBytes) this.abandon("request_limit");
    else if (!o.pool.reserve(n)) this.abandon("pool_limit");
    else this.kept += n;
  }

  /** Drops the replay copy: pieces the current attempt already took are forgotten, the pool gets its bytes back. */
  private abandon(reason: ReplayAbandon): void {
    this.dropCopy();
    this.replay?.onAbandon(reason);
  }

  private dropCopy(): void {
    if (!this.keep) return;
    this.keep = false;
    this.queue.splice(0, this.cursor);
    this.cursor = 0;
    if (this.kept > 0) (this.replay as ReplayOptions).pool.release(this.kept);
    this.kept = 0;
  }

  /** The commit point (or the end of the exchange): no more attempts, so the copy goes. Idempotent. */
  release(): void {
    this.dropCopy();
  }

  /** True once the client's body was read to its end (then `queued()` before the first attempt is all of it). */
  get readToEnd(): boolean {
    return this.ended;
  }

  /** The pieces read ahead and not yet sent (before the first attempt: the body's first bytes), for a probe. */
  queued(): readonly Uint8Array[] {
    return this.queue;
  }

  /**
   * Reads ahead into the queue until `enough()` says so, `maxBytes` of the client's body have been read, or the body
   * ended (a virtual model's alias in the body's first 64 KiB). The pieces wait in the queue for the first attempt.
   */
  async readAhead(enough: () => boolean, maxBytes: number): Promise<void> {
    while (!this.ended && this.bytes < maxBytes && !enough()) await this.more();
  }

  /**
   * Reads the whole body into one array (a translated request is parsed whole, SPEC §12); undefined once more than
   * `maxBytes` came (the rest stays unread: answer with `connection: close`). The replay copy goes first, silently: the
   * array is the copy now. Rejects when a read fails (the size cap, the client gone) or the exchange is cancelled (a
   * stall: `cancel.reason` says CLIENT_TIMEOUT), since a stalled read itself never settles.
   */
  async readAll(maxBytes: number): Promise<Uint8Array | undefined> {
    this.dropCopy();
    const c = this.cancel;
    let onCancel: { onCancel(): void } | undefined;
    const cancelled =
      c === undefined
        ? undefined
        : new Promise<never>((_, reject) => {
            onCancel = { onCancel: () => reject(c.reason) };
            c.listen(onCancel);
          });
    cancelled?.catch(() => {});
    try {
      while (!this.ended) {
        if (this.bytes > maxBytes) return undefined;
        if (c?.aborted) throw c.reason;
        await (cancelled === undefined ? this.more() : Promise.race([this.more(), cancelled]));
      }
    } finally {
      if (onCancel !== undefined) c?.unlisten(onCancel);
    }
    if (this.bytes > maxBytes) return undefined;
    const q = this.queue;
    const all: Uint8Array = q.length === 1 ? (q[0] as Uint8Array) : Buffer.concat(q);
    q.length = 0;
    this.cursor = 0;
    return all;
  }

  /** A fresh stream view for one attempt, from the body's first byte. Cancelling it (a failed attempt) does not cancel
   * the client's body. Only call for a second attempt when `replayable`. `transform` (a virtual model's target) edits
   * this attempt's bytes as they go: the queue keeps the client's bytes, so another attempt can edit them its way. */
  attempt(transform?: BodyTransform): ReadableStream<Uint8Array> {
    const gen = ++this.gen;
    this.cursor = 0;
    if (transform !== undefined) return this.transformed(gen, transform);
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          // A pull must enqueue something before it returns: with highWaterMark 0 the stream calls pull again only
          // on a new read, and the consumer's one read stays pending, so an empty-handed pull would stall the
          // upload for good. A client read may give nothing (an empty chunk, or bytes onChunk holds), so read on.
          for (;;) {
            if (gen !== this.gen) {
              c.close();
              return;
            }
            const piece = this.take();
            if (piece !== undefined) {
              c.enqueue(piece);
              return;
            }
            if (this.ended) {
              c.close();
              return;
            }
            await this.more();
          }
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** The current attempt's next queued piece, if one is there: kept for replay, or taken off the queue. */
  private take(): Uint8Array | undefined {
    const q = this.queue;
    if (this.cursor >= q.length) return undefined;
    const piece = q[this.cursor] as Uint8Array;
    if (this.keep) this.cursor++;
    else q.shift();
    return piece;
  }

  private transformed(gen: number, t: BodyTransform): ReadableStream<Uint8Array> {
    let out: Uint8Array[] = [];
    let at = 0;
    let closed = false;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          for (;;) {
            while (at < out.length) {
              const piece = out[at++] as Uint8Array;
              if (piece.byteLength > 0) {
                c.enqueue(piece);
                return;
              }
            }
            if (closed || gen !== this.gen) {
              c.close();
              return;
            }
            at = 0;
            const piece = this.take();
            if (piece !== undefined) out = t.push(piece);
            else if (this.ended) {
              out = t.end();
              closed = true;
            } else {
              out = [];
              await this.more();
            }
          }
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** Release the client's body when the exchange is over early (error, timeout, client gone). */
  discard(reason?: unknown): void {
    this.release();
    if (this.reader !== undefined) this.reader.cancel(reason).catch(() => {});
    else this.source.cancel(reason).catch(() => {});
  }
}

/** `cause`: the transport's error code (ENOTFOUND, ECONNREFUSED …) when the provider side failed, for the log. */
export type SendResult = { ok: true; response: UpstreamResponse } | { ok: false; error: GatewayError; reason: string; cause?: string };

export interface SendOptions {
  transport: Transport;
  url: string;
  method: string;
  headers: HeaderFields;
  body: Uint8Array | StreamedBody | null;
  /** Fired by the gateway (timeouts) or because the client went away. */
  cancel: Cancel;
  /** The gateway's watch on provider heads (read_timeout_secs, one watch for every request: see HeadWait). */
  heads: StallWatch;
  /** Called once per connect retry (metrics, logs). */
  onRetry?: (attempt: number, err: unknown) => void;
  /** A streamed body's edit for this attempt (a virtual model's target), made fresh for each send. */
  transform?: (() => BodyTransform) | undefined;
}

const TIMEOUT = Symbol("upstream timeout");

/**
 * One wait for a provider's response head, on the gateway's head watch (a StallWatch over read_timeout_secs) rather
 * than a timer of its own: a setTimeout/clearTimeout pair per request measured ~0.3 µs of the in-process pipeline,
 * the watch's Set add and delete a fifth of that. When the wait outlives the read timeout the exchange is cancelled,
 * unless the gateway is waiting on the client's body just then: the client's idle watch governs that time, and the
 * wait restarts with the client's next chunk (StreamedBody.read), so a slow or stalled upload is never the
 * provider's timeout.
 */
export class HeadWait implements Stallable {
  stallTick = 0;
  constructor(
    private readonly heads: StallWatch,
    private readonly cancel: Cancel,
    private readonly body: StreamedBody | undefined,
  ) {
    heads.wait(this);
  }

  restart(): void {
    this.heads.wait(this);
  }

  end(): void {
    this.heads.done(this);
  }

  onStall(): void {
    if (this.body?.waiting === true) return;
    this.cancel.abort(TIMEOUT);
  }
}

/**
 * Send with up to CONNECT_RETRIES retries on connect failures; map failures to 502/504 in the caller's terms (408 when
 * the client stalled its upload). The head timeout counts only time spent waiting on the provider.
 */
export async function sendUpstream(o: SendOptions): Promise<SendResult & { attempts: number }> {
  const streamed = o.body instanceof StreamedBody ? o.body : undefined;
  const wait = new HeadWait(o.heads, o.cancel, streamed);
  if (streamed !== undefined) streamed.upstreamWait = wait;
  let attempts = 0;
  try {
    for (;;) {
      attempts++;
      const body = o.body instanceof StreamedBody ? o.body.attempt(o.transform?.()) : o.body;
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
        const replayable = !(o.body instanceof StreamedBody) || o.body.replayable;
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
    wait.end();
    if (streamed !== undefined) streamed.upstreamWait = undefined;
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
  /** The body's reader when one was taken already (the commit hold read the stream's opening events with it). */
  reader?: Reader | undefined;
  /** Upstream bytes already read (the held preamble), relayed first, through the observer like any other. */
  held?: Uint8Array[] | undefined;
  /** A read already in flight on `reader` (the hold's time ran out while it waited), awaited before reading on. */
  pending?: Promise<ReadResult> | undefined;
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
  const reader = o.reader ?? (o.body.getReader() as Reader);
  const held = o.held;
  let heldAt = 0;
  let pending = o.pending;
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
          if (held !== undefined && heldAt < held.length) {
            r = { done: false, value: held[heldAt++] as Uint8Array };
          } else try {
            if (pending !== undefined) {
              const p = pending;
              pending = undefined;
              r = await p;
            } else r = await reader.read();
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
