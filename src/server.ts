// Boot: turn a Config into running listeners (client traffic and admin), and drain them on SIGTERM/SIGINT.

import type { Server } from "bun";
import pkg from "../package.json" with { type: "json" };
import { type Config, parseListen } from "./ops/config.ts";
import { CircuitBreaker } from "./controls/breaker.ts";
import { BroadcastDenySet, DenySet } from "./controls/denyset.ts";
import { DenyWatcher } from "./controls/denyset-nats.ts";
import { KeyVerifier, mint, type SharedVerifyBudget } from "./controls/keys.ts";
import { RateGuard } from "./controls/ratelimit.ts";
import { KeyPools, ReplayPool } from "./routing/key-pool.ts";
import { RetryBudgets } from "./routing/retry-policy.ts";
import { Routes } from "./routing/routes.ts";
import { AUTO, AutoRouter } from "./routing/auto.ts";
import { warmClassifier } from "./routing/classify.ts";
import { log } from "./ops/log.ts";
import { Metrics, setPoolKeyStates } from "./ops/metrics.ts";
import { clientIdleSecs, createHandler, type Gateway } from "./pipeline/pipeline.ts";
import { BUILT_IN_PROVIDERS, buildProvider, type Provider, type ProviderRow } from "./routing/providers.ts";
import { Router } from "./pipeline/route.ts";
import { Secret } from "./ops/secret.ts";
import { breakerSlot, type SharedState } from "./controls/shared-state.ts";
import { FetchTransport } from "./transport/transport.ts";
import { PoolTransport } from "./transport/transport-pool.ts";
import { startWorkers } from "./workers.ts";

export const VERSION: string = pkg.version;

/** The provider table: built-ins with config overrides, plus providers config adds. */
export function buildProviders(cfg: Config): Provider[] {
  const rows = new Map<string, ProviderRow>(BUILT_IN_PROVIDERS.map((r) => [r.name, r]));
  for (const [name, authority] of Object.entries(cfg.provider_authorities)) {
    const base = rows.get(name);
    rows.set(name, base === undefined ? { name, authority, dialect: "openai", auth: "bearer" } : { ...base, authority });
  }
  for (const [name, dialect] of Object.entries(cfg.provider_dialects)) {
    const r = rows.get(name);
    if (r !== undefined) rows.set(name, { ...r, dialect });
  }
  for (const [name, auth] of Object.entries(cfg.provider_auth_schemes)) {
    const r = rows.get(name);
    if (r !== undefined) rows.set(name, { ...r, auth });
  }
  for (const [name, basePath] of Object.entries(cfg.provider_base_paths)) {
    const r = rows.get(name);
    if (r !== undefined) rows.set(name, { ...r, basePath });
  }
  const wrap = (s: string) => new Secret(s);
  let slot = 0;
  return [...rows.values()].map((r) => {
    const p = buildProvider(r, cfg.upstream_tls, cfg.pool_keys[r.name], wrap, slot);
    slot += p.keys.length;
    return p;
  });
}

/**
 * A listener could not be bound (address in use, not on this host, no permission). It names the config key and
 * the address, and main exits 2 on it: retrying the same config will not help, and the systemd unit's
 * `RestartPreventExitStatus=2` then stops a restart loop.
 */
export class ListenError extends Error {
  constructor(
    readonly key: "listen" | "metrics_listen",
    readonly address: string,
    readonly code: string | undefined,
  ) {
    super(`${key} = "${address}": ${listenFailure(code)}`);
    this.name = "ListenError";
  }
}

function listenFailure(code: string | undefined): string {
  switch (code) {
    case "EADDRINUSE":
      return "address already in use (another process listens there; pick a free port or stop it)";
    case "EADDRNOTAVAIL":
      return "address not available on this host";
    case "EACCES":
      return "permission denied (ports below 1024 need privileges)";
    default:
      return `cannot listen${code !== undefined ? ` (${code})` : ""}`;
  }
}

