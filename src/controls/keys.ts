// Managed virtual keys: `bai_v1.{kid}.{payload}.{sig}`.
//
// Identity (tenant, VPC) lives inside the token, signed with Ed25519 by the control plane, so the
// gateway authenticates a caller without any lookup and holds only public keys: a compromised gateway
// can verify but never mint. Minting is deterministic (no nonce, no timestamp) so the control plane can
// re-derive a tenant's key on demand; revocation is the deny-set, not expiry.
//
// Wire format (SPEC §4, reference §2):
//   kid      decimal u32 selecting the public key in `[signing_keys]`
//   payload  base64url, no padding, of 16 bytes = tenant u64 LE ‖ vpc u64 LE (22 chars)
//   sig      base64url, no padding, of the 64-byte Ed25519 signature (86 chars) over the ASCII bytes
//            `bai_v1.{kid}.{payload}`, kid written in plain decimal, payload exactly as it appears.
//
// This module is pure: no I/O, no config, no logging. Everything here is synchronous so the proxy can
// authenticate without an await on the hot path.

import * as ed from "@noble/ed25519";
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";
import { countBitsFor, packedIncrement, packedRead, sharedClock } from "./shared-state.ts";

// noble's synchronous API needs a synchronous SHA-512; node:crypto's is native and fast. Only set it
// when nobody else has, so a module that wired its own hash first keeps it.
if (ed.hashes.sha512 === undefined) {
  ed.hashes.sha512 = (message) => {
    const d = createHash("sha512").update(message).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  };
}

export type KeyRing = ReadonlyMap<number, Uint8Array>;

export interface Identity {
  kid: number;
  tenantId: bigint;
  vpcId: bigint;
  /** tenantId as exact u64 decimal digits (for log lines and deny-set keys, no precision loss). */
  tenant: string;
  /** vpcId as exact u64 decimal digits. */
  vpc: string;
}

/** `throttled`: the failed-verification budget is spent, so the token was refused before any signature work. */
export type VerifyFailure = "malformed" | "bad_version" | "unknown_kid" | "bad_signature" | "bad_payload" | "throttled";
export type VerifyResult = { ok: true; identity: Identity } | { ok: false; reason: VerifyFailure };

/**
 * Which Ed25519 implementation checks signatures.
 * - "native": node:crypto (BoringSSL in Bun), the default wherever it passes a self-test at load
 *   (bench/keys.bench.ts: ~0.1 ms per verify against ~2 ms for noble on the 2-core dev VM).
 * - "noble": @noble/ed25519 in strict RFC 8032 mode (`zip215: false`), pure JS; the fallback.
 * Both accept exactly the same tokens: our own canonical-S and public-key checks run first, and the
 * noble path adds the one check that makes its cofactored equation agree with BoringSSL's cofactorless
 * one (see nobleCheck).
 */
export type VerifyEngine = "noble" | "native";

export interface KeyVerifierOptions {
  /** Max cached successful verifications; 0 disables the cache. Default 65536. */
  cacheEntries?: number;
  /** Default: "native" where it works (NATIVE_ED25519), else "noble". */
  engine?: VerifyEngine;
  /**
   * Failed signature checks allowed per 1-second window, process-wide; once spent, a token that is not in
   * the success cache is refused as `throttled` before any signature work. 0 = unlimited. Default 100.
   */
  failedVerifyBudget?: number;
  /** Millisecond clock for the budget's windows, injectable for tests. Default `performance.now()` (with
   * `sharedBudget`: the shared clock, so every thread's windows line up). */
  now?: () => number;
  /**
   * Workers >= 2: the failure budget is counted in this shared word instead of a private counter, so it stays
   * process-wide (one budget, not one per worker). The success cache stays per worker.
   */
  sharedBudget?: SharedVerifyBudget;
}

