// The supervisor (workers >= 2, SPEC §14): the main thread starts N worker threads (src/worker.ts), each serving the
// client listener with reusePort on one port, and keeps for itself the admin listener, the NATS deny-set watch, the
// snapshot and stdout.
//
// Main → worker messages: deny-set changes (DenyMessage), metrics scrapes, drain. Worker → main: listening / bind
// failure, log batches (whole lines; main is the only writer of stdout), metrics snapshots, drained. None is per
// request: process-wide request state (rate limits, breakers, key cooldowns, retry budgets, the replay pool) lives in shared memory (src/controls/shared-state.ts).
//
// A worker that throws or exits is logged (error, with its index and reason) and replaced on the same port; the
// others keep serving. A replacement that dies again soon after it started waits a little longer each time, so a
// worker that cannot start does not spin the process.

import { readFileSync } from "node:fs";
import type { Server } from "bun";
import { type Config, parseListen, resolveConfigPath } from "./ops/config.ts";
import type { BroadcastDenySet, DenyMessage } from "./controls/denyset.ts";
import type { DenyWatcher } from "./controls/denyset-nats.ts";
import { log } from "./ops/log.ts";
import { KeyPools } from "./routing/key-pool.ts";
import { Metrics, type MetricsSnapshot, setPoolKeyStates } from "./ops/metrics.ts";
import { allocateVerifyBudget, type SharedVerifyBudget } from "./controls/keys.ts";
import type { Provider } from "./routing/providers.ts";
import { ListenError, type Running, serveAdmin, VERSION } from "./server.ts";
import { allocateSharedState, releaseDeadThread, type SharedState } from "./controls/shared-state.ts";

/** What a worker thread starts from (structured-clone safe: no class instances, no Secrets). */
export interface WorkerData {
  index: number;
  /** --config as main got it, and the text main read there (undefined: no file). */
  configPath: string | undefined;
  configText: string | undefined;
  /** The port to bind: listen's port for worker 0 (maybe 0), the port worker 0 got for the others. */
  port: number;
  shared: SharedState;
  /** The process-wide failed-verification budget word (src/controls/keys.ts). */
  verifyBudget: SharedVerifyBudget;
  /** This thread's guard lock-owner id (distinct per thread, never reused: a replacement gets a new one). */
  lockOwner: number;
  /** The whole deny-set as of the worker's start; changes follow as messages. */
  deny: DenyMessage;
}

export type ToWorker = DenyMessage | { t: "scrape"; id: number } | { t: "drain"; graceMs: number };

export type FromWorker =
  | { t: "listening"; port: number }
  | { t: "bindError"; code: string | undefined }
  | { t: "log"; batch: Uint8Array }
  | { t: "metrics"; id: number; snap: MetricsSnapshot }
  | { t: "drained" };

/** How long a scrape waits for a worker's snapshot; a worker that does not answer in time is left out of that scrape. */
const SCRAPE_TIMEOUT_MS = 1000;
/** A worker that dies within this long of starting is "crashing": its replacement waits (doubling, capped). */
const CRASH_WINDOW_MS = 5000;
const RESTART_DELAY_MAX_MS = 5000;

/** The worker entry: src/worker.ts from source; in the compiled binary, the embedded entry of the same name. */
function workerUrl(): string {
  return new URL("./worker.ts", import.meta.url).href;
}

/**
 * The error's own line from a worker ErrorEvent. Bun's message is the formatted report (a code frame quoting the
 * source line, the "error: …" line, the stack): only the "error: …" line goes into the log.
 */
function errorLine(ev: ErrorEvent): string {
  const text = String(ev.message ?? "");
  const line = text.split("\n").find((l) => /^\w*error\b.*:/i.test(l.trim()));
  return (line ?? text.split("\n")[0] ?? "").trim().slice(0, 500);
}

interface Slot {
  readonly index: number;
  worker: Worker;
  startedAt: number;
  listening: boolean;
  dead: boolean;
  /** The last snapshot this worker answered a scrape with: what survives it if it dies. */
  lastSnap: MetricsSnapshot | undefined;
  onDrained: (() => void) | undefined;
  onListening: ((r: { port: number } | { error: Error }) => void) | undefined;
  crashes: number;
}

export interface StartWorkersOptions {
  cfg: Config;
  configPath: string | undefined;
  workers: number;
  providers: Provider[];
  denySet: BroadcastDenySet;
  watcher: DenyWatcher;
  metrics: Metrics;
}

