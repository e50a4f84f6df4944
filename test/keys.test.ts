import { describe, expect, test } from "bun:test";
import { createHash, createPrivateKey, generateKeyPairSync, sign as nodeSign } from "node:crypto";
import { Point, utils as edUtils, verify as edVerify } from "@noble/ed25519";
import {
  b64urlDecodeStrict,
  b64urlEncode,
  isManagedToken,
  keygen,
  allocateVerifyBudget,
  KeyVerifier,
  mint,
  NATIVE_ED25519,
  parseKid,
  parsePublicKey,
  parseSeed,
  parseU64,
  publicKeyFromSeed,
  type VerifyEngine,
  type VerifyResult,
} from "../src/controls/keys.ts";

const U64_MAX = 18446744073709551615n;
const seedOf = (b: number): Uint8Array => new Uint8Array(32).fill(b);
const pubOf = (b: number): Uint8Array => publicKeyFromSeed(seedOf(b));
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

function parts(token: string): [string, string, string, string] {
  const p = token.split(".");
  expect(p.length).toBe(4);
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

/** base64url signature by node:crypto (independent of noble) over an arbitrary ASCII message. */
function signMessage(message: string, seed: Uint8Array): string {
  const privateKey = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: b64urlEncode(seed), x: b64urlEncode(publicKeyFromSeed(seed)) },
    format: "jwk",
  });
  return b64urlEncode(new Uint8Array(nodeSign(null, ascii(message), privateKey)));
}

/** A token whose payload is arbitrary bytes, correctly signed: reaches the payload-length check. */
function signRaw(kid: number, payload: Uint8Array, seed: Uint8Array): string {
  const signed = `bai_v1.${kid}.${b64urlEncode(payload)}`;
  return `${signed}.${signMessage(signed, seed)}`;
}

const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const leToBig = (b: Uint8Array): bigint => {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
};
const bigToLe32 = (v: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
};
const sha512 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/**
 * A token signed by the key's holder with R = r·B + T, T of order 4 (the encoding of y = 0), and S recomputed for
 * that R: [8]([S]B − R − [k]A) = −[8]T = 0, so a cofactored verifier accepts it, while encode([S]B − [k]A) ≠ R.
 */
function mixedOrderRToken(kid: number, seed: Uint8Array, tenant: bigint, vpc: bigint): string {
  const [p, k, pay] = parts(mint(kid, seed, tenant, vpc));
  const msg = ascii(`${p}.${k}.${pay}`);
  const ext = edUtils.getExtendedPublicKey(seed);
  const r = leToBig(sha512(ext.prefix, msg)) % L;
  const torsion = Point.fromBytes(new Uint8Array(32), false);
  const R = Point.BASE.multiply(r).add(torsion).toBytes();
  const kk = leToBig(sha512(R, ext.pointBytes, msg)) % L;
  const S = (r + kk * ext.scalar) % L;
  const sig = new Uint8Array(64);
  sig.set(R, 0);
  sig.set(bigToLe32(S), 32);
  return `${p}.${k}.${pay}.${b64urlEncode(sig)}`;
}

function reasonOf(r: VerifyResult): string {
  return r.ok ? "ok" : r.reason;
}

const ENGINES: VerifyEngine[] = ["noble", "native"];