export function bind<T>(key: "listen" | "metrics_listen", address: string, serve: () => T, onFail?: () => void): T {
  try {
    return serve();
  } catch (e) {
    onFail?.();
    const code = (e as NodeJS.ErrnoException).code;
    throw new ListenError(key, address, typeof code === "string" ? code : undefined);
  }
}

export interface Running {
  /** The single-thread path's gateway; undefined with workers >= 2 (each worker has its own). */
  gateway: Gateway | undefined;
  admin: Server<undefined>;
  /** Stop accepting, let in-flight requests finish (up to the grace period), flush logs. */
  shutdown(reason: string): Promise<void>;
}

/**
 * The request pipeline's state for one serving thread: the single-thread path's, or one worker's. `shared` (workers
 * >= 2) is the process-wide rate-limit and breaker state allocated by the main thread; undefined keeps each guard's
 * private state, exactly the single-thread path.
 */
export function buildGateway(cfg: Config, providers: Provider[], denySet: DenySet, metrics: Metrics, shared?: SharedState, verifyBudget?: SharedVerifyBudget): Gateway {
  // With workers the failed-verification budget is process-wide (one shared word); the success cache is per worker.
  const verifier = new KeyVerifier(cfg.signing_keys, verifyBudget !== undefined ? { sharedBudget: verifyBudget } : undefined);
  // The first Ed25519 operation builds noble's precomputed tables (hundreds of ms): pay that at boot, not on the
  // first managed request. A throwaway key under a configured kid exercises the whole verify path and fails.
  const firstKid = cfg.signing_keys.keys().next();
  if (!firstKid.done) verifier.verify(mint(firstKid.value, crypto.getRandomValues(new Uint8Array(32)), 0n, 0n));
  // SPEC §13: `auto`'s tiers become routes beside the aliases; the classifier's tables are built now, not on the first request.
  const auto =
    cfg.auto === undefined
      ? undefined
      : new AutoRouter(cfg, providers, (why) => log.gateway("warn", "auto: the external classifier did not answer; the built-in classifier decides", { reason: why, url: cfg.auto?.external?.url }));
  if (auto !== undefined) warmClassifier();
  return {
    denySet,
    cfg,
    rate: new RateGuard({ perCredentialRps: cfg.rate_limit_rps, byoRps: cfg.byo_rate_limit_rps }, shared),
    breakers: new Map(
      providers.map((p) => [
        p.name,
        new CircuitBreaker(
          { threshold: cfg.circuit_breaker_threshold, windowSecs: cfg.circuit_breaker_window_secs, resetSecs: cfg.circuit_breaker_reset_secs },
          shared !== undefined ? breakerSlot(shared, p.name) : undefined,
        ),
      ]),
    ),
    router: new Router(providers, aliasProviders(cfg, providers, auto)),
    auto,
    verifier,
    transport:
      cfg.upstream_transport === "pool"
        ? new PoolTransport({
            tls: cfg.upstream_tls,
            verifyCert: cfg.upstream_verify_cert,
            connectTimeoutMs: cfg.connect_timeout_secs * 1000,
            idleTimeoutMs: cfg.idle_timeout_secs * 1000,
            writeTimeoutMs: cfg.write_timeout_secs > 0 ? cfg.write_timeout_secs * 1000 : undefined,
          })
        : new FetchTransport({ verifyCert: cfg.upstream_verify_cert, idleTimeoutSecs: cfg.idle_timeout_secs }),
    metrics,
    pools: new KeyPools(cfg.key_pool, providers, shared),
    budgets: new RetryBudgets({ ratio: cfg.retry.budget_ratio, minPerSec: cfg.retry.budget_min_per_sec }, providers.map((p) => p.name), shared),
    replayPool: new ReplayPool(cfg.retry.replay_pool_bytes, shared),
    routes: new Routes(auto?.models ?? cfg.models, providers, cfg.prices),
  };
}

