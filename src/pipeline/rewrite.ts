// Phase 4, rewrite: the upstream request head and the client response head (SPEC §5 header hygiene, §4 key swap).
// Both edit what they are given in place: the request head as plain fields (HeaderFields, read from the client's
// Headers once, in phase 2), the response head as the transport's Headers (mutable). Copying every header into a new
// object per request was a measurable share of the hot path, and so was a native call per header edit.

import type { PoolKey, Provider } from "../routing/providers.ts";
import { field, type HeaderFields } from "../transport/transport.ts";

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy, in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection", "proxy-authenticate", "proxy-authorization"]);

/** Client credentials the gateway replaces on managed requests. */
const CLIENT_AUTH = new Set(["authorization", "x-api-key", "api-key"]);

export interface RewriteOptions {
  managed: boolean;
  /** Managed: the pool key chosen for this attempt (SPEC §10); its value goes into the provider's auth header. */
  key?: PoolKey | undefined;
  /** Drop content-length: the gateway changes the body (usage injection) and sends it chunked or re-measured. */
  bodyChanged: boolean;
  /** Ask the provider for an unencoded response (the gateway must edit the response stream). */
  forceIdentity?: boolean;
}

/**
 * Drops from a request head: hop-by-hop headers, any header the `connection` header lists, `proxy-*` and
 * `x-beyond-*`, and (managed) the client's credentials. Collected first, deleted after the walk.
 */
function stripRequest(headers: HeaderFields, managed: boolean): void {
  let drop: string[] | undefined;
  for (const name in headers) {
    const c = name.charCodeAt(0);
    // Fast reject: every name dropped here starts with a (api-key, authorization), c, k, t, u, p or x.
    if (c !== 99 && c !== 107 && c !== 116 && c !== 117 && c !== 112 && c !== 120 && c !== 97) continue;
    if (HOP_BY_HOP.has(name) || name.startsWith("proxy-") || name.startsWith("x-beyond-") || (managed && CLIENT_AUTH.has(name))) {
      (drop ??= []).push(name);
    }
  }
  const listed = field(headers, "connection");
  if (listed !== null) for (const part of listed.split(",")) (drop ??= []).push(part.trim().toLowerCase());
  if (drop !== undefined) for (const name of drop) if (name.length > 0) delete headers[name];
}

/** Rewrites the client's request head into the upstream head: everything passes except hop-by-hop, `host`, `x-beyond-*` and (managed) client auth. */
export function rewriteRequestHead(headers: HeaderFields, provider: Provider, opts: RewriteOptions): HeaderFields {
  // Managed: the client's credentials go in the same pass (only the ones present are deleted).
  const key = opts.managed ? opts.key : undefined;
  stripRequest(headers, key !== undefined);
  headers["host"] = provider.hostHeader;
  if (opts.bodyChanged) delete headers["content-length"];
  // Without this, the HTTP client would advertise its own encodings and a client that never asked for
  // compression would receive compressed bytes (the gateway relays bodies undecoded).
  if (opts.forceIdentity || headers["accept-encoding"] === undefined) headers["accept-encoding"] = "identity";
  if (key !== undefined) {
    headers[provider.authHeader] = key.auth.expose();
    if (provider.dialect === "anthropic" && headers["anthropic-version"] === undefined) headers["anthropic-version"] = "2023-06-01";
  }
  return headers;
}

/**
 * Rewrites the provider's response head for the client: minus hop-by-hop, plus our request id (replacing any upstream
 * one). `stripped`: the transport already left the hop-by-hop headers out (UpstreamResponse.hopByHopStripped).
 */
export function rewriteResponseHead(headers: Headers, requestId: string, stripped = false): Headers {
  if (stripped) {
    headers.set("x-beyond-request-id", requestId);
    return headers;
  }
  // Responses have no prefix rules, so deleting the fixed names directly beats iterating every header.
  const listed = headers.get("connection");
  if (listed !== null) for (const part of listed.split(",")) headers.delete(part.trim().toLowerCase());
  for (const name of HOP_BY_HOP) headers.delete(name);
  headers.set("x-beyond-request-id", requestId);
  return headers;
}