for (const engine of ENGINES) {
  describe(`verify (${engine} engine)`, () => {
    const ring = new Map([
      [1, pubOf(1)],
      [2, pubOf(2)],
      [7, pubOf(7)],
    ]);
    const fresh = () => new KeyVerifier(ring, { engine });

    test("mint then verify round-trips the identity exactly", () => {
      const r = fresh().verify(mint(7, seedOf(7), 42n, 99n));
      expect(r).toEqual({ ok: true, identity: { kid: 7, tenantId: 42n, vpcId: 99n, tenant: "42", vpc: "99" } });
    });

    test("tenant u64 max and vpc 0 round-trip without precision loss", () => {
      const r = fresh().verify(mint(1, seedOf(1), U64_MAX, 0n));
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.identity.tenantId).toBe(U64_MAX);
      expect(r.identity.tenant).toBe("18446744073709551615");
      expect(r.identity.vpcId).toBe(0n);
      expect(r.identity.vpc).toBe("0");
    });

    test("a token minted by node:crypto's independent Ed25519 verifies", () => {
      const { publicKey, privateKey } = generateKeyPairSync("ed25519");
      const x = publicKey.export({ format: "jwk" }).x;
      expect(typeof x).toBe("string");
      const pub = parsePublicKey(x!);
      const payload = new Uint8Array(16);
      const view = new DataView(payload.buffer);
      view.setBigUint64(0, 123456789012345678n, true);
      view.setBigUint64(8, 987654321n, true);
      const signed = `bai_v1.9.${b64urlEncode(payload)}`;
      const sig = new Uint8Array(nodeSign(null, ascii(signed), privateKey));
      const token = `${signed}.${b64urlEncode(sig)}`;
      const r = new KeyVerifier(new Map([[9, pub]]), { engine }).verify(token);
      expect(r).toEqual({
        ok: true,
        identity: { kid: 9, tenantId: 123456789012345678n, vpcId: 987654321n, tenant: "123456789012345678", vpc: "987654321" },
      });
    });

    test("tampered payload is rejected as bad_signature", () => {
      const [p, k, pay, sig] = parts(mint(1, seedOf(1), 10n, 20n));
      const bytes = b64urlDecodeStrict(pay)!;
      bytes[0]! ^= 0xff;
      expect(reasonOf(fresh().verify(`${p}.${k}.${b64urlEncode(bytes)}.${sig}`))).toBe("bad_signature");
    });

    test("tampered signature is rejected as bad_signature", () => {
      const [p, k, pay, sig] = parts(mint(1, seedOf(1), 5n, 6n));
      const bytes = b64urlDecodeStrict(sig)!;
      bytes[0]! ^= 0xff;
      expect(reasonOf(fresh().verify(`${p}.${k}.${pay}.${b64urlEncode(bytes)}`))).toBe("bad_signature");
    });

    test("signature relabelled under another trusted kid is rejected as bad_signature", () => {
      const [p, , pay, sig] = parts(mint(2, seedOf(2), 3n, 4n));
      expect(reasonOf(fresh().verify(`${p}.1.${pay}.${sig}`))).toBe("bad_signature");
    });

    test("unknown kid is rejected as unknown_kid", () => {
      expect(reasonOf(fresh().verify(mint(3, seedOf(3), 1n, 1n)))).toBe("unknown_kid");
    });

    test("non-canonical S (S + L, the malleable twin) is rejected as bad_signature", () => {
      const [p, k, pay, sig] = parts(mint(1, seedOf(1), 8n, 9n));
      const bytes = b64urlDecodeStrict(sig)!;
      const L = (1n << 252n) + 27742317777372353535851937790883648493n;
      let s = 0n;
      for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(bytes[32 + i]!);
      let t = s + L; // < 2^253, fits in 32 bytes
      for (let i = 0; i < 32; i++) {
        bytes[32 + i] = Number(t & 0xffn);
        t >>= 8n;
      }
      expect(reasonOf(fresh().verify(`${p}.${k}.${pay}.${b64urlEncode(bytes)}`))).toBe("bad_signature");
    });

    test("bai_v2 token is rejected as bad_version", () => {
      const v = fresh();
      expect(reasonOf(v.verify("bai_v2.1.aaaa.bbbb"))).toBe("bad_version");
      const [, k, pay, sig] = parts(mint(1, seedOf(1), 1n, 2n));
      expect(reasonOf(v.verify(`bai_v2.${k}.${pay}.${sig}`))).toBe("bad_version");
    });

    test("wrong segment count is malformed", () => {
      const v = fresh();
      const token = mint(1, seedOf(1), 1n, 2n);
      expect(reasonOf(v.verify("bai_v1.1.only-three"))).toBe("malformed");
      expect(reasonOf(v.verify(token.slice(0, token.lastIndexOf("."))))).toBe("malformed");
      expect(reasonOf(v.verify(`${token}.extra`))).toBe("malformed"); // extra dot lands in the sig
      expect(reasonOf(v.verify("bai_v1"))).toBe("malformed");
    });

    test("payload of 15 or 17 bytes fails: bad_payload when signed, bad_signature when not", () => {
      const v = fresh();
      for (const n of [15, 17]) {
        const payload = new Uint8Array(n).fill(5);
        expect(reasonOf(v.verify(signRaw(1, payload, seedOf(1))))).toBe("bad_payload");
        const [p, k, , sig] = parts(mint(1, seedOf(1), 1n, 2n));
        expect(reasonOf(v.verify(`${p}.${k}.${b64urlEncode(payload)}.${sig}`))).toBe("bad_signature");
      }
    });

    test("oversized payload is malformed before any crypto", () => {
      const [p, k, , sig] = parts(mint(1, seedOf(1), 1n, 2n));
      expect(reasonOf(fresh().verify(`${p}.${k}.${b64urlEncode(new Uint8Array(40))}.${sig}`))).toBe("malformed");
    });

    test("non-base64url characters are malformed", () => {
      const v = fresh();
      const [p, k, pay, sig] = parts(mint(1, seedOf(1), 1n, 2n));
      for (const bad of ["+", "/", "!", " ", "é"]) {
        expect(reasonOf(v.verify(`${p}.${k}.${bad}${pay.slice(1)}.${sig}`))).toBe("malformed");
        expect(reasonOf(v.verify(`${p}.${k}.${pay}.${bad}${sig.slice(1)}`))).toBe("malformed");
      }
    });

    test("padding characters are malformed", () => {
      const v = fresh();
      const [p, k, pay, sig] = parts(mint(1, seedOf(1), 1n, 2n));
      expect(reasonOf(v.verify(`${p}.${k}.${pay}==.${sig}`))).toBe("malformed");
      expect(reasonOf(v.verify(`${p}.${k}.${pay}.${sig}==`))).toBe("malformed");
      expect(reasonOf(v.verify(`${p}.${k}.${pay.slice(0, 20)}==.${sig}`))).toBe("malformed");
    });

    test("non-canonical trailing bits in the payload are malformed", () => {
      const [p, k, pay, sig] = parts(mint(1, seedOf(1), 0n, 0n));
      // 22 chars = 16 bytes + 4 unused low bits in the last char; 'B' sets one of them.
      expect(pay.endsWith("A")).toBe(true);
      expect(reasonOf(fresh().verify(`${p}.${k}.${pay.slice(0, 21)}B.${sig}`))).toBe("malformed");
    });

    test("empty, garbage and foreign tokens are malformed", () => {
      const v = fresh();
      expect(reasonOf(v.verify(""))).toBe("malformed");
      expect(reasonOf(v.verify("garbage"))).toBe("malformed");
      expect(reasonOf(v.verify("sk-openai.1.aaaa.bbbb"))).toBe("malformed");
      expect(reasonOf(v.verify("..."))).toBe("malformed");
    });

    test("bad kid segments are malformed", () => {
      const v = fresh();
      const [p, , pay, sig] = parts(mint(1, seedOf(1), 1n, 2n));
      for (const kid of ["", "+", "-1", "x", "1a", " 1", "4294967296", "99999999999", "01", "+1", "00"]) {
        expect(reasonOf(v.verify(`${p}.${kid}.${pay}.${sig}`))).toBe("malformed");
      }
    });

    test("a kid spelled with leading zeros or a sign is malformed, even under a valid signature (SPEC §4)", () => {
      const v = fresh();
      const [p, , pay, sig] = parts(mint(7, seedOf(7), 11n, 12n));
      expect(v.verify(`${p}.7.${pay}.${sig}`).ok).toBe(true);
      for (const kid of ["07", "007", "+7", "+07", "-7", "7 ", "0x7"]) {
        expect(reasonOf(v.verify(`${p}.${kid}.${pay}.${sig}`))).toBe("malformed");
      }
      // Signed over the literal non-canonical spelling: still malformed, before any crypto.
      const literal = signMessage(`bai_v1.07.${pay}`, seedOf(7));
      expect(reasonOf(v.verify(`${p}.07.${pay}.${literal}`))).toBe("malformed");
      expect(v.cacheSize).toBe(1);
    });

    test("kid 0 is canonical as \"0\"; \"00\" and \"+0\" are malformed", () => {
      const v = new KeyVerifier(new Map([[0, pubOf(9)]]), { engine });
      const token = mint(0, seedOf(9), 1n, 2n);
      const [p, k, pay, sig] = parts(token);
      expect(k).toBe("0");
      expect(v.verify(token).ok).toBe(true);
      expect(reasonOf(v.verify(`${p}.00.${pay}.${sig}`))).toBe("malformed");
      expect(reasonOf(v.verify(`${p}.+0.${pay}.${sig}`))).toBe("malformed");
    });

    test("the largest kid 4294967295 verifies and 4294967296 is malformed", () => {
      const max = 4294967295;
      const v = new KeyVerifier(new Map([[max, pubOf(4)]]), { engine });
      const token = mint(max, seedOf(4), 1n, 2n);
      expect(v.verify(token).ok).toBe(true);
      const [p, , pay, sig] = parts(token);
      expect(reasonOf(v.verify(`${p}.4294967296.${pay}.${sig}`))).toBe("malformed");
      expect(reasonOf(v.verify(`${p}.14294967295.${pay}.${sig}`))).toBe("malformed");
    });

    test("a signature whose R has a small-order component is rejected (cofactorless check on both engines)", () => {
      const token = mixedOrderRToken(1, seedOf(1), 5n, 6n);
      expect(reasonOf(fresh().verify(token))).toBe("bad_signature");
      // The construction is right: noble's plain cofactored check accepts it, so this pins a real difference.
      const [p, k, pay, sig] = parts(token);
      expect(edVerify(b64urlDecodeStrict(sig)!, ascii(`${p}.${k}.${pay}`), pubOf(1), { zip215: false })).toBe(true);
    });
  });
}

