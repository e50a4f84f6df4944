// Per-request guard costs: the rate guard (runs before verify, so it must stay far below verify's
// ~28 µs) and the circuit breaker. Run: node_modules/.bin/bun bench/guards.bench.ts
// Seed reference (Rust, divan): ratelimit::check ≈ 43 ns managed / 83 ns BYO.
// "full path" guards use limits nobody reaches, so every call hashes, reads and writes the sketch;
// "defaults" use 100 / 1000 rps, where a hot pool of tokens is mostly rejected (the BYO one by the
// global tier, which returns before hashing). About 35 ns of every non-disabled check is the
// clock read (performance.now()); the two native xxHash32 calls are most of the rest.
// "shared" rows are the same guards over a SharedState (workers >= 2: packed words moved by compare-and-swap, breaker
// slots behind a spin lock), measured on one thread, so without contention; the private rows are workers = 1.
// In JSC an Atomics.load costs ~11-14 ns against ~3 ns for a plain read (measured), so the shared rows cost what their
// atomic operations count: the closed breaker sequence is 4 loads (~40 ns against ~15 ns private), a per-credential
// check ~14 atomic operations (pre-check, stripe lock, reads, raises: ~+120 ns), a BYO-global rejection 1 load + 1 CAS.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { ADMITTED, CircuitBreaker, DENIED } from "../src/controls/breaker.ts";
import { RateGuard } from "../src/controls/ratelimit.ts";
import { allocateSharedState, breakerSlot } from "../src/controls/shared-state.ts";

const POOL = 64;
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
function randomText(len: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(len));
  let s = "";
  for (const b of bytes) s += B64URL[b & 63];
  return s;
}
// Shapes of real tokens: bai_v1.{kid}.{22-char payload}.{86-char signature} ≈ 118 chars; an
// OpenAI-style BYO key ≈ 51 chars. Flattened up front, as header values arrive.
const managed = Array.from({ length: POOL }, () => `bai_v1.1.${randomText(22)}.${randomText(86)}`);
const byo = Array.from({ length: POOL }, () => `sk-${randomText(48)}`);
const freshHead = managed[0]!.slice(0, 60);
const freshTail = managed[0]!.slice(60);
console.log(`managed token ${managed[0]!.length} chars, BYO token ${byo[0]!.length} chars, pool ${POOL}`);

const HUGE = 0xfffffffe;
const full = new RateGuard({ perCredentialRps: HUGE, byoRps: HUGE });
const defaults = new RateGuard({ perCredentialRps: 100, byoRps: 1000 });
const off = new RateGuard({ perCredentialRps: 0, byoRps: 0 });
const sharedState = (per: number, byo: number) => allocateSharedState({ perCredentialRps: per, byoRps: byo, providers: ["p"] });
const fullS = new RateGuard({ perCredentialRps: HUGE, byoRps: HUGE }, sharedState(HUGE, HUGE));
const defaultsS = new RateGuard({ perCredentialRps: 100, byoRps: 1000 }, sharedState(100, 1000));
let m = 0;
let y = 0;

summary(() => {
  group("RateGuard.check", () => {
    bench("managed, full path (118 chars)", () => do_not_optimize(full.check(managed[m++ & (POOL - 1)]!, true)));
    bench("BYO, full path (51 chars, both tiers)", () => do_not_optimize(full.check(byo[y++ & (POOL - 1)]!, false)));
    bench("managed, defaults (100 rps)", () => do_not_optimize(defaults.check(managed[m++ & (POOL - 1)]!, true)));
    bench("BYO, defaults (1000 rps global)", () => do_not_optimize(defaults.check(byo[y++ & (POOL - 1)]!, false)));
    bench("disabled (both 0)", () => do_not_optimize(off.check(managed[m++ & (POOL - 1)]!, true)));
    bench("managed, fresh concatenated string (includes the concat)", () => do_not_optimize(full.check(freshHead + freshTail, true)));
  });
});

summary(() => {
  group("RateGuard.check, shared (workers >= 2, one thread, no contention)", () => {
    bench("shared: managed, full path (118 chars)", () => do_not_optimize(fullS.check(managed[m++ & (POOL - 1)]!, true)));
    bench("shared: BYO, full path (51 chars, both tiers)", () => do_not_optimize(fullS.check(byo[y++ & (POOL - 1)]!, false)));
    bench("shared: managed, defaults (100 rps)", () => do_not_optimize(defaultsS.check(managed[m++ & (POOL - 1)]!, true)));
    bench("shared: BYO, defaults (1000 rps global)", () => do_not_optimize(defaultsS.check(byo[y++ & (POOL - 1)]!, false)));
  });
});

const closed = new CircuitBreaker({ threshold: 20, windowSecs: 10, resetSecs: 30 });
const tripped = new CircuitBreaker({ threshold: 1, windowSecs: 10, resetSecs: 3600 });
tripped.onFailure(ADMITTED);
const disabled = new CircuitBreaker({ threshold: 0, windowSecs: 10, resetSecs: 30 });
const closedS = new CircuitBreaker({ threshold: 20, windowSecs: 10, resetSecs: 30 }, breakerSlot(sharedState(0, 0), "p"));
const trippedS = new CircuitBreaker({ threshold: 1, windowSecs: 10, resetSecs: 3600 }, breakerSlot(sharedState(0, 0), "p"));
trippedS.onFailure(ADMITTED);

summary(() => {
  group("CircuitBreaker", () => {
    // The pipeline's sequence: wouldAllow() early, allow() just before the send, the outcome at the head.
    bench("wouldAllow + allow + onSuccess (closed)", () => {
      if (closed.wouldAllow()) {
        const p = closed.allow();
        if (p !== DENIED) closed.onSuccess(p);
      }
      return closed;
    });
    bench("allow + onFailure/onSuccess alternating (closed)", () => {
      const a = closed.allow();
      if (a !== DENIED) closed.onFailure(a);
      const b = closed.allow();
      if (b !== DENIED) closed.onSuccess(b);
      return closed;
    });
    bench("wouldAllow (open, rejecting)", () => do_not_optimize(tripped.wouldAllow()));
    bench("allow + onSuccess (disabled)", () => {
      const p = disabled.allow();
      if (p !== DENIED) disabled.onSuccess(p);
      return disabled;
    });
  });
});

summary(() => {
  group("CircuitBreaker, shared slot (workers >= 2, one thread, no contention)", () => {
    bench("shared: wouldAllow + allow + onSuccess (closed)", () => {
      if (closedS.wouldAllow()) {
        const p = closedS.allow();
        if (p !== DENIED) closedS.onSuccess(p);
      }
      return closedS;
    });
    bench("shared: allow + onFailure/onSuccess alternating (closed)", () => {
      const a = closedS.allow();
      if (a !== DENIED) closedS.onFailure(a);
      const b = closedS.allow();
      if (b !== DENIED) closedS.onSuccess(b);
      return closedS;
    });
    bench("shared: wouldAllow (open, rejecting)", () => do_not_optimize(trippedS.wouldAllow()));
  });
});

await run();
