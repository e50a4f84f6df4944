// SPEC §10 key pools: which pool key an attempt uses, which keys are cooling (per key AND model) or dead (per key),
// and the process-wide replay pool. State lives in src/controls/shared-state.ts's SPEC §10 region: shared by every worker when
// workers ≥ 2, a private state of the same layout when workers = 1, so both run this one code path.
//
// Happy path (nothing cooling or dead for the provider lately): pick() reads one hint word (a plain read: an aligned
// Int32 read is never torn, and a hint a moment stale only means one more request goes where it would have gone a
// moment earlier), then returns the only key, or the HRW / round-robin choice over all keys: no clock, no hashing
// for one key, no allocation. succeeded() reads the provider's streak hint word and returns. Only when a hint is set
// do they read the clock, the dead-until entries and the key×model cooldown slots.
//
// Rules chosen where the contract is silent (documented in ARCHITECTURE):
// - Streak: cooldown_ms × 2^streak (capped at cooldown_max_ms), the streak counting 429s of the pair that arrived when
//   it was not cooling. A 429 that arrives while the pair is still cooling (requests sent before the cooldown began,
//   answered after) belongs to the same episode: it does not double again, only a longer provider-given wait extends
//   the cooldown. The streak lapses: a 429 more than cooldown_max_ms after the pair's last cooldown ended starts over
//   at cooldown_ms, and succeeded() (any non-429 answer on the pair) resets it.
// - A provider-given wait (retryAfterFromHeaders) sets the length and still counts in the streak.
// - model undefined (not known yet): pick() and readiness() check dead keys only; coolDown() cools the pair
//   (key, "") so the streak still counts, which no pick with a known model reads.
// - affinity: HRW over the ready keys; the session is hashed once (xxHash32, fixed seed 0, so every worker, restart
//   and replica maps a session alike) and key n's score is fmix32(hash ^ (n + 1) × φ). A key's score depends on its
//   position in the provider's list: appending a key moves only the sessions the new key wins.
// - round_robin: per thread (a counter per provider), cycling over the keys ready now.
// - Cooldown table full (its probe run exhausted): the pair is not cooled (coolDown returns 0), fail open.

import type { KeyPoolConfig } from "../ops/config.ts";
import type { PoolKey, Provider } from "./providers.ts";
import {
  allocatePrivateRoutingState,
  hintOf,
  KEY_DEAD_AUTH,
  KEY_DEAD_QUOTA,
  REPLAY_POOL_MAX,
  ROUTING_HINT_INTS,
  ROUTING_HINTS_AT,
  ROUTING_REPLAY_WORD,
  raiseHint,
  SEQ_TIME_MAX,
  type SharedState,
  SharedCooldowns,
  SharedKeyStates,
  sharedClock,
} from "../controls/shared-state.ts";

export type KeyState = "ready" | "cooling" | "dead";
export type CooldownReason = "rate_limited" | "auth" | "quota";

/** Models whose cooldown slots one thread caches (passthrough model names are the client's: bounded, then reset). */
const MODEL_CACHE_MAX = 256;
/** Cached cooldown slot: not looked up yet. -1: no slot as of the entry's claim generation. ≥ 0: the slot. */
const SLOT_UNKNOWN = -2;
const STREAK_MAX = 1 << 20;

interface ModelSlots {
  gen: number;
  /** Per key slot. */
  slots: Int32Array;
}

const xxHash32 = Bun.hash.xxHash32;
const AFFINITY_SEED = 0;

