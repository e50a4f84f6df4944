// Process-wide guard state (SPEC §14) with REAL Bun Worker threads: each worker attaches the real RateGuard /
// CircuitBreaker / SPEC §10 accessors (test/helpers/guards-worker.ts) to one SharedState posted to it, all wait at a
// shared gate and run their burst at the same instant. Pinned here:
//   - a burst for one key from 4 workers admits the limit process-wide (exactly, in one window), not limit × workers;
//     the same for many keys at once and for the BYO global tier;
//   - the shared clock reads alike on every thread (performance.now() alone does not);
//   - breaker failures from two workers add up to open it; after the reset exactly one worker gets the probe;
//     random outcomes from 4 workers never put two probes out at once and leave a consistent slot (no torn state);
//   - a worker terminated while holding locks and the probe: releaseDeadThread frees them, nothing else wedges;
//   - SPEC §10 region: cooldown slots claimed concurrently agree, seqlocked times are never read torn, accessors;
//     one dead mark wins among 4 workers, no streak update is lost, the replay pool's limit holds across workers,
//     find() never claims, the claim generation moves on each claim, the routing hints;
//   - the ratelimit/breaker unit suites pass unchanged in shared mode.
import { afterEach, describe, expect, test } from "bun:test";
import { ADMITTED, CircuitBreaker, DENIED, PROBE } from "../src/controls/breaker.ts";
import { RateGuard } from "../src/controls/ratelimit.ts";
import {
  allocateSharedState,
  BREAKER_SLOT_INTS,
  BRK_FAILURES,
  BRK_LOCK,
  BRK_PERMITS,
  BRK_STATE,
  breakerSlot,
  hintOf,
  KEY_DEAD_AUTH,
  RATE_LOCKS,
  RATE_LOCKS_AT,
  releaseDeadThread,
  RETRY_BUDGET_BUCKETS,
  ROUTING_CLAIM_GEN,
  ROUTING_HINTS_AT,
  ROUTING_HINT_INTS,
  raiseHint,
  SHARED_LAYOUT_VERSION,
  type SharedState,
  SharedCooldowns,
  SharedKeyStates,
  SharedRetryBudgets,
  sharedClock,
} from "../src/controls/shared-state.ts";
import type { Job, Scenario } from "./helpers/guards-worker.ts";

const WORKER_URL = new URL("./helpers/guards-worker.ts", import.meta.url).href;
const live: Worker[] = [];
afterEach(() => {
  for (const w of live.splice(0)) w.terminate();
});

interface Run {
  control: Int32Array;
  /** Opens the gate and resolves with every worker's result, in worker order. */
  go: () => Promise<unknown[]>;
}