/** One Int32 (a packed window stamp | count word, see shared-state.ts) every worker's verifier counts failures in. */
export interface SharedVerifyBudget {
  readonly buffer: SharedArrayBuffer;
  /** The shared clock's origin (SharedState.originEpochMs): windows are whole seconds on it. */
  readonly originEpochMs: number;
}

/** A buffer for SharedVerifyBudget (main thread, workers >= 2). */
export function allocateVerifyBudget(originEpochMs: number): SharedVerifyBudget {
  return { buffer: new SharedArrayBuffer(4), originEpochMs };
}

export const MANAGED_PREFIX = "bai_";
export const TOKEN_PREFIX = "bai_v1";
export const U32_MAX = 0xffff_ffff;
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
export const DEFAULT_CACHE_ENTRIES = 65536;
/**
 * Default failed-verification budget per second. A forged token under a trusted kid costs a signature check
 * (~0.1 ms native, ~2 ms noble); 100 a second bounds a forged flood to ~1% of a core natively (~20% with the
 * noble fallback), while 100 distinct bad keys a second is far above what misconfigured clients produce.
 * Past it, uncached tokens get 429 with Retry-After until the window ends; cached (already verified) keys
 * are never refused by it.
 */
export const DEFAULT_FAILED_VERIFY_BUDGET = 100;

const PAYLOAD_BYTES = 16;
const SIG_BYTES = 64;
const SIG_CHARS = 86;
// The Rust gateway decodes the payload into a 24-byte stack buffer and calls anything that overruns it
// malformed; mirror that bound so an oversized payload costs no signature check.
const PAYLOAD_MAX_CHARS = 32;
const PAYLOAD_MAX_BYTES = 24;
// `bai_v1.` (7) + 10 kid digits + `.` + 32 payload chars = 50.
const MESSAGE_MAX_BYTES = 64;

/** Any `bai_` token is managed: a bad one gets 401 and is never forwarded as BYO (root behaviour). */
export function isManagedToken(token: string): boolean {
  return token.startsWith(MANAGED_PREFIX);
}

// ---------------------------------------------------------------------------------------------------
// base64url

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

function dec(code: number): number {
  return code < 128 ? DECODE[code]! : -1;
}

/**
 * Strict base64url-no-pad decode of `s[start, end)` into `out`; returns the byte count or -1.
 * Works on a range of the original string so the verify path slices no substrings. Rejects `=`,
 * any non-alphabet character, a length of 1 mod 4, and non-zero trailing bits (so each byte string
 * has exactly one accepted encoding, like Rust's base64 crate).
 */
function decodeRange(s: string, start: number, end: number, out: Uint8Array): number {
  const n = end - start;
  const rem = n & 3;
  if (rem === 1) return -1;
  const outLen = (n >> 2) * 3 + (rem === 0 ? 0 : rem - 1);
  if (outLen > out.length) return -1;
  let o = 0;
  let i = start;
  const fullEnd = end - rem;
  while (i < fullEnd) {
    const a = dec(s.charCodeAt(i));
    const b = dec(s.charCodeAt(i + 1));
    const c = dec(s.charCodeAt(i + 2));
    const d = dec(s.charCodeAt(i + 3));
    if ((a | b | c | d) < 0) return -1;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >>> 16;
    out[o++] = (v >>> 8) & 0xff;
    out[o++] = v & 0xff;
    i += 4;
  }
  if (rem === 2) {
    const a = dec(s.charCodeAt(i));
    const b = dec(s.charCodeAt(i + 1));
    if ((a | b) < 0 || (b & 0x0f) !== 0) return -1;
    out[o++] = (a << 2) | (b >>> 4);
  } else if (rem === 3) {
    const a = dec(s.charCodeAt(i));
    const b = dec(s.charCodeAt(i + 1));
    const c = dec(s.charCodeAt(i + 2));
    if ((a | b | c) < 0 || (c & 0x03) !== 0) return -1;
    const v = (a << 12) | (b << 6) | c;
    out[o++] = v >>> 10;
    out[o++] = (v >>> 2) & 0xff;
  }
  return o;
}

