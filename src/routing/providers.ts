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
  /** Where the provider's OpenAI- or Anthropic-shaped API sits (no trailing `/`): a virtual model's target path is
   * this plus the client's path below its own `/v1` root. Absent: `DEFAULT_BASE_PATH`. */
  readonly basePath?: string;
}

/** An added provider's base path unless `[provider_base_paths]` says otherwise. */
export const DEFAULT_BASE_PATH = "/v1";

/**
 * SPEC §3: the ten built-in providers. Each base path was checked against the provider's own documentation (the
 * URL beside the row; checked 2026-11-30): it is the path their docs give as the OpenAI SDK's `base_url` (or, for
 * openai, anthropic and mistral, the prefix of their documented endpoints).
 */
export const BUILT_IN_PROVIDERS: readonly ProviderRow[] = [
  // https://platform.openai.com/docs/api-reference/chat/completions (POST https://api.openai.com/v1/chat/completions)
  { name: "openai", authority: "api.openai.com:443", dialect: "openai", auth: "bearer", basePath: "/v1" },
  // https://docs.anthropic.com/en/api/messages (POST https://api.anthropic.com/v1/messages)
  { name: "anthropic", authority: "api.anthropic.com:443", dialect: "anthropic", auth: "x-api-key", basePath: "/v1" },
  // https://openrouter.ai/models/openai/shap-e/api (OpenAI SDK baseURL "https://openrouter.ai/api/v1")
  { name: "openrouter", authority: "openrouter.ai:443", dialect: "openai", auth: "bearer", basePath: "/api/v1" },
  // https://docs.fireworks.ai/guides/querying-text-models (base_url "https://api.fireworks.ai/inference/v1")
  { name: "fireworks", authority: "api.fireworks.ai:443", dialect: "openai", auth: "bearer", basePath: "/inference/v1" },
  // https://console.groq.com/docs/openai (base_url "https://api.groq.com/openai/v1")
  { name: "groq", authority: "api.groq.com:443", dialect: "openai", auth: "bearer", basePath: "/openai/v1" },
  // https://api-docs.deepseek.com/ (base_url "https://api.deepseek.com"; "/v1" is accepted "for OpenAI compatibility", unrelated to the model version)
  { name: "deepseek", authority: "api.deepseek.com:443", dialect: "openai", auth: "bearer", basePath: "/v1" },
  // https://docs.together.ai/docs/inference/openai-compatibility (base_url "https://api.together.ai/v1"; api.together.xyz is the same API)
  { name: "together", authority: "api.together.xyz:443", dialect: "openai", auth: "bearer", basePath: "/v1" },
  // https://inference-docs.cerebras.ai (API base "https://api.cerebras.ai/v1")
  { name: "cerebras", authority: "api.cerebras.ai:443", dialect: "openai", auth: "bearer", basePath: "/v1" },
  // https://docs.mistral.ai/api (POST /v1/chat/completions on https://api.mistral.ai)
  { name: "mistral", authority: "api.mistral.ai:443", dialect: "openai", auth: "bearer", basePath: "/v1" },
  // https://docs.x.ai/api/integrations (OpenAI SDK baseURL "https://api.x.ai/v1")
  { name: "xai", authority: "api.x.ai:443", dialect: "openai", auth: "bearer", basePath: "/v1" },
];

/** A provider as the pipeline sees it: everything per-request work needs is precomputed here. */
export interface Provider extends ProviderRow {
  /** `https://host:port` or `http://host:port`: the path is appended verbatim. */
  readonly origin: string;
  /** Value of the upstream `host` header: the authority, without the port when it is the scheme's default. */
  readonly hostHeader: string;
  /** The provider's API root path (`/v1`, `/openai/v1`, …; SPEC §11), resolved: never absent here. */
  readonly basePath: string;
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
  return { ...row, basePath: row.basePath ?? DEFAULT_BASE_PATH, origin, hostHeader, authHeader, keys };
}
