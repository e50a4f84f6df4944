// Deny-set lookup cost on the managed request path. Run: node_modules/.bin/bun bench/denyset.bench.ts
// "fresh string" builds a new string per call (as authentication builds Identity.tenant per request),
// so the Map has to hash a string it has never seen; "same string" has its hash cached. The fresh
// string is a concatenation (baseline row below), cheaper than the BigInt → decimal the key parser pays. Both hit and miss at
// 0, 1 and 1,000,000 entries; the lookup must stay flat as the set grows.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { DenySet, decodeSnapshot, encodeSnapshot, type DenyReason } from "../src/controls/denyset.ts";

function build(n: number): DenySet {
  const entries: [string, DenyReason][] = [];
  for (let i = 0; i < n; i++) entries.push([String(1_000_000_000_000 + i * 7), i % 3 === 0 ? "fraud" : "spend"]);
  return new DenySet(entries, BigInt(n));
}

const sets = { "0": build(0), "1": build(1), "1M": build(1_000_000) };
const hit = String(1_000_000_000_000); // entry 0 in every non-empty set
const miss = "18446744073709551615";
// Split so `a + b` makes a new string each call that equals the key.
const [hitA, hitB] = [hit.slice(0, 7), hit.slice(7)];
const [missA, missB] = [miss.slice(0, 7), miss.slice(7)];
const fresh = (a: string, b: string): string => a + b;

for (const set of Object.values(sets)) {
  if (set.size > 0 && set.lookup(hit) === undefined) throw new Error("bench hit key is missing");
  if (set.lookup(miss) !== undefined) throw new Error("bench miss key is present");
}

for (const [name, set] of Object.entries(sets)) {
  summary(() => {
    group(`lookup, ${name} entries`, () => {
      bench("miss, same string", () => do_not_optimize(set.lookup(miss)));
      bench("miss, fresh string", () => do_not_optimize(set.lookup(fresh(missA, missB))));
      if (set.size > 0) {
        bench("hit, same string", () => do_not_optimize(set.lookup(hit)));
        bench("hit, fresh string", () => do_not_optimize(set.lookup(fresh(hitA, hitB))));
      }
    });
  });
}

// The fresh-string cases include building the string; subtract this to see the Map probe alone.
bench("baseline: build a fresh string", () => do_not_optimize(fresh(hitA, hitB)));
bench("for scale: BigInt → decimal string (what keys.ts pays once per request)", () => do_not_optimize(1_000_000_000_000n.toString()));

// Snapshot cost at 1M entries (done at most once a second, off the request path).
const big = sets["1M"];
const bytes = encodeSnapshot(big);
group("snapshot, 1M entries", () => {
  bench("encode", () => do_not_optimize(encodeSnapshot(big)));
  bench("decode", () => do_not_optimize(decodeSnapshot(bytes)));
});

await run();