describe("verify cache", () => {
  const ring = new Map([[1, pubOf(1)]]);

  test("cache never exceeds its bound after many distinct valid tokens", () => {
    const v = new KeyVerifier(ring, { cacheEntries: 8, engine: "native" });
    let max = 0;
    for (let i = 0; i < 40; i++) {
      const r = v.verify(mint(1, seedOf(1), BigInt(i), 0n));
      expect(r.ok).toBe(true);
      max = Math.max(max, v.cacheSize);
    }
    expect(max).toBe(8);
    expect(v.cacheSize).toBeLessThanOrEqual(8);
  });

  test("a cache hit returns the identical frozen result", () => {
    const v = new KeyVerifier(ring);
    const token = mint(1, seedOf(1), 77n, 88n);
    const first = v.verify(token);
    expect(v.cacheSize).toBe(1);
    const second = v.verify(token);
    expect(second).toBe(first);
    expect(Object.isFrozen(second)).toBe(true);
    if (second.ok) expect(Object.isFrozen(second.identity)).toBe(true);
  });

  test("a failure is not cached and a tampered token after a success still fails", () => {
    const v = new KeyVerifier(ring);
    const token = mint(1, seedOf(1), 1n, 2n);
    expect(v.verify(token).ok).toBe(true);
    const [p, k, pay, sig] = parts(token);
    const bytes = b64urlDecodeStrict(sig)!;
    bytes[10]! ^= 1;
    const tampered = `${p}.${k}.${pay}.${b64urlEncode(bytes)}`;
    expect(reasonOf(v.verify(tampered))).toBe("bad_signature");
    expect(reasonOf(v.verify(tampered))).toBe("bad_signature");
    expect(reasonOf(v.verify(`${token}x`))).toBe("malformed");
    expect(v.cacheSize).toBe(1);
    expect(v.verify(token).ok).toBe(true);
  });

  test("cacheEntries 0 disables caching but still verifies", () => {
    const v = new KeyVerifier(ring, { cacheEntries: 0 });
    const token = mint(1, seedOf(1), 1n, 2n);
    expect(v.verify(token).ok).toBe(true);
    expect(v.verify(token).ok).toBe(true);
    expect(v.cacheSize).toBe(0);
  });

  test("a new verifier for a rotated keyring forgets the retired kid", () => {
    const token = mint(1, seedOf(1), 1n, 2n);
    const old = new KeyVerifier(new Map([[1, pubOf(1)], [2, pubOf(2)]]));
    expect(old.verify(token).ok).toBe(true);
    expect(old.verify(mint(2, seedOf(2), 1n, 2n)).ok).toBe(true);
    const rotated = new KeyVerifier(new Map([[2, pubOf(2)]]));
    expect(reasonOf(rotated.verify(token))).toBe("unknown_kid");
  });

  test("the verifier copies the keyring, so later mutation of the caller's bytes has no effect", () => {
    const pub = Uint8Array.from(pubOf(1));
    const v = new KeyVerifier(new Map([[1, pub]]), { cacheEntries: 0 });
    pub.fill(0);
    expect(v.verify(mint(1, seedOf(1), 1n, 2n)).ok).toBe(true);
  });

  test("constructor rejects a short key, a small-order key and a bad cache size", () => {
    expect(() => new KeyVerifier(new Map([[1, new Uint8Array(31)]]))).toThrow(/kid 1/);
    const identityPoint = new Uint8Array(32);
    identityPoint[0] = 1;
    expect(() => new KeyVerifier(new Map([[1, identityPoint]]))).toThrow(/kid 1/);
    expect(() => new KeyVerifier(ring, { cacheEntries: -1 })).toThrow();
    expect(() => new KeyVerifier(ring, { cacheEntries: 1.5 })).toThrow();
  });
});

