// Process-wide guard state for workers ≥ 2 (SPEC §14): rate limits, circuit breakers, and the region for SPEC §10's
// key cooldowns, dead keys, retry budgets and replay pool, all in SharedArrayBuffers mutated with Atomics.
//
// ── API (the runtime calls this) ────────────────────────────────────────────────────────────────────────────────────
//   main thread:   const shared = allocateSharedState({ perCredentialRps, byoRps, providers: providers.map(p => p.name),
//                                                    poolKeys: <pool keys of all providers> });
//                  new Worker(entry, { workerData: { configPath, shared, lockOwner: nextId++ } })
//                                         // SharedState is plain data + SharedArrayBuffers: postMessage/workerData-safe
//                  worker.on("exit") →   releaseDeadThread(shared, thatWorkersLockOwner)   // before or after replacing it
//   each worker:   setLockOwner(workerData.lockOwner)                            // first, before any guard is built
//                  new RateGuard({ perCredentialRps, byoRps }, shared)          // src/controls/ratelimit.ts → SharedRateGuard
//                  new CircuitBreaker({ threshold, windowSecs, resetSecs }, breakerSlot(shared, provider.name))
//                                                                              // src/controls/breaker.ts → SharedCircuitBreaker
//                  new KeyPools(cfg.key_pool, providers, shared) / new RetryBudgets({ ratio, minPerSec }, names, shared)
//                  new ReplayPool(cfg.retry.replay_pool_bytes, shared)      // src/routing/key-pool.ts, src/routing/retry-policy.ts
//   workers = 1:   no SharedState at all: new RateGuard(opts) / new CircuitBreaker(opts), today's classes and code path;
//                  the SPEC §10 classes without `shared` allocate a private state of this layout (one code path).
// The limits passed to RateGuard must equal the ones the state was allocated for (it throws otherwise): the counter
// packing depends on them. Every worker loads the same config file, so they do. Lock-owner ids: distinct per thread
// and never reused (a replacement gets a new one), 1 … 2^31 − 1; main itself never takes a guard lock.
// SPEC §10 (src/routing/key-pool.ts, src/routing/retry-policy.ts): SharedKeyStates (dead-until per pool key), SharedCooldowns (per
// key×model cooldown-until and 429 streak), SharedRetryBudgets (per-provider first attempts / retries over 10 s), and
// the routing words (the replay pool's byte count, the cooldown claim generation, per-provider hints). main passes
// poolKeys = the pool keys of all providers (their PoolKey.slot numbers index the key slots). With workers = 1 the
// same classes run over a private state (allocatePrivateRoutingState).