/** base64url without padding. */
export function b64urlEncode(bytes: Uint8Array): string {
  let out = "";
  const n = bytes.length;
  const full = n - (n % 3);
  let i = 0;
  for (; i < full; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[v >>> 18]! + ALPHABET[(v >>> 12) & 63]! + ALPHABET[(v >>> 6) & 63]! + ALPHABET[v & 63]!;
  }
  if (n - full === 1) {
    const v = bytes[i]!;
    out += ALPHABET[v >>> 2]! + ALPHABET[(v & 3) << 4]!;
  } else if (n - full === 2) {
    const v = (bytes[i]! << 8) | bytes[i + 1]!;
    out += ALPHABET[v >>> 10]! + ALPHABET[(v >>> 4) & 63]! + ALPHABET[(v & 15) << 2]!;
  }
  return out;
}

/** Strict base64url-no-pad decode; null on padding, foreign characters, bad length or non-canonical tail. */
export function b64urlDecodeStrict(text: string): Uint8Array | null {
  const n = text.length;
  const rem = n & 3;
  if (rem === 1) return null;
  const out = new Uint8Array((n >> 2) * 3 + (rem === 0 ? 0 : rem - 1));
  return decodeRange(text, 0, n, out) === out.length ? out : null;
}

/**
 * Operator-supplied key material (config values, key files): standard base64 or base64url, padding
 * optional. Mixing the two alphabets is refused because no encoder produces it, so it signals a typo.
 */
function decodeLenientBase64(text: string): Uint8Array | null {
  let end = text.length;
  let pad = 0;
  while (pad < 2 && end > 0 && text.charCodeAt(end - 1) === 61 /* = */) {
    end--;
    pad++;
  }
  // Padding, when present, must complete the last 4-char quantum.
  if (pad > 0 && text.length % 4 !== 0) return null;
  let body = text.slice(0, end);
  const std = body.includes("+") || body.includes("/");
  const url = body.includes("-") || body.includes("_");
  if (std && url) return null;
  if (std) body = body.replaceAll("+", "-").replaceAll("/", "_");
  return b64urlDecodeStrict(body);
}

// ---------------------------------------------------------------------------------------------------
// numbers

/**
 * Config kid grammar (`[signing_keys]`, `--kid`): Rust's `u32::from_str`, i.e. an optional leading `+`,
 * then one or more ASCII digits (leading zeros allowed), value ≤ 4294967295. Tokens are stricter (SPEC §4:
 * canonical decimal only, see parseTokenKid), since every extra spelling of one key would be a separate
 * rate-limit key. Returns -1 when the range is not a kid.
 */
function parseKidRange(s: string, start: number, end: number): number {
  let i = start;
  if (i < end && s.charCodeAt(i) === 43 /* + */) i++;
  if (i >= end) return -1;
  let v = 0;
  for (; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    // Exact in float64: v ≤ U32_MAX before the multiply, so v*10+9 < 2^53.
    v = v * 10 + d;
    if (v > U32_MAX) return -1;
  }
  return v;
}

/** Config and `--kid` kid: decimal u32 (`+` and leading zeros accepted here, unlike in tokens); throws with a clear message otherwise. */
export function parseKid(text: string): number {
  const v = parseKidRange(text, 0, text.length);
  if (v < 0) throw new Error(`invalid kid ${quote(text)}: expected a decimal integer from 0 to ${U32_MAX}`);
  return v;
}