describe("failed-verification budget", () => {
  const ring = new Map([[1, pubOf(1)]]);
  /** A well-formed token with a canonical S that fails the signature check (costs a full verification). */
  const forged = (i: number): string => {
    const [p, k, pay, sig] = parts(mint(1, seedOf(1), BigInt(i), 0n));
    const bytes = b64urlDecodeStrict(sig)!;
    bytes[3]! ^= 0x40; // R byte: S stays canonical
    return `${p}.${k}.${pay}.${b64urlEncode(bytes)}`;
  };
  const clock = () => {
    const c = { t: 0, now: () => c.t };
    return c;
  };

  test("after the budget's failures in one window, uncached tokens are throttled before any signature work", () => {
    const c = clock();
    const v = new KeyVerifier(ring, { failedVerifyBudget: 3, now: c.now });
    for (let i = 0; i < 3; i++) expect(reasonOf(v.verify(forged(i)))).toBe("bad_signature");
    expect(reasonOf(v.verify(forged(3)))).toBe("throttled");
    // A valid key not seen before is refused too while the budget is spent (it is not in the cache).
    expect(reasonOf(v.verify(mint(1, seedOf(1), 500n, 1n)))).toBe("throttled");
    expect(v.cacheSize).toBe(0);
  });

  test("a cached key is never throttled, and cheap rejections keep their precise reason", () => {
    const c = clock();
    const v = new KeyVerifier(ring, { failedVerifyBudget: 2, now: c.now });
    const good = mint(1, seedOf(1), 9n, 9n);
    expect(v.verify(good).ok).toBe(true);
    for (let i = 0; i < 5; i++) v.verify(forged(i));
    expect(reasonOf(v.verify(forged(99)))).toBe("throttled");
    expect(v.verify(good).ok).toBe(true);
    expect(reasonOf(v.verify("bai_v1.1.x"))).toBe("malformed");
    expect(reasonOf(v.verify(mint(3, seedOf(3), 1n, 1n)))).toBe("unknown_kid");
    expect(reasonOf(v.verify(`${good.slice(0, 7)}01${good.slice(8)}`))).toBe("malformed"); // kid "01"
  });

  test("with a shared budget (workers >= 2) every verifier counts in one process-wide budget, and it refills per window", () => {
    const c = clock();
    const shared = allocateVerifyBudget(0);
    const a = new KeyVerifier(ring, { failedVerifyBudget: 4, now: c.now, sharedBudget: shared });
    const b = new KeyVerifier(ring, { failedVerifyBudget: 4, now: c.now, sharedBudget: shared });
    expect(reasonOf(a.verify(forged(0)))).toBe("bad_signature");
    expect(reasonOf(b.verify(forged(1)))).toBe("bad_signature");
    expect(reasonOf(a.verify(forged(2)))).toBe("bad_signature");
    expect(reasonOf(b.verify(forged(3)))).toBe("bad_signature");
    // 4 failures between the two: both are spent, not 4 each.
    expect(reasonOf(a.verify(forged(4)))).toBe("throttled");
    expect(reasonOf(b.verify(forged(5)))).toBe("throttled");
    c.t += 1000;
    expect(reasonOf(b.verify(forged(6)))).toBe("bad_signature");
  });

  test("the budget refills when the next 1-second window starts", () => {
    const c = clock();
    const v = new KeyVerifier(ring, { failedVerifyBudget: 1, now: c.now });
    expect(reasonOf(v.verify(forged(0)))).toBe("bad_signature");
    expect(reasonOf(v.verify(forged(1)))).toBe("throttled");
    c.t = 999;
    expect(reasonOf(v.verify(forged(2)))).toBe("throttled");
    c.t = 1000;
    expect(reasonOf(v.verify(forged(3)))).toBe("bad_signature");
    expect(reasonOf(v.verify(forged(4)))).toBe("throttled");
    c.t = 5500; // idle gap of several windows
    expect(v.verify(mint(1, seedOf(1), 77n, 1n)).ok).toBe(true);
    expect(reasonOf(v.verify(forged(5)))).toBe("bad_signature");
  });

  test("successes and cheap rejections do not spend the budget; budget 0 is unlimited", () => {
    const c = clock();
    const v = new KeyVerifier(ring, { failedVerifyBudget: 1, cacheEntries: 0, now: c.now });
    for (let i = 0; i < 10; i++) {
      expect(v.verify(mint(1, seedOf(1), BigInt(i), 0n)).ok).toBe(true);
      expect(reasonOf(v.verify(mint(2, seedOf(2), 1n, 1n)))).toBe("unknown_kid");
    }
    expect(reasonOf(v.verify(forged(0)))).toBe("bad_signature");
    const unlimited = new KeyVerifier(ring, { failedVerifyBudget: 0, now: c.now });
    for (let i = 0; i < 150; i++) expect(reasonOf(unlimited.verify(forged(i)))).toBe("bad_signature");
  });

  test("the default budget is 100 failures a second", () => {
    const c = clock();
    const v = new KeyVerifier(ring, { now: c.now });
    for (let i = 0; i < 100; i++) expect(reasonOf(v.verify(forged(i)))).toBe("bad_signature");
    expect(reasonOf(v.verify(forged(100)))).toBe("throttled");
  });

  test("a bad budget value is refused", () => {
    expect(() => new KeyVerifier(ring, { failedVerifyBudget: -1 })).toThrow(/failedVerifyBudget/);
    expect(() => new KeyVerifier(ring, { failedVerifyBudget: 0.5 })).toThrow(/failedVerifyBudget/);
  });
});