// ── Clock ───────────────────────────────────────────────────────────────────────────────────────────────────────────
// performance.now() has a per-thread origin (a worker's starts at 0 when the worker starts; Bun.nanoseconds() too,
// measured), so raw readings cannot be compared across threads. Date.now() is comparable but not monotonic: an NTP
// step would move every window and breaker deadline. The shared clock is performance.now() + (performance.timeOrigin −
// originEpochMs): monotonic within a thread (it is performance.now() plus a constant), and comparable across threads
// because each thread's timeOrigin is the wall-clock time at which its own performance.now() was 0. The only cross-thread
// error is how far the wall clock moved, other than by elapsed time, between two threads' starts (< 1 ms measured,
// unless the clock is stepped in that instant). Readings are milliseconds since the state was allocated, which is also
// the shared origin of the rate-limit windows. Where a sub-millisecond disagreement matters (a 1-second window
// boundary) the code tolerates it: see the "adopt the next window" rule in ratelimit.ts.
//
// ── Layout ──────────────────────────────────────────────────────────────────────────────────────────────────────────
// rate (Int32Array):
//   [0]                 BYO global tier: one packed word (window stamp | count), see packing below.
//   [1 .. 15]           padding, so the hot BYO word has its own cache line apart from the sketch.
//   [16 .. 1040)        1,024 stripe locks (0 free, else the holder's id) for the per-credential tier: a key's check
//                       holds lock (hashA ^ hashB) & 1023 while it reads and raises its four counters (ratelimit.ts).
//   [1040 .. 1040 + 4·2^16)  per-credential count-min sketch, row-major (row r, column c at 1040 + (r << 16) + c), one
//                       packed word per counter (the single-thread guard keeps [stamp, count] pairs instead; a pair
//                       cannot be updated atomically, a word can). Absent (1040 ints only) when the tier is off.
//   Packing: count in the low `countBits` bits, window stamp (window index + 1, wrapped) in the high 32 − countBits.
//   countBits fits limit + 1 (counts saturate there), so a tier with limit 20 keeps 27 stamp bits (a stamp repeats
//   after 2^27 s); limit 1,000,000 keeps 12 (68 min). A counter untouched for exactly a multiple of that period reads as
//   current: it can only over-estimate, and a key is affected only if all four of its counters alias at once.
// breakers (Int32Array, BREAKER_SLOT_INTS = 16 per provider, 64 bytes = one cache line each, index = position in
// `providers`):
//   +0 state (0 closed, 1 open, 2 half-open)   read with one Atomics.load on the CLOSED fast path
//   +1 lock (0 free, else the holder's id)     every transition happens under it; never held across an await
//   +2 failures   +3 permits                   written under the lock with Atomics.store, so lock-free reads see whole values
//   +4 probe owner                             id of the thread holding the half-open probe (0 none), see releaseDeadThread
//   +8..9 windowStart, +10..11 openedAt        Float64 (ms on the shared clock) through a Float64Array view, read and
//                                              written only under the lock
// cooldowns (SPEC §10):
//   keys: Int32Array, KEY_SLOT_INTS = 8 per pool key (global key index, the order in which the caller numbers them):
//     +0 seq (seqlock: odd while a writer is inside)  +1,+2 dead-until ms (hi, lo)  +3 reason code
//     +4 writer lock (0 free, else the writer's thread id)  +5..7 spare
//   table: Int32Array, COOLDOWN_SLOT_INTS = 8 per key×model slot, open addressing (linear probe ≤ COOLDOWN_PROBE):
//     +0,+1 tag (64-bit hash of key index + model; 0,0 = free)  +2 seq  +3,+4 cooldown-until ms (hi, lo)
//     +5 consecutive-429 streak  +6 key index  +7 writer lock (0 free, else the writer's thread id)
//   retry budgets: Int32Array, RETRY_BUDGET_SLOT_INTS = 32 per provider: RETRY_BUDGET_BUCKETS one-second buckets, each
//     two packed words (first attempts, retries) with 12 stamp bits and 20 count bits (saturating at 2^20 − 1).
//   routing: Int32Array (ROUTING_* below):
//     [0]        replay pool: bytes reserved now for replay copies, process-wide (ReplayPool; CAS, never over its limit)
//     [1 .. 15]  padding: the replay word changes per retryable request, so it gets its own cache line
//     [16]       cooldown claim generation: +1 after each new key×model slot claim, so a thread may cache "this pair has
//                no slot" until the generation moves (KeyPools' per-thread slot cache)
//     [17 .. 31] padding
//     [32 + 2p]      cooling hint of provider p (index in `providers`): 0 = no key of p cooling or dead since the hint
//                    was last cleared, else ceil(latest until in s) + 1. Raised (CAS max) by every cooldown and dead
//                    mark, cleared (CAS to 0) by the first reader that sees it expired. pick() reads only this word
//                    on the happy path.
//     [32 + 2p + 1]  streak hint of provider p: the same for until + cooldown_max_ms, the time up to which a 429 streak
//                    of one of p's pairs still counts; succeeded() reads only this word on the happy path.
//   A hint is only ever too high (a stale or cleared-late hint sends a reader down the exact path, which reads the
//   real entries), except for the instant between an entry's write and its hint's raise: a pick then may still choose
//   the key that has just cooled, as it would have a moment earlier.
// Why no reader sees a torn entry: a sketch counter or BYO word is one 32-bit word changed only by compare-and-swap;
// breaker words are single Int32s stored with Atomics, and the two Float64 times are written and read only under the
// slot's lock; the §10 times span two words behind a seqlock that readers validate (retry while odd or moved). The one
// way left to leave a half-done entry, a thread dying inside a section, is repaired by releaseDeadThread.

/** Bumped when the layout changes: a worker refuses state from another layout (cannot happen within one binary). */
export const SHARED_LAYOUT_VERSION = 2;

export const SKETCH_ROWS = 4;
export const SKETCH_WIDTH = 65536;
export const RATE_BYO_WORD = 0;
/** Where the per-credential stripe locks start in `rate`, and how many (a power of two). */
export const RATE_LOCKS_AT = 16;
export const RATE_LOCKS = 1024;
/** Ints before the sketch in `rate`: the BYO word, its cache-line padding, the stripe locks. */
export const RATE_HEADER_INTS = RATE_LOCKS_AT + RATE_LOCKS;