/** Starts one worker per scenario on `shared`, waits until all are at the gate. */
async function start(
  shared: SharedState,
  scenarios: Scenario[],
  extra: Partial<Pick<Job, "testClock" | "breaker">> = {},
  control = new Int32Array(new SharedArrayBuffer(64)),
): Promise<Run> {
  const results: Array<Promise<unknown>> = [];
  for (const scenario of scenarios) {
    const w = new Worker(WORKER_URL);
    live.push(w);
    results.push(
      new Promise((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
      }),
    );
    const job: Job = { shared, control: control.buffer as SharedArrayBuffer, scenario, testClock: extra.testClock ?? false, breaker: extra.breaker };
    w.postMessage(job);
  }
  while (Atomics.load(control, 1) < scenarios.length) await Bun.sleep(5);
  return {
    control,
    go: () => {
      Atomics.store(control, 0, 1);
      Atomics.notify(control, 0);
      return Promise.all(results);
    },
  };
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

const KEY = `bai_v1.1.${"A".repeat(22)}.${"s".repeat(86)}`;

describe("rate limits are process-wide across worker threads", () => {
  test("a burst of 80 for one key from 4 workers at 20 rps admits exactly 20, not 20 per worker", async () => {
    const shared = allocateSharedState({ perCredentialRps: 20, byoRps: 0, providers: [] });
    const control = new Int32Array(new SharedArrayBuffer(64));
    Atomics.store(control, 2, 5_000); // a test clock all workers read: the burst cannot straddle a window boundary
    const burst: Scenario = { kind: "rate", perCredentialRps: 20, byoRps: 0, tokens: [KEY], managed: true, rounds: 20 };
    const run = await start(shared, [burst, burst, burst, burst], { testClock: true }, control);
    const admitted = (await run.go()) as number[][];
    expect(sum(admitted.map((a) => a[0]!))).toBe(20);
    // The main thread's guard on the same state sees the key as spent, too.
    const main = new RateGuard({ perCredentialRps: 20, byoRps: 0, now: () => Atomics.load(control, 2) }, shared);
    expect(main.check(KEY, true).ok).toBe(false);
    // The next window (same shared origin for everyone) admits it again.
    Atomics.store(control, 2, 6_000);
    expect(main.check(KEY, true).ok).toBe(true);
  });

  test("many keys hammered from 4 workers at once: each key gets exactly its limit process-wide", async () => {
    // 30: limit + 1 = 31 fills the 5 count bits, so a count pushed past the cap would spill into the window stamp.
    const shared = allocateSharedState({ perCredentialRps: 30, byoRps: 0, providers: [] });
    const control = new Int32Array(new SharedArrayBuffer(64));
    Atomics.store(control, 2, 123_456);
    const tokens = Array.from({ length: 200 }, (_, i) => `sk-hammer-${i}-${"x".repeat(40)}`);
    // Each worker walks the keys from a different point so they collide on counters in every order.
    const scenarios: Scenario[] = [0, 50, 100, 150].map((shift) => ({
      kind: "rate" as const,
      perCredentialRps: 30,
      byoRps: 0,
      tokens: [...tokens.slice(shift), ...tokens.slice(0, shift)],
      managed: false,
      rounds: 60,
    }));
    const run = await start(shared, scenarios, { testClock: true }, control);
    const results = (await run.go()) as number[][];
    const perKey = new Map<string, number>();
    results.forEach((admitted, w) => {
      scenarios[w]!.kind === "rate" && (scenarios[w] as { tokens: string[] }).tokens.forEach((t, i) => perKey.set(t, (perKey.get(t) ?? 0) + admitted[i]!));
    });
    expect(perKey.size).toBe(200);
    // 200 keys × 240 checks = 48,000 in one window: far too few to crowd a counter, so every key gets exactly 30.
    for (const n of perKey.values()) expect(n).toBe(30);
  });

  test("the BYO global tier counts distinct BYO tokens from every worker against one bucket", async () => {
    const shared = allocateSharedState({ perCredentialRps: 1000, byoRps: 30, providers: [] });
    const control = new Int32Array(new SharedArrayBuffer(64));
    Atomics.store(control, 2, 9_999);
    const scenarios: Scenario[] = [0, 1, 2].map((w) => ({
      kind: "rate" as const,
      perCredentialRps: 1000,
      byoRps: 30,
      tokens: Array.from({ length: 25 }, (_, i) => `sk-w${w}-${i}`),
      managed: false,
      rounds: 1,
    }));
    const run = await start(shared, scenarios, { testClock: true }, control);
    const results = (await run.go()) as number[][];
    expect(sum(results.map(sum))).toBe(30);
  });

  test("with the real shared clock, a burst from 4 workers never admits more than the limit in any window", async () => {
    // Windows come from the shared clock here (no test clock): the burst may straddle one boundary, so it admits at
    // most the limit in each of two windows; per worker limits would have admitted up to 4 × 20 = 80.
    const shared = allocateSharedState({ perCredentialRps: 20, byoRps: 0, providers: [] });
    const burst: Scenario = { kind: "rate", perCredentialRps: 20, byoRps: 0, tokens: [KEY], managed: true, rounds: 20 };
    const run = await start(shared, [burst, burst, burst, burst]);
    const admitted = sum(((await run.go()) as number[][]).map((a) => a[0]!));
    expect(admitted).toBeGreaterThanOrEqual(20);
    expect(admitted).toBeLessThanOrEqual(40);
  });

  test("the shared clock reads alike on every thread, though each thread's performance.now() has its own origin", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: [] });
    const clock = sharedClock(shared.originEpochMs);
    await Bun.sleep(20); // let the main thread's clock move away from the workers' performance.now() origins
    const run = await start(shared, [{ kind: "clock" }, { kind: "clock" }]);
    const before = clock();
    const readings = (await run.go()) as number[];
    const after = clock();
    for (const r of readings) {
      // Worker readings lie between main's readings before and after (1 ms slack: each thread's timeOrigin is read
      // from the wall clock once, at sub-millisecond precision).
      expect(r).toBeGreaterThanOrEqual(before - 1);
      expect(r).toBeLessThanOrEqual(after + 1);
    }
  });

  test("a guard refuses shared state allocated for other limits", () => {
    const shared = allocateSharedState({ perCredentialRps: 20, byoRps: 100, providers: [] });
    expect(() => new RateGuard({ perCredentialRps: 21, byoRps: 100 }, shared)).toThrow(RangeError);
    expect(() => new RateGuard({ perCredentialRps: 20, byoRps: 0 }, shared)).toThrow(RangeError);
  });

  test("a limit above what a shared counter holds is clamped, not refused (no process admits 2^30 a second)", () => {
    const huge = 0xfffffffe;
    const shared = allocateSharedState({ perCredentialRps: huge, byoRps: huge, providers: [] });
    const g = new RateGuard({ perCredentialRps: huge, byoRps: huge, now: () => 0 }, shared);
    for (let i = 0; i < 1000; i++) expect(g.check("sk-one", false).ok).toBe(true);
  });
});