export async function startWorkers(o: StartWorkersOptions): Promise<Running> {
  const { cfg, workers, denySet, watcher, metrics } = o;
  const path = resolveConfigPath({ configPath: o.configPath });
  const configText = path !== undefined ? readFileSync(path, "utf8") : undefined;
  const shared = allocateSharedState({
    perCredentialRps: cfg.rate_limit_rps,
    byoRps: cfg.byo_rate_limit_rps,
    providers: o.providers.map((p) => p.name),
    // SPEC §10: a dead-until slot per pool key; PoolKey.slot numbers them process-wide (every worker builds the same
    // providers from the same config, so the same slots).
    poolKeys: o.providers.reduce((n, p) => n + p.keys.length, 0),
  });
  const verifyBudget = allocateVerifyBudget(shared.originEpochMs);
  const keyStates = new KeyPools(cfg.key_pool, o.providers, shared);
  const listen = parseListen(cfg.listen);
  const slots: Slot[] = [];
  const workersGauge = metrics.cell("ai_workers");
  const restarts = metrics.cell("ai_worker_restarts_total");
  /** Counters and histograms of workers that died, so process totals never go backwards on a restart. */
  const retired = new Metrics();
  let port = listen.port;
  let stopping = false;
  let booted = false;
  let scrapeId = 0;
  let nextLockOwner = 1;
  const scrapes = new Map<number, (snap: MetricsSnapshot) => void>();

  denySet.broadcast = (msg) => {
    for (const s of slots) if (!s.dead) s.worker.postMessage(msg);
  };

  const spawn = (index: number, crashes: number): Slot => {
    const lockOwner = nextLockOwner++;
    const data: WorkerData = { index, configPath: o.configPath, configText, port, shared, verifyBudget, lockOwner, deny: denySet.message() };
    const worker = new Worker(workerUrl(), { workerData: data, name: `beyond-ai-worker-${index}` } as WorkerOptions);
    const slot: Slot = { index, worker, startedAt: performance.now(), listening: false, dead: false, lastSnap: undefined, onDrained: undefined, onListening: undefined, crashes };
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      switch (m.t) {
        case "log":
          log.writeBatch(m.batch);
          return;
        case "metrics":
          slot.lastSnap = m.snap;
          scrapes.get(m.id)?.(m.snap);
          return;
        case "listening":
          slot.listening = true;
          workersGauge.v++;
          slot.onListening?.({ port: m.port });
          return;
        case "bindError":
          slot.onListening?.({ error: new ListenError("listen", cfg.listen, m.code) });
          return;
        case "drained":
          slot.onDrained?.();
          return;
      }
    };
    worker.addEventListener("error", (ev: ErrorEvent) => {
      died(slot, `uncaught error: ${errorLine(ev)}`);
      worker.terminate();
    });
    worker.addEventListener("close", (ev: Event) => {
      // The thread is gone: whatever guard lock or half-open probe it held (a terminate can land mid-section) is
      // freed, so no other worker spins on it or waits for a probe that never reports.
      const freed = releaseDeadThread(shared, lockOwner);
      if (freed.locks + freed.probes > 0) log.gateway("warn", "a dead worker's shared guard locks were released", { worker: index, ...freed });
      const code = (ev as CloseEvent).code;
      died(slot, `exited${typeof code === "number" ? ` (code ${code})` : ""}`);
    });
    slots[index] = slot;
    return slot;
  };

  const died = (slot: Slot, reason: string): void => {
    if (slot.dead) return;
    slot.dead = true;
    if (slot.listening) workersGauge.v--;
    slot.onDrained?.();
    slot.onListening?.({ error: new Error(`worker ${slot.index} ${reason} before it was listening`) });
    if (slot.lastSnap !== undefined) retired.merge(slot.lastSnap, true);
    // During boot a death fails the start (whenListening rejects); only a running process replaces workers.
    if (stopping || !booted || slots[slot.index] !== slot) return;
    const crashed = performance.now() - slot.startedAt < CRASH_WINDOW_MS;
    const crashes = crashed ? slot.crashes + 1 : 0;
    const delay = crashes === 0 ? 0 : Math.min(RESTART_DELAY_MAX_MS, 100 * 2 ** (crashes - 1));
    log.gateway("error", "worker died: replacing it", { worker: slot.index, reason, restart_in_ms: delay });
    setTimeout(() => {
      if (stopping) return;
      const next = spawn(slot.index, crashes);
      next.onListening = (r) => {
        next.onListening = undefined;
        if ("port" in r) {
          restarts.v++;
          log.gateway("info", "worker replaced", { worker: slot.index });
        }
      };
    }, delay);
  };

  const whenListening = (slot: Slot): Promise<number> =>
    new Promise((resolve, reject) => {
      slot.onListening = (r) => {
        slot.onListening = undefined;
        if ("port" in r) resolve(r.port);
        else reject(r.error);
      };
    });

  const abort = (): void => {
    stopping = true;
    for (const s of slots) s.worker.terminate();
    void watcher.stop();
  };

  // Worker 0 binds first (port 0 allowed: it reports the port it got), then the others join it on that port.
  try {
    port = await whenListening(spawn(0, 0));
    const rest: Promise<number>[] = [];
    for (let i = 1; i < workers; i++) rest.push(whenListening(spawn(i, 0)));
    await Promise.all(rest);
    const gone = slots.find((s) => s.dead);
    if (gone !== undefined) throw new Error(`worker ${gone.index} exited during start`);
    booted = true;
  } catch (e) {
    abort();
    throw e;
  }

  const scrapeText = async (): Promise<string> => {
    const live = slots.filter((s) => !s.dead && s.listening);
    const snaps = await Promise.all(
      live.map(
        (s) =>
          new Promise<MetricsSnapshot | undefined>((resolve) => {
            const id = ++scrapeId;
            const timer = setTimeout(() => {
              scrapes.delete(id);
              resolve(undefined);
            }, SCRAPE_TIMEOUT_MS);
            scrapes.set(id, (snap) => {
              clearTimeout(timer);
              scrapes.delete(id);
              resolve(snap);
            });
            s.worker.postMessage({ t: "scrape", id } satisfies ToWorker);
          }),
      ),
    );
    // Pool key states live in shared memory: main reads them itself (workers never set this gauge, so the sum keeps it).
    setPoolKeyStates(metrics, keyStates.states());
    const all: MetricsSnapshot[] = [retired.snapshot()];
    for (const s of snaps) if (s !== undefined) all.push(s);
    return metrics.renderMerged(all);
  };

  const testHooks = process.env["BEYOND_AI_TEST_HOOKS"] === "1";
  let admin: Server<undefined>;
  try {
    admin = serveAdmin(cfg, watcher, metrics, {
      metrics: scrapeText,
      extra: testHooks
        ? (req, path) => {
            // Test-only (BEYOND_AI_TEST_HOOKS=1): simulate a worker's death. Without the variable this path is a 404.
            if (path !== "/debug/kill-worker" || req.method !== "POST") return undefined;
            const index = Number(new URL(req.url).searchParams.get("index"));
            const slot = Number.isInteger(index) ? slots[index] : undefined;
            if (slot === undefined || slot.dead) return Response.json({ status: "no_such_worker", index }, { status: 404 });
            slot.worker.terminate();
            return Response.json({ status: "killed", worker: index });
          }
        : undefined,
    }, abort);
  } catch (e) {
    abort();
    throw e;
  }

  const adminListen = parseListen(cfg.metrics_listen);
  log.gateway("info", "listening", {
    addr: `${listen.hostname}:${port}`,
    metrics_addr: `${adminListen.hostname}:${admin.port}`,
    version: VERSION,
    config: cfg.source,
    providers: o.providers.length,
    signing_keys: cfg.signing_keys.size,
    workers,
    workers_from: cfg.workers_from,
  });

  let stoppingPromise: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stoppingPromise ??= (async () => {
      stopping = true;
      log.gateway("info", "shutting down: draining in-flight requests", { reason, grace_secs: cfg.shutdown_grace_period_secs, workers });
      const graceMs = cfg.shutdown_grace_period_secs * 1000;
      // Each worker stops accepting, finishes its requests and streams (closing what remains when the grace period
      // ends), flushes its log lines to main, and answers "drained". A worker that never answers is cut off a little
      // after the grace period, so shutdown always ends.
      const drained = slots
        .filter((s) => !s.dead)
        .map(
          (s) =>
            new Promise<void>((resolve) => {
              s.onDrained = resolve;
              s.worker.postMessage({ t: "drain", graceMs } satisfies ToWorker);
            }),
        );
      let cutoff: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.all(drained), new Promise<void>((r) => (cutoff = setTimeout(r, graceMs + 2000)))]);
      clearTimeout(cutoff);
      for (const s of slots) s.worker.terminate();
      void admin.stop(true);
      await watcher.stop();
      log.gateway("info", "stopped");
      await log.flush();
    })();
    return stoppingPromise;
  };
  return { gateway: undefined, admin, shutdown };
}