export const BREAKER_SLOT_INTS = 16;
export const BRK_STATE = 0;
export const BRK_LOCK = 1;
export const BRK_FAILURES = 2;
export const BRK_PERMITS = 3;
export const BRK_PROBE_OWNER = 4;
/** The state word's values (breaker.ts CLOSED / OPEN / HALF_OPEN). */
export const BRK_STATE_CLOSED = 0;
export const BRK_STATE_OPEN = 1;
export const BRK_STATE_HALF_OPEN = 2;
/** Float64Array indices within a slot (slot base in float64s = index × BREAKER_SLOT_INTS / 2). */
export const BRK_F64_WINDOW_START = 4;
export const BRK_F64_OPENED_AT = 5;

export const KEY_SLOT_INTS = 8;
export const COOLDOWN_SLOT_INTS = 8;
export const COOLDOWN_PROBE = 16;
export const RETRY_BUDGET_SLOT_INTS = 32;
export const RETRY_BUDGET_BUCKETS = 10;
const BUDGET_COUNT_BITS = 20;
export const ROUTING_REPLAY_WORD = 0;
export const ROUTING_CLAIM_GEN = 16;
export const ROUTING_HINTS_AT = 32;
export const ROUTING_HINT_INTS = 2;
/** Largest replay pool the 32-bit word holds: a larger replay_pool_bytes acts as this (2 GiB − 1). */
export const REPLAY_POOL_MAX = 0x7fffffff;

export interface SharedStateOptions {
  /** rate_limit_rps (0 = tier off: no sketch is allocated). */
  perCredentialRps: number;
  /** byo_rate_limit_rps (0 = tier off). */
  byoRps: number;
  /** Provider names, in a fixed order: a provider's breaker and retry-budget slot is its index here. */
  providers: readonly string[];
  /** SPEC §10: how many pool keys to give a dead-until slot (default 256); main passes the total of all providers. */
  poolKeys?: number;
  /** SPEC §10: key×model cooldown slots, a power of two (default 4096). */
  cooldownSlots?: number;
}

/** Everything a worker needs to attach. Plain data and SharedArrayBuffers only, so it survives postMessage/workerData. */
export interface SharedState {
  readonly version: number;
  /** Wall-clock ms (performance.timeOrigin + performance.now() of the allocating thread) = 0 on the shared clock. */
  readonly originEpochMs: number;
  /** Sketch hash seeds, shared so that every worker maps a token to the same counters. */
  readonly seedA: number;
  readonly seedB: number;
  /** The limits the counters were packed for. */
  readonly perCredentialRps: number;
  readonly byoRps: number;
  readonly rate: SharedArrayBuffer;
  readonly providers: readonly string[];
  readonly breakers: SharedArrayBuffer;
  readonly poolKeys: number;
  readonly keys: SharedArrayBuffer;
  readonly cooldownSlots: number;
  readonly cooldowns: SharedArrayBuffer;
  readonly retryBudgets: SharedArrayBuffer;
  /** Replay pool word, cooldown claim generation, per-provider hints (see the layout). */
  readonly routing: SharedArrayBuffer;
}

/** What a CircuitBreaker needs to use a shared slot: the breakers buffer, its slot index, and the clock origin. */
export interface SharedBreakerSlot {
  readonly buffer: SharedArrayBuffer;
  readonly index: number;
  readonly originEpochMs: number;
}

