import { describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  applyDenyMessage,
  BroadcastDenySet,
  type DenyMessage,
  DenySet,
  decodeSnapshot,
  denyKeyTenant,
  encodeSnapshot,
  loadSnapshot,
  parseDenyKey,
  parseDenyValue,
  writeSnapshotAtomic,
  type DenyReason,
} from "../src/controls/denyset.ts";

const enc = new TextEncoder();
const v = (s: string): Uint8Array => enc.encode(s);

describe("deny key parsing", () => {
  test("blackhole.{u64} parses to the tenant id", () => {
    expect(parseDenyKey("blackhole.42")).toBe(42n);
    expect(parseDenyKey("blackhole.0")).toBe(0n);
    expect(parseDenyKey("blackhole.18446744073709551615")).toBe(18446744073709551615n);
  });

  test("leading zeros (and a leading +, as Rust's u64 parser allows) name the same tenant", () => {
    expect(parseDenyKey("blackhole.00042")).toBe(42n);
    expect(parseDenyKey(`blackhole.${"0".repeat(40)}7`)).toBe(7n);
    expect(parseDenyKey("blackhole.+42")).toBe(42n);
    expect(denyKeyTenant("blackhole.00042")).toBe("42");
  });

  test("non-numbers, other key families, negatives and values over u64 are ignored", () => {
    for (const key of [
      "blackhole.notanumber",
      "signkey.1",
      "blackhole.-1",
      "blackhole.",
      "blackhole.+",
      "blackhole.1.2",
      "blackhole.key.abc",
      "blackhole. 1",
      "blackhole.1 ",
      "blackhole.0x10",
      "blackhole.18446744073709551616",
      `blackhole.${"9".repeat(5000)}`,
      "Blackhole.1",
      "xblackhole.1",
    ]) {
      expect(parseDenyKey(key)).toBeUndefined();
    }
  });
});

describe("deny value parsing", () => {
  test("bare spend and fraud, trimmed", () => {
    expect(parseDenyValue(v("spend"))).toBe("spend");
    expect(parseDenyValue(v(" fraud "))).toBe("fraud");
    expect(parseDenyValue(v("\nspend\r\n"))).toBe("spend");
  });

  test("JSON reason is read and extra fields are ignored", () => {
    expect(parseDenyValue(v('{"reason":"spend","exp":123}'))).toBe("spend");
    expect(parseDenyValue(v(' {"exp":1,"reason":"fraud","note":{"reason":"spend"}} '))).toBe("fraud");
    expect(parseDenyValue(v('{"reason":"fr\\u0061ud"}'))).toBe("fraud");
  });

  test("a JSON reason that is not a known string is unknown", () => {
    expect(parseDenyValue(v('{"reason":1}'))).toBe("unknown");
    expect(parseDenyValue(v('{"reason":null}'))).toBe("unknown");
    expect(parseDenyValue(v('{"reason":["spend"]}'))).toBe("unknown");
    expect(parseDenyValue(v('{"reason":"weird"}'))).toBe("unknown");
    expect(parseDenyValue(v('{"exp":1}'))).toBe("unknown");
    expect(parseDenyValue(v('{"reason":"spend"'))).toBe("unknown");
  });

  test("anything else still denies as unknown", () => {
    expect(parseDenyValue(v("weird"))).toBe("unknown");
    expect(parseDenyValue(v("Spend"))).toBe("unknown");
    expect(parseDenyValue(v('"spend"'))).toBe("unknown");
    expect(parseDenyValue(v(""))).toBe("unknown");
    expect(parseDenyValue(v("[1]"))).toBe("unknown");
  });

  test("invalid UTF-8 is unknown", () => {
    expect(parseDenyValue(new Uint8Array([0x73, 0x70, 0xff, 0x6e, 0x64]))).toBe("unknown");
    expect(parseDenyValue(new Uint8Array([0xc3]))).toBe("unknown");
  });
});

