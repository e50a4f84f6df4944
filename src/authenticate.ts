// Phase 2, authenticate: find the caller's key, tell managed from BYO, verify managed keys statelessly (SPEC §4).

import { ERR, type GatewayError } from "./errors.ts";
import { type Identity, isManagedToken, type KeyVerifier } from "./keys.ts";

export interface Credential {
  token: string;
  managed: boolean;
}

const BEARER = /^\s*bearer\s+/i;

/**
 * The key comes from `x-api-key`, then `Authorization: Bearer`, then Azure-style `api-key`.
 * An empty or blank value counts as absent, so `x-api-key: ""` with a real Bearer token still works,
 * and a request with only blank headers gets a clear 401 instead of a provider's confusing one.
 */
export function extractCredential(headers: Headers): Credential | undefined {
  let token = headers.get("x-api-key")?.trim();
  if (!token) {
    const auth = headers.get("authorization");
    if (auth !== null) {
      const m = BEARER.exec(auth);
      if (m !== null) token = auth.slice(m[0].length).trim();
    }
  }
  if (!token) token = headers.get("api-key")?.trim();
  if (!token) return undefined;
  return { token, managed: isManagedToken(token) };
}

export type AuthOutcome = { ok: true; identity: Identity } | { ok: false; error: GatewayError; reason: string };

/** Verify a managed token. Any `bai_` token that fails is 401 and never forwarded (no fall-through to BYO). */
export function verifyManaged(verifier: KeyVerifier, token: string): AuthOutcome {
  const r = verifier.verify(token);
  if (r.ok) return { ok: true, identity: r.identity };
  return { ok: false, error: ERR.invalidKey, reason: r.reason };
}