export function allocateSharedState(opts: SharedStateOptions): SharedState {
  const poolKeys = opts.poolKeys ?? 256;
  const cooldownSlots = opts.cooldownSlots ?? 4096;
  if (!Number.isInteger(cooldownSlots) || cooldownSlots < 1 || (cooldownSlots & (cooldownSlots - 1)) !== 0) {
    throw new RangeError("cooldownSlots must be a power of two");
  }
  if (!Number.isInteger(poolKeys) || poolKeys < 0) throw new RangeError("poolKeys must be a non-negative integer");
  if (!Number.isInteger(opts.perCredentialRps) || opts.perCredentialRps < 0 || !Number.isInteger(opts.byoRps) || opts.byoRps < 0) {
    throw new RangeError("perCredentialRps and byoRps must be non-negative integers");
  }
  const seeds = crypto.getRandomValues(new Uint32Array(2));
  const sketchInts = opts.perCredentialRps > 0 ? SKETCH_ROWS * SKETCH_WIDTH : 0;
  return {
    version: SHARED_LAYOUT_VERSION,
    originEpochMs: performance.timeOrigin + performance.now(),
    seedA: seeds[0]!,
    seedB: seeds[1]!,
    perCredentialRps: opts.perCredentialRps,
    byoRps: opts.byoRps,
    rate: new SharedArrayBuffer(4 * (RATE_HEADER_INTS + sketchInts)),
    providers: [...opts.providers],
    breakers: new SharedArrayBuffer(4 * BREAKER_SLOT_INTS * Math.max(1, opts.providers.length)),
    poolKeys,
    keys: new SharedArrayBuffer(4 * KEY_SLOT_INTS * Math.max(1, poolKeys)),
    cooldownSlots,
    cooldowns: new SharedArrayBuffer(4 * COOLDOWN_SLOT_INTS * cooldownSlots),
    retryBudgets: new SharedArrayBuffer(4 * RETRY_BUDGET_SLOT_INTS * Math.max(1, opts.providers.length)),
    routing: new SharedArrayBuffer(4 * (ROUTING_HINTS_AT + ROUTING_HINT_INTS * Math.max(1, opts.providers.length))),
  };
}

/**
 * workers = 1: a state for the SPEC §10 classes alone (no rate sketch, `cooldownSlots` key×model slots), so the
 * single-thread path runs the same code as the workers. Its few Atomics cost ~10 ns each against a plain read's ~3.
 */
export function allocatePrivateRoutingState(providers: readonly string[], poolKeys: number, cooldownSlots = 1024): SharedState {
  return allocateSharedState({ perCredentialRps: 0, byoRps: 0, providers, poolKeys, cooldownSlots });
}

/** Throws unless `state` is a SharedState of this layout (a worker's first check on what it was handed). */
export function assertSharedState(state: SharedState): void {
  if (state === null || typeof state !== "object" || state.version !== SHARED_LAYOUT_VERSION) {
    throw new TypeError(`shared state of layout ${String((state as { version?: unknown } | null)?.version)}, expected ${SHARED_LAYOUT_VERSION}`);
  }
}

/**
 * The shared clock: milliseconds since `originEpochMs`, monotonic within the calling thread and comparable across
 * threads (see the header). One performance.now() and an add per reading.
 */
export function sharedClock(originEpochMs: number): () => number {
  const offset = performance.timeOrigin - originEpochMs;
  return () => performance.now() + offset;
}

/** Throws unless `slot` names a whole slot of a breakers buffer. */
export function assertBreakerSlot(slot: SharedBreakerSlot): void {
  if (!(slot.buffer instanceof SharedArrayBuffer) || !Number.isInteger(slot.index) || slot.index < 0 || (slot.index + 1) * BREAKER_SLOT_INTS * 4 > slot.buffer.byteLength) {
    throw new RangeError("not a breaker slot of a shared state");
  }
}

/** The breaker slot of a provider, or undefined for a name the state was not allocated with (→ private breaker). */
export function breakerSlot(state: SharedState, provider: string): SharedBreakerSlot | undefined {
  const index = state.providers.indexOf(provider);
  if (index < 0) return undefined;
  return { buffer: state.breakers, index, originEpochMs: state.originEpochMs };
}

// ── Lock owners and dead threads ─────────────────────────────────────────────────────────────────────────────────────
// A worker can die anywhere: Worker.terminate() (the supervisor's kill hook) raises its termination at the next VM trap,
// which may fall between a lock and its unlock, and a thread that dies holding the half-open probe never reports it.
// Either would wedge every other worker (a spin on a lock nobody frees; a breaker HALF_OPEN forever). So lock words hold
// the holder's thread id, breaker slots record who holds the probe, and the supervisor, once a worker has exited (its
// thread is gone, so it can touch nothing any more), calls releaseDeadThread(shared, id): its locks are freed and its
// probe handed back (as onNeutral would), so the next request probes. A lock freed this way may leave its section half
// done; every half-done state is one the section's own steps allow (a sketch counter raised or not; a breaker's fields
// are each whole), so nothing is torn.
// Wiring: main gives each worker (and each replacement) a distinct id in workerData; the worker calls setLockOwner(id)
// before it builds any guard. Without it a thread uses a random id (still unique in practice, just unknown to main).

/** This thread's lock-owner id, 1 … 2^31 − 1. A live binding: the guards read it at each acquisition. */
export let lockOwner: number = (crypto.getRandomValues(new Uint32Array(1))[0]! & 0x7ffffffe) + 1;

