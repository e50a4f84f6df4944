// A worker thread (workers >= 2, SPEC §14): the client listener (reusePort) and the whole request pipeline, started by
// the supervisor (src/workers.ts). It loads the config itself from the text main read (a Config holds Secret
// instances, which do not cross threads), attaches the shared guard state, and talks to main only by messages that
// are not per request: deny-set changes in, log batches and metrics snapshots out, drain on shutdown.

import { workerData } from "node:worker_threads";
import type { Server } from "bun";
import { loadConfig } from "./ops/config.ts";
import { applyDenyMessage, DenySet } from "./controls/denyset.ts";
import { log } from "./ops/log.ts";
import { Metrics } from "./ops/metrics.ts";
import { setLockOwner } from "./controls/shared-state.ts";
import { buildGateway, buildProviders, ListenError, serveClient } from "./server.ts";
import type { FromWorker, ToWorker, WorkerData } from "./workers.ts";

declare const self: { onmessage: ((ev: MessageEvent<ToWorker>) => void) | null; postMessage(msg: FromWorker, transfer?: ArrayBuffer[]): void };

const post = (msg: FromWorker, transfer?: ArrayBuffer[]): void => self.postMessage(msg, transfer);

// Main is the only writer of stdout: every batch of whole lines goes there, its bytes transferred, not copied.
log.toMain((batch) => post({ t: "log", batch }, [batch.buffer as ArrayBuffer]));

const data = workerData as WorkerData;
// Before any guard is built: the shared guards' lock words hold this id, so main can free them if this thread dies.
setLockOwner(data.lockOwner);
// Warnings were logged by main when it loaded the same text; a worker only needs the values.
const cfg = loadConfig({ configPath: data.configPath, fileText: data.configText });
const denySet = new DenySet();
applyDenyMessage(denySet, data.deny);
const metrics = new Metrics();
const gateway = buildGateway(cfg, buildProviders(cfg), denySet, metrics, data.shared, data.verifyBudget);

let server: Server<undefined> | undefined;
try {
  server = serveClient(cfg, gateway, data.port, true);
} catch (e) {
  if (!(e instanceof ListenError)) throw e;
  gateway.transport.close();
  post({ t: "bindError", code: e.code });
}

if (server !== undefined) {
  const srv = server;
  let draining = false;
  self.onmessage = (ev) => {
    const m = ev.data;
    switch (m.t) {
      case "deny":
      case "denyAll":
        // One message, one event-loop step: a request sees the set before or after the change, never halfway.
        applyDenyMessage(denySet, m);
        return;
      case "scrape":
        post({ t: "metrics", id: m.id, snap: metrics.snapshot() });
        return;
      case "drain":
        if (draining) return;
        draining = true;
        void drain(srv, m.graceMs);
        return;
    }
  };
  post({ t: "listening", port: srv.port ?? data.port });
}

async function drain(srv: Server<undefined>, graceMs: number): Promise<void> {
  const grace = setTimeout(() => {
    log.gateway("warn", "grace period over: closing remaining connections", { worker: data.index });
    void srv.stop(true);
  }, graceMs);
  await srv.stop(false);
  clearTimeout(grace);
  gateway.transport.close();
  await log.flush();
  post({ t: "drained" });
}
