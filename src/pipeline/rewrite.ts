// Phase 4, rewrite: the upstream request head and the client response head (SPEC §5 header hygiene, §4 key swap).
// Both edit the Headers object they are given in place (Bun's request and fetch-response headers are mutable):
// copying every header into a new object per request was a measurable share of the hot path.

import type { PoolKey, Provider } from "../routing/providers.ts";

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy, in either direction. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection", "proxy-authenticate", "proxy-authorization"]);

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
 * Names to drop from a request head: hop-by-hop headers, any header the `connection` header lists, `proxy-*` and
 * `x-beyond-*`. Collected first, deleted after: deleting while iterating Headers skips entries.
 */
function stripRequest(headers: Headers, managed: boolean): void {
  let drop: string[] | undefined;
  for (const name of headers.keys()) {
    const c = name.charCodeAt(0);
    // Fast reject: every name dropped here starts with a (api-key, authorization), c, k, t, u, p or x.
    if (c !== 99 && c !== 107 && c !== 116 && c !== 117 && c !== 112 && c !== 120 && c !== 97) continue;
    if (HOP_BY_HOP.has(name) || name.startsWith("proxy-") || name.startsWith("x-beyond-") || (managed && CLIENT_AUTH.has(name))) {
      (drop ??= []).push(name);
    }
  }
  const listed = headers.get("connection");
  if (listed !== null) for (const part of listed.split(",")) (drop ??= []).push(part.trim().toLowerCase());
  if (drop !== undefined) for (const name of drop) if (name.length > 0) headers.delete(name);
}

/** Rewrites the client's request head into the upstream head: everything passes except hop-by-hop, `host`, `x-beyond-*` and (managed) client auth. */
export function rewriteRequestHead(headers: Headers, provider: Provider, opts: RewriteOptions): Headers {
  // Managed: the client's credentials go in the same pass (only the ones present are deleted).
  const key = opts.managed ? opts.key : undefined;
  stripRequest(headers, key !== undefined);
  headers.set("host", provider.hostHeader);
  if (opts.bodyChanged) headers.delete("content-length");
  // Without this, the HTTP client would advertise its own encodings and a client that never asked for
  // compression would receive compressed bytes (the gateway relays bodies undecoded).
  if (opts.forceIdentity || !headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
  if (key !== undefined) {
    headers.set(provider.authHeader, key.auth.expose());
    if (provider.dialect === "anthropic" && !headers.has("anthropic-version")) headers.set("anthropic-version", "2023-06-01");
  }
  return headers;
}

/** Rewrites the provider's response head for the client: minus hop-by-hop, plus our request id (replacing any upstream one). */
export function rewriteResponseHead(headers: Headers, requestId: string): Headers {
  // Responses have no prefix rules, so deleting the fixed names directly beats iterating every header.
  const listed = headers.get("connection");
  if (listed !== null) for (const part of listed.split(",")) headers.delete(part.trim().toLowerCase());
  for (const name of HOP_BY_HOP) headers.delete(name);
  headers.set("x-beyond-request-id", requestId);
  return headers;
}
