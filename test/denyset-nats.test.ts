// Integration: DenyWatcher against a real nats-server with JetStream (started and killed by the
// tests on a free loopback port, with its own store directory so data survives a restart).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type KV, type NatsConnection } from "nats";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DenySet, loadSnapshot } from "../src/controls/denyset.ts";
import { DenyWatcher, type DenyWatcherOptions } from "../src/controls/denyset-nats.ts";
import { freePort, NATS_SERVER, NatsServer, waitFor } from "./helpers/nats.ts";

const BUCKET = "ai-gateway";
const FAST_BACKOFF = { initial: 100, max: 400 };

async function startServer(): Promise<NatsServer> {
  return await NatsServer.launch({ storeDir: await mkdtemp(join(tmpdir(), "denyset-nats-")) });
}

async function disposeServer(s: NatsServer): Promise<void> {
  await s.stop();
  await rm(s.storeDir, { recursive: true, force: true });
}

/** A separate admin connection: how the control plane writes holds. */
class Admin {
  private constructor(
    readonly nc: NatsConnection,
    readonly kv: KV,
  ) {}

  static async open(url: string, bucket = BUCKET): Promise<Admin> {
    const nc = await connect({ servers: url, reconnect: false });
    const kv = await nc.jetstream().views.kv(bucket, { history: 1 });
    return new Admin(nc, kv);
  }

  put(key: string, value: string | Uint8Array): Promise<number> {
    return this.kv.put(key, typeof value === "string" ? new TextEncoder().encode(value) : value);
  }