/** Decimal u64 for CLI `--tenant` / `--vpc`: digits only (no sign, no spaces), ≤ 18446744073709551615. */
export function parseU64(text: string): bigint {
  if (!/^[0-9]+$/.test(text)) {
    throw new Error(`invalid u64 ${quote(text)}: expected a decimal integer from 0 to ${U64_MAX}`);
  }
  const v = BigInt(text);
  if (v > U64_MAX) throw new Error(`invalid u64 ${quote(text)}: larger than ${U64_MAX}`);
  return v;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

// ---------------------------------------------------------------------------------------------------
// key material

/**
 * A configured public key must be a canonical encoding of a curve point that is not of small order and has
 * no small-order component (torsion-free). Every RFC 8032 key is A = a·B, in the prime-order subgroup, so
 * this refuses no real key; rejecting weak keys here, once, means verify never meets one, and the two
 * engines (which differ on small-order keys, and on mixed-order ones through their group equations) agree
 * on every key we accept.
 */
function isUsablePublicKey(bytes: Uint8Array): boolean {
  if (bytes.length !== 32) return false;
  try {
    const point = ed.Point.fromBytes(bytes, false);
    return !point.isSmallOrder() && point.isTorsionFree();
  } catch {
    return false;
  }
}

/** `[signing_keys]` value: standard base64 or base64url (padding optional) of a 32-byte Ed25519 public key. */
export function parsePublicKey(text: string): Uint8Array {
  // A private key pasted where the public one belongs would otherwise fail only as "not valid base64";
  // say what it is (without echoing it), so the operator also knows that secret now sits in a config file.
  if (looksLikePrivateKey(text)) {
    throw new Error(`this is a private key (${PRIVATE_KEY_PREFIX}…), not a public key: use the [signing_keys] line keygen printed`);
  }
  const bytes = decodeLenientBase64(text.trim());
  if (bytes === null) throw new Error("signing key is not valid base64 or base64url");
  if (bytes.length !== 32) throw new Error(`signing key decodes to ${bytes.length} bytes, expected 32`);
  if (!isUsablePublicKey(bytes)) throw new Error("signing key is not a valid Ed25519 public key");
  return bytes;
}

/** Private key file content: base64url (or standard base64) of the 32-byte seed. Never echoes the input. */
export function parseSeed(text: string): Uint8Array {
  const bytes = decodeLenientBase64(text.trim());
  if (bytes === null || bytes.length !== 32) {
    throw new Error("private key must be base64url of a 32-byte Ed25519 seed");
  }
  return bytes;
}

/**
 * Private key files (what `keygen --out` writes, what `mint --key-file` reads) are one line,
 * `bai-ed25519-private:` + base64url (no padding) of the 32-byte seed. The prefix makes the two halves
 * impossible to confuse: a public key (bare base64, as in `[signing_keys]`) has none, so `mint` refuses it
 * instead of signing tokens nothing can verify, and a private key pasted into `[signing_keys]` is named
 * for what it is. The prefix deliberately does not start with `bai_`, the managed-token prefix.
 */
export const PRIVATE_KEY_PREFIX = "bai-ed25519-private:";

/** The key file's content for `seed` (one line, newline-terminated). */
export function formatPrivateKey(seed: Uint8Array): string {
  if (seed.length !== 32) throw new Error(`Ed25519 seed must be 32 bytes, got ${seed.length}`);
  return `${PRIVATE_KEY_PREFIX}${b64urlEncode(seed)}\n`;
}

/** True when `text` is (or starts with) a private key in our file format. For config validation: cheap, no decode. */
export function looksLikePrivateKey(text: string): boolean {
  return text.trimStart().startsWith(PRIVATE_KEY_PREFIX);
}

/**
 * Reads a private key file. Blank lines and `#` comments are skipped (keygen without --out prints a comment
 * above the key). Besides the prefixed format it still reads the bare base64url seed older keygens wrote
 * (`legacy: true`), but refuses a bare value in standard base64 or padded: keygen never wrote a seed that way,
 * while it is exactly how public keys are printed. Errors never echo the file.
 */
export function parsePrivateKeyFile(text: string): { seed: Uint8Array; legacy: boolean } {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (lines.length !== 1) {
    throw new Error(lines.length === 0 ? "the file is empty" : `expected one key line, found ${lines.length}`);
  }
  const line = lines[0]!;
  if (line.startsWith(PRIVATE_KEY_PREFIX)) {
    const seed = b64urlDecodeStrict(line.slice(PRIVATE_KEY_PREFIX.length));
    if (seed === null || seed.length !== 32) {
      throw new Error(`corrupt private key: ${PRIVATE_KEY_PREFIX} must be followed by base64url of a 32-byte seed`);
    }
    return { seed, legacy: false };
  }
  const publicHint = "mint needs the private key file keygen --out wrote, not the public key";
  if (/^\+?\d+\s*=/.test(line)) throw new Error(`this is a [signing_keys] line (a public key): ${publicHint}`);
  if (/^[A-Za-z0-9_-]{43}$/.test(line)) {
    const seed = b64urlDecodeStrict(line);
    if (seed !== null && seed.length === 32) return { seed, legacy: true };
  }
  const bytes = decodeLenientBase64(line);
  if (bytes !== null && bytes.length === 32) throw new Error(`this looks like a public key (base64, as in [signing_keys]): ${publicHint}`);
  throw new Error(`not a beyond-ai private key (expected one line starting ${PRIVATE_KEY_PREFIX})`);
}

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new Error(`Ed25519 seed must be 32 bytes, got ${seed.length}`);
  return ed.getPublicKey(seed);
}