/**
 * Each virtual model's name → its first target's provider (the router's view: the dialect of its errors). With
 * `[auto]`, `auto` is one more (`/auto/v1/…`): its errors before a tier is chosen speak the medium tier's dialect.
 */
function aliasProviders(cfg: Config, providers: readonly Provider[], auto: AutoRouter | undefined): Map<string, Provider> {
  const models = auto?.models ?? cfg.models;
  const firstOf = (route: string): Provider | undefined => providers.find((p) => p.name === models[route]?.targets[0]?.provider);
  const out = new Map<string, Provider>();
  for (const alias of Object.keys(cfg.models)) {
    const first = firstOf(alias);
    if (first !== undefined) out.set(alias, first);
  }
  if (auto !== undefined) {
    const medium = firstOf(auto.routeOf(1));
    if (medium !== undefined) out.set(AUTO, medium);
  }
  return out;
}

/**
 * The client listener for one serving thread. `reusePort` (workers >= 2): every worker binds the same port and the
 * kernel spreads connections among them. Throws ListenError.
 */
export function serveClient(cfg: Config, gateway: Gateway, port: number, reusePort: boolean, onFail?: () => void): Server<undefined> {
  const handler = createHandler(gateway);
  const listen = parseListen(cfg.listen);
  return bind("listen", cfg.listen, () => Bun.serve({
    hostname: listen.hostname,
    port,
    reusePort,
    // Idle keep-alive client connections close after this; admitted requests switch it off (pipeline), and the
    // pipeline's own watch answers a client that stalls its body with 408 after the same time.
    idleTimeout: clientIdleSecs(cfg),
    // The gateway enforces max_request_body_bytes itself, with a 413 in the caller's dialect.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: handler,
    error(err) {
      log.gateway("error", "unhandled error in request handler", { error: String(err?.message ?? err) });
      return new Response(JSON.stringify({ error: { message: "internal gateway error", type: "api_error", code: "internal" } }), {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    },
  }), onFail);
}

/** The admin listener's routes other than /metrics, shared by both paths. */
export interface AdminRoutes {
  metrics(): string | Promise<string>;
  /** Extra routes (the test-only worker kill hook); undefined = not mine. */
  extra?(req: Request, path: string): Response | Promise<Response> | undefined;
}

export function serveAdmin(cfg: Config, watcher: DenyWatcher, metrics: Metrics, routes: AdminRoutes, onFail: () => void): Server<undefined> {
  // /readyz is always 200 (fail-open: never pulled from the load balancer). `status` is SPEC §9's: ok while NATS is
  // connected, degraded while it is configured but not connected; with nats_url = "" NATS is off by choice, so
  // nothing is degraded: ok, with `nats` saying "disabled".
  const natsOff = watcher.disabled;
  const readyz = (): Response => {
    if (natsOff) return Response.json({ status: "ok", nats: "disabled", version: VERSION });
    const up = metrics.value("ai_nats_connected") === 1;
    return Response.json({ status: up ? "ok" : "degraded", nats: up ? "connected" : "disconnected", version: VERSION });
  };
  const adminListen = parseListen(cfg.metrics_listen);
  const text = (body: string) => new Response(body, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
  return bind("metrics_listen", cfg.metrics_listen, () => Bun.serve({
    hostname: adminListen.hostname,
    port: adminListen.port,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/livez") return Response.json({ status: "ok", version: VERSION });
      if (path === "/readyz") return readyz();
      if (path === "/metrics") {
        const m = routes.metrics();
        return typeof m === "string" ? text(m) : m.then(text);
      }
      const extra = routes.extra?.(req, path);
      if (extra !== undefined) return extra;
      return Response.json({ status: "not_found", version: VERSION }, { status: 404 });
    },
  }), onFail);
}

export interface StartOptions {
  /** The --config argument main was given (undefined: found as loadConfig finds it); workers load the same. */
  configPath?: string | undefined;
}

export async function startGateway(cfg: Config, opts: StartOptions = {}): Promise<Running> {
  const providers = buildProviders(cfg);
  for (const name of Object.keys(cfg.pool_keys)) {
    if (!providers.some((p) => p.name === name)) log.gateway("warn", "pool key for an unknown provider is ignored", { provider: name });
  }
  if (cfg.signing_keys.size === 0) {
    log.gateway("warn", "no [signing_keys] configured: every bai_ key will get 401; BYO traffic is unaffected");
  }
  for (const w of cfg.warnings) log.gateway("warn", w);
  if (!cfg.usage_metering) log.gateway("warn", "usage_metering = false: managed requests are forwarded without ai.usage lines");
  let workers = cfg.workers;
  if (workers > 1 && process.platform !== "linux") {
    // SO_REUSEPORT spreading connections among sockets is Linux's; elsewhere only one socket would get them.
    log.gateway("warn", "workers > 1 needs SO_REUSEPORT load balancing (Linux): serving from one worker", { workers_configured: workers, platform: process.platform });
    workers = 1;
  }
  const metrics = new Metrics();
  const denySet = workers > 1 ? new BroadcastDenySet() : new DenySet();
  const watcher = new DenyWatcher({
    natsUrl: cfg.nats_url,
    credsBase64: cfg.nats_creds?.expose(),
    credsFile: cfg.nats_creds_file,
    bucket: cfg.config_bucket,
    snapshotPath: cfg.snapshot_path,
    set: denySet,
    onState: (st) => {
      metrics.setGauge("ai_nats_connected", st.connected ? 1 : 0);
      metrics.setGauge("ai_deny_set_revision", Number(st.revision));
      metrics.setGauge("ai_deny_set_size", st.size);
    },
    log: (level, msg, fields) => log.gateway(level, msg, fields),
  });
  // The snapshot (if any) is loaded before the first request is served, so a restart with NATS down still
  // enforces the last known denials; the NATS watch itself runs in the background (fail-open).
  await watcher.start();
  metrics.setGauge("ai_deny_set_size", denySet.size);
  metrics.setGauge("ai_deny_set_revision", Number(denySet.revision));
  if (workers > 1) return startWorkers({ cfg, configPath: opts.configPath, workers, providers, denySet: denySet as BroadcastDenySet, watcher, metrics });

  metrics.setGauge("ai_workers", 1);
  const gateway = buildGateway(cfg, providers, denySet, metrics);
  const listen = parseListen(cfg.listen);
  const server = serveClient(cfg, gateway, listen.port, false, () => {
    gateway.transport.close();
    void watcher.stop();
  });
  const scrape = (): string => {
    setPoolKeyStates(metrics, gateway.pools.states());
    return metrics.render();
  };
  const admin = serveAdmin(cfg, watcher, metrics, { metrics: scrape }, () => {
    // The client listener is already up: close it, so the failed boot leaves nothing bound behind it.
    void server.stop(true);
    gateway.transport.close();
    void watcher.stop();
  });
  const adminListen = parseListen(cfg.metrics_listen);
  log.gateway("info", "listening", {
    addr: `${listen.hostname}:${server.port}`,
    metrics_addr: `${adminListen.hostname}:${admin.port}`,
    version: VERSION,
    config: cfg.source,
    providers: providers.length,
    signing_keys: cfg.signing_keys.size,
    workers: 1,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.gateway("info", "shutting down: draining in-flight requests", { reason, grace_secs: cfg.shutdown_grace_period_secs });
      const grace = setTimeout(() => {
        log.gateway("warn", "grace period over: closing remaining connections");
        void server.stop(true);
      }, cfg.shutdown_grace_period_secs * 1000);
      await server.stop(false);
      clearTimeout(grace);
      void admin.stop(true);
      gateway.transport.close();
      await watcher.stop();
      log.gateway("info", "stopped");
      await log.flush();
    })();
    return stopping;
  };
  return { gateway, admin, shutdown };
}
