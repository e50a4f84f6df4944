// Managed-key verification costs. Run: node_modules/.bin/bun bench/keys.bench.ts
// cold = every call does the signature check (verifier built with the cache and the failure budget off, so
// forged tokens always reach it); warm = cache hit. "fresh string" rebuilds the token each call, as a request
// header does, so the Map lookup has to hash all ~118 characters instead of reusing a cached string hash.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { b64urlDecodeStrict, KeyVerifier, mint, publicKeyFromSeed } from "../src/controls/keys.ts";

const seed = new Uint8Array(32).fill(7);
const ring = new Map([[1, publicKeyFromSeed(seed)]]);
const token = mint(1, seed, 1234567890123n, 42n);
const head = token.slice(0, 60);
const tail = token.slice(60);

const coldNoble = new KeyVerifier(ring, { cacheEntries: 0, engine: "noble", failedVerifyBudget: 0 });
const coldNative = new KeyVerifier(ring, { cacheEntries: 0, engine: "native", failedVerifyBudget: 0 });
const warm = new KeyVerifier(ring);
if (!warm.verify(token).ok || !coldNoble.verify(token).ok || !coldNative.verify(token).ok) {
  throw new Error("bench token does not verify");
}

const forged = `${token.slice(0, -2)}AA`;
const unknownKid = mint(2, seed, 1n, 1n);
// A verifier whose failure budget is spent: what a forged token costs once the gateway throttles the flood.
const spent = new KeyVerifier(ring, { failedVerifyBudget: 1 });
spent.verify(forged);
if (spent.verify(forged).ok || (spent.verify(forged) as { reason: string }).reason !== "throttled") throw new Error("budget not spent");

// WebCrypto's Ed25519 (also native in Bun), for comparison: async only, so the gateway uses node:crypto's sync verify.
const forgedSig = Uint8Array.from(b64urlDecodeStrict(forged.slice(forged.lastIndexOf(".") + 1))!);
const signedPart = new TextEncoder().encode(forged.slice(0, forged.lastIndexOf(".")));
const webKey = await crypto.subtle.importKey("raw", Uint8Array.from(ring.get(1)!), { name: "Ed25519" }, false, ["verify"]);
if (await crypto.subtle.verify("Ed25519", webKey, forgedSig, signedPart)) throw new Error("forged verifies");

summary(() => {
  group("verify", () => {
    bench("cold, noble (signature check)", () => do_not_optimize(coldNoble.verify(token)));
    bench("cold, native (signature check)", () => do_not_optimize(coldNative.verify(token)));
    bench("warm (cache hit, same string)", () => do_not_optimize(warm.verify(token)));
    bench("warm (cache hit, fresh string)", () => do_not_optimize(warm.verify(head + tail)));
  });
});

group("reject", () => {
  bench("garbage", () => do_not_optimize(warm.verify("garbage")));
  bench("unknown kid (no crypto)", () => do_not_optimize(warm.verify(unknownKid)));
  bench("forged signature, noble", () => do_not_optimize(coldNoble.verify(forged)));
  bench("forged signature, native (node:crypto)", () => do_not_optimize(coldNative.verify(forged)));
  bench("forged signature, WebCrypto (async)", async () => do_not_optimize(await crypto.subtle.verify("Ed25519", webKey, forgedSig, signedPart)));
  bench("forged signature, budget spent (throttled)", () => do_not_optimize(spent.verify(forged)));
});

let tenant = 0n;
bench("mint", () => do_not_optimize(mint(1, seed, tenant++, 42n)));

await run();