export function keygen(): { seed: Uint8Array; publicKey: Uint8Array } {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  return { seed, publicKey: ed.getPublicKey(seed) };
}

// ---------------------------------------------------------------------------------------------------
// mint

/**
 * Deterministic `bai_v1` token. Production minting is the Go control plane (crypto/ed25519); RFC 8032
 * signatures are deterministic, so both produce identical bytes for the same inputs.
 */
export function mint(kid: number, seed: Uint8Array, tenant: bigint, vpc: bigint): string {
  if (!Number.isInteger(kid) || kid < 0 || kid > U32_MAX) throw new RangeError(`kid out of u32 range: ${kid}`);
  if (tenant < 0n || tenant > U64_MAX) throw new RangeError("tenant out of u64 range");
  if (vpc < 0n || vpc > U64_MAX) throw new RangeError("vpc out of u64 range");
  if (seed.length !== 32) throw new Error(`Ed25519 seed must be 32 bytes, got ${seed.length}`);
  const payload = new Uint8Array(PAYLOAD_BYTES);
  const view = new DataView(payload.buffer);
  view.setBigUint64(0, tenant, true);
  view.setBigUint64(8, vpc, true);
  const signed = `${TOKEN_PREFIX}.${kid}.${b64urlEncode(payload)}`;
  const sig = ed.sign(new TextEncoder().encode(signed), seed);
  return `${signed}.${b64urlEncode(sig)}`;
}

// ---------------------------------------------------------------------------------------------------
// verify

const fail = (reason: VerifyFailure): VerifyResult => Object.freeze({ ok: false as const, reason });
// Preallocated so rejecting a token allocates no result object.
const MALFORMED = fail("malformed");
const BAD_VERSION = fail("bad_version");
const UNKNOWN_KID = fail("unknown_kid");
const BAD_SIGNATURE = fail("bad_signature");
const BAD_PAYLOAD = fail("bad_payload");
const THROTTLED = fail("throttled");

/** The failure budget's window; a throttled request is told to retry after it (Retry-After: 1). */
export const BUDGET_WINDOW_MS = 1000;
const defaultNow = (): number => performance.now();

// Group order L, little-endian. S ≥ L is the classic Ed25519 malleability (S and S+L both satisfy the
// equation); RFC 8032 and ed25519-dalek reject it, and we check it ourselves so neither engine's
// version matters.
const ORDER_LE = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

function isCanonicalS(sig: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = sig[32 + i]!;
    const l = ORDER_LE[i]!;
    if (s !== l) return s < l;
  }
  return false; // S == L
}