describe("circuit breakers are process-wide across worker threads", () => {
  const OPTS = { threshold: 6, windowSecs: 10, resetSecs: 30 };

  test("failures from two workers add up to open the breaker", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"] });
    const control = new Int32Array(new SharedArrayBuffer(64));
    Atomics.store(control, 2, 1_000);
    const run = await start(shared, [{ kind: "breaker-fail", failures: 3 }, { kind: "breaker-fail", failures: 3 }], { testClock: true, breaker: OPTS }, control);
    await run.go();
    // 3 + 3 = threshold 6; private breakers would each hold 3 and stay closed.
    const main = new CircuitBreaker({ ...OPTS, now: () => Atomics.load(control, 2) }, breakerSlot(shared, "openai"));
    expect(main.state).toBe("open");
    expect(main.wouldAllow()).toBe(false);
    expect(main.retryAfterSecs()).toBe(30);
  });

  test("after the reset time exactly one worker gets the half-open probe; its success closes it for everyone", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"] });
    const control = new Int32Array(new SharedArrayBuffer(64));
    Atomics.store(control, 2, 1_000);
    const main = new CircuitBreaker({ ...OPTS, now: () => Atomics.load(control, 2) }, breakerSlot(shared, "openai"));
    for (let i = 0; i < 6; i++) main.onFailure(ADMITTED);
    expect(main.state).toBe("open");
    Atomics.store(control, 2, 1_000 + 30_000); // reset time reached
    const probe: Scenario = { kind: "breaker-probe", attempts: 500 };
    const run = await start(shared, [probe, probe, probe, probe], { testClock: true, breaker: OPTS }, control);
    const results = (await run.go()) as Array<{ probes: number; admitted: number }>;
    expect(sum(results.map((r) => r.probes))).toBe(1);
    expect(sum(results.map((r) => r.admitted))).toBe(0);
    expect(main.state).toBe("half_open");
    main.onSuccess(PROBE); // the probe's outcome, reported from whichever thread holds it
    expect(main.state).toBe("closed");
    expect(main.allow()).toBe(ADMITTED);
  });

  test("random outcomes from 4 workers at once: never two probes out, and the slot stays consistent", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"] });
    const churn: Scenario = { kind: "breaker-churn", iterations: 20_000 };
    // Real shared clock, reset 0: an open breaker turns half-open on the next allow(), so the probe path is hot.
    const run = await start(shared, [churn, churn, churn, churn], { breaker: { threshold: 3, windowSecs: 10, resetSecs: 0 } });
    const results = (await run.go()) as Array<{ probes: number }>;
    expect(Atomics.load(run.control, 4)).toBe(0); // no overlapping probes
    expect(sum(results.map((r) => r.probes))).toBeGreaterThan(0); // the probe path really ran
    const slot = new Int32Array(shared.breakers, 0, BREAKER_SLOT_INTS);
    expect(Atomics.load(slot, BRK_LOCK)).toBe(0);
    expect([0, 1, 2]).toContain(Atomics.load(slot, BRK_STATE));
    expect([0, 1]).toContain(Atomics.load(slot, BRK_PERMITS));
    expect(Atomics.load(slot, BRK_FAILURES)).toBeGreaterThanOrEqual(0);
    expect(Atomics.load(slot, BRK_FAILURES)).toBeLessThanOrEqual(3);
  });

  test("a worker that dies holding locks and the probe is cleaned up by releaseDeadThread: others proceed, the next request probes", async () => {
    const shared = allocateSharedState({ perCredentialRps: 5, byoRps: 0, providers: ["openai"] });
    const control = new Int32Array(new SharedArrayBuffer(64));
    Atomics.store(control, 2, 1_000);
    const opts = { threshold: 1, windowSecs: 10, resetSecs: 30 };
    const main = new CircuitBreaker({ ...opts, now: () => Atomics.load(control, 2) }, breakerSlot(shared, "openai"));
    main.onFailure(ADMITTED);
    Atomics.store(control, 2, 31_000); // reset time reached: the worker's allow() takes the probe
    const OWNER = 4242;
    const run = await start(shared, [{ kind: "die-holding", owner: OWNER }], { testClock: true, breaker: opts }, control);
    const [held] = (await run.go()) as [{ permit: number }];
    expect(held.permit).toBe(PROBE);
    live.pop()!.terminate(); // the thread is gone with the probe out and every stripe lock held
    await Bun.sleep(20);
    const rate = new Int32Array(shared.rate);
    expect(Atomics.load(rate, RATE_LOCKS_AT)).toBe(OWNER);
    expect(main.allow()).toBe(DENIED); // half-open with the probe out: everyone refused, as long as nobody cleans up
    expect(releaseDeadThread(shared, OWNER)).toEqual({ locks: RATE_LOCKS, probes: 1 });
    for (let i = RATE_LOCKS_AT; i < RATE_LOCKS_AT + RATE_LOCKS; i++) expect(Atomics.load(rate, i)).toBe(0);
    // A rate check (it takes a stripe lock) completes, and the next request is the probe.
    const g = new RateGuard({ perCredentialRps: 5, byoRps: 0, now: () => 0 }, shared);
    expect(g.check(KEY, true).ok).toBe(true);
    expect(main.allow()).toBe(PROBE);
    main.onSuccess(PROBE);
    expect(main.state).toBe("closed");
    // §10 seqlocks: a writer that died mid-write (writer word = its id, seq odd) is finished as "no value".
    const keyWords = new Int32Array(shared.keys);
    new SharedKeyStates(shared).markDead(0, 77_000, KEY_DEAD_AUTH);
    Atomics.store(keyWords, 4, OWNER); // writer lock held by the dead thread…
    Atomics.add(keyWords, 0, 1); // …inside its write
    Atomics.store(keyWords, 2, 123); // half of a new value written
    expect(releaseDeadThread(shared, OWNER)).toEqual({ locks: 1, probes: 0 });
    expect(new SharedKeyStates(shared).deadUntil(0)).toBe(0); // readable again, and cleared rather than torn
    new SharedKeyStates(shared).markDead(0, 88_000, KEY_DEAD_AUTH); // and writable (the writer lock is free)
    expect(new SharedKeyStates(shared).deadUntil(0)).toBe(88_000);
    // Nothing of another id is touched.
    expect(releaseDeadThread(shared, OWNER + 1)).toEqual({ locks: 0, probes: 0 });
  });

  test("each provider has its own slot; an unknown provider gets none (a private breaker)", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"] });
    const a = new CircuitBreaker({ threshold: 1, windowSecs: 10, resetSecs: 30 }, breakerSlot(shared, "openai"));
    const b = new CircuitBreaker({ threshold: 1, windowSecs: 10, resetSecs: 30 }, breakerSlot(shared, "anthropic"));
    a.onFailure(ADMITTED);
    expect(a.state).toBe("open");
    expect(b.state).toBe("closed");
    expect(breakerSlot(shared, "nope")).toBeUndefined();
  });
});

