// Keeps a DenySet in sync with the JetStream KV bucket `config_bucket` (SPEC §7, reference §8.2).
//
// Lifecycle:
//   start(): load the snapshot (if configured) into the set → enforcement starts here, before any
//            NATS traffic → the connect loop runs in the background.
//   loop:    connect → open (or create, history 1) the bucket → seed or resume → watch until the
//            connection or the watch ends → back off (1 s doubling to 30 s, reset after a successful
//            connect) → again. Nothing in the loop throws out of this module and nothing clears the
//            set when NATS is lost: fail-open for availability, existing denials stay enforced.
//   nats_url = "": no loop at all (NATS is optional: BYO traffic never needs it); the snapshot still loads.
//
// Logging an outage: NATS may simply not exist on a first run, so its absence must not read as an error every
// backoff period. The first failure of an outage is one warn saying what it means; identical repeats are debug; a
// different error is a warn again; the connect that ends it is info and says how long it lasted.
//
// Seed vs resume. With a cursor (the set's revision, from the snapshot or a previous session) the
// watch is a KV ordered consumer starting at stream sequence revision + 1 (kv.watch's
// resumeFromRevision), so everything written while we were away is applied exactly once. Without a
// cursor, one ordered consumer with deliver policy last-per-subject does both jobs: its initial
// batch is the point-in-time scan (staged in a separate Map and swapped in whole when the consumer
// reports nothing pending), and it then keeps delivering live updates. Because it is one consumer,
// there is no window between "scan" and "watch" in which a write could be lost — including the
// empty-bucket case, where the consumer simply starts at sequence 1.
//
// A cursor is not trusted blindly: if the stream's first sequence has moved past revision + 1 (the
// resume point was purged) or its last sequence is below our revision (the bucket was deleted and
// recreated), we rescan instead.
//
// We run nats.js with `reconnect: false` and drive reconnects ourselves: every session then starts
// from our own applied cursor, which is the only state that matters, and the backoff is the SPEC's.