/** HRW score of key position `k` for a session hash: murmur3's finaliser over the hash mixed with the key's constant. */
function score(sessionHash: number, k: number): number {
  let x = sessionHash ^ Math.imul(k + 1, 0x9e3779b9);
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

export class KeyPools {
  readonly #affinity: boolean;
  readonly #cooldownMs: number;
  readonly #cooldownMaxMs: number;
  readonly #deadMs: number;
  readonly #providers: readonly Provider[];
  readonly #keys: SharedKeyStates;
  readonly #cd: SharedCooldowns;
  /** The routing words (hints at ROUTING_HINTS_AT + 2p). */
  readonly #hints: Int32Array;
  /** Key slot → index of its provider's cooling hint word in #hints (the streak hint follows it). */
  readonly #hintAt: Int32Array;
  /** Round-robin counters, indexed like #hints (per thread). */
  readonly #rr: Uint32Array;
  /** Positions of the keys a slow-path pick found ready (no allocation per pick). */
  readonly #ready: Int32Array;
  readonly #slotCount: number;
  readonly #models = new Map<string, ModelSlots>();
  readonly #now: () => number;

  /**
   * `providers`: buildProviders() output (keys carry their process-wide `slot`). `shared`: workers ≥ 2 (it must have
   * been allocated with these providers and at least their keys). `now`: ms on the shared clock.
   */
  constructor(opts: KeyPoolConfig, providers: readonly Provider[], shared?: SharedState, now?: () => number) {
    this.#affinity = opts.selection !== "round_robin";
    this.#cooldownMs = Math.max(0, opts.cooldown_ms);
    this.#cooldownMaxMs = Math.max(this.#cooldownMs, opts.cooldown_max_ms);
    this.#deadMs = Math.max(0, opts.dead_key_ms);
    this.#providers = providers;
    let slots = 0;
    let widest = 1;
    for (const p of providers) {
      for (const k of p.keys) slots = Math.max(slots, k.slot + 1);
      widest = Math.max(widest, p.keys.length);
    }
    this.#slotCount = slots;
    const state = shared ?? allocatePrivateRoutingState(providers.map((p) => p.name), slots);
    if (slots > state.poolKeys) throw new RangeError(`the shared state holds ${state.poolKeys} pool keys, the providers have ${slots}`);
    this.#keys = new SharedKeyStates(state);
    this.#cd = new SharedCooldowns(state);
    this.#hints = new Int32Array(state.routing);
    this.#rr = new Uint32Array(this.#hints.length);
    this.#hintAt = new Int32Array(slots);
    for (const p of providers) {
      const at = state.providers.indexOf(p.name);
      if (at < 0) throw new RangeError(`provider ${p.name} has no slot in the shared state`);
      for (const k of p.keys) this.#hintAt[k.slot] = ROUTING_HINTS_AT + ROUTING_HINT_INTS * at;
    }
    this.#ready = new Int32Array(widest);
    this.#now = now ?? sharedClock(state.originEpochMs);
  }

  /**
   * The key for this attempt among the provider's keys ready for `model` (not dead, not cooling for that model) and
   * not in `skip` (key slots this request already tried); undefined when none is.
   */
  pick(provider: Provider, model: string | undefined, session: string, skip?: ReadonlySet<number>): PoolKey | undefined {
    const keys = provider.keys;
    const n = keys.length;
    if (n === 0) return undefined;
    const h = this.#hintAt[keys[0]!.slot]!;
    const quiet = this.#hints[h] === 0 || this.#lapsed(h);
    if (quiet && (skip === undefined || skip.size === 0)) {
      if (n === 1) return keys[0];
      if (this.#affinity) {
        const sh = xxHash32(session, AFFINITY_SEED);
        let best = 0;
        let bestScore = score(sh, 0);
        for (let k = 1; k < n; k++) {
          const s = score(sh, k);
          if (s > bestScore) {
            bestScore = s;
            best = k;
          }
        }
        return keys[best];
      }
      return keys[this.#rr[h]!++ % n];
    }
    // Exact path: collect the positions of the keys usable now, then choose among them as above.
    const now = quiet ? 0 : this.#now();
    // The model's cached cooldown slots, looked up once for all keys (none to check when the model is not known).
    const cooled = quiet || model === undefined ? undefined : this.#modelSlots(model);
    const ready = this.#ready;
    let count = 0;
    for (let k = 0; k < n; k++) {
      const slot = keys[k]!.slot;
      if (skip !== undefined && skip.has(slot)) continue;
      if (!quiet) {
        if (this.#keys.deadUntil(slot) > now) continue;
        if (cooled !== undefined) {
          const s = this.#slotIn(cooled, slot, model!);
          if (s >= 0 && this.#cd.until(s) > now) continue;
        }
      }
      ready[count++] = k;
    }
    if (count === 0) return undefined;
    if (count === 1) return keys[ready[0]!];
    if (this.#affinity) {
      const sh = xxHash32(session, AFFINITY_SEED);
      let best = ready[0]!;
      let bestScore = score(sh, best);
      for (let i = 1; i < count; i++) {
        const s = score(sh, ready[i]!);
        if (s > bestScore) {
          bestScore = s;
          best = ready[i]!;
        }
      }
      return keys[best];
    }
    return keys[ready[this.#rr[h]!++ % count]!];
  }

  /**
   * ms until the provider's first key becomes ready for `model` (0 when one is ready now), and whether every key is
   * dead (nothing will help soon). A provider without keys: { 0, false } (the pipeline answers that case before).
   */
  readiness(provider: Provider, model: string | undefined): { readyInMs: number; allDead: boolean } {
    const keys = provider.keys;
    if (keys.length === 0) return { readyInMs: 0, allDead: false };
    const now = this.#now();
    let earliest = Infinity;
    let allDead = true;
    for (const key of keys) {
      const dead = this.#keys.deadUntil(key.slot);
      let at: number;
      if (dead > now) at = dead;
      else {
        allDead = false;
        at = now;
        if (model !== undefined) {
          const s = this.#cooldownSlot(key.slot, model);
          if (s >= 0) at = Math.max(at, this.#cd.until(s));
        }
      }
      if (at < earliest) earliest = at;
    }
    return { readyInMs: Math.max(0, Math.ceil(earliest - now)), allDead };
  }

  /**
   * A 429 on (key, model): cools the pair for `retryAfterMs` when the provider said, else cooldown_ms × 2^streak up
   * to cooldown_max_ms (streak rules in the header). Returns the cooldown applied in ms (what is left of it when the
   * pair was already cooling; 0 when the table had no room: fail open).
   */
  coolDown(key: PoolKey, model: string | undefined, retryAfterMs: number | undefined): number {
    const now = this.#now();
    const slot = this.#cd.slot(key.slot, model ?? "");
    if (slot < 0) return 0;
    const base = this.#cooldownMs;
    const max = this.#cooldownMaxMs;
    const wait = retryAfterMs !== undefined && retryAfterMs >= 0 ? retryAfterMs : undefined;
    let applied = 0;
    const until = this.#cd.update(slot, (e) => {
      if (e.until > now) {
        // The same episode: requests sent before the cooldown began, answered after it. No second doubling.
        if (wait !== undefined && now + wait > e.until) e.until = now + wait;
        applied = e.until - now;
        return;
      }
      const streak = e.streak > 0 && now - e.until > max ? 0 : e.streak;
      applied = wait ?? Math.min(max, base * 2 ** Math.min(streak, 52));
      e.until = now + applied;
      e.streak = Math.min(streak + 1, STREAK_MAX);
    });
    const h = this.#hintAt[key.slot]!;
    raiseHint(this.#hints, h, hintOf(until));
    raiseHint(this.#hints, h + 1, hintOf(Math.min(until + max, SEQ_TIME_MAX)));
    return Math.max(0, Math.ceil(applied));
  }

  /**
   * 401/403 or a quota 429: the key is out for dead_key_ms, for every model. True only for the call that marked it
   * newly dead (a key already dead is left as it is), so the pipeline logs it once.
   */
  markDead(key: PoolKey, reason: "auth" | "quota"): boolean {
    const now = this.#now();
    const until = Math.min(now + this.#deadMs, SEQ_TIME_MAX);
    const fresh = this.#keys.markDeadIfAlive(key.slot, now, until, reason === "auth" ? KEY_DEAD_AUTH : KEY_DEAD_QUOTA);
    if (fresh) raiseHint(this.#hints, this.#hintAt[key.slot]!, hintOf(Math.ceil(until)));
    return fresh;
  }

  /** A non-429 answer on (key, model): resets that pair's 429 streak. One plain read when nothing cooled lately. */
  succeeded(key: PoolKey, model: string | undefined): void {
    const h = this.#hintAt[key.slot]! + 1;
    if (this.#hints[h] === 0 || this.#lapsed(h)) return;
    const s = this.#cooldownSlot(key.slot, model ?? "");
    if (s >= 0 && this.#cd.streak(s) !== 0) this.#cd.resetStreak(s);
  }

  /** For /metrics (ai_pool_key_state): every key's state now; cooling = cooling for any model. Scrape only. */
  states(): Array<{ provider: string; keyId: string; state: KeyState }> {
    const now = this.#now();
    const coolest = new Float64Array(this.#slotCount);
    for (let s = 0; s < this.#cd.size; s++) {
      const k = this.#cd.keyOf(s);
      if (k < 0 || k >= this.#slotCount) continue;
      const u = this.#cd.until(s);
      if (u > coolest[k]!) coolest[k] = u;
    }
    const out: Array<{ provider: string; keyId: string; state: KeyState }> = [];
    for (const p of this.#providers) {
      for (const key of p.keys) {
        const state: KeyState = this.#keys.deadUntil(key.slot) > now ? "dead" : coolest[key.slot]! > now ? "cooling" : "ready";
        out.push({ provider: p.name, keyId: key.id, state });
      }
    }
    return out;
  }

  /**
   * True when hint word `h` is set but its time has passed; then clears it (compare-and-swap, so a hint raised
   * meanwhile stays). The caller reads the word first and calls this only when it is non-zero.
   */
  #lapsed(h: number): boolean {
    const w = Atomics.load(this.#hints, h);
    if (w === 0) return true;
    if (this.#now() < (w - 1) * 1000) return false;
    Atomics.compareExchange(this.#hints, h, w, 0);
    return true;
  }

  /** The cooldown slot of (key slot, model), or -1: cached per thread, never claiming one (lookups must not fill it). */
  #cooldownSlot(slot: number, model: string): number {
    return this.#slotIn(this.#modelSlots(model), slot, model);
  }

  /** The thread's cache of `model`'s cooldown slots, with every cached "no slot" dropped if a claim happened since. */
  #modelSlots(model: string): ModelSlots {
    const gen = this.#cd.generation();
    let e = this.#models.get(model);
    if (e === undefined) {
      if (this.#models.size >= MODEL_CACHE_MAX) this.#models.clear();
      e = { gen, slots: new Int32Array(this.#slotCount).fill(SLOT_UNKNOWN) };
      this.#models.set(model, e);
    } else if (e.gen !== gen) {
      // A slot was claimed somewhere since: every cached "no slot" may be stale (found slots never move).
      const a = e.slots;
      for (let i = 0; i < a.length; i++) if (a[i] === -1) a[i] = SLOT_UNKNOWN;
      e.gen = gen;
    }
    return e;
  }

  #slotIn(e: ModelSlots, slot: number, model: string): number {
    let s = e.slots[slot]!;
    if (s === SLOT_UNKNOWN) {
      s = this.#cd.find(slot, model);
      e.slots[slot] = s;
    }
    return s;
  }
}

/**
 * The replay pool (SPEC §10 replay_pool_bytes, for the whole process): one byte counter, shared by the workers when
 * workers ≥ 2. reserve() never takes the count past the limit (compare-and-swap); a limit above 2 GiB − 1 acts as
 * 2 GiB − 1 (the counter is one Int32 word).
 */
export class ReplayPool {
  readonly #a: Int32Array;
  readonly #limit: number;
  constructor(limitBytes: number, shared?: SharedState) {
    this.#a = shared !== undefined ? new Int32Array(shared.routing, 0, ROUTING_REPLAY_WORD + 1) : new Int32Array(1);
    this.#limit = limitBytes > REPLAY_POOL_MAX ? REPLAY_POOL_MAX : limitBytes > 0 ? Math.floor(limitBytes) : 0;
  }
  /** Reserves n more bytes for a request's replay copy; false (nothing reserved) when the pool would exceed its limit. */
  reserve(n: number): boolean {
    if (!(n > 0)) return n === 0;
    const a = this.#a;
    for (;;) {
      const cur = Atomics.load(a, ROUTING_REPLAY_WORD);
      if (cur + n > this.#limit) return false;
      if (Atomics.compareExchange(a, ROUTING_REPLAY_WORD, cur, cur + n) === cur) return true;
    }
  }
  /** Returns n reserved bytes (never below 0: a double release cannot make room that was not there). */
  release(n: number): void {
    if (!(n > 0)) return;
    const a = this.#a;
    for (;;) {
      const cur = Atomics.load(a, ROUTING_REPLAY_WORD);
      const next = cur > n ? cur - n : 0;
      if (Atomics.compareExchange(a, ROUTING_REPLAY_WORD, cur, next) === cur) return;
    }
  }
  /** Bytes reserved now (tests, metrics). */
  inUse(): number {
    return Atomics.load(this.#a, ROUTING_REPLAY_WORD);
  }
}