describe("SPEC §10 reserved region", () => {
  test("cooldown slots: the same key×model pair claimed from 4 workers at once gets one slot; distinct pairs distinct ones", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"] });
    const pairs: Array<[number, string]> = [];
    for (let k = 0; k < 8; k++) for (const m of ["gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet-4"]) pairs.push([k, m]);
    const claim: Scenario = { kind: "cooldown-claim", pairs };
    const run = await start(shared, [claim, claim, claim, claim]);
    const results = (await run.go()) as number[][];
    for (const r of results) expect(r).toEqual(results[0]!);
    expect(new Set(results[0]).size).toBe(pairs.length);
    expect(results[0]!.every((s) => s >= 0)).toBe(true);
  });

  test("cooldown until and streak round-trip through the shared table", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"], cooldownSlots: 64 });
    const cd = new SharedCooldowns(shared);
    const s = cd.slot(3, "gpt-4o");
    expect(cd.until(s)).toBe(0);
    expect(cd.streak(s)).toBe(0);
    const far = 5_000_000_123.5; // past 2^32 ms: both halves of the seqlocked value matter
    cd.set(s, far, 4);
    const again = new SharedCooldowns(shared); // another thread's view of the same buffer
    expect(again.slot(3, "gpt-4o")).toBe(s);
    expect(again.until(s)).toBe(Math.floor(far));
    expect(again.streak(s)).toBe(4);
    expect(again.slot(3, "gpt-4o-mini")).not.toBe(s);
  });

  test("a full cooldown table answers -1 (fail open) instead of evicting or looping", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: [], cooldownSlots: 4 });
    const cd = new SharedCooldowns(shared);
    const got = Array.from({ length: 6 }, (_, i) => cd.slot(i, "m"));
    expect(got.slice(0, 4).every((s) => s >= 0)).toBe(true);
    expect(got.slice(4)).toEqual([-1, -1]);
  });

  test("dead-until times written by one worker while another reads are never seen torn", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: [], poolKeys: 4 });
    // Two values that differ in both 32-bit halves: a torn read would mix them into a third value.
    const a = 0x1_0000_0000 * 3 + 7;
    const b = 0x1_0000_0000 * 5 + 0xfffffff0;
    const run = await start(shared, [
      { kind: "seqlock-write", iterations: 200_000, a, b },
      { kind: "seqlock-read", iterations: 200_000, a, b },
      { kind: "seqlock-read", iterations: 200_000, a, b },
    ]);
    const [, r1, r2] = (await run.go()) as [number, { torn: number; seenA: number; seenB: number }, { torn: number; seenA: number; seenB: number }];
    expect(r1.torn).toBe(0);
    expect(r2.torn).toBe(0);
    const keys = new SharedKeyStates(shared);
    expect([a, b]).toContain(keys.deadUntil(0));
    expect(keys.reason(0)).toBe(KEY_DEAD_AUTH);
    expect(() => keys.deadUntil(4)).toThrow(RangeError);
  });

  test("retry budgets count first attempts and retries per provider over the last 10 one-second buckets", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"] });
    const rb = new SharedRetryBudgets(shared);
    for (let i = 0; i < 10; i++) rb.record(0, false, 1_000);
    rb.record(0, true, 1_500);
    rb.record(0, true, 5_000);
    rb.record(1, false, 5_000);
    expect(rb.totals(0, 5_999)).toEqual({ first: 10, retries: 2 });
    expect(rb.totals(1, 5_999)).toEqual({ first: 1, retries: 0 });
    // 1_000's bucket leaves the 10-second window at second 11; its slot is reused without a clear.
    expect(rb.totals(0, 10_999)).toEqual({ first: 10, retries: 2 });
    expect(rb.totals(0, 11_000)).toEqual({ first: 0, retries: 1 });
    rb.record(0, false, 11_200); // same bucket index as second 1: restarts at 1, not 11
    expect(rb.totals(0, 11_999)).toEqual({ first: 1, retries: 1 });
    expect(RETRY_BUDGET_BUCKETS).toBe(10);
  });
});

