// Phase 4, rewrite: the upstream request head and the client response head (SPEC §5 header hygiene, §4 key swap).

import type { Provider } from "./providers.ts";

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy, in either direction. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection", "proxy-authenticate", "proxy-authorization"]);

/** Client credentials the gateway replaces on managed requests. */
const CLIENT_AUTH = new Set(["authorization", "x-api-key", "api-key"]);

function connectionListed(headers: Headers): Set<string> | undefined {
  const c = headers.get("connection");
  if (c === null) return undefined;
  const set = new Set<string>();
  for (const part of c.split(",")) {
    const t = part.trim().toLowerCase();
    if (t.length > 0) set.add(t);
  }
  return set;
}

export interface RewriteOptions {
  managed: boolean;
  /** Drop content-length: the gateway changes the body (usage injection) and sends it chunked. */
  bodyChanged: boolean;
  /** Ask the provider for an unencoded response (the gateway must edit the response stream). */
  forceIdentity?: boolean;
}

/** Upstream request headers: everything the client sent except hop-by-hop, `host`, `x-beyond-*` and (managed) client auth. */
export function upstreamHeaders(incoming: Headers, provider: Provider, opts: RewriteOptions): Headers {
  const listed = connectionListed(incoming);
  const out = new Headers();
  let sawAcceptEncoding = false;
  let sawAnthropicVersion = false;
  for (const [name, value] of incoming) {
    if (HOP_BY_HOP.has(name) || name === "host" || name.startsWith("proxy-") || name.startsWith("x-beyond-")) continue;
    if (listed?.has(name)) continue;
    if (opts.managed && CLIENT_AUTH.has(name)) continue;
    if (opts.bodyChanged && name === "content-length") continue;
    if (name === "accept-encoding") {
      if (opts.forceIdentity) continue;
      sawAcceptEncoding = true;
    }
    else if (name === "anthropic-version") sawAnthropicVersion = true;
    out.append(name, value);
  }
  out.set("host", provider.hostHeader);
  // Without this, the HTTP client would advertise its own encodings and a client that never asked for
  // compression would receive compressed bytes (the gateway relays bodies undecoded).
  if (!sawAcceptEncoding) out.set("accept-encoding", "identity");
  if (opts.managed && provider.poolAuth !== undefined) {
    out.set(provider.authHeader, provider.poolAuth.expose());
    if (provider.dialect === "anthropic" && !sawAnthropicVersion) out.set("anthropic-version", "2023-06-01");
  }
  return out;
}

/** Client response headers: the provider's, minus hop-by-hop, plus our request id (replacing any upstream one). */
export function clientHeaders(upstream: Headers, requestId: string): Headers {
  const listed = connectionListed(upstream);
  const out = new Headers();
  for (const [name, value] of upstream) {
    if (HOP_BY_HOP.has(name) || listed?.has(name) || name === "x-beyond-request-id") continue;
    out.append(name, value);
  }
  out.set("x-beyond-request-id", requestId);
  return out;
}