  async lastSeq(bucket = BUCKET): Promise<bigint> {
    const jsm = await this.nc.jetstreamManager();
    return BigInt((await jsm.streams.info(`KV_${bucket}`)).state.last_seq);
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

function makeWatcher(
  url: string,
  extra: Partial<DenyWatcherOptions> = {},
): { watcher: DenyWatcher; set: DenySet; logs: LogLine[]; states: { connected: boolean; revision: bigint; size: number }[] } {
  const set = extra.set ?? new DenySet();
  const logs: LogLine[] = [];
  const states: { connected: boolean; revision: bigint; size: number }[] = [];
  const watcher = new DenyWatcher({
    natsUrl: url,
    bucket: BUCKET,
    backoffMs: FAST_BACKOFF,
    ...extra,
    set,
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    onState: (s) => states.push(s),
  });
  return { watcher, set, logs, states };
}

describe("live updates from a running NATS", () => {
  let server: NatsServer;
  let admin: Admin;
  let w: ReturnType<typeof makeWatcher>;

  beforeAll(async () => {
    server = await startServer();
    // The watcher starts first so it creates the bucket itself.
    w = makeWatcher(server.url);
    await w.watcher.start();
    await waitFor("connected", () => w.watcher.connected);
    admin = await Admin.open(server.url);
  });

  afterAll(async () => {
    await w.watcher.stop();
    await admin.close();
    await disposeServer(server);
  });

  test("a missing bucket is created with history 1", async () => {
    const jsm = await admin.nc.jetstreamManager();
    const info = await jsm.streams.info(`KV_${BUCKET}`);
    expect(info.config.max_msgs_per_subject).toBe(1);
    expect(w.watcher.stats.scans).toBe(1);
  });

  test("a spend hold denies with reason spend within 1 s", async () => {
    expect(w.set.lookup("99")).toBeUndefined();
    await admin.put("blackhole.99", "spend");
    await waitFor("spend applied", () => w.set.lookup("99") === "spend", 1000);
  });

  test("a fraud hold denies with reason fraud", async () => {
    await admin.put("blackhole.1234", "fraud");
    await waitFor("fraud applied", () => w.set.lookup("1234") === "fraud");
  });

  test("a JSON hold is read by its reason field", async () => {
    await admin.put("blackhole.555", '{"reason":"spend","exp":1790000000}');
    await waitFor("json applied", () => w.set.lookup("555") !== undefined);
    expect(w.set.lookup("555")).toBe("spend");
  });

  test("a junk value still denies as unknown", async () => {
    await admin.put("blackhole.666", "weird");
    await admin.put("blackhole.667", new Uint8Array([0xff, 0xfe]));
    await waitFor("junk applied", () => w.set.lookup("666") !== undefined && w.set.lookup("667") !== undefined);
    expect(w.set.lookup("666")).toBe("unknown");
    expect(w.set.lookup("667")).toBe("unknown");
  });

  test("delete restores the tenant", async () => {
    await admin.put("blackhole.700", "spend");
    await waitFor("put applied", () => w.set.lookup("700") === "spend");
    await admin.kv.delete("blackhole.700");
    await waitFor("delete applied", () => w.set.lookup("700") === undefined);
  });

  test("purge restores the tenant", async () => {
    await admin.put("blackhole.701", "fraud");
    await waitFor("put applied", () => w.set.lookup("701") === "fraud");
    await admin.kv.purge("blackhole.701");
    await waitFor("purge applied", () => w.set.lookup("701") === undefined);
  });

  test("other tenants and keys are unaffected, and the cursor reaches the stream's last sequence", async () => {
    await admin.put("blackhole.800", "spend");
    await admin.put("signkey.1", "spend");
    await admin.put("blackhole.notanumber", "fraud");
    await admin.put("blackhole.00801", "fraud");
    const last = await admin.lastSeq();
    await waitFor("cursor caught up", () => w.set.revision === last);
    expect(w.set.lookup("800")).toBe("spend");
    expect(w.set.lookup("801")).toBe("fraud");
    expect(w.set.lookup("1")).toBeUndefined();
    expect(w.set.lookup("1234")).toBe("fraud");
    expect(w.set.lookup("99")).toBe("spend");
    expect(w.set.size).toBe(7); // 99, 1234, 555, 666, 667, 800, 801
  });

  test("onState reports connection, size and revision", () => {
    const last = w.states[w.states.length - 1];
    expect(last).toEqual({ connected: true, revision: w.set.revision, size: w.set.size });
    expect(w.states[0]?.connected).toBe(false);
  });
});

describe("boot", () => {
  test("holds present before start are seeded from a scan", async () => {
    const server = await startServer();
    const admin = await Admin.open(server.url);
    try {
      await admin.put("signkey.9", "x");
      await admin.put("blackhole.1", "spend");
      await admin.put("blackhole.2", "fraud");
      await admin.put("blackhole.3", "spend");
      await admin.kv.delete("blackhole.3");
      await admin.put("blackhole.4", "spend");
      await admin.put("blackhole.4", '{"reason":"fraud"}');
      const last = await admin.lastSeq();

      const w = makeWatcher(server.url);
      await w.watcher.start();
      await waitFor("seeded", () => w.watcher.stats.scans === 1);
      expect(w.set.lookup("1")).toBe("spend");
      expect(w.set.lookup("2")).toBe("fraud");
      expect(w.set.lookup("3")).toBeUndefined();
      expect(w.set.lookup("4")).toBe("fraud");
      expect(w.set.size).toBe(3);
      expect(w.set.revision).toBe(last);

      // And the watch carries on from there.
      await admin.put("blackhole.5", "spend");
      await waitFor("live update after seed", () => w.set.lookup("5") === "spend");
      expect(w.watcher.stats.applied).toBe(1);
      await w.watcher.stop();
    } finally {
      await admin.close();
      await disposeServer(server);
    }
  });

  test("NATS down at boot: start() resolves allowing everyone, then the watcher connects and seeds when NATS comes up", async () => {
    const dir = await mkdtemp(join(tmpdir(), "denyset-nats-"));
    const server = new NatsServer(await freePort(), dir);
    const w = makeWatcher(server.url);
    try {
      await w.watcher.start();
      expect(w.watcher.connected).toBe(false);
      expect(w.set.size).toBe(0);
      await waitFor("a failed connect is logged", () => w.logs.some((l) => l.msg.startsWith("deny-set NATS connect failed")));
      expect(w.watcher.connected).toBe(false);

      await server.start();
      const admin = await Admin.open(server.url);
      await admin.put("blackhole.42", "fraud");
      await waitFor("connected and seeded", () => w.watcher.connected && w.set.lookup("42") === "fraud");
      await admin.close();
    } finally {
      await w.watcher.stop();
      await disposeServer(server);
    }
  });

  test("an empty bucket is watched from sequence 1 so the first hold is not lost", async () => {
    const server = await startServer();
    const admin = await Admin.open(server.url); // creates the empty bucket
    const w = makeWatcher(server.url);
    try {
      await w.watcher.start();
      await waitFor("seeded", () => w.watcher.stats.scans === 1);
      expect(w.set.revision).toBe(0n);
      await admin.put("blackhole.7", "spend");
      await waitFor("first hold applied", () => w.set.lookup("7") === "spend");
      expect(w.set.revision).toBe(1n);
    } finally {
      await w.watcher.stop();
      await admin.close();
      await disposeServer(server);
    }
  });
});

describe("fail-open and gap-free reconnect", () => {
  test("denials survive NATS loss, and holds written while disconnected all apply once after reconnect", async () => {
    const server = await startServer();
    // A long backoff so the writes below land while the watcher is provably still disconnected.
    const w = makeWatcher(server.url, { backoffMs: { initial: 2500, max: 2500 } });
    try {
      let admin = await Admin.open(server.url);
      await w.watcher.start();
      await waitFor("connected", () => w.watcher.connected);
      await admin.put("blackhole.10", "spend");
      await admin.put("blackhole.11", "fraud");
      await waitFor("holds applied", () => w.set.size === 2);
      await admin.close();
      const appliedBefore = w.watcher.stats.applied;
      const connectsBefore = w.watcher.stats.connects;

      await server.stop();
      await waitFor("disconnect noticed", () => !w.watcher.connected);
      expect(w.set.lookup("10")).toBe("spend");
      expect(w.set.lookup("11")).toBe("fraud");
      expect(w.set.lookup("12")).toBeUndefined();

      await server.start();
      admin = await Admin.open(server.url);
      await admin.put("blackhole.12", "spend");
      await admin.put("blackhole.13", "fraud");
      await admin.kv.delete("blackhole.10");
      await admin.put("blackhole.14", '{"reason":"spend"}');
      const last = await admin.lastSeq();
      expect(w.watcher.stats.connects).toBe(connectsBefore);
      expect(w.watcher.connected).toBe(false);

      await waitFor("caught up after reconnect", () => w.set.revision === last, 10_000);
      expect(w.watcher.connected).toBe(true);
      expect(w.set.lookup("10")).toBeUndefined();
      expect(w.set.lookup("11")).toBe("fraud");
      expect(w.set.lookup("12")).toBe("spend");
      expect(w.set.lookup("13")).toBe("fraud");
      expect(w.set.lookup("14")).toBe("spend");
      expect(w.watcher.stats.applied - appliedBefore).toBe(4);
      expect(w.watcher.stats.scans).toBe(1);
      expect(w.watcher.stats.resumes).toBe(1);
      await admin.close();
    } finally {
      await w.watcher.stop();
      await disposeServer(server);
    }
  }, 20_000);
});

describe("snapshot", () => {
  let snapDir: string;
  beforeAll(async () => {
    snapDir = await mkdtemp(join(tmpdir(), "denyset-snap-"));
  });
  afterAll(async () => {
    await rm(snapDir, { recursive: true, force: true });
  });

  test("a restart with NATS down enforces the snapshot's denials as soon as start() resolves", async () => {
    const path = join(snapDir, "restart.snap");
    const server = await startServer();
    const admin = await Admin.open(server.url);
    const first = makeWatcher(server.url, { snapshotPath: path });
    await first.watcher.start();
    await admin.put("blackhole.1234", "fraud");
    await waitFor("applied", () => first.set.lookup("1234") === "fraud");
    // The checkpoint reaches disk on its own (without waiting for stop()), as a crash would need.
    await waitFor("snapshot written", async () => {
      const s = await loadSnapshot(path);
      return "entries" in s && s.entries.length === 1;
    });
    await first.watcher.stop();
    await admin.close();
    await disposeServer(server);

    const second = makeWatcher(`nats://127.0.0.1:${await freePort()}`, { snapshotPath: path });
    await second.watcher.start();
    expect(second.watcher.stats.snapshot).toBe("loaded");
    expect(second.set.lookup("1234")).toBe("fraud");
    expect(second.set.lookup("1")).toBeUndefined();
    expect(second.watcher.connected).toBe(false);
    expect(second.states[0]).toEqual({ connected: false, revision: 1n, size: 1 });
    await second.watcher.stop();
  });

  test("a snapshot from an earlier run resumes from revision + 1 without a rescan", async () => {
    const path = join(snapDir, "resume.snap");
    const server = await startServer();
    const admin = await Admin.open(server.url);
    try {
      const first = makeWatcher(server.url, { snapshotPath: path });
      await first.watcher.start();
      await admin.put("blackhole.1", "spend");
      await admin.put("blackhole.2", "fraud");
      await waitFor("applied", () => first.set.size === 2);
      await first.watcher.stop();
      const saved = await loadSnapshot(path);
      expect("entries" in saved && saved.revision).toBe(2n);

      // Written while no gateway runs.
      await admin.kv.delete("blackhole.1");
      await admin.put("blackhole.3", "spend");

      const second = makeWatcher(server.url, { snapshotPath: path });
      await second.watcher.start();
      expect(second.set.lookup("1")).toBe("spend"); // enforced from the snapshot before NATS answers
      await waitFor("caught up", async () => second.set.revision === (await admin.lastSeq()));
      expect(second.set.lookup("1")).toBeUndefined();
      expect(second.set.lookup("2")).toBe("fraud");
      expect(second.set.lookup("3")).toBe("spend");
      expect(second.watcher.stats.scans).toBe(0);
      expect(second.watcher.stats.resumes).toBe(1);
      expect(second.watcher.stats.applied).toBe(2);
      expect(second.logs.find((l) => l.msg === "deny-set watch resumed")?.fields).toEqual({ from_revision: 3 });
      await second.watcher.stop();
    } finally {
      await admin.close();
      await disposeServer(server);
    }
  });

  test("a corrupt snapshot is logged and ignored, the bucket is rescanned and the file rewritten", async () => {
    const path = join(snapDir, "corrupt.snap");
    await writeFile(path, "BAID this is not a snapshot");
    const server = await startServer();
    const admin = await Admin.open(server.url);
    try {
      await admin.put("blackhole.77", "fraud");
      const w = makeWatcher(server.url, { snapshotPath: path });
      await w.watcher.start();
      expect(w.watcher.stats.snapshot).toBe("error");
      expect(w.logs.some((l) => l.level === "warn" && l.msg.includes("snapshot ignored"))).toBe(true);
      expect(w.set.size).toBe(0);
      await waitFor("rescanned", () => w.watcher.stats.scans === 1);
      expect(w.set.lookup("77")).toBe("fraud");
      await w.watcher.stop();
      expect(await loadSnapshot(path)).toEqual({ entries: [["77", "fraud"]], revision: 1n });
    } finally {
      await admin.close();
      await disposeServer(server);
    }
  });

  test("a resume point purged from the stream forces a rescan", async () => {
    const path = join(snapDir, "purged.snap");
    const server = await startServer();
    const admin = await Admin.open(server.url);
    try {
      const first = makeWatcher(server.url, { snapshotPath: path });
      await first.watcher.start();
      await admin.put("blackhole.1", "spend"); // seq 1
      await waitFor("applied", () => first.set.size === 1);
      await first.watcher.stop();

      await admin.put("blackhole.3", "spend"); // seq 2
      const jsm = await admin.nc.jetstreamManager();
      await jsm.streams.purge(`KV_${BUCKET}`); // seqs 1-2 gone without delete markers
      await admin.put("blackhole.2", "fraud"); // seq 3

      const second = makeWatcher(server.url, { snapshotPath: path });
      await second.watcher.start();
      expect(second.set.lookup("1")).toBe("spend");
      await waitFor("rescanned", () => second.watcher.stats.scans === 1);
      expect(second.watcher.stats.resumes).toBe(0);
      expect(second.set.lookup("1")).toBeUndefined();
      expect(second.set.lookup("3")).toBeUndefined();
      expect(second.set.lookup("2")).toBe("fraud");
      expect(second.set.revision).toBe(3n);
      expect(second.logs.some((l) => l.msg.includes("resume point purged"))).toBe(true);
      await second.watcher.stop();
    } finally {
      await admin.close();
      await disposeServer(server);
    }
  });

  test("a bucket recreated behind the snapshot's cursor forces a rescan", async () => {
    const path = join(snapDir, "recreated.snap");
    const server = await startServer();
    let admin = await Admin.open(server.url);
    try {
      const first = makeWatcher(server.url, { snapshotPath: path });
      await first.watcher.start();
      await admin.put("blackhole.1", "spend");
      await admin.put("blackhole.2", "spend");
      await admin.put("blackhole.3", "spend");
      await waitFor("applied", () => first.set.size === 3);
      await first.watcher.stop();

      await (await admin.nc.jetstreamManager()).streams.delete(`KV_${BUCKET}`);
      await admin.close();
      admin = await Admin.open(server.url);
      await admin.put("blackhole.9", "fraud"); // seq 1 of the new stream

      const second = makeWatcher(server.url, { snapshotPath: path });
      await second.watcher.start();
      await waitFor("rescanned", () => second.watcher.stats.scans === 1);
      expect(second.set.size).toBe(1);
      expect(second.set.lookup("9")).toBe("fraud");
      expect(second.set.revision).toBe(1n);
      await second.watcher.stop();
    } finally {
      await admin.close();
      await disposeServer(server);
    }
  });

  test("snapshot writes coalesce, and stop() writes the final state", async () => {
    const path = join(snapDir, "coalesce.snap");
    const server = await startServer();
    const admin = await Admin.open(server.url);
    try {
      const w = makeWatcher(server.url, { snapshotPath: path, snapshotIntervalMs: 60_000 });
      await w.watcher.start();
      await waitFor("seeded", () => w.watcher.stats.scans === 1);
      for (let i = 100; i < 120; i++) await admin.put(`blackhole.${i}`, "spend");
      await waitFor("all applied", () => w.set.size === 20);
      // The seed wrote once; the 20 updates inside the interval wait for the next slot.
      expect(w.watcher.stats.snapshotWrites).toBe(1);
      await w.watcher.stop();
      expect(w.watcher.stats.snapshotWrites).toBe(2);
      const saved = await loadSnapshot(path);
      expect("entries" in saved && saved.entries.length).toBe(20);
      expect("entries" in saved && saved.revision).toBe(20n);
    } finally {
      await admin.close();
      await disposeServer(server);
    }
  });
});

describe("shutdown and secrets", () => {
  test("stop() interrupts the reconnect backoff", async () => {
    const w = makeWatcher(`nats://127.0.0.1:${await freePort()}`, { backoffMs: { initial: 600_000, max: 600_000 } });
    await w.watcher.start();
    await waitFor("first attempt failed", () => w.logs.some((l) => l.fields?.retry_in_ms !== undefined));
    await w.watcher.stop();
    expect(w.watcher.connected).toBe(false);
  });

  test("credentials never reach the log", async () => {
    const server = await startServer();
    const deadPort = await freePort();
    const creds = Buffer.from("-----BEGIN NATS USER JWT-----\nTOPSECRETJWT\n------END NATS USER JWT------\n").toString("base64");
    try {
      // Bad creds against a live server (rejected by the client), and both against a dead port.
      const watchers = [
        makeWatcher(`nats://alice:hunter2@127.0.0.1:${server.port}`, { credsBase64: creds }),
        makeWatcher(`nats://alice:hunter2@127.0.0.1:${deadPort}`, { credsBase64: creds }),
        makeWatcher(`nats://alice:hunter2@127.0.0.1:${deadPort}`),
        // No creds: the URL's user:pass is used (this server has no auth, so it connects).
        makeWatcher(`nats://alice:hunter2@127.0.0.1:${server.port}`),
      ];
      for (const w of watchers) await w.watcher.start();
      // Repeats of one failure are logged at debug: count the attempts at any level.
      await waitFor("failures logged", () => watchers.slice(0, 3).every((w) => w.watcher.stats.connectFailures >= 2));
      await waitFor("url-credential watcher connected", () => watchers[3]?.watcher.connected === true);
      for (const w of watchers) await w.watcher.stop();
      const text = JSON.stringify(watchers.flatMap((w) => w.logs));
      expect(text).toContain(`127.0.0.1:${deadPort}`);
      expect(text).toContain("BAD_CREDS");
      expect(text).not.toContain("hunter2");
      expect(text).not.toContain("alice");
      expect(text).not.toContain("TOPSECRETJWT");
      expect(text).not.toContain(creds);
    } finally {
      await disposeServer(server);
    }
  });
});

describe("a snapshot directory that does not exist", () => {
  test("a missing snapshot directory is a warn at boot; a failing write is then logged once, retried quietly, and its recovery logged at info", async () => {
    const base = await mkdtemp(join(tmpdir(), "denyset-snapdir-"));
    const missingDir = join(base, "not-yet");
    const path = join(missingDir, "deny.snap");
    const server = await startServer();
    const admin = await Admin.open(server.url);
    // Retries every 20 ms; the error line may repeat only once a minute, so within this test it is logged once.
    const w = makeWatcher(server.url, { snapshotPath: path, snapshotIntervalMs: 20 });
    try {
      await w.watcher.start();
      // Said at boot already: the first write may wait a long time for NATS.
      const boot = w.logs.find((l) => l.msg.startsWith("deny-set snapshot directory does not exist"));
      expect(boot?.level).toBe("warn");
      expect(boot?.fields?.directory).toBe(missingDir);
      await admin.put("blackhole.5", "spend");
      await waitFor("applied", () => w.set.lookup("5") === "spend");
      await waitFor("many failed writes", () => w.watcher.stats.snapshotWriteFailures >= 10);
      const failures = w.logs.filter((l) => l.msg === "deny-set snapshot write failed");
      expect(failures.length).toBe(1);
      expect(failures[0]?.level).toBe("error");
      expect(String(failures[0]?.fields?.error)).toContain("ENOENT");

      // The operator creates the directory: the next retry writes the file and says so, once, at info.
      await mkdir(missingDir);
      await waitFor("snapshot written", () => w.watcher.stats.snapshotWrites >= 1);
      const recovered = w.logs.filter((l) => l.msg === "deny-set snapshot write recovered");
      expect(recovered.length).toBe(1);
      expect(recovered[0]?.level).toBe("info");
      expect(Number(recovered[0]?.fields?.failed_writes_unlogged)).toBeGreaterThanOrEqual(9);
      const saved = await loadSnapshot(path);
      expect("entries" in saved && saved.entries).toEqual([["5", "spend"]]);
    } finally {
      await w.watcher.stop();
      await admin.close();
      await disposeServer(server);
      await rm(base, { recursive: true, force: true });
    }
  });

  test("after the quiet interval a still-failing write is logged again with the count it left out", async () => {
    const base = await mkdtemp(join(tmpdir(), "denyset-snapdir-"));
    const path = join(base, "never", "deny.snap");
    const server = await startServer();
    const admin = await Admin.open(server.url);
    const w = makeWatcher(server.url, { snapshotPath: path, snapshotIntervalMs: 10, snapshotErrorLogIntervalMs: 150 });
    try {
      await w.watcher.start();
      await admin.put("blackhole.6", "fraud");
      await waitFor("logged twice", () => w.logs.filter((l) => l.msg === "deny-set snapshot write failed").length >= 2);
      const second = w.logs.filter((l) => l.msg === "deny-set snapshot write failed")[1];
      expect(Number(second?.fields?.failed_writes_unlogged)).toBeGreaterThanOrEqual(1);
      // Far fewer lines than failed writes: the point of the limit.
      expect(w.logs.filter((l) => l.msg === "deny-set snapshot write failed").length).toBeLessThan(w.watcher.stats.snapshotWriteFailures);
    } finally {
      await w.watcher.stop();
      await admin.close();
      await disposeServer(server);
      await rm(base, { recursive: true, force: true });
    }
  });
});

describe("NATS is optional: what an outage logs", () => {
  test("NATS down: the first failed connect is a warn saying what it means, repeats are debug, none is an error; the recovery is info", async () => {
    const dir = await mkdtemp(join(tmpdir(), "denyset-nats-"));
    const server = new NatsServer(await freePort(), dir);
    const w = makeWatcher(server.url, { backoffMs: { initial: 20, max: 40 } });
    try {
      await w.watcher.start();
      await waitFor("several failed attempts", () => w.watcher.stats.connectFailures >= 4);
      const failed = w.logs.filter((l) => l.msg.startsWith("deny-set NATS connect failed"));
      expect(failed[0]?.level).toBe("warn");
      expect(failed[0]?.msg).toContain("deny-set updates paused");
      expect(failed[0]?.msg).toContain("fail-open");
      expect(failed.slice(1).length).toBeGreaterThanOrEqual(3);
      expect(failed.slice(1).every((l) => l.level === "debug")).toBe(true);
      expect(w.logs.filter((l) => l.level === "error")).toEqual([]);
      expect(w.logs.filter((l) => l.level === "warn").length).toBe(1);

      await server.start();
      await waitFor("connected", () => w.watcher.connected);
      const up = w.logs.find((l) => l.msg === "deny-set NATS connected");
      expect(up?.level).toBe("info");
      expect(Number(up?.fields?.recovered_after_failed_attempts)).toBeGreaterThanOrEqual(4);

      // A new outage is reported at warn again (connection lost), not buried as a repeat of the old one.
      await server.stop();
      await waitFor("lost", () => w.logs.some((l) => l.msg.startsWith("deny-set NATS connection lost")));
      expect(w.logs.find((l) => l.msg.startsWith("deny-set NATS connection lost"))?.level).toBe("warn");
    } finally {
      await w.watcher.stop();
      await disposeServer(server);
    }
  }, 20_000);

  test("a server without JetStream: the session failure is one warn, its repeats (connected line included) are debug; JetStream back is info", async () => {
    const port = await freePort();
    const plain = Bun.spawn([NATS_SERVER, "-a", "127.0.0.1", "-p", String(port)], { stdout: "ignore", stderr: "ignore" });
    const dir = await mkdtemp(join(tmpdir(), "denyset-nats-"));
    const js = new NatsServer(port, dir);
    const w = makeWatcher(`nats://127.0.0.1:${port}`, { backoffMs: { initial: 20, max: 40 } });
    try {
      await w.watcher.start();
      await waitFor("several failed sessions", () => w.logs.filter((l) => l.msg === "deny-set NATS session failed").length >= 3);
      const sessions = w.logs.filter((l) => l.msg === "deny-set NATS session failed");
      expect(sessions[0]?.level).toBe("warn");
      expect(sessions.slice(1).every((l) => l.level === "debug")).toBe(true);
      const connected = w.logs.filter((l) => l.msg === "deny-set NATS connected");
      expect(connected[0]?.level).toBe("info");
      expect(connected.slice(1).every((l) => l.level === "debug")).toBe(true);
      expect(w.logs.filter((l) => l.level === "error")).toEqual([]);

      plain.kill("SIGTERM");
      await plain.exited;
      await js.start();
      await waitFor("connected", () => w.watcher.connected);
      const back = w.logs.find((l) => l.msg.startsWith("deny-set NATS recovered"));
      expect(back?.level).toBe("info");
      expect(Number(back?.fields?.recovered_after_failed_attempts)).toBeGreaterThanOrEqual(3);
    } finally {
      await w.watcher.stop();
      plain.kill("SIGKILL");
      await disposeServer(js);
    }
  }, 20_000);

  test('nats_url "" disables NATS: start() makes no connection attempt, logs that NATS is off, and the snapshot still enforces', async () => {
    const dir = await mkdtemp(join(tmpdir(), "denyset-off-"));
    const path = join(dir, "deny.snap");
    const seeded = new DenySet([["77", "fraud"]], 3n);
    const { encodeSnapshot, writeSnapshotAtomic } = await import("../src/controls/denyset.ts");
    await writeSnapshotAtomic(path, encodeSnapshot(seeded));
    const w = makeWatcher("", { snapshotPath: path, backoffMs: { initial: 1, max: 1 } });
    try {
      await w.watcher.start();
      expect(w.watcher.disabled).toBe(true);
      expect(w.set.lookup("77")).toBe("fraud");
      expect(w.logs.some((l) => l.level === "info" && l.msg.startsWith("NATS disabled"))).toBe(true);
      // With a 1 ms backoff a running loop would have tried dozens of times by now.
      await Bun.sleep(100);
      expect(w.watcher.stats.connectFailures).toBe(0);
      expect(w.watcher.stats.connects).toBe(0);
      expect(w.logs.filter((l) => l.msg.includes("connect"))).toEqual([]);
      await w.watcher.stop();
      expect(w.watcher.connected).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