const STRICT = Object.freeze({ zip215: false });

type SigCheck = (message: Uint8Array, sig: Uint8Array) => boolean;

/**
 * noble's strict mode checks the cofactored equation [8]([S]B − R − [k]A) = 0, BoringSSL the cofactorless
 * one, encode([S]B − [k]A) == R. With A torsion-free (checked when the key is accepted) they differ only
 * for an R with a small-order component, which no RFC 8032 signer produces (R = r·B) but the key's
 * holder could craft; requiring R torsion-free makes noble reject exactly what native rejects. It is one
 * more scalar multiplication, paid only on the fallback path and only after the signature already passed.
 */
function nobleCheck(publicKey: Uint8Array): SigCheck {
  return (message, sig) => {
    try {
      return ed.verify(sig, message, publicKey, STRICT) && ed.Point.fromBytes(sig.subarray(0, 32), false).isTorsionFree();
    } catch {
      return false;
    }
  };
}

function nativeCheck(publicKey: Uint8Array): SigCheck {
  // One KeyObject per kid, built once: a verify is then a single native call.
  const key: KeyObject = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: b64urlEncode(publicKey) },
    format: "jwk",
  });
  return (message, sig) => {
    try {
      return nodeVerify(null, message, key, sig);
    } catch {
      return false;
    }
  };
}

/**
 * Whether node:crypto's Ed25519 works here and agrees with noble: a fixed key signs a message with noble; native
 * must accept it, and reject it with one bit flipped. Run once at load; anything else (a runtime without
 * Ed25519 in node:crypto, an exception) leaves noble as the verifier.
 */
function nativeWorks(): boolean {
  try {
    const seed = new Uint8Array(32).fill(0x5a);
    const msg = new TextEncoder().encode(`${TOKEN_PREFIX}.0.AAAAAAAAAAAAAAAAAAAAAA`);
    const sig = ed.sign(msg, seed);
    const check = nativeCheck(ed.getPublicKey(seed));
    if (!check(msg, sig)) return false;
    sig[5]! ^= 1;
    return !check(msg, sig);
  } catch {
    return false;
  }
}

/** True when the native engine is in use by default (see VerifyEngine). */
export const NATIVE_ED25519: boolean = nativeWorks();

/**
 * Verifies managed tokens against a fixed keyring, with a bounded cache of successes.
 *
 * Cache: keyed by the exact token string and holding only successes, so a forged or tampered token
 * can never be answered from it; a hit is one Map lookup returning a frozen, shared result.
 * Eviction: when full, drop the oldest half in insertion order (one iterator pass, amortised O(1) per
 * insert, size never above the bound). Simpler than LRU and good enough: a hot key evicted by a burst
 * of new keys pays one signature check to come back.
 * The kid must be canonical decimal (SPEC §4), so a valid key has exactly one spelling: one cache entry
 * and one rate-limit key per key.
 * Failure budget: signature checks that fail are counted per 1-second window (fixed, aligned to the
 * verifier's creation); once `failedVerifyBudget` of them failed in the current window, any token not in
 * the success cache is refused as `throttled` right before the signature check (after the cheap format
 * and kid checks, so malformed tokens still get their precise 401). This bounds what a flood of forged
 * tokens can cost, which neither the per-token rate limit (every forged token is a new key) nor the cache
 * (successes only) can. A cached key never reaches the budget, so tenants already seen keep working;
 * the price is that a valid key seen for the first time during a flood is refused until it subsides.
 * A new keyring (rotation) means a new verifier, which also drops every cached success.
 */