describe("DenySet", () => {
  test("default allows unknown tenants", () => {
    const set = new DenySet();
    expect(set.lookup("1")).toBeUndefined();
    expect(set.lookup("18446744073709551615")).toBeUndefined();
    expect(set.size).toBe(0);
    expect(set.revision).toBe(0n);
  });

  test("insert, remove and reason; revision follows applied updates", () => {
    const set = new DenySet();
    set.apply({ kind: "put", tenant: "99", reason: "spend", revision: 3n });
    set.apply({ kind: "put", tenant: "1234", reason: "fraud", revision: 4n });
    expect(set.lookup("99")).toBe("spend");
    expect(set.lookup("1234")).toBe("fraud");
    expect(set.lookup("100")).toBeUndefined();
    expect(set.size).toBe(2);
    expect(set.revision).toBe(4n);

    set.apply({ kind: "put", tenant: "99", reason: "unknown", revision: 5n });
    expect(set.lookup("99")).toBe("unknown");
    expect(set.size).toBe(2);

    set.apply({ kind: "del", tenant: "99", revision: 6n });
    expect(set.lookup("99")).toBeUndefined();
    expect(set.lookup("1234")).toBe("fraud");
    expect(set.size).toBe(1);
    expect(set.revision).toBe(6n);

    // Deleting a tenant that is not denied is a no-op that still advances the cursor.
    set.apply({ kind: "del", tenant: "5", revision: 7n });
    expect(set.size).toBe(1);
    expect(set.revision).toBe(7n);
  });

  test("replaceAll swaps the whole set and its revision", () => {
    const set = new DenySet([["1", "spend"]], 9n);
    set.replaceAll(
      [
        ["2", "fraud"],
        ["3", "unknown"],
      ],
      20n,
    );
    expect(set.lookup("1")).toBeUndefined();
    expect(set.lookup("2")).toBe("fraud");
    expect(set.lookup("3")).toBe("unknown");
    expect(set.size).toBe(2);
    expect(set.revision).toBe(20n);
  });
});

function sample(): DenySet {
  return new DenySet(
    [
      ["0", "spend"],
      ["42", "fraud"],
      ["18446744073709551615", "unknown"],
      ["1234567890123", "spend"],
    ],
    0xfedc_ba98_7654_3210n,
  );
}

describe("snapshot encoding", () => {
  test("round trip keeps every entry, reason and the revision", () => {
    const set = sample();
    const decoded = decodeSnapshot(encodeSnapshot(set));
    if (decoded instanceof Error) throw decoded;
    expect(decoded.revision).toBe(0xfedc_ba98_7654_3210n);
    expect(new Map(decoded.entries)).toEqual(new Map(set.entries()));
  });

  test("an empty set round-trips", () => {
    const decoded = decodeSnapshot(encodeSnapshot(new DenySet()));
    expect(decoded).toEqual({ entries: [], revision: 0n });
  });

  test("every truncation is an error", () => {
    const bytes = encodeSnapshot(sample());
    for (let len = 0; len < bytes.length; len++) {
      const r = decodeSnapshot(bytes.subarray(0, len));
      expect(r).toBeInstanceOf(Error);
    }
  });

  test("trailing bytes are an error", () => {
    const bytes = encodeSnapshot(sample());
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(decodeSnapshot(longer)).toBeInstanceOf(Error);
  });

  test("any flipped byte is an error", () => {
    const bytes = encodeSnapshot(sample());
    for (let i = 0; i < bytes.length; i++) {
      const copy = bytes.slice();
      copy[i] = (copy[i] ?? 0) ^ 0x01;
      const r = decodeSnapshot(copy);
      expect(r).toBeInstanceOf(Error);
    }
  });

  test("wrong magic is an error that says so", () => {
    const bytes = encodeSnapshot(sample());
    bytes.set(enc.encode("PGSS"), 0);
    const r = decodeSnapshot(bytes);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toContain("magic");
  });

  test("garbage never throws", () => {
    let seed = 12345;
    for (let i = 0; i < 200; i++) {
      const junk = new Uint8Array(i * 3);
      for (let j = 0; j < junk.length; j++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        junk[j] = seed & 0xff;
      }
      if (i % 2 === 0 && junk.length >= 4) junk.set([0x42, 0x41, 0x49, 0x44], 0);
      let result: unknown;
      let threw = false;
      try {
        result = decodeSnapshot(junk);
      } catch {
        threw = true;
      }
      expect(threw).toBe(false);
      expect(result).toBeInstanceOf(Error);
    }
  });
});