/** Sets this thread's lock-owner id (call before building guards; ids must be distinct per thread, never reused). */
export function setLockOwner(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 0x7fffffff) throw new RangeError("lock owner id must be an integer from 1 to 2147483647");
  lockOwner = id;
}

/**
 * For the supervisor, after a worker thread has exited: frees every guard lock it held and hands back a half-open probe
 * it held. Returns how many of each were found (0 and 0 almost always). Only for a thread that is gone: a live holder
 * would lose its lock mid-section.
 */
export function releaseDeadThread(state: SharedState, id: number): { locks: number; probes: number } {
  let locks = 0;
  let probes = 0;
  const rate = new Int32Array(state.rate);
  for (let i = RATE_LOCKS_AT; i < RATE_LOCKS_AT + RATE_LOCKS; i++) {
    if (Atomics.compareExchange(rate, i, id, 0) === id) locks++;
  }
  const brk = new Int32Array(state.breakers);
  for (let b = 0; b < brk.length; b += BREAKER_SLOT_INTS) {
    // Take the slot's lock (freeing it first if the dead thread held it), then fix the probe under it.
    if (Atomics.compareExchange(brk, b + BRK_LOCK, id, 0) === id) locks++;
    while (Atomics.compareExchange(brk, b + BRK_LOCK, 0, lockOwner) !== 0);
    if (Atomics.load(brk, b + BRK_PROBE_OWNER) === id) {
      Atomics.store(brk, b + BRK_PROBE_OWNER, 0);
      if (Atomics.load(brk, b + BRK_STATE) === BRK_STATE_HALF_OPEN && Atomics.load(brk, b + BRK_PERMITS) === 0) {
        Atomics.store(brk, b + BRK_PERMITS, 1);
        probes++;
      }
    }
    Atomics.store(brk, b + BRK_LOCK, 0);
  }
  // SPEC §10 region: a writer that died inside a seqlocked write.
  const keys = new Int32Array(state.keys);
  for (let b = 0; b < keys.length; b += KEY_SLOT_INTS) if (releaseSeqWriter(keys, b, b + 1, b + 4, id)) locks++;
  const cds = new Int32Array(state.cooldowns);
  for (let b = 0; b < cds.length; b += COOLDOWN_SLOT_INTS) if (releaseSeqWriter(cds, b + 2, b + 3, b + 7, id)) locks++;
  return { locks, probes };
}

// ── Packed (stamp | count) words ─────────────────────────────────────────────────────────────────────────────────────

/**
 * Largest limit a shared counter holds (30 count bits, leaving 2 stamp bits at the very least). A configured limit above
 * it is the same in practice (no process admits 2^30 requests in one second), so shared mode clamps to it.
 */
export const SHARED_RATE_LIMIT_MAX = 0x3ffffffe;

/** The limit shared mode enforces for a configured one (validated as a non-negative integer elsewhere). */
export function sharedLimit(limit: number): number {
  return limit > SHARED_RATE_LIMIT_MAX ? SHARED_RATE_LIMIT_MAX : limit;
}

/** Bits a count needs to hold limit + 1 (where counts saturate), at least 1, for a limit sharedLimit() returned. */
export function countBitsFor(limit: number): number {
  if (!Number.isInteger(limit) || limit < 0 || limit > SHARED_RATE_LIMIT_MAX) {
    throw new RangeError(`a shared rate limit must be an integer from 0 to ${SHARED_RATE_LIMIT_MAX}`);
  }
  return Math.max(1, 32 - Math.clz32(limit + 1));
}

// ── SPEC §10 region: accessors ───────────────────────────────────────────────────────────────────────────────────────

/** Reason codes for a key's dead-until entry. */
export const KEY_DEAD_NONE = 0;
export const KEY_DEAD_AUTH = 1; // 401/403
export const KEY_DEAD_QUOTA = 2; // 429 insufficient_quota and the like

const TWO32 = 4294967296;

/**
 * Takes a seqlocked entry's writer lock (holding this thread's id, so releaseDeadThread can free it). Writers serialise
 * on it; readers never wait for it, they only retry while seq is odd or moved. Held for a few stores, never an await.
 */
function seqLock(a: Int32Array, writer: number): void {
  while (Atomics.compareExchange(a, writer, 0, lockOwner) !== 0);
}

function seqUnlock(a: Int32Array, writer: number): void {
  Atomics.store(a, writer, 0);
}