describe("engine", () => {
  test("node:crypto's Ed25519 passes the load-time self-test under Bun, so native is the default", () => {
    expect(NATIVE_ED25519).toBe(true);
  });

  test("a public key with a small-order component is refused, so both engines see only prime-order keys", () => {
    const torsion = Point.fromBytes(new Uint8Array(32), false); // order 4
    const mixed = Point.fromBytes(pubOf(1), false).add(torsion).toBytes();
    expect(() => new KeyVerifier(new Map([[1, mixed]]))).toThrow(/kid 1/);
    expect(() => parsePublicKey(b64urlEncode(mixed))).toThrow(/not a valid Ed25519/);
  });
});

describe("mint", () => {
  test("mint is deterministic", () => {
    expect(mint(1, seedOf(2), 1n, 2n)).toBe(mint(1, seedOf(2), 1n, 2n));
  });

  test("mint output is byte-identical to node:crypto signing the same message (Go control-plane parity)", () => {
    const seed = seedOf(9);
    const token = mint(4, seed, 31337n, 4242n);
    const [p, k, pay, sig] = parts(token);
    const expected = signRaw(4, b64urlDecodeStrict(pay)!, seed);
    expect(token).toBe(expected);
    expect(`${p}.${k}`).toBe("bai_v1.4");
    expect(b64urlDecodeStrict(sig)!.length).toBe(64);
  });

  test("a kid-1 token is 118 characters with a 22-char payload and 86-char signature", () => {
    const token = mint(1, seedOf(1), 5n, 6n);
    const [, , pay, sig] = parts(token);
    expect(token.length).toBe(118);
    expect(pay.length).toBe(22);
    expect(sig.length).toBe(86);
  });

  test("mint rejects out-of-range inputs", () => {
    expect(() => mint(-1, seedOf(1), 1n, 1n)).toThrow();
    expect(() => mint(2 ** 32, seedOf(1), 1n, 1n)).toThrow();
    expect(() => mint(1, seedOf(1), U64_MAX + 1n, 1n)).toThrow();
    expect(() => mint(1, seedOf(1), 1n, -1n)).toThrow();
    expect(() => mint(1, new Uint8Array(31), 1n, 1n)).toThrow();
  });

  test("keygen yields a fresh seed whose public key verifies its own mints", () => {
    const a = keygen();
    const b = keygen();
    expect(a.seed.length).toBe(32);
    expect(a.publicKey).toEqual(publicKeyFromSeed(a.seed));
    expect(b64urlEncode(a.seed)).not.toBe(b64urlEncode(b.seed));
    const v = new KeyVerifier(new Map([[5, parsePublicKey(b64urlEncode(a.publicKey))]]));
    expect(v.verify(mint(5, parseSeed(b64urlEncode(a.seed)), 1n, 2n)).ok).toBe(true);
  });
});