export class KeyVerifier {
  private readonly cache = new Map<string, VerifyResult>();
  private readonly maxEntries: number;
  private readonly keys = new Map<number, SigCheck>();
  // Scratch space, reused across calls: verify is synchronous and never re-entered.
  private readonly payloadBuf = new Uint8Array(PAYLOAD_MAX_BYTES);
  private readonly payloadView = new DataView(this.payloadBuf.buffer);
  private readonly sigBuf = new Uint8Array(SIG_BYTES);
  private readonly msgBuf = new Uint8Array(MESSAGE_MAX_BYTES);
  private readonly budget: number;
  private readonly now: () => number;
  private readonly origin: number;
  private windowEnd = Number.NEGATIVE_INFINITY;
  private failures = 0;
  /** Set with sharedBudget: the process-wide word, and its count width. */
  private readonly sharedWord: Int32Array | undefined;
  private readonly sharedBits: number = 0;

  constructor(ring: KeyRing, opts?: KeyVerifierOptions) {
    const max = opts?.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`cacheEntries must be a non-negative integer, got ${max}`);
    this.maxEntries = max;
    const budget = opts?.failedVerifyBudget ?? DEFAULT_FAILED_VERIFY_BUDGET;
    if (!Number.isInteger(budget) || budget < 0) throw new RangeError(`failedVerifyBudget must be a non-negative integer, got ${budget}`);
    this.budget = budget;
    if (opts?.sharedBudget !== undefined) {
      this.sharedWord = new Int32Array(opts.sharedBudget.buffer, 0, 1);
      this.sharedBits = countBitsFor(budget);
      this.now = opts.now ?? sharedClock(opts.sharedBudget.originEpochMs);
      this.origin = 0; // windows are whole seconds of the shared clock, the same in every thread
    } else {
      this.sharedWord = undefined;
      this.now = opts?.now ?? defaultNow;
      this.origin = this.now();
    }
    const engine = opts?.engine ?? (NATIVE_ED25519 ? "native" : "noble");
    for (const [kid, publicKey] of ring) {
      if (!Number.isInteger(kid) || kid < 0 || kid > U32_MAX) throw new RangeError(`kid out of u32 range: ${kid}`);
      if (!isUsablePublicKey(publicKey)) throw new Error(`signing key for kid ${kid} is not a valid Ed25519 public key`);
      const copy = Uint8Array.from(publicKey); // the caller may reuse its buffer
      this.keys.set(kid, engine === "native" ? nativeCheck(copy) : nobleCheck(copy));
    }
    this.msgBuf.set(new TextEncoder().encode(`${TOKEN_PREFIX}.`), 0);
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  verify(token: string): VerifyResult {
    const hit = this.cache.get(token);
    return hit !== undefined ? hit : this.verifyUncached(token);
  }

