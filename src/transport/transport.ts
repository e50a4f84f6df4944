// The one seam between the pipeline and the network: a faster HTTP client can replace `fetch`
// here without touching any phase (issue 7's pooled HTTP/1.1 client plugs in behind this interface).

/**
 * A request head as a plain object, in the shape Headers.toJSON() gives: lowercase names, repeated headers joined
 * with ", " (set-cookie as an array of its lines). The pipeline reads the client's head into one of these with a
 * single native call and edits it in JavaScript: a Headers object costs a native call (~40-110 ns) per get, set,
 * delete or value read, and the pooled transport needs the fields anyway to write its request.
 */
export type HeaderFields = Record<string, string | string[]>;

/** One field's value as Headers.get() would give it: null when absent, repeated lines joined. */
export function field(f: HeaderFields, name: string): string | null {
  const v = f[name];
  return v === undefined ? null : typeof v === "string" ? v : v.join(", ");
}

export interface UpstreamRequest {
  /** Absolute URL: provider origin + forward path. */
  url: string;
  method: string;
  headers: HeaderFields;
  /** Whole small body, a stream, or none. */
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  /** Cancels the exchange: client gone, or a gateway timeout. */
  cancel: Cancel;
}

/** Reacts when a Cancel fires: an object, so no closure is made per request. */
export interface CancelListener {
  onCancel(reason: unknown): void;
}

/**
 * One exchange's cancellation, owned by the gateway. An AbortController plus EventTarget listeners (ours on the
 * client's signal, the transport's on ours) cost several µs per request in the loaded gateway; this is a few field
 * writes. It is also the EventListener the pipeline puts on the client's `req.signal`, so a client that goes away
 * cancels the exchange without a closure. `signal()` gives an AbortSignal view to APIs that need one (fetch).
 */
export class Cancel {
  aborted = false;
  /** What abort() was given: "client closed", the gateway's timeout marker, an Error. */
  reason: unknown = undefined;
  private readonly listeners: CancelListener[] = [];
  private controller: AbortController | undefined;

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const ls = this.listeners.splice(0);
    for (const l of ls) l.onCancel(reason);
  }

  listen(l: CancelListener): void {
    this.listeners.push(l);
  }

  unlisten(l: CancelListener): void {
    const i = this.listeners.indexOf(l);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  /** The client's request signal fired: the client went away. */
  handleEvent(): void {
    this.abort("client closed");
  }

  signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

/**
 * The provider's answer as the pipeline needs it. A fetch `Response` is one as it is; the pool transport returns a
 * plain object, since a `Response` per exchange (built only to be taken apart again) cost about 1 µs per request.
 */
export interface UpstreamResponse {
  status: number;
  statusText: string;
  headers: Headers;
  /** The body still streaming, or null when there is none or it is in `whole`. */
  body: ReadableStream<Uint8Array> | null;
  /** The whole body, when it arrived with the head and the transport already holds it. */
  whole?: Uint8Array | undefined;
  /**
   * True when the transport already left every hop-by-hop header out of `headers` (the pooled transport, unless a
   * Connection header names others): the response rewrite then only adds the request id.
   */
  hopByHopStripped?: boolean | undefined;
}

export interface Transport {
  /** Resolves at the response head; the body streams. Rejects with a transport error before the head. */
  send(req: UpstreamRequest): Promise<UpstreamResponse>;
  close(): void;
}

export interface FetchTransportOptions {
  verifyCert: boolean;
  idleTimeoutSecs: number;
}

export class FetchTransport implements Transport {
  private readonly session: Bun.FetchSession;

  constructor(opts: FetchTransportOptions) {
    this.session = new Bun.FetchSession({
      keepAlive: { idleTimeout: Math.max(1, opts.idleTimeoutSecs) },
      tls: opts.verifyCert ? undefined : { rejectUnauthorized: false },
    });
  }

  send(req: UpstreamRequest): Promise<Response> {
    const sent = this.session.fetch(req.url, {
      method: req.method,
      headers: headersInit(req.headers),
      body: req.body,
      signal: req.cancel.signal(),
      // Relay the provider's bytes as they are: the client asked for (and decodes) its own encoding.
      decompress: false,
      // A proxy relays redirects; following them would send the pool key to wherever the Location points.
      redirect: "manual",
      // The gateway runs its own read timeouts (read_timeout_secs); fetch's 5-minute default would cut long streams.
      timeout: false,
      duplex: "half",
    } as RequestInit);
    return sent.then(capHead);
  }

  close(): void {
    this.session.close();
  }
}

/** The largest response head either transport accepts (the pool transport counts the same bytes on the wire). */
export const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/**
 * Bun's fetch accepts response heads of several MiB; the pool transport refuses any over 64 KiB. The same cap here:
 * the head's size on the wire (status line, and each field as `name: value` CRLF), counted from the parsed fields.
 */
function capHead(res: Response): Response {
  let n = 17 + res.statusText.length;
  res.headers.forEach((value, name) => {
    n += name.length + value.length + 4;
  });
  if (n <= MAX_RESPONSE_HEAD_BYTES) return res;
  res.body?.cancel().catch(() => {});
  const e: Error & { code?: string } = new Error("response head too large");
  e.code = "ERR_HEAD_TOO_LARGE";
  throw e;
}

export type TransportFailure = "connect" | "reset" | "aborted";

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "ConnectionRefused",
  "FailedToOpenSocket",
  "UnableToConnect",
  "DNSResolutionFailed",
  // The pool transport's connect timeout: no byte was sent.
  "ETIMEDOUT",
  // Out of descriptors while opening the upstream socket: nothing was sent either.
  "EMFILE",
  "ENFILE",
]);

/** Connect failures are safe to retry (nothing was sent); everything else before the head is a reset. */
export function classifyFailure(e: unknown): TransportFailure {
  const err = e as { name?: string; code?: string } | undefined;
  if (err?.name === "AbortError") return "aborted";
  if (err?.code !== undefined && CONNECT_CODES.has(err.code)) return "connect";
  return "reset";
}

/** Fields as fetch takes them: the object itself, unless a field holds several lines (then name/value pairs). */
function headersInit(f: HeaderFields): Record<string, string> | Array<[string, string]> {
  for (const name in f) {
    if (typeof f[name] === "string") continue;
    const pairs: Array<[string, string]> = [];
    for (const n in f) {
      const v = f[n] as string | string[];
      if (typeof v === "string") pairs.push([n, v]);
      else for (const line of v) pairs.push([n, line]);
    }
    return pairs;
  }
  return f as Record<string, string>;
}