/**
 * Under the writer lock: writes a whole-millisecond value (< 2^53) as two Int32 words behind the seqlock at `seq`,
 * and `extra` at `extraAt`.
 */
function seqStore(a: Int32Array, seq: number, hi: number, value: number, extraAt: number, extra: number): void {
  Atomics.add(a, seq, 1); // odd: a write is in progress
  Atomics.store(a, hi, Math.floor(value / TWO32));
  Atomics.store(a, hi + 1, value >>> 0);
  Atomics.store(a, extraAt, extra);
  Atomics.add(a, seq, 1); // even again: readers that overlapped retry
}

function seqWrite(a: Int32Array, seq: number, hi: number, writer: number, value: number, extraAt: number, extra: number): void {
  seqLock(a, writer);
  seqStore(a, seq, hi, value, extraAt, extra);
  seqUnlock(a, writer);
}

/** releaseDeadThread's part for one seqlocked entry: a dead writer's half-written value is cleared (fail-open). */
function releaseSeqWriter(a: Int32Array, seq: number, hi: number, writer: number, id: number): boolean {
  if (Atomics.load(a, writer) !== id) return false;
  if ((Atomics.load(a, seq) & 1) !== 0) {
    Atomics.store(a, hi, 0);
    Atomics.store(a, hi + 1, 0);
    Atomics.add(a, seq, 1);
  }
  Atomics.store(a, writer, 0);
  return true;
}

/** Reads the value written by seqStore; retries while a writer is inside or finished meanwhile. Never torn. */
function seqRead(a: Int32Array, seq: number, hi: number): number {
  for (;;) {
    const s1 = Atomics.load(a, seq);
    if ((s1 & 1) !== 0) continue;
    const v = Atomics.load(a, hi) * TWO32 + (Atomics.load(a, hi + 1) >>> 0);
    if (Atomics.load(a, seq) === s1) return v;
  }
}

/** Largest time the seqlocked entries hold (whole ms below 2^53); later deadlines are clamped to it. */
export const SEQ_TIME_MAX = 2 ** 52;

