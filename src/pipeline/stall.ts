// Client upload stalls (SPEC §5): a client that sends no body byte for idle_timeout_secs gets 408 and its connection
// closes. Bun's own idle timer cannot do it: it is switched off for admitted requests (a long generation must not be
// cut) and, when it fires, it closes the socket without an answer.
//
// One watch per gateway instead of a timer per request: a setTimeout/clearTimeout pair costs ~0.4 µs, a Set add and
// delete ~0.06 µs, and almost every body read ends long before anything fires. A single interval ticks while
// something waits and stops when nothing does.

import type { Cancel } from "../transport/transport.ts";

/** Something waiting on its client. `onStall` is called once if the wait outlives the idle time. */
export interface Stallable {
  /** Tick at which the wait has lasted the idle time; set by StallWatch.wait. */
  stallTick: number;
  onStall(): void;
}

export class StallWatch {
  readonly #waiting = new Set<Stallable>();
  readonly #tickMs: number;
  /** Ticks an entry must survive: with one tick of slack, because the first tick after wait() may come at once. */
  readonly #ticks: number;
  #tick = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A wait is cut between `idleMs` and `idleMs + tickMs` after it began. */
  constructor(idleMs: number, tickMs = 1000) {
    this.#tickMs = Math.max(1, Math.min(tickMs, idleMs));
    this.#ticks = Math.ceil(idleMs / this.#tickMs) + 1;
  }

  /** The gateway now waits for `s`'s client; a wait already running restarts. */
  wait(s: Stallable): void {
    s.stallTick = this.#tick + this.#ticks;
    this.#waiting.add(s);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.sweep(), this.#tickMs);
      // Waiting clients must not keep a stopping process alive.
      this.#timer.unref();
    }
  }

  /** The client delivered (or the wait ended some other way). */
  done(s: Stallable): void {
    this.#waiting.delete(s);
  }

  /** Entries waiting now (tests, metrics). */
  get size(): number {
    return this.#waiting.size;
  }

  /** One tick: every wait that has lasted the idle time is ended with onStall(). The interval calls it. */
  sweep(): void {
    const t = ++this.#tick;
    for (const s of this.#waiting) {
      if (s.stallTick > t) continue;
      this.#waiting.delete(s);
      s.onStall();
    }
    if (this.#waiting.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * The client's AbortSignal, read late. Reading `req.signal` makes Bun create an AbortSignal tied to the connection, and
 * with a listener put on and taken off that cost the gateway 4-7 % of its requests per second at 64 connections
 * (bench/tree-ab.sh, paired rounds), for a signal almost no request ever needs: nearly all are answered long before a
 * client gives up. So a link waits on a watch of its own (the gateway's: 100 ms ticks) and reads the signal only when
 * its request is still in flight a tick or two later (100-200 ms). A client already gone by then is reported at once
 * (Bun's signal, read after the client left, is already aborted), a client still there gets the listener as before.
 * What the delay costs: a client that leaves in the first 100-200 ms stops its upstream exchange that much later (a
 * body read or a relayed stream notices a client that leaves on its own, as before).
 */
export class ClientLink implements Stallable {
  stallTick = 0;
  #signal: AbortSignal | undefined;

  constructor(
    private readonly req: Request,
    private readonly cancel: Cancel,
    private readonly watch: StallWatch,
  ) {
    watch.wait(this);
  }

  onStall(): void {
    const s = this.req.signal;
    if (s.aborted) {
      this.cancel.handleEvent();
      return;
    }
    s.addEventListener("abort", this.cancel);
    this.#signal = s;
  }

  /** The exchange is over: off the watch, and off the signal if it was read. */
  end(): void {
    this.watch.done(this);
    this.#signal?.removeEventListener("abort", this.cancel);
  }
}

const NO_BYTES = new Uint8Array(0);

/**
 * A small body (declared ≤ 64 KiB) read in one piece, with the stall watch as its deadline: `result` gives the bytes,
 * or an empty array with `stalled` set once the client has kept the gateway waiting for the idle time. The gateway
 * cannot see a whole read's progress without a per-request JS stream (the cost the one-piece read avoids), so the
 * whole body must arrive within the idle time. A client that closes makes `result` reject, as `req.bytes()` does; a
 * body read that settles after a stall settles an already-resolved promise, which does nothing.
 *
 * One promise that either the body or the stall resolves: about +0.14 µs per small-body request over the bare await
 * it replaces, the watch's Set included (bench/stall.bench.ts). Promise.race costs ~40 ns more, and a thenable (no
 * promise of our own) was no cheaper: JSC's await on a non-native thenable takes a slow path. Nothing cheaper can end
 * an await on `req.bytes()`, which cannot be aborted.
 */
export class SmallBodyRead implements Stallable {
  stallTick = 0;
  stalled = false;
  readonly result: Promise<Uint8Array>;
  #resolve!: (v: Uint8Array) => void;

  constructor(bytes: Promise<Uint8Array>) {
    this.result = new Promise<Uint8Array>((resolve, reject) => {
      this.#resolve = resolve;
      bytes.then(resolve, reject);
    });
  }

  onStall(): void {
    this.stalled = true;
    this.#resolve(NO_BYTES);
  }
}