describe("snapshot files", () => {
  async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), "denyset-"));
    try {
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  test("write then load round-trips", async () => {
    await withDir(async (dir) => {
      const path = join(dir, "deny.snap");
      await writeSnapshotAtomic(path, encodeSnapshot(sample()));
      const loaded = await loadSnapshot(path);
      if (!("entries" in loaded)) throw new Error(`load failed: ${JSON.stringify(loaded)}`);
      expect(loaded.revision).toBe(sample().revision);
      expect(new Map<string, DenyReason>(loaded.entries)).toEqual(new Map(sample().entries()));
    });
  });

  test("atomic write replaces the file and leaves no temp file behind", async () => {
    await withDir(async (dir) => {
      const path = join(dir, "deny.snap");
      await writeSnapshotAtomic(path, encodeSnapshot(sample()));
      await writeSnapshotAtomic(path, encodeSnapshot(new DenySet([["7", "fraud"]], 3n)));
      expect(await readdir(dir)).toEqual(["deny.snap"]);
      const loaded = await loadSnapshot(path);
      expect(loaded).toEqual({ entries: [["7", "fraud"]], revision: 3n });
    });
  });

  test("a failed write leaves the old file and no temp file", async () => {
    await withDir(async (dir) => {
      const path = join(dir, "deny.snap");
      await writeSnapshotAtomic(path, encodeSnapshot(sample()));
      // Renaming a file over a non-empty directory fails after the temp file was written and synced.
      const blocked = join(dir, "blocked");
      await mkdir(join(blocked, "inner"), { recursive: true });
      await expect(writeSnapshotAtomic(blocked, new Uint8Array([1, 2, 3]))).rejects.toThrow();
      expect((await readdir(dir)).sort()).toEqual(["blocked", "deny.snap"]);
      expect("entries" in (await loadSnapshot(path))).toBe(true);
    });
  });

  test("missing snapshot is reported as missing", async () => {
    await withDir(async (dir) => {
      expect(await loadSnapshot(join(dir, "nope.snap"))).toEqual({ missing: true });
    });
  });

  test("truncated and corrupt files are reported as errors", async () => {
    await withDir(async (dir) => {
      const bytes = encodeSnapshot(sample());
      const truncated = join(dir, "t.snap");
      await writeFile(truncated, bytes.subarray(0, bytes.length - 5));
      const t = await loadSnapshot(truncated);
      expect("error" in t && t.error).toContain("truncated");

      const flipped = join(dir, "f.snap");
      const copy = bytes.slice();
      copy[25] = (copy[25] ?? 0) ^ 0x80;
      await writeFile(flipped, copy);
      const f = await loadSnapshot(flipped);
      expect("error" in f && f.error).toContain("checksum");

      const empty = join(dir, "e.snap");
      await writeFile(empty, new Uint8Array(0));
      expect("error" in (await loadSnapshot(empty))).toBe(true);
    });
  });

  test("an unreadable path (a directory) is an error, not missing", async () => {
    await withDir(async (dir) => {
      const r = await loadSnapshot(dir);
      expect("error" in r).toBe(true);
    });
  });
});

describe("deny-set messages to worker threads (workers >= 2)", () => {
  test("every change to a BroadcastDenySet is broadcast, and a worker's set that applies the messages matches it", () => {
    const main = new BroadcastDenySet();
    const worker = new DenySet();
    const sent: DenyMessage[] = [];
    main.broadcast = (m) => {
      sent.push(m);
      applyDenyMessage(worker, structuredClone(m));
    };
    main.apply({ kind: "put", tenant: "42", reason: "spend", revision: 5n });
    main.apply({ kind: "put", tenant: "43", reason: "fraud", revision: 6n });
    main.apply({ kind: "del", tenant: "42", revision: 7n });
    expect(sent.map((m) => m.t)).toEqual(["deny", "deny", "deny"]);
    expect(worker.lookup("42")).toBeUndefined();
    expect(worker.lookup("43")).toBe("fraud");
    expect(worker.revision).toBe(7n);
    main.replaceAll(new Map([["44", "spend"]]), 9n);
    expect(sent.at(-1)?.t).toBe("denyAll");
    expect(worker.lookup("43")).toBeUndefined();
    expect(worker.lookup("44")).toBe("spend");
    expect(worker.revision).toBe(9n);
  });

  test("a starting worker gets the whole set as one message", () => {
    const main = new BroadcastDenySet([["1", "spend"], ["2", "unknown"]], 3n);
    const worker = new DenySet();
    applyDenyMessage(worker, structuredClone(main.message()));
    expect([...worker.entries()]).toEqual([["1", "spend"], ["2", "unknown"]]);
    expect(worker.revision).toBe(3n);
  });
});