/** Per-key dead-until (SPEC §10 dead_key_ms), on the shared clock. */
export class SharedKeyStates {
  readonly #a: Int32Array;
  readonly size: number;
  constructor(state: SharedState) {
    this.#a = new Int32Array(state.keys);
    this.size = state.poolKeys;
  }
  deadUntil(key: number): number {
    return seqRead(this.#a, this.#base(key), this.#base(key) + 1);
  }
  reason(key: number): number {
    return Atomics.load(this.#a, this.#base(key) + 3);
  }
  markDead(key: number, untilMs: number, reason: number): void {
    const b = this.#base(key);
    seqWrite(this.#a, b, b + 1, b + 4, untilMs, b + 3, reason);
  }
  /**
   * Marks the key dead until `untilMs` unless it already is dead at `nowMs` (then nothing changes). True only for the
   * call that found it alive: one check-and-write under the key's writer lock, so of N threads marking at once one wins.
   */
  markDeadIfAlive(key: number, nowMs: number, untilMs: number, reason: number): boolean {
    const b = this.#base(key);
    const a = this.#a;
    seqLock(a, b + 4);
    const alive = seqRead(a, b, b + 1) <= nowMs;
    if (alive) seqStore(a, b, b + 1, Math.min(untilMs, SEQ_TIME_MAX), b + 3, reason);
    seqUnlock(a, b + 4);
    return alive;
  }
  #base(key: number): number {
    if (!Number.isInteger(key) || key < 0 || key >= this.size) throw new RangeError(`key index ${key} out of range`);
    return key * KEY_SLOT_INTS;
  }
}

const xxHash32 = Bun.hash.xxHash32;

/** How long slot() waits for another thread's claim of a slot to finish (two stores) before probing on. */
const CLAIM_SPIN_MAX = 1 << 20;

/**
 * Per key×model cooldown-until and consecutive-429 streak (SPEC §10 cooldown_ms doubling). slot() finds or claims the
 * slot of (key, model) once; find() only finds; the caller may cache a slot number (slots are never freed or moved).
 * Tags are two seeded 32-bit hashes (a false match needs a 64-bit collision). A full probe run returns -1: the caller
 * then treats the pair as not cooling (fail-open). Every claim bumps the routing claim generation after it completes,
 * so a cached "no slot" stays true while the generation has not moved.
 */
export class SharedCooldowns {
  readonly #a: Int32Array;
  readonly #routing: Int32Array;
  readonly #mask: number;
  readonly #seedA: number;
  readonly #seedB: number;
  constructor(state: SharedState) {
    this.#a = new Int32Array(state.cooldowns);
    this.#routing = new Int32Array(state.routing);
    this.#mask = state.cooldownSlots - 1;
    this.#seedA = state.seedA ^ 0x5bd1e995;
    this.#seedB = state.seedB ^ 0x1b873593;
  }
  /** Slots of the table (for a scan). */
  get size(): number {
    return this.#mask + 1;
  }
  slot(key: number, model: string): number {
    return this.#probe(key, model, true);
  }
  /** The slot of (key, model) if one was claimed, else -1. Claims nothing (a lookup must not fill the table). */
  find(key: number, model: string): number {
    return this.#probe(key, model, false);
  }
  /** The claim generation now (read it before a find() whose "no slot" answer you cache). */
  generation(): number {
    return Atomics.load(this.#routing, ROUTING_CLAIM_GEN);
  }
  #probe(key: number, model: string, claim: boolean): number {
    const text = `${key}\u0000${model}`;
    const t0 = xxHash32(text, this.#seedA) | 0 || 1; // word 0 = 0 marks a free slot
    const t1 = xxHash32(text, this.#seedB) | 0 || 1; // word 1 = 0 marks "being claimed"
    const a = this.#a;
    for (let p = 0; p < COOLDOWN_PROBE; p++) {
      const i = ((t1 + p) & this.#mask) * COOLDOWN_SLOT_INTS;
      let w0 = Atomics.load(a, i);
      if (w0 === 0) {
        if (!claim) return -1; // claims fill a run in probe order: a free slot ends the pair's run
        w0 = Atomics.compareExchange(a, i, 0, t0);
        if (w0 === 0) {
          Atomics.store(a, i + 6, key);
          Atomics.store(a, i + 1, t1); // last: a reader that sees word 1 sees the whole claim
          Atomics.add(this.#routing, ROUTING_CLAIM_GEN, 1);
          return i / COOLDOWN_SLOT_INTS;
        }
      }
      if (w0 === t0) {
        // Claimed by someone with the same first word, maybe an instant ago: wait for its second word (two stores).
        // Bounded: a claimer that died between the two stores must not wedge everyone; the probe then moves on.
        let w1 = Atomics.load(a, i + 1);
        for (let spin = 0; w1 === 0 && claim && spin < CLAIM_SPIN_MAX; spin++) w1 = Atomics.load(a, i + 1);
        if (w1 === t1) return i / COOLDOWN_SLOT_INTS;
      }
    }
    return -1;
  }
  /** The key index a claimed slot belongs to, or -1 for a free or half-claimed slot (for a scan). */
  keyOf(slot: number): number {
    const b = slot * COOLDOWN_SLOT_INTS;
    return Atomics.load(this.#a, b + 1) === 0 ? -1 : Atomics.load(this.#a, b + 6);
  }
  until(slot: number): number {
    const b = slot * COOLDOWN_SLOT_INTS;
    return seqRead(this.#a, b + 2, b + 3);
  }
  streak(slot: number): number {
    return Atomics.load(this.#a, slot * COOLDOWN_SLOT_INTS + 5);
  }
  set(slot: number, untilMs: number, streak: number): void {
    const b = slot * COOLDOWN_SLOT_INTS;
    seqWrite(this.#a, b + 2, b + 3, b + 7, Math.min(untilMs, SEQ_TIME_MAX), b + 5, streak);
  }
  /**
   * One read-modify-write of the pair under its writer lock: `next(until, streak)` returns the new until (and sets
   * the new streak through the returned object's fields), so two threads cooling the same pair at once cannot lose a
   * step. Returns the until written.
   */
  update(slot: number, next: (entry: { until: number; streak: number }) => void): number {
    const b = slot * COOLDOWN_SLOT_INTS;
    const a = this.#a;
    seqLock(a, b + 7);
    const entry = { until: seqRead(a, b + 2, b + 3), streak: Atomics.load(a, b + 5) };
    try {
      next(entry);
      entry.until = Math.min(Math.max(0, Math.ceil(entry.until)), SEQ_TIME_MAX);
      seqStore(a, b + 2, b + 3, entry.until, b + 5, entry.streak | 0);
    } finally {
      seqUnlock(a, b + 7);
    }
    return entry.until;
  }
  /** Sets the streak to 0 and leaves the until alone (under the writer lock, so it cannot undo a concurrent update). */
  resetStreak(slot: number): void {
    const b = slot * COOLDOWN_SLOT_INTS;
    seqLock(this.#a, b + 7);
    Atomics.store(this.#a, b + 5, 0);
    seqUnlock(this.#a, b + 7);
  }
}

/** Raises hint word `i` to at least `value` (compare-and-swap max); rare: only on a cooldown or a dead mark. */
export function raiseHint(a: Int32Array, i: number, value: number): void {
  for (;;) {
    const w = Atomics.load(a, i);
    if (w >= value) return;
    if (Atomics.compareExchange(a, i, w, value) === w) return;
  }
}

/** A hint word's value for a deadline in ms on the shared clock: ceil(s) + 1 (never 0), clamped to an Int32. */
export function hintOf(untilMs: number): number {
  const s = Math.ceil(untilMs / 1000) + 1;
  return s > 0x7fffffff ? 0x7fffffff : s < 1 ? 1 : s;
}

/** Per-provider retry budget counters (SPEC §10 budget_ratio over the last 10 s): one-second buckets of packed words. */
export class SharedRetryBudgets {
  readonly #a: Int32Array;
  readonly providers: number;
  constructor(state: SharedState) {
    this.#a = new Int32Array(state.retryBudgets);
    this.providers = state.providers.length;
  }
  /** Counts `n` attempts (retry = false: first attempts) in the bucket of `nowMs` (shared clock). */
  record(provider: number, retry: boolean, nowMs: number, n = 1): void {
    const sec = Math.floor(nowMs / 1000);
    const i = provider * RETRY_BUDGET_SLOT_INTS + (sec % RETRY_BUDGET_BUCKETS) * 2 + (retry ? 1 : 0);
    packedAdd(this.#a, i, stampOf(sec), BUDGET_COUNT_BITS, (1 << BUDGET_COUNT_BITS) - 1, n);
  }
  /** First attempts and retries over the RETRY_BUDGET_BUCKETS seconds ending with the one holding `nowMs`. */
  totals(provider: number, nowMs: number): { first: number; retries: number } {
    const sec = Math.floor(nowMs / 1000);
    let first = 0;
    let retries = 0;
    for (let k = 0; k < RETRY_BUDGET_BUCKETS; k++) {
      const s = sec - k;
      if (s < 0) break;
      const i = provider * RETRY_BUDGET_SLOT_INTS + (s % RETRY_BUDGET_BUCKETS) * 2;
      first += packedRead(this.#a, i, stampOf(s), BUDGET_COUNT_BITS);
      retries += packedRead(this.#a, i + 1, stampOf(s), BUDGET_COUNT_BITS);
    }
    return { first, retries };
  }
}

/** Adds `n` to packed word `i` for window `stamp` (a word from another window restarts at 0), saturating at `cap`;
 * returns the new count. */
function packedAdd(a: Int32Array, i: number, stamp: number, countBits: number, cap: number, n: number): number {
  const stampBits = stamp & (0xffffffff >>> countBits);
  const countMask = (1 << countBits) - 1;
  const base = stampBits << countBits;
  for (;;) {
    const w = Atomics.load(a, i);
    const count = w >>> countBits === stampBits ? w & countMask : 0;
    if (count >= cap) return cap;
    const next = count + n > cap ? cap : count + n;
    if (Atomics.compareExchange(a, i, w, base | next) === w) return next;
  }
}

/** Window stamp for window/second index n: n + 1, so a zero word never reads as current. */
function stampOf(n: number): number {
  return n + 1;
}

// countBits is 1..30 here (countBitsFor caps limits at 2^30 − 2; budgets use 20), so both fields are non-empty.

/** Count in packed word `i` if its stamp is `stamp` (compared on the stamp bits kept), else 0. */
export function packedRead(a: Int32Array, i: number, stamp: number, countBits: number): number {
  const w = Atomics.load(a, i);
  return w >>> countBits === (stamp & (0xffffffff >>> countBits)) ? w & ((1 << countBits) - 1) : 0;
}

/**
 * Adds one to packed word `i` for window `stamp`, saturating at `cap`; a word from another window restarts at 1.
 * Returns the new count (cap when saturated). Lock-free: a compare-and-swap loop on the single word.
 */
export function packedIncrement(a: Int32Array, i: number, stamp: number, countBits: number, cap: number): number {
  return packedAdd(a, i, stamp, countBits, cap, 1);
}
