// Credential extraction rules (invariant 1, issue 12 item 2), unit level; test/e2e-credentials.test.ts drives the same
// matrix through the real gateway.
import { describe, expect, test } from "bun:test";
import { extractCredential, holdsManagedToken, verifyManaged } from "../src/pipeline/authenticate.ts";
import { KeyVerifier, mint, publicKeyFromSeed } from "../src/controls/keys.ts";
import type { HeaderFields } from "../src/transport/transport.ts";

const BAI = "bai_v1.1.AAAAAAAAAAAAAAAAAAAAAA.sig";
const BAI_2 = "bai_v1.1.BBBBBBBBBBBBBBBBBBBBBB.sig";

/** A request head as the pipeline reads it (Headers.toJSON()): repeated names joined with ", " (as Bun does), set-cookie
 * lines kept apart. */
function headersOf(pairs: [string, string][]): HeaderFields {
  const h = new Headers();
  for (const [n, v] of pairs) h.append(n, v);
  return h.toJSON() as HeaderFields;
}

function outcome(pairs: [string, string][]): string {
  const c = extractCredential(headersOf(pairs));
  if (c === undefined) return "missing";
  if ("error" in c) return `${c.error.status} ${c.error.message}`;
  return `${c.managed ? "managed" : "byo"} ${c.token}`;
}

describe("extractCredential", () => {
  test("without bai_ anywhere: x-api-key, then Authorization: Bearer, then api-key; blank counts as absent", () => {
    expect(outcome([["x-api-key", "sk-a"], ["authorization", "Bearer sk-b"]])).toBe("byo sk-a");
    expect(outcome([["x-api-key", "  "], ["authorization", "bearer sk-b"]])).toBe("byo sk-b");
    expect(outcome([["authorization", "Basic xyz"], ["api-key", "az"]])).toBe("byo az");
    expect(outcome([["authorization", "Basic xyz"]])).toBe("missing");
    expect(outcome([["x-api-key", "sk-a"], ["x-api-key", "sk-b"]])).toBe("byo sk-a, sk-b");
    expect(outcome([])).toBe("missing");
  });

  test("a bai_ token in any credential header, any scheme, makes the request managed with that token", () => {
    expect(outcome([["authorization", `Bearer ${BAI}`]])).toBe(`managed ${BAI}`);
    expect(outcome([["authorization", `Token ${BAI}`]])).toBe(`managed ${BAI}`);
    expect(outcome([["authorization", BAI]])).toBe(`managed ${BAI}`);
    expect(outcome([["api-key", BAI]])).toBe(`managed ${BAI}`);
    expect(outcome([["proxy-authorization", `Bearer ${BAI}`]])).toBe(`managed ${BAI}`);
    expect(outcome([["x-api-key", BAI], ["authorization", `Bearer ${BAI}`], ["x-api-key", BAI]])).toBe(`managed ${BAI}`);
    // Not exactly a token: still managed, so verification answers 401 instead of forwarding it.
    expect(outcome([["x-api-key", `"${BAI}"`]])).toBe(`managed "${BAI}"`);
  });

  test("a bai_ token beside any other credential, or two different ones, is 400 conflicting credentials", () => {
    const conflicting = "400 conflicting credentials";
    expect(outcome([["x-api-key", "sk-byo"], ["authorization", `Bearer ${BAI}`]])).toBe(conflicting);
    expect(outcome([["x-api-key", "sk-byo"], ["x-api-key", BAI]])).toBe(conflicting);
    expect(outcome([["authorization", `Bearer ${BAI}`], ["authorization", `Bearer ${BAI_2}`]])).toBe(conflicting);
    expect(outcome([["authorization", "Basic dXNlcg=="], ["api-key", BAI]])).toBe(conflicting);
    expect(outcome([["proxy-authorization", `Bearer ${BAI}`], ["api-key", "az"]])).toBe(conflicting);
    // A proxy credential without bai_ is hop-by-hop and never a gateway key: no conflict.
    expect(outcome([["proxy-authorization", "Basic cHJveHk="], ["x-api-key", BAI]])).toBe(`managed ${BAI}`);
    // A scheme without a credential is blank.
    expect(outcome([["authorization", "Bearer"], ["x-api-key", BAI]])).toBe(`managed ${BAI}`);
  });

  test("a bai_ token in any other header is 400, whatever the credential headers hold", () => {
    const misplaced = "400 managed API key outside a credential header";
    expect(outcome([["x-api-key", "sk-byo"], ["x-custom", BAI]])).toBe(misplaced);
    expect(outcome([["authorization", `Bearer ${BAI}`], ["cookie", `a=1; k=${BAI}`]])).toBe(misplaced);
    expect(outcome([["x-note", `see ${BAI}`]])).toBe(misplaced);
    // Header names that are also Object.prototype names are plain own fields of the head read, scanned like any other.
    expect(outcome([["x-api-key", "sk-byo"], ["__proto__", BAI]])).toBe(misplaced);
    expect(outcome([["x-api-key", "sk-byo"], ["constructor", BAI]])).toBe(misplaced);
    // set-cookie's lines come apart (an array) in the head read: a token in any one of them is found too.
    expect(outcome([["x-api-key", "sk-byo"], ["set-cookie", "a=1"], ["set-cookie", `k=${BAI}`]])).toBe(misplaced);
    expect(outcome([["authorization", `Bearer ${BAI}`], ["set-cookie", "a=1"], ["set-cookie", `k=${BAI}`]])).toBe(misplaced);
  });

  test("bai_ inside another token is not a managed key", () => {
    expect(outcome([["x-api-key", "sk-bai_abc"], ["x-trace", "kubai_1"]])).toBe("byo sk-bai_abc");
    expect(outcome([["authorization", `Bearer ${BAI}`], ["x-trace", "kubai_1"]])).toBe(`managed ${BAI}`);
  });
});

describe("holdsManagedToken", () => {
  test("bai_ at the start or after a character that cannot be inside a token", () => {
    for (const yes of ["bai_", "bai_v1.x", " bai_x", '"bai_x"', "k=bai_x", "a, bai_x", "a;bai_x", "a:bai_x"]) expect(holdsManagedToken(yes)).toBe(true);
    for (const no of ["", "bai", "BAI_x", "xbai_", "sk-bai_x", "a.bai_x", "a_bai_x", "a~bai_x", "a+bai_x", "a/bai_x", "9bai_"]) expect(holdsManagedToken(no)).toBe(false);
  });
});

describe("verifyManaged", () => {
  test("a throttled verification is 429 with Retry-After 1, a failed one 401", () => {
    const seed = new Uint8Array(32).fill(3);
    const v = new KeyVerifier(new Map([[1, publicKeyFromSeed(seed)]]), { failedVerifyBudget: 1 });
    const good = mint(1, seed, 1n, 2n);
    const forged = `${good.slice(0, -3)}${good.endsWith("A") ? "B" : "A"}AA`;
    const first = verifyManaged(v, forged);
    expect(first.ok).toBe(false);
    if (!first.ok) {
      expect(first.error.status).toBe(401);
      expect(first.rejection).toBe("auth");
      expect(first.reason).toBe("auth_bad_signature");
    }
    const second = verifyManaged(v, forged);
    expect(second.ok).toBe(false);
    if (!second.ok) {
      expect(second.error.status).toBe(429);
      expect(second.error.retryAfterSecs).toBe(1);
      expect(second.rejection).toBe("auth_throttled");
    }
  });
});
