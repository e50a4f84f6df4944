// The per-request context every phase reads and writes, Pingora-style: one object carried through
// route → authenticate → admit → rewrite → forward → meter → log.

import type { Identity } from "../controls/keys.ts";
import type { Price } from "../routing/prices.ts";
import type { Dialect, Provider } from "../routing/providers.ts";
import type { AutoDecision } from "../routing/auto.ts";

export interface RequestContext {
  readonly id: string;
  /** Bun.nanoseconds() at arrival. */
  readonly startNs: number;
  readonly method: string;
  /** Request target as received: path plus optional query. */
  readonly target: string;
  provider: Provider | undefined;
  /** Dialect errors are written in: the provider's once routed. */
  dialect: Dialect;
  forwardPath: string;
  managed: boolean;
  identity: Identity | undefined;
  /** Status sent to the client (the provider's, or the gateway's own error). */
  status: number;
  /** Short machine-readable reason when the gateway answered or the exchange broke. */
  error: string | undefined;
  bytesIn: number;
  bytesOut: number;
  /** Upstream attempts made: every send, connect retries and SPEC §10 retries included. */
  attempts: number;
  /** Managed: the pool key id (`openai#1`) of the attempt whose answer the client got. */
  keyId: string | undefined;
  /** Milliseconds spent waiting between attempts (backoff, cooldowns). */
  retryWaitMs: number;
  /** Input tokens that discarded attempts reported (an Anthropic message_start before an in-band error). */
  wastedInputTokens: number;
  /** Virtual models: the alias, the first reason the target changed, the answering target's price. */
  route: string | undefined;
  fallbackReason: string | undefined;
  price: Price | undefined;
  /** SPEC §13: `model: "auto"`'s decision (then `route` is "auto"); undefined for every other request. */
  auto: AutoDecision | undefined;
  /** SPEC §12: the answering target speaks the other dialect, so request and response were translated. */
  translated: boolean;
  /** Bun.nanoseconds() when the upstream response head arrived. */
  headersNs: number;
}

// Request ids are `{instance}-{seq}` in hex (as the seed gateway): unique across restarts without coordination,
// and a counter instead of a random id per request keeps the hot path free of crypto calls.
const instance = (() => {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return new DataView(b.buffer).getBigUint64(0, true).toString(16);
})();
let seq = 0;

export function nextRequestId(): string {
  return `${instance}-${(seq++).toString(16)}`;
}

export function newContext(method: string, target: string, dialect: Dialect): RequestContext {
  return {
    id: nextRequestId(),
    startNs: Bun.nanoseconds(),
    method,
    target,
    provider: undefined,
    dialect,
    forwardPath: target,
    managed: false,
    identity: undefined,
    status: 0,
    error: undefined,
    bytesIn: 0,
    bytesOut: 0,
    attempts: 0,
    keyId: undefined,
    retryWaitMs: 0,
    wastedInputTokens: 0,
    route: undefined,
    fallbackReason: undefined,
    price: undefined,
    translated: false,
    auto: undefined,
    headersNs: 0,
  };
}

/** Path and query from a Request's absolute URL, without allocating a URL object. */
export function requestTarget(url: string): string {
  const scheme = url.indexOf("://");
  const slash = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  return slash < 0 ? "/" : url.slice(slash);
}
