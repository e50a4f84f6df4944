// What the client-stall watch adds to a small-body request (issue 12 item 4): the pipeline used to `await req.bytes()`;
// now it awaits a SmallBodyRead registered in the StallWatch (a Set add and delete, and one promise that the body or
// the stall resolves). Both variants await an already-settled promise, so the figures are the bookkeeping alone, not I/O.
// Run: node_modules/.bin/bun bench/stall.bench.ts
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { SmallBodyRead, StallWatch } from "../src/pipeline/stall.ts";

const body = new Uint8Array(512);

class Thenable {
  stallTick = 0;
  resolve: ((v: Uint8Array) => void) | undefined;
  constructor(private readonly bytes: Promise<Uint8Array>) {}
  then(resolve: (v: Uint8Array) => void, reject: (e: unknown) => void): void {
    this.resolve = resolve;
    this.bytes.then(resolve, reject);
  }
  onStall(): void {
    this.resolve?.(new Uint8Array(0));
  }
}
const watch = new StallWatch(90_000);

summary(() => {
  group("small body read", () => {
    bench("await req.bytes() (before)", async () => {
      do_not_optimize(await Promise.resolve(body));
    });
    bench("await SmallBodyRead + StallWatch wait/done (now)", async () => {
      const read = new SmallBodyRead(Promise.resolve(body));
      watch.wait(read);
      try {
        do_not_optimize(await read.result);
      } finally {
        watch.done(read);
      }
    });
    // The other designs tried. A race of the body against a stall promise: one promise and an array more.
    bench("Promise.race + StallWatch wait/done (rejected design)", async () => {
      let resolve!: (v: Uint8Array) => void;
      const stall = new Promise<Uint8Array>((r) => (resolve = r));
      const read = { stallTick: 0, onStall: () => resolve(new Uint8Array(0)) };
      watch.wait(read);
      try {
        do_not_optimize(await Promise.race([Promise.resolve(body), stall]));
      } finally {
        watch.done(read);
      }
    });
    // A thenable, so that `await` supplies the resolver and no promise of our own is made. JSC's await on a
    // non-native thenable takes a slow path.
    bench("await a thenable + StallWatch wait/done (rejected design)", async () => {
      const read = new Thenable(Promise.resolve(body));
      watch.wait(read);
      try {
        do_not_optimize(await read);
      } finally {
        watch.done(read);
      }
    });
  });
  group("streamed body, per chunk", () => {
    const s = { stallTick: 0, onStall() {} };
    bench("StallWatch wait + done", () => {
      watch.wait(s);
      watch.done(s);
    });
  });
});

await run();