import {
  connect,
  credsAuthenticator,
  type ConnectionOptions,
  type KV,
  type KvEntry,
  type NatsConnection,
  type QueuedIterator,
} from "nats";
import { readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import {
  DenySet,
  denyKeyTenant,
  encodeSnapshot,
  loadSnapshot,
  parseDenyValue,
  writeSnapshotAtomic,
  type DenyReason,
} from "./denyset.ts";
import { redactNatsUrl } from "../ops/config.ts";

export interface DenyWatcherState {
  connected: boolean;
  revision: bigint;
  size: number;
}

export type DenyWatcherLog = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export interface DenyWatcherOptions {
  /** One URL or a comma-separated list. `user:pass@` (or `token@`) in the URL is used when no creds are set.
   * Empty (or blank): NATS is off — no connection attempts; the set is the snapshot's, if any, and never changes. */
  natsUrl: string;
  /** base64 of a `.creds` file (a secret; wins over credsFile). */
  credsBase64?: string;
  /** path of a `.creds` file, re-read on every connect so a rotated file is picked up. */
  credsFile?: string;
  bucket: string;
  snapshotPath?: string;
  set: DenySet;
  /** Drives ai_nats_connected, ai_deny_set_revision, ai_deny_set_size. */
  onState?: (s: DenyWatcherState) => void;
  /** Fields never carry credentials; revisions are passed as decimal strings (JSON has no bigint). */
  log?: DenyWatcherLog;
  /** Reconnect backoff. Default 1000 ms doubling to 30000 ms (SPEC §7). Tests shorten it. */
  backoffMs?: { initial: number; max: number };
  /** Minimum gap between snapshot writes; changes inside it coalesce into one write. Default 1000. */
  snapshotIntervalMs?: number;
  /** NATS connect timeout. Default 5000. */
  connectTimeoutMs?: number;
  /** After a failed snapshot write is logged, further failures are logged at most this often. Default 60000. */
  snapshotErrorLogIntervalMs?: number;
}

/** Counters for operators and tests (a resume must not rescan; a rescan must be visible). */
export interface DenyWatcherStats {
  /** Full scans completed (seed from last-per-subject). */
  scans: number;
  /** Sessions that resumed from a cursor without scanning. */
  resumes: number;
  /** Updates applied from the live watch (puts and deletes of `blackhole.{u64}` keys). */
  applied: number;
  /** Successful connects. */
  connects: number;
  /** Snapshot files written. */
  snapshotWrites: number;
  /** Snapshot writes that failed (each one is retried; only some are logged). */
  snapshotWriteFailures: number;
  /** Connect attempts that failed (credentials unreadable included). */
  connectFailures: number;
  /** Set when start() found a snapshot: "loaded", "missing" or "error". */
  snapshot: "none" | "loaded" | "missing" | "error";
}

const WATCH_KEY = "blackhole.>";
const DEFAULT_BACKOFF = { initial: 1000, max: 30_000 };
const DEFAULT_SNAPSHOT_INTERVAL_MS = 1000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_SNAPSHOT_ERROR_LOG_INTERVAL_MS = 60_000;
const SESSION_FAILED = "deny-set NATS session failed";
// nats.js' default is 2 min × 2 pings; a half-open TCP connection should not hide a dead server for
// 4 minutes while updates pile up.
const PING_INTERVAL_MS = 10_000;
const MAX_PINGS_OUT = 3;

export class DenyWatcher {
  readonly #opts: DenyWatcherOptions;
  readonly #set: DenySet;
  readonly #log: DenyWatcherLog;
  readonly #backoff: { initial: number; max: number };
  readonly #snapshotIntervalMs: number;
  readonly stats: DenyWatcherStats = {
    scans: 0,
    resumes: 0,
    applied: 0,
    connects: 0,
    snapshotWrites: 0,
    snapshotWriteFailures: 0,
    connectFailures: 0,
    snapshot: "none",
  };

  #connected = false;
  /** True once the set reflects the bucket up to `set.revision` (snapshot cursor or completed scan). */
  #seeded = false;
  #stopping = false;
  #started = false;
  #loop: Promise<void> | undefined;
  #nc: NatsConnection | undefined;
  #watch: QueuedIterator<KvEntry> | undefined;
  #wake: (() => void) | undefined;
  #stopSignal: Promise<void>;
  #signalStop: () => void = () => {};

  #snapshotDirty = false;
  #snapshotTimer: ReturnType<typeof setTimeout> | undefined;
  #snapshotWrite: Promise<void> | undefined;
  #lastSnapshotAt = 0;
  /** When a failed snapshot write was last logged (0: the last write succeeded), and failures not logged since. */
  #snapshotErrorLoggedAt = 0;
  #snapshotErrorsUnlogged = 0;

  /**
   * The outage being reported: the text of the last failure (identical repeats go to debug, so a gateway without
   * NATS logs one warning, not one a backoff period forever) and how many attempts failed since the last connect.
   */
  #lastFailure: string | undefined;
  #failedAttempts = 0;
  /** When the current outage began (first failure or lost connection); 0 while connected or never tried. */
  #downSince = 0;
  /** The connected line of this session went to debug (after a session failure): the watch starting says it. */
  #recoveryUnlogged = false;

  constructor(opts: DenyWatcherOptions) {
    this.#opts = opts;
    this.#set = opts.set;
    this.#log = opts.log ?? (() => {});
    this.#backoff = opts.backoffMs ?? DEFAULT_BACKOFF;
    this.#snapshotIntervalMs = opts.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS;
    this.#stopSignal = new Promise((resolve) => {
      this.#signalStop = resolve;
    });
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** nats_url is empty: no connection is ever attempted. */
  get disabled(): boolean {
    return this.#opts.natsUrl.trim() === "";
  }

  /** Resolves once the snapshot (if any) is in the set; NATS is connected in the background. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const path = this.#opts.snapshotPath;
    if (path !== undefined) {
      const loaded = await loadSnapshot(path);
      if ("missing" in loaded) {
        this.stats.snapshot = "missing";
        if (await directoryMissing(path)) {
          // Said at boot, since the first write (and its error) may be far off: it waits for NATS to deliver.
          this.#log("warn", "deny-set snapshot directory does not exist: no snapshot can be written until it is created", {
            path,
            directory: dirname(path),
          });
        } else {
          this.#log("info", "no deny-set snapshot yet; will seed from a scan", { path });
        }
      } else if ("error" in loaded) {
        this.stats.snapshot = "error";
        this.#log("warn", "deny-set snapshot ignored; will rescan", { path, error: loaded.error });
      } else {
        this.stats.snapshot = "loaded";
        this.#set.replaceAll(loaded.entries, loaded.revision);
        // Revision 0 means the snapshot never saw the bucket: it holds nothing to resume from.
        this.#seeded = loaded.revision > 0n;
        this.#log("info", "deny-set snapshot loaded", {
          path,
          size: this.#set.size,
          revision: loaded.revision.toString(),
        });
      }
    }
    this.#emitState();
    if (this.disabled) {
      this.#log("info", "NATS disabled (nats_url is empty): the deny-set is never updated; BYO and managed traffic flow", {
        size: this.#set.size,
      });
      return;
    }
    this.#loop = this.#run().catch((err: unknown) => {
      // #run catches everything itself; this is a last line so a bug can never become an
      // unhandled rejection that takes the gateway down.
      this.#log("error", "deny-set watcher loop crashed; deny-set frozen at its last state", { error: errMsg(err) });
    });
  }

  /** Stops the loop (interrupting a connect or a backoff sleep) and writes a final snapshot. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#signalStop();
    this.#wake?.();
    try {
      this.#watch?.stop();
    } catch {
      // already stopped
    }
    await this.#nc?.close().catch(() => {});
    await this.#loop;
    if (this.#snapshotTimer !== undefined) clearTimeout(this.#snapshotTimer);
    this.#snapshotTimer = undefined;
    await this.#snapshotWrite;
    if (this.#snapshotDirty) await this.#writeSnapshot();
  }

  async #run(): Promise<void> {
    let delay = this.#backoff.initial;
    while (!this.#stopping) {
      let connectedOk = false;
      try {
        connectedOk = await this.#session();
      } catch (err) {
        this.#failure("warn", SESSION_FAILED, { error: errMsg(err), bucket: this.#opts.bucket });
      }
      this.#setConnected(false);
      if (this.#stopping) break;
      if (connectedOk) delay = this.#backoff.initial;
      if (connectedOk) {
        // A watch that was running has ended: the start of an outage (the failures that follow are its repeats).
        this.#downSince = Date.now();
        this.#log("warn", "deny-set NATS connection lost: deny-set updates paused; fail-open, the last known deny-set stays enforced", {
          retry_in_ms: delay,
          size: this.#set.size,
          revision: this.#set.revision.toString(),
        });
      } else {
        this.#log("debug", "deny-set NATS retry scheduled", { retry_in_ms: delay, size: this.#set.size, revision: this.#set.revision.toString() });
      }
      await this.#sleep(delay);
      delay = Math.min(delay * 2, this.#backoff.max);
    }
  }

  /** One connection's life. Returns whether it connected (which resets the backoff). */
  async #session(): Promise<boolean> {
    const nc = await this.#connect();
    if (nc === undefined) return false;
    this.#nc = nc;
    try {
      this.stats.connects++;
      const fields: Record<string, unknown> = { server: redactNatsUrl(nc.getServer()), bucket: this.#opts.bucket };
      if (this.#downSince !== 0) {
        // The recovery line for an outage that was reported at warn.
        fields.recovered_after_failed_attempts = this.#failedAttempts;
        fields.down_ms = Date.now() - this.#downSince;
      }
      // A server that accepts the connection but fails the session each time (no JetStream) would log this line
      // every backoff period: after such a failure it goes to debug, like the failure's own repeats.
      const afterSessionFailure = this.#lastFailure?.startsWith(SESSION_FAILED) === true;
      this.#log(afterSessionFailure ? "debug" : "info", "deny-set NATS connected", fields);
      this.#recoveryUnlogged = afterSessionFailure;
      const js = nc.jetstream();
      // Creates the bucket (history 1) when missing; binds to it as-is when it exists.
      const kv = await js.views.kv(this.#opts.bucket, { history: 1 });
      if (this.#stopping) return true;

      let resumeFrom: number | undefined;
      if (this.#seeded) {
        const jsm = await nc.jetstreamManager();
        const { state } = await jsm.streams.info(`KV_${this.#opts.bucket}`);
        const rev = this.#set.revision;
        if (BigInt(state.last_seq) < rev) {
          this.#log("warn", "deny-set bucket is behind our cursor (recreated?); rescanning", {
            revision: rev.toString(),
            last_seq: state.last_seq,
          });
          this.#seeded = false;
        } else if (BigInt(state.first_seq) > rev + 1n) {
          this.#log("warn", "deny-set resume point purged from the stream; rescanning", {
            revision: rev.toString(),
            first_seq: state.first_seq,
          });
          this.#seeded = false;
        } else {
          resumeFrom = Number(rev + 1n);
        }
      }

      await this.#watchBucket(nc, kv, resumeFrom);
      return true;
    } finally {
      this.#setConnected(false);
      this.#watch = undefined;
      this.#nc = undefined;
      await nc.close().catch(() => {});
    }
  }

  /** Scan (resumeFrom undefined) or resume, then apply live updates until the watch ends. */
  async #watchBucket(nc: NatsConnection, kv: KV, resumeFrom: number | undefined): Promise<void> {
    const set = this.#set;
    let scanning = resumeFrom === undefined;
    let staged: Map<string, DenyReason> | undefined = scanning ? new Map() : undefined;
    let stagedRevision = 0n;

    const finishScan = (): void => {
      if (!scanning || staged === undefined) return;
      scanning = false;
      set.replaceAll(staged, stagedRevision);
      staged = undefined;
      this.#seeded = true;
      this.stats.scans++;
      this.#log("info", "deny-set seeded from a scan", { size: set.size, revision: stagedRevision.toString() });
      this.#changed();
    };

    const watch = await kv.watch(
      resumeFrom === undefined
        ? { key: WATCH_KEY, initializedFn: finishScan }
        : { key: WATCH_KEY, resumeFromRevision: resumeFrom },
    );
    this.#watch = watch;
    // A closed connection also closes the subscription, but stop the iterator explicitly in case a
    // nats.js version leaves it pending.
    void nc.closed().then(() => {
      try {
        watch.stop();
      } catch {
        // already stopped
      }
    });
    if (this.#stopping) {
      watch.stop();
      return;
    }
    // The watch runs: the outage (if any) is over, and the next failure is reported at warn again.
    if (this.#recoveryUnlogged) {
      this.#log("info", "deny-set NATS recovered: the deny-set watch runs again", {
        bucket: this.#opts.bucket,
        recovered_after_failed_attempts: this.#failedAttempts,
        down_ms: Date.now() - this.#downSince,
      });
      this.#recoveryUnlogged = false;
    }
    this.#lastFailure = undefined;
    this.#failedAttempts = 0;
    this.#downSince = 0;
    if (resumeFrom !== undefined) {
      this.stats.resumes++;
      this.#log("info", "deny-set watch resumed", { from_revision: resumeFrom });
    }
    this.#setConnected(true);

    for await (const e of watch) {
      const rev = BigInt(e.revision);
      const tenant = denyKeyTenant(e.key);
      const isPut = e.operation === "PUT";
      if (scanning && staged !== undefined) {
        if (rev > stagedRevision) stagedRevision = rev;
        if (tenant !== undefined) {
          if (isPut) staged.set(tenant, parseDenyValue(e.value));
          else staged.delete(tenant);
        }
        if (e.delta === 0) finishScan();
        continue;
      }
      // An ordered-consumer reset inside nats.js restarts after its last delivered sequence, so this
      // never fires in practice; it keeps "applied exactly once" true even if that changes.
      if (rev <= set.revision) continue;
      if (tenant === undefined) {
        // `blackhole.notanumber`, `blackhole.key.…`: ignored, but the cursor still moves past it
        // (and is persisted, so a resume does not re-read it).
        set.revision = rev;
        this.#changed();
        continue;
      }
      if (isPut) set.apply({ kind: "put", tenant, reason: parseDenyValue(e.value), revision: rev });
      else set.apply({ kind: "del", tenant, revision: rev });
      this.stats.applied++;
      this.#changed();
    }
  }

  /** Connects, or returns undefined after logging why. Interrupted by stop(). */
  async #connect(): Promise<NatsConnection | undefined> {
    let opts: ConnectionOptions;
    try {
      opts = await this.#connectionOptions();
    } catch (err) {
      this.#failure("error", "deny-set NATS credentials unreadable", { error: errMsg(err) });
      return undefined;
    }
    const attempt = connect(opts);
    const winner = await Promise.race([attempt.then((nc) => ({ nc }), (err: unknown) => ({ err })), this.#stopSignal]);
    if (winner === undefined) {
      // stop() won the race: close the connection if it opens later so nothing lingers.
      attempt.then((nc) => nc.close(), () => {}).catch(() => {});
      return undefined;
    }
    if ("err" in winner) {
      this.#failure("warn", "deny-set NATS connect failed: deny-set updates paused; fail-open, the last known deny-set stays enforced", {
        error: errMsg(winner.err),
        servers: redactNatsUrl(this.#opts.natsUrl),
        size: this.#set.size,
      });
      return undefined;
    }
    if (this.#stopping) {
      await winner.nc.close().catch(() => {});
      return undefined;
    }
    return winner.nc;
  }

  /**
   * A failed attempt: the first of an outage (or one whose error differs from the last) at `level`, identical
   * repeats at debug. connect() logs the recovery at info.
   */
  #failure(level: "warn" | "error", msg: string, fields: Record<string, unknown>): void {
    this.stats.connectFailures++;
    if (this.#downSince === 0) this.#downSince = Date.now();
    this.#failedAttempts++;
    const key = `${msg}\u0000${String(fields.error)}`;
    const repeat = key === this.#lastFailure;
    this.#lastFailure = key;
    this.#log(repeat ? "debug" : level, msg, { ...fields, failed_attempts: this.#failedAttempts });
  }

  #connectionOptions(): Promise<ConnectionOptions> {
    return natsConnectionOptions(this.#opts, {
      name: "beyond-ai",
      reconnect: false,
      timeout: this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    this.#emitState();
  }

  #emitState(): void {
    this.#opts.onState?.({ connected: this.#connected, revision: this.#set.revision, size: this.#set.size });
  }

  /** After every change to the set: publish state and schedule a coalesced snapshot write. */
  #changed(): void {
    this.#emitState();
    if (this.#opts.snapshotPath === undefined) return;
    this.#snapshotDirty = true;
    this.#scheduleSnapshot();
  }

  #scheduleSnapshot(): void {
    if (this.#snapshotTimer !== undefined || this.#snapshotWrite !== undefined || this.#stopping) return;
    // The first change after a quiet second is written at once (so a crash right after loses
    // nothing); a burst costs at most one write per interval.
    const wait = Math.max(0, this.#lastSnapshotAt + this.#snapshotIntervalMs - Date.now());
    this.#snapshotTimer = setTimeout(() => {
      this.#snapshotTimer = undefined;
      void this.#writeSnapshot();
    }, wait);
  }

  #writeSnapshot(): Promise<void> {
    const path = this.#opts.snapshotPath;
    if (path === undefined) return Promise.resolve();
    if (this.#snapshotWrite !== undefined) return this.#snapshotWrite;
    this.#snapshotDirty = false;
    const size = this.#set.size;
    let bytes: Uint8Array;
    try {
      bytes = encodeSnapshot(this.#set);
    } catch (err) {
      this.#log("error", "deny-set snapshot encode failed", { error: errMsg(err) });
      return Promise.resolve();
    }
    const write = writeSnapshotAtomic(path, bytes)
      .then(
        () => {
          this.stats.snapshotWrites++;
          if (this.#snapshotErrorLoggedAt !== 0) {
            this.#log("info", "deny-set snapshot write recovered", { path, size, failed_writes_unlogged: this.#snapshotErrorsUnlogged });
            this.#snapshotErrorLoggedAt = 0;
            this.#snapshotErrorsUnlogged = 0;
          }
        },
        (err: unknown) => {
          // The set in memory is still right; the write is retried every interval until it works. A cause that
          // does not go away (a missing directory) is logged once, then at most once per snapshotErrorLogIntervalMs.
          this.#snapshotDirty = true;
          this.stats.snapshotWriteFailures++;
          const now = Date.now();
          const every = this.#opts.snapshotErrorLogIntervalMs ?? DEFAULT_SNAPSHOT_ERROR_LOG_INTERVAL_MS;
          if (this.#snapshotErrorLoggedAt === 0 || now - this.#snapshotErrorLoggedAt >= every) {
            const fields: Record<string, unknown> = { path, size, error: errMsg(err), retry_every_ms: this.#snapshotIntervalMs };
            if (this.#snapshotErrorsUnlogged > 0) fields.failed_writes_unlogged = this.#snapshotErrorsUnlogged;
            this.#log("error", "deny-set snapshot write failed", fields);
            this.#snapshotErrorLoggedAt = now;
            this.#snapshotErrorsUnlogged = 0;
          } else {
            this.#snapshotErrorsUnlogged++;
          }
        },
      )
      .finally(() => {
        this.#snapshotWrite = undefined;
        this.#lastSnapshotAt = Date.now();
        // Changes that landed during the write: schedule the next one (stop() flushes its own).
        if (this.#snapshotDirty && !this.#stopping) this.#scheduleSnapshot();
      });
    this.#snapshotWrite = write;
    return write;
  }
}

/** Where to connect and how to authenticate: the parts of DenyWatcherOptions that `doctor` shares. */
export interface NatsTarget {
  natsUrl: string;
  credsBase64?: string | undefined;
  credsFile?: string | undefined;
}

/**
 * nats.js connection options for a target. Priority (reference §8.2): creds base64 > creds file > user:pass or
 * token in the URL > none. nats.js ignores userinfo in server URLs, so it is lifted into the options here and the
 * server strings nats.js sees (and may put in its errors) never carry it.
 */
export async function natsConnectionOptions(target: NatsTarget, base: ConnectionOptions): Promise<ConnectionOptions> {
  const servers: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  let token: string | undefined;
  for (const raw of target.natsUrl.split(",")) {
    const s = raw.trim();
    if (s === "") continue;
    const parsed = parseServer(s);
    servers.push(parsed.server);
    if (parsed.user !== undefined && user === undefined && token === undefined) {
      if (parsed.pass !== undefined) {
        user = parsed.user;
        pass = parsed.pass;
      } else {
        token = parsed.user;
      }
    }
  }
  const opts: ConnectionOptions = { ...base, servers };
  if (target.credsBase64 !== undefined && target.credsBase64 !== "") {
    opts.authenticator = credsAuthenticator(new Uint8Array(Buffer.from(target.credsBase64, "base64")));
  } else if (target.credsFile !== undefined && target.credsFile !== "") {
    opts.authenticator = credsAuthenticator(new Uint8Array(await readFile(target.credsFile)));
  } else if (user !== undefined) {
    opts.user = user;
    opts.pass = pass;
  } else if (token !== undefined) {
    opts.token = token;
  }
  return opts;
}

/**
 * Splits `[scheme://][userinfo@]host[:port]` by hand rather than with URL: a password holding `#`, `/` or `?`
 * makes URL throw or misparse, which used to leave the userinfo in the server string (and so in logs). Hosts
 * never hold an `@`, so the last one ends the userinfo.
 */
function parseServer(s: string): { server: string; user?: string; pass?: string } {
  const scheme = s.indexOf("://");
  const start = scheme < 0 ? 0 : scheme + 3;
  const at = s.lastIndexOf("@");
  if (at < start) return { server: s };
  const userinfo = s.slice(start, at);
  const server = s.slice(0, start) + s.slice(at + 1);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return { server, user: decodeLoose(userinfo) };
  return { server, user: decodeLoose(userinfo.slice(0, colon)), pass: decodeLoose(userinfo.slice(colon + 1)) };
}

/** Percent-decoding for userinfo that tolerates a literal `%` (a password pasted unencoded). */
function decodeLoose(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

async function directoryMissing(path: string): Promise<boolean> {
  try {
    await stat(dirname(path));
    return false;
  } catch (err) {
    return (err as { code?: unknown }).code === "ENOENT";
  }
}

function errMsg(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
