// Gateway-made errors (SPEC §8): JSON in the caller's dialect, always with x-beyond-request-id.
// Messages are fixed strings chosen here, so no error can echo a key or any other request content.

import type { Dialect } from "../routing/providers.ts";

export type ErrorType = "invalid_request_error" | "authentication_error" | "access_denied" | "rate_limit_error" | "api_error";

export interface GatewayError {
  status: number;
  type: ErrorType;
  message: string;
  /** OpenAI's `code` field: a stable machine-readable reason. */
  code: string;
  retryAfterSecs?: number;
  /** `Allow` header value (405). */
  allow?: string;
  /** Answer with `connection: close`: the client's connection is not worth keeping (a stalled upload). */
  close?: boolean;
}

/** What a 405 names as allowed: every method the gateway proxies (all but TRACE and CONNECT). */
export const ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

export const ERR = {
  badRequest: (message: string): GatewayError => ({ status: 400, type: "invalid_request_error", message, code: "bad_request" }),
  missingKey: { status: 401, type: "authentication_error", message: "missing API key", code: "missing_api_key" },
  invalidKey: { status: 401, type: "authentication_error", message: "invalid API key", code: "invalid_api_key" },
  unknownProvider: { status: 404, type: "invalid_request_error", message: "unknown provider", code: "unknown_provider" },
  methodNotAllowed: { status: 405, type: "invalid_request_error", message: "method not allowed", code: "method_not_allowed", allow: ALLOWED_METHODS },
  requestTimeout: { status: 408, type: "invalid_request_error", message: "request body timed out", code: "request_timeout", close: true },
  bodyTooLarge: { status: 413, type: "invalid_request_error", message: "request body too large", code: "request_too_large" },
  rateLimited: (retryAfterSecs: number): GatewayError => ({ status: 429, type: "rate_limit_error", message: "rate limit exceeded", code: "rate_limit_exceeded", retryAfterSecs }),
  /** SPEC §11: a BYO key named a virtual model (by path or in the body). */
  /** SPEC §13: an x-beyond-tier header that names no tier. The value is the client's own, shown cut and cleaned. */
  badTier: (value: string): GatewayError => ({
    status: 400,
    type: "invalid_request_error",
    message: `x-beyond-tier "${value.replace(/[^\x20-\x7e]/g, "?").slice(0, 64)}" is not a tier: use simple, medium, complex or reasoning`,
    code: "bad_request",
  }),
  aliasNeedsManagedKey: { status: 400, type: "invalid_request_error", message: "virtual models need a managed key", code: "bad_request" },
  /** SPEC §10: no pool key of the provider is ready. The name is a provider (path-segment characters), never a key. */
  keysCooling: (provider: string, retryAfterSecs: number, allDead: boolean): GatewayError => ({
    status: 429,
    type: "rate_limit_error",
    message: allDead ? `every pool key for ${provider} was refused by the provider and is out of use` : `every pool key for ${provider} is cooling down after rate limits`,
    code: "pool_keys_exhausted",
    retryAfterSecs,
  }),
  /** SPEC §12: an endpoint other than chat/completions ↔ messages on a virtual model whose targets speak the other dialect. */
  untranslatable: {
    status: 400,
    type: "invalid_request_error",
    message: "this virtual model's targets speak the other API dialect, and only chat completions and messages requests are translated",
    code: "untranslatable_endpoint",
  },
  /** SPEC §12: a translated request is parsed whole, up to max_translate_bytes. */
  translateTooLarge: (max: number): GatewayError => ({ status: 413, type: "invalid_request_error", message: `request body too large to translate (over ${max} bytes)`, code: "request_too_large" }),
  /** SPEC §12: the provider's 2xx body could not be translated into the client's dialect. */
  untranslatableAnswer: { status: 502, type: "api_error", message: "the provider's answer could not be translated", code: "bad_upstream_answer" },
  denied: (status: 402 | 403): GatewayError => ({ status, type: "access_denied", message: "tenant is over limit or suspended", code: "access_denied" }),
  circuitOpen: (retryAfterSecs: number): GatewayError => ({ status: 503, type: "api_error", message: "provider temporarily unavailable", code: "provider_unavailable", retryAfterSecs }),
  noPoolKey: { status: 503, type: "api_error", message: "no provider key available", code: "no_provider_key" },
  upstreamUnreachable: { status: 502, type: "api_error", message: "upstream unreachable", code: "upstream_unreachable" },
  upstreamReset: { status: 502, type: "api_error", message: "upstream connection reset", code: "upstream_reset" },
  upstreamTimeout: { status: 504, type: "api_error", message: "upstream timed out", code: "upstream_timeout" },
} as const satisfies Record<string, GatewayError | ((...args: never[]) => GatewayError)>;

export function errorBody(dialect: Dialect, err: GatewayError): string {
  if (dialect === "anthropic") {
    return JSON.stringify({ type: "error", error: { type: err.type, message: err.message } });
  }
  return JSON.stringify({ error: { message: err.message, type: err.type, code: err.code } });
}

export function errorResponse(dialect: Dialect, err: GatewayError, requestId: string): Response {
  const headers: Record<string, string> = { "content-type": "application/json", "x-beyond-request-id": requestId };
  if (err.retryAfterSecs !== undefined) headers["retry-after"] = String(err.retryAfterSecs);
  if (err.allow !== undefined) headers["allow"] = err.allow;
  // Bun closes the connection after an answer that says so, even with the request body still unread.
  if (err.close === true) headers["connection"] = "close";
  return new Response(errorBody(dialect, err), { status: err.status, headers });
}
