// SPEC §10 key pools: affinity (HRW) stability and spread, only a cooled key's sessions move, round robin over ready
// keys, skip, cooldown per key AND model, dead per key, the doubling rule and its resets, provider-given waits,
// readiness, shared mode across instances, and the replay pool. Time is an injected clock (ms on the shared clock).
import { describe, expect, test } from "bun:test";
import { KEY_POOL_DEFAULTS, type KeyPoolConfig } from "../src/ops/config.ts";
import { KeyPools, ReplayPool } from "../src/routing/key-pool.ts";
import { BUILT_IN_PROVIDERS, buildProvider, type Provider } from "../src/routing/providers.ts";
import { Secret } from "../src/ops/secret.ts";
import { allocateSharedState, COOLDOWN_PROBE, releaseDeadThread, SharedCooldowns } from "../src/controls/shared-state.ts";

/** openai with `a` keys, then anthropic with `b` keys (slots numbered process-wide, as buildProviders does). */
function providers(a: number, b = 1): Provider[] {
  const wrap = (s: string) => new Secret(s);
  const openai = buildProvider(BUILT_IN_PROVIDERS[0]!, true, Array.from({ length: a }, (_, i) => wrap(`sk-openai-${i}`)), wrap, 0);
  const anthropic = buildProvider(BUILT_IN_PROVIDERS[1]!, true, Array.from({ length: b }, (_, i) => wrap(`sk-ant-${i}`)), wrap, a);
  return [openai, anthropic];
}

function clock(start = 10_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

const AFFINITY: KeyPoolConfig = { ...KEY_POOL_DEFAULTS };
const RR: KeyPoolConfig = { ...KEY_POOL_DEFAULTS, selection: "round_robin" };
const sessions = (n: number, tag = "s") => Array.from({ length: n }, (_, i) => `${tag}-${i}-${(i * 2654435761) >>> 0}`);

describe("affinity selection", () => {
  test("the same session keeps its key over many calls", () => {
    const [openai] = providers(4);
    const pools = new KeyPools(AFFINITY, providers(4));
    for (const s of sessions(50)) {
      const first = pools.pick(openai!, "gpt-4o", s)!;
      for (let i = 0; i < 20; i++) expect(pools.pick(openai!, "gpt-4o", s)!.id).toBe(first.id);
    }
  });

  test("3,000 random sessions spread roughly evenly over 3 keys (each 20-47 %)", () => {
    const ps = providers(3);
    const pools = new KeyPools(AFFINITY, ps);
    const count = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const s = `bai_v1.1.${crypto.randomUUID()}`;
      const k = pools.pick(ps[0]!, "gpt-4o", s)!.id;
      count.set(k, (count.get(k) ?? 0) + 1);
    }
    expect([...count.keys()].sort()).toEqual(["openai#0", "openai#1", "openai#2"]);
    for (const n of count.values()) {
      expect(n / 3000).toBeGreaterThanOrEqual(0.2);
      expect(n / 3000).toBeLessThanOrEqual(0.47);
    }
  });

  test("when one key cools only that key's sessions move, and they move back when it recovers", () => {
    const c = clock();
    const ps = providers(3);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const ss = sessions(600);
    const before = ss.map((s) => pools.pick(ps[0]!, "gpt-4o", s)!);
    const cooled = ps[0]!.keys[1]!;
    expect(before.filter((k) => k === cooled).length).toBeGreaterThan(100);
    pools.coolDown(cooled, "gpt-4o", 30_000);
    const during = ss.map((s) => pools.pick(ps[0]!, "gpt-4o", s)!);
    let moved = 0;
    ss.forEach((_, i) => {
      if (before[i] === cooled) {
        expect(during[i]).not.toBe(cooled);
        moved++;
      } else {
        expect(during[i]).toBe(before[i]!); // every session that was on another key stays
      }
    });
    expect(moved).toBeGreaterThan(100);
    // The moved sessions spread over both remaining keys, not all onto one.
    const targets = new Set(during.filter((_, i) => before[i] === cooled).map((k) => k.id));
    expect(targets.size).toBe(2);
    c.t += 30_001;
    const after = ss.map((s) => pools.pick(ps[0]!, "gpt-4o", s)!);
    expect(after).toEqual(before);
  });

  test("the choice is the same from two instances (every worker maps a session alike)", () => {
    const ps = providers(5);
    const a = new KeyPools(AFFINITY, ps);
    const b = new KeyPools(AFFINITY, providers(5));
    for (const s of sessions(200)) expect(a.pick(ps[0]!, "m", s)!.id).toBe(b.pick(ps[0]!, "m", s)!.id);
  });
});

