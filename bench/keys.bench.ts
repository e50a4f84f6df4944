// Managed-key verification costs. Run: node_modules/.bin/bun bench/keys.bench.ts
// cold = every call does the signature check (verifier built with the cache disabled);
// warm = cache hit. "fresh string" rebuilds the token each call, as a request header does, so the
// Map lookup has to hash all ~118 characters instead of reusing a cached string hash.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { KeyVerifier, mint, publicKeyFromSeed } from "../src/keys.ts";

const seed = new Uint8Array(32).fill(7);
const ring = new Map([[1, publicKeyFromSeed(seed)]]);
const token = mint(1, seed, 1234567890123n, 42n);
const head = token.slice(0, 60);
const tail = token.slice(60);

const coldNoble = new KeyVerifier(ring, { cacheEntries: 0, engine: "noble" });
const coldNative = new KeyVerifier(ring, { cacheEntries: 0, engine: "native" });
const warm = new KeyVerifier(ring);
if (!warm.verify(token).ok || !coldNoble.verify(token).ok || !coldNative.verify(token).ok) {
  throw new Error("bench token does not verify");
}

const forged = `${token.slice(0, -2)}AA`;
const unknownKid = mint(2, seed, 1n, 1n);

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
  bench("forged signature, native", () => do_not_optimize(coldNative.verify(forged)));
});

let tenant = 0n;
bench("mint", () => do_not_optimize(mint(1, seed, tenant++, 42n)));

await run();
