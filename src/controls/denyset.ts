// The deny-set: tenants whose managed keys are refused (SPEC §7, reference §8).
//
// Only denied tenants are held, so memory is O(denied) and the default is allow. The control plane
// writes `blackhole.{tenant}` keys into a JetStream KV bucket; denyset-nats.ts keeps this set in sync
// with it, and the snapshot below lets a restarted gateway enforce before NATS answers.
//
// This module is pure data + file I/O: no NATS, no config, no logging.

import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** spend → 402; fraud and unknown → 403. Unknown is fail-safe: a value we cannot read still denies. */
export type DenyReason = "spend" | "fraud" | "unknown";

export type DenyOp =
  | { kind: "put"; tenant: string; reason: DenyReason; revision: bigint }
  | { kind: "del"; tenant: string; revision: bigint };

export interface SnapshotContents {
  entries: [string, DenyReason][];
  revision: bigint;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const KEY_PREFIX = "blackhole.";
const U64_MAX_DIGITS = 20;

/**
 * `blackhole.{u64 decimal}` → tenant id; anything else (other key families such as `signkey.1`,
 * `blackhole.key.…`, non-digits, negative, over u64) → undefined, and the key is ignored.
 * Leading zeros and one leading `+` are accepted because the Rust gateway's u64 parser accepts them,
 * and a control plane that once wrote such a key must keep denying the same tenant.
 */
export function parseDenyKey(key: string): bigint | undefined {
  if (!key.startsWith(KEY_PREFIX)) return undefined;
  let start = KEY_PREFIX.length;
  if (key.charCodeAt(start) === 0x2b /* + */) start++;
  if (start >= key.length) return undefined;
  for (let i = start; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  // Skip leading zeros before the length check so `blackhole.000…042` parses, while a 10 kB digit
  // string is refused without building a huge BigInt.
  while (start < key.length - 1 && key.charCodeAt(start) === 0x30) start++;
  if (key.length - start > U64_MAX_DIGITS) return undefined;
  const n = BigInt(key.slice(start));
  return n > U64_MAX ? undefined : n;
}

/** The canonical tenant string (as `Identity.tenant` spells it) for a deny key, or undefined. */
export function denyKeyTenant(key: string): string | undefined {
  return parseDenyKey(key)?.toString();
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Trimmed `spend` / `fraud`, or a JSON object whose `reason` is one of them (other fields such as
 * `exp` ignored). Everything else — invalid UTF-8, empty, another word, broken JSON, a missing or
 * non-string reason — is "unknown", which still denies (403): an unreadable hold must not unblock.
 */
export function parseDenyValue(value: Uint8Array): DenyReason {
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return "unknown";
  }
  text = text.trim();
  if (text === "spend" || text === "fraud") return text;
  if (text.charCodeAt(0) !== 0x7b /* { */) return "unknown";
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return "unknown";
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "unknown";
  const reason = (parsed as { reason?: unknown }).reason;
  return reason === "spend" || reason === "fraud" ? reason : "unknown";
}

/**
 * Denied tenants keyed by their canonical u64 decimal string. A string key (not bigint) because the
 * request path already has `Identity.tenant` as a string: lookup is one Map probe with no conversion
 * and no allocation. Writers replace the whole Map on a rescan so a reader never sees a half-built
 * set (JS is single-threaded, but a scan is staged across many event-loop turns).
 */
export class DenySet {
  #map: Map<string, DenyReason>;
  /** Last applied JetStream stream sequence (0n = none): the resume cursor. */
  revision: bigint;

  constructor(entries?: Iterable<[string, DenyReason]>, revision = 0n) {
    this.#map = new Map(entries);
    this.revision = revision;
  }

  /** `tenant` must be the canonical decimal spelling (no leading zeros), as `Identity.tenant` is. */
  lookup(tenant: string): DenyReason | undefined {
    return this.#map.get(tenant);
  }

  get size(): number {
    return this.#map.size;
  }

  apply(op: DenyOp): void {
    if (op.kind === "put") this.#map.set(op.tenant, op.reason);
    else this.#map.delete(op.tenant);
    this.revision = op.revision;
  }

  /** A Map argument is adopted, not copied (a 1M-entry copy costs ~100 ms): the caller must drop it. */
  replaceAll(entries: Iterable<[string, DenyReason]>, revision: bigint): void {
    this.#map = entries instanceof Map ? (entries as Map<string, DenyReason>) : new Map(entries);
    this.revision = revision;
  }

  entries(): IterableIterator<[string, DenyReason]> {
    return this.#map.entries();
  }
}

/** What the main thread sends a worker about the deny-set (workers >= 2). */
export type DenyMessage =
  | { t: "deny"; op: DenyOp }
  | { t: "denyAll"; entries: [string, DenyReason][]; revision: bigint };

/**
 * The main thread's set with workers >= 2: every change is also handed to `broadcast` (the supervisor posts it to
 * every worker). A worker applies one message in one event-loop step (DenySet.apply / replaceAll), so a request
 * there sees the set before or after a change, never halfway; postMessage delivers within milliseconds (SPEC §14
 * asks for 1 s). A whole-set message is what a worker that starts or restarts gets first (`message()`).
 */
export class BroadcastDenySet extends DenySet {
  broadcast: ((msg: DenyMessage) => void) | undefined;

  override apply(op: DenyOp): void {
    super.apply(op);
    this.broadcast?.({ t: "deny", op });
  }

  override replaceAll(entries: Iterable<[string, DenyReason]>, revision: bigint): void {
    super.replaceAll(entries, revision);
    if (this.broadcast !== undefined) this.broadcast(this.message());
  }

  /** The whole set as one message. */
  message(): DenyMessage {
    return { t: "denyAll", entries: [...this.entries()], revision: this.revision };
  }
}

/** A worker's side: apply one message from the main thread. */
export function applyDenyMessage(set: DenySet, msg: DenyMessage): void {
  if (msg.t === "deny") set.apply(msg.op);
  else set.replaceAll(new Map(msg.entries), msg.revision);
}

// ---------------------------------------------------------------------------------------------------
// Snapshot file, format version 1 (our own; not byte compatible with slipstream's "PGSS" log, which
// only matters to a gateway that must read files the Rust gateway wrote: none does).
//
//   offset  size  field
//   0       4     magic "BAID" (0x42 0x41 0x49 0x44)
//   4       2     format version, u16 LE = 1
//   6       2     reserved, u16 LE = 0
//   8       8     revision (JetStream stream sequence of the last applied update), u64 LE
//   16      4     entry count N, u32 LE
//   20      9·N   entries: tenant id u64 LE, reason u8 (1 spend, 2 fraud, 3 unknown)
//   20+9N   4     CRC-32 (IEEE, as zlib) of every byte before it, u32 LE
//
// The file is rewritten whole (temp file + fsync + rename + fsync of the directory), never appended,
// so a reader sees either the old or the new file: any length mismatch or CRC failure is corruption,
// never a "crash tail". Fixed-size entries make truncation detectable from the length alone.

const MAGIC = [0x42, 0x41, 0x49, 0x44] as const;
export const SNAPSHOT_VERSION = 1;
const HEADER_BYTES = 20;
const ENTRY_BYTES = 9;
const TRAILER_BYTES = 4;
const MAX_ENTRIES = 0xffff_ffff;

const REASON_CODE: Record<DenyReason, number> = { spend: 1, fraud: 2, unknown: 3 };
const REASON_BY_CODE: readonly (DenyReason | undefined)[] = [undefined, "spend", "fraud", "unknown"];

function crc32(bytes: Uint8Array): number {
  return Bun.hash.crc32(bytes) >>> 0;
}

export function encodeSnapshot(set: DenySet): Uint8Array {
  const n = set.size;
  if (n > MAX_ENTRIES) throw new RangeError("deny-set too large for the snapshot format");
  const out = new Uint8Array(HEADER_BYTES + n * ENTRY_BYTES + TRAILER_BYTES);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint16(4, SNAPSHOT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setBigUint64(8, BigInt.asUintN(64, set.revision), true);
  view.setUint32(16, n, true);
  let off = HEADER_BYTES;
  for (const [tenant, reason] of set.entries()) {
    // BigInt parsing costs ~100 ns an entry; ids below 2^53 (15 digits always are) go through a double.
    if (tenant.length <= 15) {
      const n = Number(tenant);
      view.setUint32(off, n >>> 0, true);
      view.setUint32(off + 4, Math.floor(n / 0x1_0000_0000), true);
    } else {
      view.setBigUint64(off, BigInt(tenant), true);
    }
    out[off + 8] = REASON_CODE[reason];
    off += ENTRY_BYTES;
  }
  view.setUint32(off, crc32(out.subarray(0, off)), true);
  return out;
}

/** Never throws: any malformed input is returned as an Error naming what is wrong. */
export function decodeSnapshot(bytes: Uint8Array): SnapshotContents | Error {
  if (bytes.length < HEADER_BYTES + TRAILER_BYTES) return new Error(`snapshot truncated: ${bytes.length} bytes`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) return new Error("snapshot has the wrong magic (not a beyond-ai deny-set snapshot)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (version !== SNAPSHOT_VERSION) return new Error(`snapshot format version ${version} is not supported`);
  const count = view.getUint32(16, true);
  const expected = HEADER_BYTES + count * ENTRY_BYTES + TRAILER_BYTES;
  if (bytes.length < expected) return new Error(`snapshot truncated: ${bytes.length} of ${expected} bytes`);
  if (bytes.length > expected) return new Error(`snapshot has ${bytes.length - expected} trailing bytes`);
  const body = expected - TRAILER_BYTES;
  if (view.getUint32(body, true) !== crc32(bytes.subarray(0, body))) return new Error("snapshot checksum mismatch");
  if (view.getUint16(6, true) !== 0) return new Error("snapshot reserved field is not zero");
  const revision = view.getBigUint64(8, true);
  const entries: [string, DenyReason][] = new Array(count);
  let off = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const reason = REASON_BY_CODE[bytes[off + 8] ?? 0];
    if (reason === undefined) return new Error(`snapshot entry ${i} has an unknown reason code`);
    const lo = view.getUint32(off, true);
    const hi = view.getUint32(off + 4, true);
    // Below 2^53 a double is exact and String() is several times cheaper than BigInt's toString.
    const tenant = hi < 0x20_0000 ? String(hi * 0x1_0000_0000 + lo) : view.getBigUint64(off, true).toString();
    entries[i] = [tenant, reason];
    off += ENTRY_BYTES;
  }
  return { entries, revision };
}

/**
 * Write `bytes` to `path` so that a crash at any point leaves either the old file or the new one:
 * temp file in the same directory (rename is only atomic within a filesystem) → fsync → rename →
 * fsync the directory so the rename itself survives power loss.
 */
export async function writeSnapshotAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const rand = Math.floor(Math.random() * 0x1_0000_0000).toString(16);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${rand}`);
  try {
    // "wx": never follow or clobber something already sitting at the temp name.
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  try {
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the data itself is already durable.
  }
}

/** Missing is a normal first boot; anything unreadable or malformed is an error for the caller to log. */
export async function loadSnapshot(
  path: string,
): Promise<SnapshotContents | { missing: true } | { error: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOENT") return { missing: true };
    return { error: `cannot read snapshot: ${typeof code === "string" ? code : String(err)}` };
  }
  const decoded = decodeSnapshot(bytes);
  return decoded instanceof Error ? { error: decoded.message } : decoded;
}
