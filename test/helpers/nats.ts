// A real nats-server with JetStream for the integration and e2e tests: a free loopback port, its own store
// directory (so a stop/start keeps the buckets), ready only once JetStream answers, stopped with SIGTERM.
import { connect } from "nats";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The packaged binary when present, else whatever PATH has. */
export const NATS_SERVER = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : (Bun.which("nats-server") ?? "nats-server");

/** A loopback port nothing listens on right now (the OS picks it, then we let it go). */
export async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Polls `cond` every `everyMs` until it holds; throws naming `what` once `timeoutMs` has passed. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await Bun.sleep(everyMs);
  }
}

export interface NatsServerOptions {
  /** How often start() probes for JetStream (ms); default 10. */
  readyPollMs?: number;
  /** Delete the store dir in stop(): only for a server that is never restarted, since a restart needs the store. */
  removeStoreOnStop?: boolean;
}

/** nats-server -js on a fixed loopback port and store dir, restartable: stop() then start() keeps the buckets. */
export class NatsServer {
  proc: ReturnType<typeof Bun.spawn> | undefined;
  constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly opts: NatsServerOptions = {},
  ) {}

  /** A started server on a free port; the store dir defaults to a fresh temp dir. */
  static async launch(opts: NatsServerOptions & { storeDir?: string } = {}): Promise<NatsServer> {
    const s = new NatsServer(await freePort(), opts.storeDir ?? mkdtempSync(join(tmpdir(), "bai-nats-")), opts);
    try {
      await s.start();
    } catch (e) {
      // The caller never gets `s` to stop, so a server that never became ready must not outlive the test run.
      await s.stop();
      throw e;
    }
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Spawns the server and resolves once a client gets JetStream account info (the port alone opens earlier). */
  async start(): Promise<void> {
    this.proc = Bun.spawn([NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir], {
      stdout: "ignore",
      stderr: "ignore",
    });
    await waitFor(
      "nats-server with JetStream ready",
      async () => {
        try {
          const nc = await connect({ servers: this.url, reconnect: false, timeout: 500 });
          try {
            await (await nc.jetstreamManager()).getAccountInfo();
            return true;
          } finally {
            await nc.close();
          }
        } catch {
          return false;
        }
      },
      10_000,
      this.opts.readyPollMs ?? 10,
    );
  }

  /** SIGTERM and wait for the exit; the store dir stays unless removeStoreOnStop. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p !== undefined) {
      p.kill("SIGTERM");
      await p.exited;
    }
    if (this.opts.removeStoreOnStop === true) rmSync(this.storeDir, { recursive: true, force: true });
  }
}