  private verifyUncached(token: string): VerifyResult {
    // At most 4 parts: everything after the third dot is the signature, so extra dots land there and
    // fail its decode. Fewer than 4 parts is malformed whatever the prefix (as `splitn(4, '.')`).
    const d1 = token.indexOf(".");
    if (d1 < 0) return MALFORMED;
    const d2 = token.indexOf(".", d1 + 1);
    if (d2 < 0) return MALFORMED;
    const d3 = token.indexOf(".", d2 + 1);
    if (d3 < 0) return MALFORMED;

    // 1. prefix
    if (d1 !== TOKEN_PREFIX.length || !token.startsWith(TOKEN_PREFIX)) {
      return token.startsWith("bai_v") ? BAD_VERSION : MALFORMED;
    }
    // 2. kid, canonical decimal only
    const kid = parseTokenKid(token, d1 + 1, d2);
    if (kid < 0) return MALFORMED;
    // 3. payload decodes (its length is judged only after the signature, step 7)
    const payloadChars = d3 - d2 - 1;
    if (payloadChars > PAYLOAD_MAX_CHARS) return MALFORMED;
    const plen = decodeRange(token, d2 + 1, d3, this.payloadBuf);
    if (plen < 0) return MALFORMED;
    // 4. signature decodes to 64 bytes
    if (token.length - d3 - 1 !== SIG_CHARS) return MALFORMED;
    const sig = this.sigBuf;
    if (decodeRange(token, d3 + 1, token.length, sig) !== SIG_BYTES) return MALFORMED;
    // 5. trusted kid, before any crypto
    const check = this.keys.get(kid);
    if (check === undefined) return UNKNOWN_KID;
    // 6. signature over `bai_v1.{kid}.{payload}`, kid re-rendered from the parsed number
    if (!isCanonicalS(sig)) return BAD_SIGNATURE;
    if (this.budget > 0 && this.budgetSpent()) return THROTTLED;
    const msg = this.msgBuf;
    let m = TOKEN_PREFIX.length + 1;
    m = writeDecimal(msg, m, kid);
    msg[m++] = 46; // .
    for (let i = d2 + 1; i < d3; i++) msg[m++] = token.charCodeAt(i); // alphabet-checked ASCII
    if (!check(msg.subarray(0, m), sig)) {
      const word = this.sharedWord;
      if (word === undefined) this.failures++;
      else packedIncrement(word, 0, this.windowStamp(), this.sharedBits, this.budget);
      return BAD_SIGNATURE;
    }
    // 7. exactly 16 payload bytes
    if (plen !== PAYLOAD_BYTES) return BAD_PAYLOAD;

    const tenantId = this.payloadView.getBigUint64(0, true);
    const vpcId = this.payloadView.getBigUint64(8, true);
    const identity: Identity = Object.freeze({
      kid,
      tenantId,
      vpcId,
      tenant: tenantId.toString(),
      vpc: vpcId.toString(),
    });
    const result: VerifyResult = Object.freeze({ ok: true as const, identity });

    if (this.maxEntries > 0) this.remember(token, result);
    return result;
  }

  /** Whether this window's failures reached the budget; rolls the window over when it has ended. */
  private budgetSpent(): boolean {
    const word = this.sharedWord;
    if (word !== undefined) return packedRead(word, 0, this.windowStamp(), this.sharedBits) >= this.budget;
    const now = this.now();
    if (now >= this.windowEnd) {
      this.windowEnd = this.origin + (Math.floor((now - this.origin) / BUDGET_WINDOW_MS) + 1) * BUDGET_WINDOW_MS;
      this.failures = 0;
    }
    return this.failures >= this.budget;
  }

  /** The shared budget's current window as a packed-word stamp (window index + 1, so a zero word is never current). */
  private windowStamp(): number {
    return Math.floor((this.now() - this.origin) / BUDGET_WINDOW_MS) + 1;
  }

  private remember(token: string, result: VerifyResult): void {
    const cache = this.cache;
    if (cache.size >= this.maxEntries) {
      let drop = Math.max(1, this.maxEntries >>> 1);
      for (const k of cache.keys()) {
        cache.delete(k);
        if (--drop === 0) break;
      }
    }
    cache.set(token, result);
  }
}

function decimalLength(v: number): number {
  let n = 1;
  while (v >= 10) {
    v = Math.floor(v / 10);
    n++;
  }
  return n;
}

/** Writes `v` in plain decimal at `at`; returns the index after the last digit. */
function writeDecimal(buf: Uint8Array, at: number, v: number): number {
  const len = decimalLength(v);
  for (let i = at + len - 1; i >= at; i--) {
    buf[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return at + len;
}

/**
 * Token kid (SPEC §4): canonical decimal u32, i.e. "0" or a non-zero digit followed by digits, no sign, no
 * leading zero, ≤ 4294967295. Returns -1 otherwise (a malformed token). One spelling per kid keeps one rate
 * key and one cache entry per managed key.
 */
function parseTokenKid(s: string, start: number, end: number): number {
  const n = end - start;
  if (n < 1 || n > 10) return -1;
  if (n > 1 && s.charCodeAt(start) === 48 /* 0 */) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d; // ≤ 10 digits: exact in float64
  }
  return v > U32_MAX ? -1 : v;
}