describe("round_robin selection", () => {
  test("cycles over the keys, skipping cooling and dead ones", () => {
    const c = clock();
    const ps = providers(3);
    const pools = new KeyPools(RR, ps, undefined, c.now);
    const ids = () => Array.from({ length: 6 }, () => pools.pick(ps[0]!, "gpt-4o", "same-session")!.id);
    const all = ids();
    expect(new Set(all.slice(0, 3)).size).toBe(3);
    expect(all.slice(3)).toEqual(all.slice(0, 3));
    pools.coolDown(ps[0]!.keys[1]!, "gpt-4o", 10_000);
    const two = ids();
    expect(two).not.toContain("openai#1");
    expect(new Set(two)).toEqual(new Set(["openai#0", "openai#2"]));
    for (let i = 1; i < two.length; i++) expect(two[i]).not.toBe(two[i - 1]); // alternates
    pools.markDead(ps[0]!.keys[0]!, "auth");
    expect(new Set(ids())).toEqual(new Set(["openai#2"]));
  });
});

describe("readiness and state rules", () => {
  test("skip is honoured on the happy path and the exact path; everything skipped gives undefined", () => {
    const c = clock();
    const ps = providers(3);
    for (const opts of [AFFINITY, RR]) {
      const pools = new KeyPools(opts, ps, undefined, c.now);
      const k0 = ps[0]!.keys[0]!.slot;
      const k1 = ps[0]!.keys[1]!.slot;
      for (const s of sessions(30)) {
        expect([k0, k1]).not.toContain(pools.pick(ps[0]!, "m", s, new Set([k0, k1]))!.slot);
      }
      pools.coolDown(ps[0]!.keys[2]!, "m", 5_000);
      expect(pools.pick(ps[0]!, "m", "x", new Set([k0, k1]))).toBeUndefined();
      expect(pools.pick(ps[0]!, "m", "x", new Set([k0]))!.slot).toBe(k1);
      const single = providers(1)[0]!;
      expect(new KeyPools(opts, providers(1)).pick(single, "m", "x", new Set([single.keys[0]!.slot]))).toBeUndefined();
    }
  });

  test("a provider with one key answers it, and no key gives undefined", () => {
    const ps = providers(1, 0);
    const pools = new KeyPools(AFFINITY, ps);
    expect(pools.pick(ps[0]!, "gpt-4o", "s")).toBe(ps[0]!.keys[0]!);
    expect(pools.pick(ps[0]!, undefined, "s")).toBe(ps[0]!.keys[0]!);
    expect(pools.pick(ps[1]!, "claude", "s")).toBeUndefined();
  });

  test("a cooldown is per model: a cooled (key, gpt-a) is still ready for gpt-b, and for an unknown model", () => {
    const c = clock();
    const ps = providers(1);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const key = ps[0]!.keys[0]!;
    pools.coolDown(key, "gpt-a", 20_000);
    expect(pools.pick(ps[0]!, "gpt-a", "s")).toBeUndefined();
    expect(pools.pick(ps[0]!, "gpt-b", "s")).toBe(key);
    expect(pools.pick(ps[0]!, undefined, "s")).toBe(key); // model not known yet: dead keys only
    c.t += 20_000;
    expect(pools.pick(ps[0]!, "gpt-a", "s")).toBe(key);
  });

  test("a dead key is out for every model and for dead_key_ms; markDead is true only the first time", () => {
    const c = clock();
    const ps = providers(2);
    const pools = new KeyPools({ ...AFFINITY, dead_key_ms: 3_600_000 }, ps, undefined, c.now);
    const [k0, k1] = ps[0]!.keys as [typeof ps[0]["keys"][0], typeof ps[0]["keys"][0]];
    expect(pools.markDead(k0, "quota")).toBe(true);
    expect(pools.markDead(k0, "auth")).toBe(false);
    expect(pools.markDead(k0, "quota")).toBe(false);
    for (const m of ["gpt-a", "gpt-b", undefined]) for (const s of sessions(40)) expect(pools.pick(ps[0]!, m, s)).toBe(k1);
    expect(pools.states().find((s) => s.keyId === "openai#0")!.state).toBe("dead");
    c.t += 3_600_000;
    expect(pools.states().find((s) => s.keyId === "openai#0")!.state).toBe("ready");
    expect(new Set(sessions(40).map((s) => pools.pick(ps[0]!, "gpt-a", s)!.id))).toEqual(new Set(["openai#0", "openai#1"]));
    expect(pools.markDead(k0, "auth")).toBe(true); // alive again, so newly dead again
  });

  test("without reset headers the cooldown doubles 5000 → 10000 → 20000 → 40000 → 60000 (capped) per consecutive 429", () => {
    const c = clock();
    const ps = providers(1);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const key = ps[0]!.keys[0]!;
    const applied: number[] = [];
    for (let i = 0; i < 7; i++) {
      const d = pools.coolDown(key, "gpt-4o", undefined);
      applied.push(d);
      expect(pools.pick(ps[0]!, "gpt-4o", "s")).toBeUndefined();
      c.t += d; // the next 429 comes right as the cooldown ends
      expect(pools.pick(ps[0]!, "gpt-4o", "s")).toBe(key);
    }
    expect(applied).toEqual([5000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
  });

  test("429s that arrive while the pair is already cooling do not double it again (one episode)", () => {
    const c = clock();
    const ps = providers(1);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const key = ps[0]!.keys[0]!;
    expect(pools.coolDown(key, "m", undefined)).toBe(5000);
    c.t += 1000;
    expect(pools.coolDown(key, "m", undefined)).toBe(4000); // what is left of it
    expect(pools.coolDown(key, "m", 9000)).toBe(9000); // a longer provider wait extends it
    c.t += 9000;
    expect(pools.coolDown(key, "m", undefined)).toBe(10_000); // one episode so far → the second step, not the fourth
  });

  test("a header cooldown wins over doubling, and still counts in the streak", () => {
    const c = clock();
    const ps = providers(1);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const key = ps[0]!.keys[0]!;
    expect(pools.coolDown(key, "m", 1234)).toBe(1234);
    expect(pools.readiness(ps[0]!, "m")).toEqual({ readyInMs: 1234, allDead: false });
    c.t += 1234;
    expect(pools.coolDown(key, "m", undefined)).toBe(10_000);
    c.t += 10_000;
    expect(pools.coolDown(key, "m", 0)).toBe(0); // "retry now": not cooling
    expect(pools.pick(ps[0]!, "m", "s")).toBe(key);
  });

  test("succeeded() resets the streak; the streak also lapses cooldown_max_ms after the last cooldown ended", () => {
    const c = clock();
    const ps = providers(1);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const key = ps[0]!.keys[0]!;
    expect(pools.coolDown(key, "m", undefined)).toBe(5000);
    c.t += 5000;
    expect(pools.coolDown(key, "m", undefined)).toBe(10_000);
    c.t += 10_000;
    pools.succeeded(key, "m");
    expect(pools.coolDown(key, "m", undefined)).toBe(5000);
    c.t += 5000;
    pools.succeeded(key, "other-model"); // another pair's success resets nothing here
    expect(pools.coolDown(key, "m", undefined)).toBe(10_000);
    c.t += 10_000 + 60_000 + 1; // more than cooldown_max_ms after it ended: starts over
    expect(pools.coolDown(key, "m", undefined)).toBe(5000);
    c.t += 5000 + 60_000; // exactly cooldown_max_ms after: still consecutive
    expect(pools.coolDown(key, "m", undefined)).toBe(10_000);
  });

  test("succeeded() after every hint lapsed costs nothing and leaves state alone", () => {
    const c = clock();
    const ps = providers(1);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const key = ps[0]!.keys[0]!;
    pools.succeeded(key, "m"); // nothing ever cooled
    pools.coolDown(key, "m", undefined);
    c.t += 5000 + 60_000 + 2000; // past the streak hint
    pools.succeeded(key, "m");
    expect(pools.coolDown(key, "m", undefined)).toBe(5000); // lapsed anyway
  });

  test("readiness gives ms to the earliest ready key, and allDead only when every key is dead", () => {
    const c = clock();
    const ps = providers(3);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    const [k0, k1, k2] = ps[0]!.keys;
    expect(pools.readiness(ps[0]!, "m")).toEqual({ readyInMs: 0, allDead: false });
    pools.coolDown(k0!, "m", 8000);
    pools.coolDown(k1!, "m", 3000);
    expect(pools.readiness(ps[0]!, "m")).toEqual({ readyInMs: 0, allDead: false });
    pools.markDead(k2!, "auth");
    expect(pools.readiness(ps[0]!, "m")).toEqual({ readyInMs: 3000, allDead: false });
    expect(pools.pick(ps[0]!, "m", "s")).toBeUndefined();
    expect(pools.readiness(ps[0]!, "other")).toEqual({ readyInMs: 0, allDead: false });
    c.t += 1000;
    expect(pools.readiness(ps[0]!, "m")).toEqual({ readyInMs: 2000, allDead: false });
    pools.markDead(k0!, "quota");
    pools.markDead(k1!, "quota");
    const r = pools.readiness(ps[0]!, "m");
    expect(r.allDead).toBe(true);
    expect(r.readyInMs).toBe(3_599_000); // k2 died 1 s earlier
    expect(pools.readiness(ps[1]!, "m")).toEqual({ readyInMs: 0, allDead: false }); // anthropic untouched
  });

  test("states() lists every key by id: ready, cooling (any model) or dead; never a key value", () => {
    const c = clock();
    const ps = providers(3, 1);
    const pools = new KeyPools(AFFINITY, ps, undefined, c.now);
    pools.coolDown(ps[0]!.keys[1]!, "gpt-x", 1000);
    pools.markDead(ps[1]!.keys[0]!, "auth");
    expect(pools.states()).toEqual([
      { provider: "openai", keyId: "openai#0", state: "ready" },
      { provider: "openai", keyId: "openai#1", state: "cooling" },
      { provider: "openai", keyId: "openai#2", state: "ready" },
      { provider: "anthropic", keyId: "anthropic#0", state: "dead" },
    ]);
    expect(JSON.stringify(pools.states())).not.toContain("sk-");
    c.t += 1000;
    expect(pools.states()[1]!.state).toBe("ready");
  });

  test("a full cooldown table fails open: the pair is not cooled and the key stays usable", () => {
    const c = clock();
    const ps = providers(1);
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"], poolKeys: 2, cooldownSlots: COOLDOWN_PROBE });
    const cd = new SharedCooldowns(shared);
    for (let i = 0; cd.slot(99, `filler-${i}`) >= 0; i++);
    const pools = new KeyPools(AFFINITY, ps, shared, c.now);
    expect(pools.coolDown(ps[0]!.keys[0]!, "gpt-new", undefined)).toBe(0);
    expect(pools.pick(ps[0]!, "gpt-new", "s")).toBe(ps[0]!.keys[0]!);
  });
});

describe("shared mode", () => {
  test("two KeyPools over one SharedState see each other's cooldowns, deaths and streaks", () => {
    const c = clock();
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"], poolKeys: 3 });
    const a = new KeyPools(AFFINITY, providers(2), shared, c.now);
    const psB = providers(2);
    const b = new KeyPools(AFFINITY, psB, shared, c.now);
    const [k0, k1] = psB[0]!.keys;
    // b picks first on the exact path (a cooldown of another model sets the provider's hint), so its per-thread "no
    // slot for (key, gpt-4o)" cache exists before a's claim: the claim generation must expire it.
    a.coolDown(k1!, "warm-up", 1);
    for (const s of sessions(20)) expect(b.pick(psB[0]!, "gpt-4o", s)).toBeDefined();
    a.coolDown(k0!, "gpt-4o", 5000);
    for (const s of sessions(40)) expect(b.pick(psB[0]!, "gpt-4o", s)).toBe(k1!);
    expect(b.readiness(psB[0]!, "gpt-4o")).toEqual({ readyInMs: 0, allDead: false });
    expect(a.markDead(k1!, "auth")).toBe(true);
    expect(b.markDead(k1!, "auth")).toBe(false); // already dead, process-wide
    expect(b.pick(psB[0]!, "gpt-4o", "s")).toBeUndefined();
    expect(b.readiness(psB[0]!, "gpt-4o")).toEqual({ readyInMs: 5000, allDead: false });
    c.t += 5000;
    expect(b.coolDown(k0!, "gpt-4o", undefined)).toBe(10_000); // a's 429 counts in b's streak
    c.t += 10_000;
    b.succeeded(k0!, "gpt-4o");
    expect(a.coolDown(k0!, "gpt-4o", undefined)).toBe(5000); // b's success reset it for a
  });

  test("a state too small for the providers' keys, or without a provider, is refused", () => {
    const small = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"], poolKeys: 2 });
    expect(() => new KeyPools(AFFINITY, providers(2), small)).toThrow(RangeError);
    const noAnthropic = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"], poolKeys: 8 });
    expect(() => new KeyPools(AFFINITY, providers(2), noAnthropic)).toThrow(RangeError);
  });

  test("a writer that died holding a pair's lock is released by releaseDeadThread and the pair is usable again", () => {
    const c = clock();
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"], poolKeys: 2 });
    const ps = providers(1);
    const pools = new KeyPools(AFFINITY, ps, shared, c.now);
    pools.coolDown(ps[0]!.keys[0]!, "m", 1000);
    const slot = new SharedCooldowns(shared).find(ps[0]!.keys[0]!.slot, "m");
    const words = new Int32Array(shared.cooldowns);
    Atomics.store(words, slot * 8 + 7, 777); // the writer lock, held by a thread that is gone
    expect(releaseDeadThread(shared, 777).locks).toBe(1);
    c.t += 1000;
    expect(pools.coolDown(ps[0]!.keys[0]!, "m", undefined)).toBe(10_000); // would spin forever without the release
  });
});

describe("ReplayPool", () => {
  test("reserve and release account bytes; a reservation over the limit is refused and reserves nothing", () => {
    const pool = new ReplayPool(1000);
    expect(pool.reserve(600)).toBe(true);
    expect(pool.reserve(400)).toBe(true);
    expect(pool.inUse()).toBe(1000);
    expect(pool.reserve(1)).toBe(false);
    expect(pool.inUse()).toBe(1000);
    pool.release(400);
    expect(pool.reserve(401)).toBe(false);
    expect(pool.reserve(400)).toBe(true);
    pool.release(2000); // more than reserved: floors at 0, never negative
    expect(pool.inUse()).toBe(0);
    expect(pool.reserve(0)).toBe(true);
    expect(pool.reserve(1001)).toBe(false);
  });

  test("one pool across two instances over the same SharedState; a limit above 2 GiB − 1 acts as 2 GiB − 1", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"] });
    const a = new ReplayPool(1 << 20, shared);
    const b = new ReplayPool(1 << 20, shared);
    expect(a.reserve(700_000)).toBe(true);
    expect(b.inUse()).toBe(700_000);
    expect(b.reserve(400_000)).toBe(false);
    a.release(700_000);
    expect(b.reserve(400_000)).toBe(true);
    const huge = new ReplayPool(8 * 2 ** 30);
    expect(huge.reserve(2 ** 31 - 1)).toBe(true);
    expect(huge.reserve(1)).toBe(false);
  });
});