describe("SPEC §10 region in use", () => {
  test("4 workers marking the same 2,000 keys dead at once: for each key exactly one is told it marked it", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"], poolKeys: 2001 });
    const mark: Scenario = { kind: "mark-dead", keys: 2000 };
    const run = await start(shared, [mark, mark, mark, mark]);
    const won = ((await run.go()) as number[][]).flat().sort((a, b) => a - b);
    expect(won).toEqual(Array.from({ length: 2000 }, (_, k) => k));
    const states = new SharedKeyStates(shared);
    expect(states.deadUntil(1999)).toBe(1_001_999);
    expect(states.deadUntil(2000)).toBe(0);
  });

  test("4 workers updating one cooldown pair at once lose no update (the read-modify-write holds the pair's lock)", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"], poolKeys: 2 });
    const bump: Scenario = { kind: "cooldown-bump", key: 0, model: "gpt-4o", iterations: 5_000 };
    const run = await start(shared, [bump, bump, bump, bump]);
    const slots = (await run.go()) as number[];
    expect(new Set(slots).size).toBe(1);
    const cd = new SharedCooldowns(shared);
    expect(cd.streak(slots[0]!)).toBe(20_000);
    expect(cd.until(slots[0]!)).toBe(20_000);
  });

  test("the replay pool's limit holds process-wide: 4 workers reserving a byte at a time get exactly the limit", async () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"] });
    const fill: Scenario = { kind: "replay-fill", limit: 40_000 };
    const run = await start(shared, [fill, fill, fill, fill]);
    const got = (await run.go()) as number[];
    expect(sum(got)).toBe(40_000);
  });

  test("find() never claims; each claim moves the generation once; a claimed slot reports its key", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"], cooldownSlots: 64 });
    const cd = new SharedCooldowns(shared);
    const routing = new Int32Array(shared.routing);
    expect(SHARED_LAYOUT_VERSION).toBe(2);
    expect(cd.find(5, "m")).toBe(-1);
    expect(cd.find(5, "m")).toBe(-1);
    expect(cd.generation()).toBe(0);
    const s = cd.slot(5, "m");
    expect(cd.generation()).toBe(1);
    expect(Atomics.load(routing, ROUTING_CLAIM_GEN)).toBe(1);
    expect(cd.slot(5, "m")).toBe(s); // found, not claimed again
    expect(cd.generation()).toBe(1);
    expect(cd.find(5, "m")).toBe(s);
    expect(cd.keyOf(s)).toBe(5);
    expect(Array.from({ length: cd.size }, (_, i) => cd.keyOf(i)).filter((k) => k >= 0)).toEqual([5]);
  });

  test("update() and resetStreak() under the lock; until rounds up to a whole ms", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai"], cooldownSlots: 64 });
    const cd = new SharedCooldowns(shared);
    const s = cd.slot(0, "m");
    expect(cd.update(s, (e) => {
      e.until = 1234.2;
      e.streak = 3;
    })).toBe(1235);
    cd.resetStreak(s);
    expect(cd.streak(s)).toBe(0);
    expect(cd.until(s)).toBe(1235);
    // A throwing callback still releases the lock (the next write would spin forever otherwise).
    expect(() => cd.update(s, () => { throw new Error("boom"); })).toThrow("boom");
    cd.set(s, 9, 1);
    expect(cd.until(s)).toBe(9);
  });

  test("hints: raiseHint only raises; hintOf is ceil(s) + 1, never 0, clamped to an Int32; one pair of words per provider", () => {
    const shared = allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers: ["openai", "anthropic"] });
    const routing = new Int32Array(shared.routing);
    expect(routing.length).toBe(ROUTING_HINTS_AT + 2 * ROUTING_HINT_INTS);
    expect(hintOf(0)).toBe(1);
    expect(hintOf(1)).toBe(2);
    expect(hintOf(1000)).toBe(2);
    expect(hintOf(1001)).toBe(3);
    expect(hintOf(1e15)).toBe(0x7fffffff);
    raiseHint(routing, ROUTING_HINTS_AT, 7);
    raiseHint(routing, ROUTING_HINTS_AT, 5);
    expect(routing[ROUTING_HINTS_AT]).toBe(7);
    expect(routing[ROUTING_HINTS_AT + ROUTING_HINT_INTS]).toBe(0);
  });
});

describe("unit suites in shared mode", () => {
  test("test/ratelimit.test.ts and test/breaker.test.ts pass against the shared-memory guards", () => {
    const r = Bun.spawnSync([process.execPath, "test", "--timeout", "60000", "test/ratelimit.test.ts", "test/breaker.test.ts"], {
      cwd: new URL("..", import.meta.url).pathname,
      env: { ...process.env, BEYOND_AI_GUARDS_SHARED: "1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = r.stdout.toString() + r.stderr.toString();
    expect(out).toContain(" 0 fail");
    expect(out).toMatch(/ [1-9]\d* pass/);
    expect(r.exitCode).toBe(0);
  });
});
