// StallWatch and SmallBodyRead (src/pipeline/stall.ts): the client-stall watch behind the 408 for stalled uploads. Ticks are
// driven by hand (sweep()); the watch's own interval is set far beyond the test's run so it never interleaves.
import { describe, expect, test } from "bun:test";
import { ClientLink, SmallBodyRead, type Stallable, StallWatch } from "../src/pipeline/stall.ts";
import { Cancel } from "../src/transport/transport.ts";

const TICK = 600_000;

function waiter(): Stallable & { stalls: number } {
  return {
    stallTick: 0,
    stalls: 0,
    onStall() {
      this.stalls++;
    },
  };
}

describe("StallWatch", () => {
  test("a wait is ended only after it has lasted the idle time: ceil(idle / tick) + 1 ticks, then exactly once", () => {
    const w = new StallWatch(3 * TICK, TICK); // 3 ticks of idle time, plus one of slack
    const a = waiter();
    w.wait(a);
    for (let i = 0; i < 3; i++) {
      w.sweep();
      expect(a.stalls).toBe(0);
    }
    w.sweep();
    expect(a.stalls).toBe(1);
    expect(w.size).toBe(0);
    for (let i = 0; i < 5; i++) w.sweep();
    expect(a.stalls).toBe(1);
  });

  test("done() before the idle time means no stall", () => {
    const w = new StallWatch(2 * TICK, TICK);
    const a = waiter();
    w.wait(a);
    w.sweep();
    w.done(a);
    for (let i = 0; i < 10; i++) w.sweep();
    expect(a.stalls).toBe(0);
  });

  test("each wait() restarts the clock: a client that keeps sending, however slowly, never stalls", () => {
    const w = new StallWatch(2 * TICK, TICK);
    const a = waiter();
    for (let i = 0; i < 20; i++) {
      w.wait(a); // a chunk was asked for
      w.sweep();
      w.sweep();
      w.done(a); // and arrived within the idle time
    }
    expect(a.stalls).toBe(0);
  });

  test("waits are independent: only the ones past the idle time stall", () => {
    const w = new StallWatch(2 * TICK, TICK);
    const early = waiter();
    const late = waiter();
    w.wait(early);
    w.sweep();
    w.wait(late);
    w.sweep();
    w.sweep();
    expect([early.stalls, late.stalls]).toEqual([1, 0]);
    w.sweep();
    expect([early.stalls, late.stalls]).toEqual([1, 1]);
  });

  test("the real interval ends a wait on its own", async () => {
    const w = new StallWatch(30, 10);
    const a = waiter();
    w.wait(a);
    const deadline = Date.now() + 5000;
    while (a.stalls === 0 && Date.now() < deadline) await Bun.sleep(10);
    expect(a.stalls).toBe(1);
    expect(w.size).toBe(0);
  });
});

describe("SmallBodyRead", () => {
  test("result is the body when the body arrives first", async () => {
    const r = new SmallBodyRead(Promise.resolve(new Uint8Array([1, 2, 3])));
    expect(await r.result).toEqual(new Uint8Array([1, 2, 3]));
    expect(r.stalled).toBe(false);
  });

  test("a stall resolves result with no bytes and stalled set; the body's later failure is absorbed", async () => {
    let fail!: (e: unknown) => void;
    const r = new SmallBodyRead(new Promise<Uint8Array>((_, rej) => (fail = rej)));
    const w = new StallWatch(TICK, TICK);
    w.wait(r);
    const got = r.result;
    w.sweep();
    w.sweep();
    expect((await got).byteLength).toBe(0);
    expect(r.stalled).toBe(true);
    fail(new Error("The connection was closed.")); // what Bun does once the 408 has closed the connection
    await Bun.sleep(0);
  });

  test("a client that closes makes result reject, as req.bytes() does", async () => {
    const r = new SmallBodyRead(Promise.reject(new Error("closed")));
    const err = await r.result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).toContain("closed");
    expect(r.stalled).toBe(false);
  });
});

describe("ClientLink (the client's signal, read late)", () => {
  /** A request whose `signal` counts its reads, as Bun's creates the AbortSignal on the first read. */
  function request(): { req: Request; client: AbortController; reads: () => number } {
    const client = new AbortController();
    let reads = 0;
    const req = {
      get signal(): AbortSignal {
        reads++;
        return client.signal;
      },
    } as unknown as Request;
    return { req, client, reads: () => reads };
  }

  test("a request over within its first tick or two never reads the signal", () => {
    const w = new StallWatch(TICK, TICK);
    const r = request();
    const cancel = new Cancel();
    const link = new ClientLink(r.req, cancel, w);
    w.sweep();
    link.end();
    for (let i = 0; i < 5; i++) w.sweep();
    r.client.abort();
    expect(r.reads()).toBe(0);
    expect(cancel.aborted).toBe(false);
  });

  test("a client already gone when the signal is read cancels the exchange at that read", () => {
    const w = new StallWatch(TICK, TICK);
    const r = request();
    const cancel = new Cancel();
    new ClientLink(r.req, cancel, w);
    r.client.abort();
    w.sweep();
    expect(cancel.aborted).toBe(false);
    w.sweep();
    expect(r.reads()).toBe(1);
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason).toBe("client closed");
  });

  test("a client still there gets the listener: its later abort cancels; after end() an abort does nothing", () => {
    const w = new StallWatch(TICK, TICK);
    const stays = request();
    const cancelled = new Cancel();
    new ClientLink(stays.req, cancelled, w);
    const ends = request();
    const untouched = new Cancel();
    const ended = new ClientLink(ends.req, untouched, w);
    w.sweep();
    w.sweep();
    expect([stays.reads(), ends.reads()]).toEqual([1, 1]);
    expect(cancelled.aborted).toBe(false);
    stays.client.abort();
    expect(cancelled.aborted).toBe(true);
    ended.end();
    ends.client.abort();
    expect(untouched.aborted).toBe(false);
    expect(w.size).toBe(0);
  });
});
