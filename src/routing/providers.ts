// Providers are data: one row per upstream, resolved once at boot into the table the router reads.
// Adding a provider is a config entry ([provider_authorities] + optional dialect/auth scheme), never code.

import type { Secret } from "../ops/secret.ts";

export type Dialect = "openai" | "anthropic";
export type AuthScheme = "bearer" | "x-api-key";

export interface ProviderRow {
  readonly name: string;
  readonly authority: string; // host:port
  readonly dialect: Dialect;
  readonly auth: AuthScheme;
}

/** SPEC §3: the ten built-in providers. */
export const BUILT_IN_PROVIDERS: readonly ProviderRow[] = [
  { name: "openai", authority: "api.openai.com:443", dialect: "openai", auth: "bearer" },
  { name: "anthropic", authority: "api.anthropic.com:443", dialect: "anthropic", auth: "x-api-key" },
  { name: "openrouter", authority: "openrouter.ai:443", dialect: "openai", auth: "bearer" },
  { name: "fireworks", authority: "api.fireworks.ai:443", dialect: "openai", auth: "bearer" },
  { name: "groq", authority: "api.groq.com:443", dialect: "openai", auth: "bearer" },
  { name: "deepseek", authority: "api.deepseek.com:443", dialect: "openai", auth: "bearer" },
  { name: "together", authority: "api.together.xyz:443", dialect: "openai", auth: "bearer" },
  { name: "cerebras", authority: "api.cerebras.ai:443", dialect: "openai", auth: "bearer" },
  { name: "mistral", authority: "api.mistral.ai:443", dialect: "openai", auth: "bearer" },
  { name: "xai", authority: "api.x.ai:443", dialect: "openai", auth: "bearer" },
];

/** A provider as the pipeline sees it: everything per-request work needs is precomputed here. */
export interface Provider extends ProviderRow {
  /** `https://host:port` or `http://host:port`: the path is appended verbatim. */
  readonly origin: string;
  /** Value of the upstream `host` header: the authority, without the port when it is the scheme's default. */
  readonly hostHeader: string;
  /** Header the pool key goes into for managed traffic. */
  readonly authHeader: "authorization" | "x-api-key";
  /** The provider's pool keys in the order listed (SPEC §10); empty when none is configured (managed → 503). */
  readonly keys: readonly PoolKey[];
}

/** One pool key. Logs and metrics name `id`, never the key. */
export interface PoolKey {
  /** `<provider>#<n>`, n from 0 in the order the keys are listed. */
  readonly id: string;
  /** Process-wide index (providers in table order, their keys in order): the key's slot in shared state. */
  readonly slot: number;
  /** Prepared header value (`Bearer k` or `k`). */
  readonly auth: Secret;
}

export interface ParsedAuthority {
  host: string;
  port: number;
}

/** `host:port`, `[v6]:port`, or a bare host (port then follows the scheme). Throws a message naming what is wrong. */
export function parseAuthority(text: string, tls: boolean): ParsedAuthority {
  const t = text.trim();
  if (t.length === 0) throw new Error("empty authority");
  if (/[\s/?#@]/.test(t)) throw new Error(`"${t}" is not host:port`);
  let host: string;
  let portText: string | undefined;
  if (t.startsWith("[")) {
    const close = t.indexOf("]");
    if (close < 0) throw new Error(`"${t}" has an unclosed IPv6 bracket`);
    host = t.slice(0, close + 1);
    const rest = t.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(":")) throw new Error(`"${t}" is not host:port`);
      portText = rest.slice(1);
    }
  } else {
    const colon = t.lastIndexOf(":");
    if (colon >= 0) {
      host = t.slice(0, colon);
      portText = t.slice(colon + 1);
    } else {
      host = t;
    }
  }
  if (host.length === 0) throw new Error(`"${t}" has no host`);
  let port = tls ? 443 : 80;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) throw new Error(`"${t}" has a bad port`);
    port = Number(portText);
    if (port < 1 || port > 65535) throw new Error(`"${t}" has a port outside 1-65535`);
  }
  return { host, port };
}

/** `slotBase`: the process-wide slot of this provider's first key (the keys of the providers before it). */
export function buildProvider(row: ProviderRow, tls: boolean, poolKeys: readonly Secret[] | undefined, wrap: (s: string) => Secret, slotBase = 0): Provider {
  const { host, port } = parseAuthority(row.authority, tls);
  const defaultPort = tls ? 443 : 80;
  const hostHeader = port === defaultPort ? host : `${host}:${port}`;
  const origin = `${tls ? "https" : "http"}://${host}:${port}`;
  const authHeader = row.auth === "bearer" ? "authorization" : "x-api-key";
  const keys = (poolKeys ?? []).map((k, n) => ({ id: `${row.name}#${n}`, slot: slotBase + n, auth: wrap(row.auth === "bearer" ? `Bearer ${k.expose()}` : k.expose()) }));
  return { ...row, origin, hostHeader, authHeader, keys };
}
