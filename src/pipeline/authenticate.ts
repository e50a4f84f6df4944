// Phase 2, authenticate: find the caller's key, tell managed from BYO, verify managed keys statelessly (SPEC §4).
//
// Invariant 1: a `bai_` token never reaches a provider. A request is BYO only when no header holds one, checked by
// one scan of every header value for the substring `bai_`, over the head as plain fields (read once in phase 2 and
// reused by every later phase; bench/credentials.bench.ts: read and scan 1.4 µs for an SDK's 16 headers). Only a
// request whose headers do hold `bai_` (every managed request, and the odd BYO one) takes the slow path below, which
// decides managed, or 400.

import { ERR, type GatewayError } from "./errors.ts";
import { BUDGET_WINDOW_MS, type Identity, type KeyVerifier, MANAGED_PREFIX } from "../controls/keys.ts";
import { field, type HeaderFields } from "../transport/transport.ts";

export interface Credential {
  token: string;
  managed: boolean;
}

/** A request refused before any key check: its credentials are ambiguous or a managed key sits where it would be forwarded. */
export interface CredentialRefusal {
  error: GatewayError;
  reason: "conflicting_credentials" | "misplaced_managed_key";
}

const BEARER = /^\s*bearer\s+/i;

/** Headers that carry credentials. `authorization` and `proxy-authorization` values are `scheme credential`. */
const CREDENTIAL_HEADERS = ["x-api-key", "authorization", "api-key", "proxy-authorization"] as const;
const CREDENTIAL_SET: ReadonlySet<string> = new Set(CREDENTIAL_HEADERS);
/** `scheme SP+ rest` (RFC 9110 auth-scheme is a token). */
const SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\s+/;

// Fixed messages (SPEC §8: 400 invalid_request_error; nothing from the request is echoed).
const CONFLICTING: CredentialRefusal = Object.freeze({
  error: { ...ERR.badRequest("conflicting credentials"), code: "conflicting_credentials" },
  reason: "conflicting_credentials" as const,
});
const MISPLACED: CredentialRefusal = Object.freeze({
  error: { ...ERR.badRequest("managed API key outside a credential header"), code: "misplaced_api_key" },
  reason: "misplaced_managed_key" as const,
});

/**
 * The caller's credential, or a refusal, or undefined when there is none (401 missing).
 *
 * BYO (no `bai_` anywhere in the headers): the key comes from `x-api-key`, then `Authorization: Bearer`, then
 * Azure-style `api-key`; an empty or blank value counts as absent, so `x-api-key: ""` with a real Bearer token
 * still works, and a request with only blank headers gets a clear 401 instead of a provider's confusing one.
 *
 * With `bai_` somewhere (see managedCredential): managed with the one `bai_` credential, or 400.
 */
export function extractCredential(headers: HeaderFields): Credential | CredentialRefusal | undefined {
  // The hot-path scan: how many header values contain `bai_` (Bun joins repeated headers, so one value per name;
  // set-cookie's lines count one each).
  let hits = 0;
  for (const name in headers) {
    const value = headers[name] as string | string[];
    if (typeof value === "string") {
      if (value.includes(MANAGED_PREFIX)) hits++;
    } else for (const line of value) if (line.includes(MANAGED_PREFIX)) hits++;
  }
  return hits === 0 ? extractByo(headers) : managedCredential(headers, hits);
}

/**
 * Some header value contains `bai_`. Rules (each comma-separated part of a credential header counts, since Bun joins
 * repeated headers with ", "; the scheme of `authorization` / `proxy-authorization` is stripped, whatever it is):
 * - a `bai_` token in any header other than the four credential headers → 400 "managed API key outside a credential
 *   header" (it would be forwarded upstream as it is);
 * - a credential part that holds a `bai_` token is a managed credential: the part's credential text is the token
 *   (`Token bai_…`, `Basic bai_…`, `bai_…` without a scheme all count), verified later (401 if it is not exactly a
 *   valid key, e.g. `"bai_…"` quoted);
 * - two different managed credentials, or a managed one beside any other non-blank credential → 400 "conflicting
 *   credentials" (which one was meant is a guess either way, and guessing BYO would forward the `bai_` token);
 * - the same managed token repeated (`x-api-key` and `Authorization: Bearer` both holding it) is that token.
 * A `bai_` that is not at the start of a token (`sk-abc_bai_x`, `xbai_`) is not a managed key: such a request stays
 * BYO unless some other value holds one.
 */
