// A Bun Worker for test/shared-state.test.ts: attaches the real RateGuard / CircuitBreaker / §10 accessors to the
// SharedState it is posted, waits at a shared start gate (so every worker starts its burst at the same instant), runs
// one scenario and posts the result. No mocks: these are the modules the gateway's workers use.
import { ADMITTED, CircuitBreaker, DENIED, type Permit, PROBE } from "../../src/controls/breaker.ts";
import { ReplayPool } from "../../src/routing/key-pool.ts";
import { RateGuard } from "../../src/controls/ratelimit.ts";
import {
  breakerSlot,
  lockOwner,
  RATE_LOCKS,
  RATE_LOCKS_AT,
  type SharedState,
  SharedCooldowns,
  SharedKeyStates,
  setLockOwner,
  sharedClock,
} from "../../src/controls/shared-state.ts";

declare const self: Worker;

export type Scenario =
  | { kind: "rate"; perCredentialRps: number; byoRps: number; tokens: string[]; managed: boolean; rounds: number }
  | { kind: "breaker-fail"; failures: number }
  | { kind: "breaker-probe"; attempts: number }
  | { kind: "breaker-churn"; iterations: number }
  | { kind: "clock" }
  | { kind: "cooldown-claim"; pairs: Array<[number, string]> }
  | { kind: "seqlock-write"; iterations: number; a: number; b: number }
  | { kind: "seqlock-read"; iterations: number; a: number; b: number }
  | { kind: "die-holding"; owner: number }
  | { kind: "mark-dead"; keys: number }
  | { kind: "cooldown-bump"; key: number; model: string; iterations: number }
  | { kind: "replay-fill"; limit: number };

export interface Job {
  shared: SharedState;
  /** Int32Array over it: [0] start gate (workers wait while 0), [1] ready count, [2] test clock (ms), [3] probes out,
   * [4] probe overlap violations. */
  control: SharedArrayBuffer;
  scenario: Scenario;
  /** Read the test clock cell instead of the shared clock (so time is the test's to move). */
  testClock: boolean;
  breaker?: { threshold: number; windowSecs: number; resetSecs: number };
}

self.onmessage = (ev: MessageEvent<Job>) => {
  const job = ev.data;
  const ctl = new Int32Array(job.control);
  if (job.scenario.kind === "die-holding") setLockOwner(job.scenario.owner); // as the worker entry does, before any guard
  const now = job.testClock ? () => Atomics.load(ctl, 2) : undefined;
  const sc = job.scenario;
  // Build everything before the gate, so the burst itself is only the calls under test.
  const guard = sc.kind === "rate" ? new RateGuard({ perCredentialRps: sc.perCredentialRps, byoRps: sc.byoRps, now }, job.shared) : undefined;
  const breaker =
    job.breaker !== undefined ? new CircuitBreaker({ ...job.breaker, now }, breakerSlot(job.shared, job.shared.providers[0]!)) : undefined;
  Atomics.add(ctl, 1, 1);
  Atomics.wait(ctl, 0, 0);

  let result: unknown;
  switch (sc.kind) {
    case "rate": {
      const admitted = new Array<number>(sc.tokens.length).fill(0);
      for (let r = 0; r < sc.rounds; r++) {
        for (let t = 0; t < sc.tokens.length; t++) if (guard!.check(sc.tokens[t]!, sc.managed).ok) admitted[t]!++;
      }
      result = admitted;
      break;
    }
    case "breaker-fail":
      for (let i = 0; i < sc.failures; i++) breaker!.onFailure(ADMITTED);
      result = breaker!.state;
      break;
    case "breaker-probe": {
      let probes = 0;
      let admitted = 0;
      for (let i = 0; i < sc.attempts; i++) {
        const p = breaker!.allow();
        if (p === PROBE) probes++;
        else if (p === ADMITTED) admitted++;
      }
      result = { probes, admitted };
      break;
    }
    case "breaker-churn": {
      // Random outcomes from every worker at once. A probe is counted out in ctl[3] while held: if another worker is
      // ever granted one meanwhile, ctl[4] records the overlap. The permit is reported after it is counted back in, so
      // a second probe can only be granted once this one has reported.
      let probes = 0;
      for (let i = 0; i < sc.iterations; i++) {
        const p: Permit = breaker!.allow();
        if (p === DENIED) {
          breaker!.wouldAllow();
          breaker!.retryAfterSecs();
          continue;
        }
        if (p === PROBE) {
          probes++;
          if (Atomics.add(ctl, 3, 1) !== 0) Atomics.add(ctl, 4, 1);
          Atomics.sub(ctl, 3, 1);
        }
        const r = Math.random();
        if (r < 0.5) breaker!.onFailure(p);
        else if (r < 0.8) breaker!.onSuccess(p);
        else breaker!.onNeutral(p);
      }
      result = { probes };
      break;
    }
    case "clock": {
      result = sharedClock(job.shared.originEpochMs)();
      break;
    }
    case "cooldown-claim": {
      const cd = new SharedCooldowns(job.shared);
      result = sc.pairs.map(([k, m]) => cd.slot(k, m));
      break;
    }
    case "die-holding": {
      // Dies (terminated by the test) holding the half-open probe and every rate stripe lock, as a worker killed
      // between a lock and its unlock would: the locks hold its id, as the guards write it.
      const p = breaker!.allow();
      const rate = new Int32Array(job.shared.rate);
      for (let i = RATE_LOCKS_AT; i < RATE_LOCKS_AT + RATE_LOCKS; i++) Atomics.store(rate, i, lockOwner);
      self.postMessage({ permit: p });
      Atomics.wait(ctl, 5, 0); // never woken: the test terminates this thread here
      return;
    }
    case "mark-dead": {
      // Every worker tries to be the one that marks each key dead: markDeadIfAlive must say yes to exactly one.
      const states = new SharedKeyStates(job.shared);
      const won: number[] = [];
      for (let k = 0; k < sc.keys; k++) if (states.markDeadIfAlive(k, 1_000, 1_000_000 + k, 1)) won.push(k);
      result = won;
      break;
    }
    case "cooldown-bump": {
      // Read-modify-write of one pair's streak from every worker: none may be lost.
      const cd = new SharedCooldowns(job.shared);
      const slot = cd.slot(sc.key, sc.model);
      for (let i = 0; i < sc.iterations; i++) {
        cd.update(slot, (e) => {
          e.streak++;
          e.until = e.streak;
        });
      }
      result = slot;
      break;
    }
    case "replay-fill": {
      // Reserve a byte at a time until refused: the pool's limit holds across every worker.
      const pool = new ReplayPool(sc.limit, job.shared);
      let got = 0;
      while (pool.reserve(1)) got++;
      result = got;
      break;
    }
    case "seqlock-write": {
      const keys = new SharedKeyStates(job.shared);
      for (let i = 0; i < sc.iterations; i++) keys.markDead(0, i & 1 ? sc.a : sc.b, 1);
      result = sc.iterations;
      break;
    }
    case "seqlock-read": {
      const keys = new SharedKeyStates(job.shared);
      let torn = 0;
      let seenA = 0;
      let seenB = 0;
      for (let i = 0; i < sc.iterations; i++) {
        const v = keys.deadUntil(0);
        if (v === sc.a) seenA++;
        else if (v === sc.b) seenB++;
        else if (v !== 0) torn++;
      }
      result = { torn, seenA, seenB };
      break;
    }
  }
  self.postMessage(result);
};