describe("isManagedToken", () => {
  test("every bai_ token is managed, anything else is BYO", () => {
    expect(isManagedToken("bai_v1.1.x.y")).toBe(true);
    expect(isManagedToken("bai_v3.1.x.y")).toBe(true);
    expect(isManagedToken("bai_")).toBe(true);
    expect(isManagedToken("sk-proj-abc")).toBe(false);
    expect(isManagedToken("BAI_v1.1.x.y")).toBe(false);
    expect(isManagedToken("")).toBe(false);
  });
});

describe("parsers", () => {
  const pub = pubOf(3);

  test("parsePublicKey accepts base64 and base64url of 32 bytes, padded or not, trimmed", () => {
    const std = Buffer.from(pub).toString("base64");
    const url = b64urlEncode(pub);
    expect(std.endsWith("=")).toBe(true);
    for (const text of [std, std.replace(/=+$/, ""), url, `${url}=`, `  ${url}\n`]) {
      expect(parsePublicKey(text)).toEqual(pub);
    }
  });

  test("parsePublicKey rejects 31 and 33 bytes, garbage, mixed alphabets and non-points", () => {
    const pick = (n: number) => new Uint8Array(n).fill(0x42);
    expect(() => parsePublicKey(Buffer.from(pick(31)).toString("base64"))).toThrow(/31 bytes/);
    expect(() => parsePublicKey(b64urlEncode(pick(33)))).toThrow(/33 bytes/);
    expect(() => parsePublicKey("not a key!")).toThrow();
    expect(() => parsePublicKey("")).toThrow();
    expect(() => parsePublicKey(`-+${"A".repeat(41)}`)).toThrow(/not valid base64/); // mixed alphabets
    expect(() => parsePublicKey(`${b64urlEncode(pub)}==`)).toThrow(/not valid base64/); // over-padded
    const nonCanonicalY = new Uint8Array(32).fill(0xff);
    nonCanonicalY[31] = 0x7f; // y = 2^255 - 1 ≥ p
    expect(() => parsePublicKey(b64urlEncode(nonCanonicalY))).toThrow(/not a valid Ed25519/);
  });

  test("parseKid accepts decimal u32 and rejects non-numeric or > 4294967295", () => {
    expect(parseKid("0")).toBe(0);
    expect(parseKid("7")).toBe(7);
    expect(parseKid("007")).toBe(7);
    expect(parseKid("4294967295")).toBe(4294967295);
    for (const bad of ["", "abc", "-1", "1.5", " 1", "1 ", "4294967296", "1e3", "0x10"]) {
      expect(() => parseKid(bad)).toThrow(/invalid kid/);
    }
  });

  test("parseU64 accepts decimal u64 and rejects everything else", () => {
    expect(parseU64("0")).toBe(0n);
    expect(parseU64("18446744073709551615")).toBe(U64_MAX);
    for (const bad of ["", "-1", "+1", "18446744073709551616", "1e3", "abc", " 5", "0x1"]) {
      expect(() => parseU64(bad)).toThrow(/invalid u64/);
    }
  });

  test("parseSeed reads base64url or base64 of 32 bytes and never echoes the input on error", () => {
    const seed = seedOf(0xfb);
    expect(parseSeed(`${b64urlEncode(seed)}\n`)).toEqual(seed);
    expect(parseSeed(Buffer.from(seed).toString("base64"))).toEqual(seed);
    const short = b64urlEncode(new Uint8Array(31).fill(0xab));
    let message = "";
    try {
      parseSeed(short);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/32-byte/);
    expect(message).not.toContain(short.slice(0, 8));
  });
});

describe("base64url", () => {
  test("encode matches Buffer's base64url for every length 0..40", () => {
    for (let n = 0; n <= 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 73 + n * 11) & 0xff);
      const enc = b64urlEncode(bytes);
      expect(enc).toBe(Buffer.from(bytes).toString("base64url"));
      expect(b64urlDecodeStrict(enc)).toEqual(bytes);
    }
  });

  test("strict decode rejects padding, foreign characters, length 1 mod 4 and non-canonical tails", () => {
    expect(b64urlDecodeStrict("AA")).toEqual(new Uint8Array([0]));
    for (const bad of ["AA==", "A", "AAAAA", "AB", "AAB", "+/AA", "AA AA", "AA.A", "AAA="]) {
      expect(b64urlDecodeStrict(bad)).toBeNull();
    }
  });
});