function managedCredential(headers: HeaderFields, hits: number): Credential | CredentialRefusal | undefined {
  let managed: string | undefined;
  let others = false;
  let conflict = false;
  let credentialHits = 0;
  for (const name of CREDENTIAL_HEADERS) {
    const value = field(headers, name);
    if (value === null) continue;
    if (value.includes(MANAGED_PREFIX)) credentialHits++;
    const schemed = name === "authorization" || name === "proxy-authorization";
    // Most values are one part: skip the split (and its array) then.
    const parts = value.includes(",") ? value.split(",") : [value];
    for (const raw of parts) {
      let part = raw.trim();
      if (part.length === 0) continue;
      if (schemed) {
        const m = SCHEME.exec(part);
        if (m !== null) part = part.slice(m[0].length).trim();
        // A lone word is a scheme without a credential (blank, so absent), unless it is itself a managed key.
        else if (!holdsManagedToken(part)) continue;
      }
      if (!holdsManagedToken(part)) {
        // A hop-by-hop proxy credential is dropped before forwarding and was never a gateway key: it conflicts with nothing.
        if (name !== "proxy-authorization") others = true;
      } else if (managed === undefined) managed = part;
      else if (managed !== part) conflict = true;
    }
  }
  // Some `bai_` lies outside the credential headers: look at every header, by name, only then (rare).
  if (credentialHits < hits) {
    for (const name in headers) {
      if (CREDENTIAL_SET.has(name)) continue;
      const value = headers[name] as string | string[];
      if (typeof value === "string" ? holdsManagedToken(value) : value.some(holdsManagedToken)) return MISPLACED;
    }
  }
  if (conflict) return CONFLICTING;
  if (managed === undefined) {
    // `bai_` only inside other tokens: an ordinary BYO request after all.
    return extractByo(headers);
  }
  if (others) return CONFLICTING;
  return { token: managed, managed: true };
}

function extractByo(headers: HeaderFields): Credential | undefined {
  let token = field(headers, "x-api-key")?.trim();
  if (!token) {
    const auth = field(headers, "authorization");
    if (auth !== null) {
      const m = BEARER.exec(auth);
      if (m !== null) token = auth.slice(m[0].length).trim();
    }
  }
  if (!token) token = field(headers, "api-key")?.trim();
  if (!token) return undefined;
  return { token, managed: false };
}

/**
 * Whether `text` holds a `bai_` token: `bai_` at the start or right after a character that cannot be inside a token
 * (anything but token68's letters, digits and `-._~+/`), so `sk-bai_x` or `kubai_x` are not managed keys while
 * `"bai_…"`, `x bai_…`, `k=bai_…` are.
 */
export function holdsManagedToken(text: string): boolean {
  for (let i = text.indexOf(MANAGED_PREFIX); i >= 0; i = text.indexOf(MANAGED_PREFIX, i + 1)) {
    if (i === 0 || !isToken68Char(text.charCodeAt(i - 1))) return true;
  }
  return false;
}

function isToken68Char(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || // 0-9
    (c >= 65 && c <= 90) || // A-Z
    (c >= 97 && c <= 122) || // a-z
    c === 45 || c === 46 || c === 95 || c === 126 || c === 43 || c === 47 // - . _ ~ + /
  );
}

export type AuthOutcome = { ok: true; identity: Identity } | { ok: false; error: GatewayError; reason: string; rejection: "auth" | "auth_throttled" };

const THROTTLED = ERR.rateLimited(Math.ceil(BUDGET_WINDOW_MS / 1000));

/**
 * Verify a managed token. Any `bai_` token that fails is 401 and never forwarded (no fall-through to BYO); one refused
 * by the failed-verification budget (a forged-key flood, see KeyVerifier) is 429 with Retry-After.
 */
export function verifyManaged(verifier: KeyVerifier, token: string): AuthOutcome {
  const r = verifier.verify(token);
  if (r.ok) return { ok: true, identity: r.identity };
  if (r.reason === "throttled") return { ok: false, error: THROTTLED, reason: "auth_throttled", rejection: "auth_throttled" };
  return { ok: false, error: ERR.invalidKey, reason: `auth_${r.reason}`, rejection: "auth" };
}
