// End to end, the gateway serving from several worker threads (SPEC §14): a real gateway process with
// `workers = 2`, a real nats-server, the recording mock provider, the official SDKs, raw fetch and raw keep-alive
// sockets. Pins that the process behaves as one gateway:
//   - hundreds of requests over many keep-alive connections: every one answered, both workers serve (request ids
//     carry two distinct per-thread instance prefixes; a connection stays on one worker), ids unique, exactly one
//     ai.access line each, /metrics ai_requests_total equals the count, the exposition stays valid, ai_workers = 2;
//   - ~8 MB of 8-14 KiB log lines (long request paths) from both workers under load: every stdout line parses as
//     JSON and carries its whole path;
//   - the per-credential rate limit is process-wide: a burst of 80 on one key at rate_limit_rps = 20 admits 20, not 40;
//   - the failed-verification budget for forged managed keys (100 a second) is process-wide, not 100 per worker;
//   - circuit breakers are process-wide: 3 failures on each of 2 workers open a threshold-6 breaker on every connection;
//   - a blackhole.<tenant> put while traffic flows is enforced on every connection within 1 s, and never undone;
//   - a worker killed through the test hook is logged and replaced (ai_worker_restarts_total 1, ai_workers 2,
//     ai_requests_total never drops); the surviving worker's connections never fail, each of the dead worker's fails
//     exactly once (closed, not hung), new connections all succeed on both workers; the hook is 404 without
//     BEYOND_AI_TEST_HOOKS=1;
//   - SIGTERM with SSE streams open on both workers: every stream completes, its access line is written, the deny-set
//     snapshot is written, exit 0;
//   - bad `workers` values (config and AI_WORKERS) fail the boot with exit 2 naming the key; "auto" and AI_WORKERS boot;
//   - the compiled binary, alone in an empty folder, serves from both workers.
//
// Which worker served a request is read from its `x-beyond-request-id`: ids are `{instance}-{seq}` with `instance`
// random per thread (src/pipeline/context.ts), so the part before the last `-` names the worker thread.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import type { Socket } from "bun";
import { connect, type KV, type NatsConnection } from "nats";
import OpenAI from "openai";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { loadSnapshot } from "../src/controls/denyset.ts";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, buildBinary, type Gateway, makeTempDir, metricValue, runGatewayExpectExit } from "./helpers/gateway.ts";
import { createGate, MOCK_DELTAS, MOCK_TEXT, type MockProvider, openaiChatSseEvents } from "./helpers/mock-provider.ts";
import { waitFor } from "./helpers/nats.ts";
import { tracked } from "./helpers/tracked.ts";
import { checkExposition, scrape } from "./helpers/prometheus.ts";
import { expectGatewayError, toReply } from "./helpers/replies.ts";

const BUCKET = "ai-gateway";
const OPENAI_POOL = "sk-workers-openai-pool";
const ANTHROPIC_POOL = "sk-workers-anthropic-pool";
const BYO = "sk-byo-workers";
const DENIED_MSG = "tenant is over limit or suspended";
const signer = keygen();
const PUB = Buffer.from(signer.publicKey).toString("base64");
const managed = (tenant: number, vpc = 7n): string => mint(1, signer.seed, BigInt(tenant), vpc);

const CHAT_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const STREAM_BODY = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] });

// ---------------------------------------------------------------------------------------------
// Config and process bookkeeping

function keysTables(): string {
  return ["[pool_keys]", `openai = "${OPENAI_POOL}"`, `anthropic = "${ANTHROPIC_POOL}"`, "", "[signing_keys]", `1 = "${PUB}"`].join("\n");
}

/** baseConfig pointed at `mock` plus `settings`; a setting that baseConfig also writes replaces its line (TOML
 * forbids a key twice). */
function gatewayConfig(mock: MockProvider, settings: Record<string, string | number> = {}): string {
  let text = baseConfig({ authorities: { openai: mock.authority, anthropic: mock.authority }, tables: keysTables() });
  const extra: string[] = [];
  for (const [k, v] of Object.entries(settings)) {
    const line = `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`;
    const re = new RegExp(`^${k} = .*$`, "m");
    if (re.test(text)) text = text.replace(re, line);
    else extra.push(line);
  }
  // Top-level keys must come before the first table.
  const firstTable = text.indexOf("\n[");
  return firstTable < 0 ? `${text}${extra.join("\n")}\n` : `${text.slice(0, firstTable)}\n${extra.join("\n")}${text.slice(firstTable)}`;
}

/** The config without any `workers` line (baseConfig pins workers = 1 in the fetch-transport run). */
function withoutWorkers(config: string): string {
  return config.replace(/^workers\s*=.*\n/gm, "");
}

const { launch, newMock, newNats } = tracked({ startTimeoutMs: 20_000 });

const metric = (g: Gateway, name: string, labels: Record<string, string> = {}): Promise<number> => metricValue(g.metricsUrl, name, labels);

/** The worker thread that minted a request id: the instance part of `{instance}-{seq}`. */
function workerOf(requestId: string | null | undefined): string {
  if (requestId === null || requestId === undefined) throw new Error("response without x-beyond-request-id");
  const dash = requestId.lastIndexOf("-");
  if (dash <= 0) throw new Error(`request id without an instance prefix: ${requestId}`);
  return requestId.slice(0, dash);
}

function accessLines(g: Gateway): Array<Record<string, unknown>> {
  return g.logs().filter((l) => l["target"] === "ai.access");
}

async function waitReady(g: Gateway): Promise<void> {
  await waitFor(
    "gateway /readyz ok (NATS connected)",
    async () => ((await (await fetch(`${g.metricsUrl}/readyz`)).json()) as { status?: string }).status === "ok",
    10_000,
    50,
  );
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 keep-alive connection: requests go one after another on the same socket, so a test knows exactly
// which connection (and so which worker) answered each one, which fetch's pool hides.

interface HttpReply {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
  /** x-beyond-request-id. */
  id: string;
}

function httpRequest(method: string, path: string, headers: Record<string, string>, body?: string): string {
  let head = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (body !== undefined) head += `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  return `${head}\r\n${body ?? ""}`;
}

const chatRequest = (token: string): string => httpRequest("POST", "/v1/chat/completions", { authorization: `Bearer ${token}` }, CHAT_BODY);
const modelsRequest = (token: string, path = "/v1/models"): string => httpRequest("GET", path, { authorization: `Bearer ${token}` });

function indexOf(buf: Uint8Array, seq: readonly number[], from: number): number {
  outer: for (let i = from; i + seq.length <= buf.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}
const CRLF = [13, 10];
const CRLFCRLF = [13, 10, 13, 10];
const dec = new TextDecoder();

/** One complete response at the start of `buf` and how many bytes it took, or undefined while incomplete. */
function parseOne(buf: Uint8Array): { reply: Omit<HttpReply, "id">; consumed: number } | undefined {
  const headEnd = indexOf(buf, CRLFCRLF, 0);
  if (headEnd < 0) return undefined;
  const [statusLine = "", ...lines] = dec.decode(buf.subarray(0, headEnd)).split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(":");
    if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  const start = headEnd + 4;
  if (status >= 100 && status < 200) {
    const next = parseOne(buf.subarray(start));
    return next && { reply: next.reply, consumed: start + next.consumed };
  }
  if ((headers["transfer-encoding"] ?? "").toLowerCase().includes("chunked")) {
    const parts: Uint8Array[] = [];
    let off = start;
    for (;;) {
      const lineEnd = indexOf(buf, CRLF, off);
      if (lineEnd < 0) return undefined;
      const size = parseInt(dec.decode(buf.subarray(off, lineEnd)).split(";")[0] ?? "", 16);
      if (!Number.isFinite(size)) throw new Error(`bad chunk size line: ${dec.decode(buf.subarray(off, lineEnd))}`);
      const dataStart = lineEnd + 2;
      if (size === 0) {
        // No trailers from the gateway: the last chunk is `0\r\n\r\n`.
        if (buf.length < dataStart + 2) return undefined;
        const body = dec.decode(Buffer.concat(parts));
        return { reply: { status, headers, body }, consumed: dataStart + 2 };
      }
      if (buf.length < dataStart + size + 2) return undefined;
      parts.push(buf.subarray(dataStart, dataStart + size));
      off = dataStart + size + 2;
    }
  }
  const n = Number(headers["content-length"] ?? "0");
  if (buf.length < start + n) return undefined;
  return { reply: { status, headers, body: dec.decode(buf.subarray(start, start + n)) }, consumed: start + n };
}

class KeepAlive {
  /** Set once the socket is gone (closed, reset or ended by the server), with why. */
  closedWhy: string | undefined;
  private socket: Socket | undefined;
  private inbuf: Uint8Array = new Uint8Array(0);
  private out: Uint8Array = new Uint8Array(0);
  private waiter: { resolve(r: HttpReply): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> } | undefined;

  static async open(g: Gateway): Promise<KeepAlive> {
    const c = new KeepAlive();
    c.socket = await Bun.connect({
      hostname: g.host,
      port: g.port,
      socket: {
        data: (_s, chunk) => c.onData(chunk),
        drain: () => c.flushOut(),
        close: () => c.fail("connection closed"),
        end: () => c.fail("connection ended by the server"),
        error: (_s, e) => c.fail(`socket error: ${e.message}`),
      },
    });
    return c;
  }

  /** Sends one request and resolves with its response; rejects when the connection dies first or after timeoutMs
   * (a timeout is reported as such, distinct from a close, and closes the connection). */
  send(request: string, timeoutMs = 8000): Promise<HttpReply> {
    if (this.closedWhy !== undefined) return Promise.reject(new Error(this.closedWhy));
    if (this.waiter !== undefined) return Promise.reject(new Error("KeepAlive: one request at a time"));
    return new Promise<HttpReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`timeout: no response within ${timeoutMs} ms`));
        this.close();
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
      this.out = new TextEncoder().encode(request);
      this.flushOut();
    });
  }

  close(): void {
    this.closedWhy ??= "closed by the test";
    this.socket?.end();
  }

  private flushOut(): void {
    if (this.out.length === 0 || this.socket === undefined) return;
    const n = this.socket.write(this.out);
    this.out = n > 0 ? this.out.subarray(n) : this.out;
  }

  private onData(chunk: Uint8Array): void {
    const merged = new Uint8Array(this.inbuf.length + chunk.length);
    merged.set(this.inbuf, 0);
    merged.set(chunk, this.inbuf.length);
    this.inbuf = merged;
    const w = this.waiter;
    if (w === undefined) return;
    let parsed: ReturnType<typeof parseOne>;
    try {
      parsed = parseOne(this.inbuf);
    } catch (e) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (parsed === undefined) return;
    this.inbuf = this.inbuf.subarray(parsed.consumed);
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve({ ...parsed.reply, id: parsed.reply.headers["x-beyond-request-id"] ?? "" });
  }

  private fail(why: string): void {
    this.closedWhy ??= why;
    const w = this.waiter;
    this.waiter = undefined;
    if (w !== undefined) {
      clearTimeout(w.timer);
      w.reject(new Error(why));
    }
  }
}

/** `n` keep-alive connections, each warmed with one request (`warm(i)`), and the worker each landed on. */
async function openConnections(g: Gateway, n: number, warm: (i: number) => string): Promise<Array<{ conn: KeepAlive; worker: string }>> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const conn = await KeepAlive.open(g);
      const r = await conn.send(warm(i));
      expect({ warmup: i, status: r.status }).toEqual({ warmup: i, status: 200 });
      return { conn, worker: workerOf(r.id) };
    }),
  );
}

function closeAll(conns: Array<{ conn: KeepAlive }>): void {
  for (const c of conns) c.conn.close();
}

// ---------------------------------------------------------------------------------------------

describe("workers = 2: one gateway from two threads", () => {
  let mock: MockProvider;
  let gw: Gateway;

  beforeAll(async () => {
    mock = newMock();
    gw = await launch(gatewayConfig(mock, { workers: 2 }));
  }, 30_000);

  test(
    "400 requests over 24 keep-alive connections and both SDKs: all 200, both workers serve, ids unique, one ai.access line each, ai_requests_total = 400, ai_workers = 2",
    async () => {
      const CONNS = 24;
      const PER_CONN = 14; // 336 raw requests, the warm-up included
      const SDK_EACH = 32;
      const ids: string[] = [];
      const statuses: number[] = [];
      const workersByConn: Array<Set<string>> = [];

      const raw = (async () => {
        // The warm-up request is each connection's first of its PER_CONN; its id is checked through the access log.
        const conns = await openConnections(gw, CONNS, (i) => (i % 2 === 0 ? chatRequest(BYO) : modelsRequest(BYO)));
        await Promise.all(
          conns.map(async ({ conn, worker }, i) => {
            const seen = new Set<string>([worker]);
            workersByConn[i] = seen;
            for (let k = 1; k < PER_CONN; k++) {
              const r = await conn.send(k % 2 === 0 ? chatRequest(BYO) : modelsRequest(BYO));
              statuses.push(r.status);
              ids.push(r.id);
              seen.add(workerOf(r.id));
            }
          }),
        );
        closeAll(conns);
      })();

      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: BYO, maxRetries: 0 });
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: BYO, maxRetries: 0 });
      const sdk = (async () => {
        for (let round = 0; round < SDK_EACH / 8; round++) {
          await Promise.all(
            Array.from({ length: 8 }, async () => {
              const o = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).withResponse();
              expect(o.data.choices[0]?.message.content).toBe(MOCK_TEXT);
              statuses.push(o.response.status);
              ids.push(o.response.headers.get("x-beyond-request-id") ?? "");
              const a = await anthropic.messages.create({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).withResponse();
              expect(a.data.type).toBe("message");
              statuses.push(a.response.status);
              ids.push(a.response.headers.get("x-beyond-request-id") ?? "");
            }),
          );
        }
      })();
      await Promise.all([raw, sdk]);

      const total = CONNS * PER_CONN + 2 * SDK_EACH;
      expect(total).toBe(400);
      expect(statuses.length).toBe(total - CONNS);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      // A connection stays on the worker that accepted it.
      expect(workersByConn.map((s) => s.size)).toEqual(Array.from({ length: CONNS }, () => 1));
      const workers = new Set(ids.map(workerOf));
      expect(workers.size).toBe(2);

      // Exactly one access line per request, none extra: count by id once all 400 have arrived.
      await waitFor("400 ai.access lines", () => accessLines(gw).length >= total, 10_000, 20);
      await Bun.sleep(100); // a duplicate line would be written with its original, not later; leave the batch time to land
      const lines = accessLines(gw);
      expect(lines.length).toBe(total);
      const perId = new Map<string, number>();
      for (const l of lines) perId.set(String(l["request_id"]), (perId.get(String(l["request_id"])) ?? 0) + 1);
      expect(perId.size).toBe(total);
      expect([...perId.values()].filter((n) => n !== 1)).toEqual([]);
      for (const id of ids) expect(perId.get(id)).toBe(1);
      expect(new Set(lines.map((l) => workerOf(String(l["request_id"])))).size).toBe(2);
      expect(lines.filter((l) => l["status"] !== 200)).toEqual([]);

      // /metrics: process totals, summed over both workers, in a valid exposition.
      await waitFor("ai_requests_total reaches 400", async () => (await metric(gw, "ai_requests_total")) >= total, 5000, 25);
      const { text } = await scrape(gw.metricsUrl);
      expect(checkExposition(text)).toEqual([]);
      expect(await metric(gw, "ai_requests_total")).toBe(total);
      expect(await metric(gw, "ai_workers")).toBe(2);
      expect(await metric(gw, "ai_worker_restarts_total")).toBe(0);
    },
    90_000,
  );

  test(
    "~8 MB of 8-14 KiB log lines from both workers under load: every stdout line parses as JSON and carries its whole path",
    async () => {
      // Volume matters: lines only split when the pipe fills while two threads write it, so this sends ~8 MB of
      // long lines (with workers writing stdout themselves, this test loses or splits lines; one writer does not).
      const CONNS = 32;
      const PER_CONN = 24;
      const sentPaths = new Map<string, string>(); // request id → the long path it was sent with
      const conns = await openConnections(gw, CONNS, () => modelsRequest(BYO));
      await Promise.all(
        conns.map(async ({ conn }, i) => {
          for (let k = 0; k < PER_CONN; k++) {
            if (k % 4 !== 3) {
              // 8 KiB to 14 KiB of path, a different length and letter per request, so a line cut or spliced
              // into another shows as a wrong path.
              const len = 8192 + ((i * PER_CONN + k) * 523) % 6144;
              const path = `/v1/models/${String.fromCharCode(97 + ((i + k) % 26)).repeat(len)}`;
              const r = await conn.send(modelsRequest(BYO, path));
              expect(r.status).toBe(200);
              sentPaths.set(r.id, path);
            } else {
              expect((await conn.send(chatRequest(BYO))).status).toBe(200);
            }
          }
        }),
      );
      closeAll(conns);
      expect(sentPaths.size).toBe((CONNS * PER_CONN * 3) / 4);
      expect(new Set([...sentPaths.keys()].map(workerOf)).size).toBe(2);

      // Wait for the lines, but judge them either way: a split line never parses, so its request's line never comes,
      // and the check below says why rather than a timeout.
      await waitFor(
        "an access line for every long-path request",
        () => {
          const have = new Set(accessLines(gw).map((l) => String(l["request_id"])));
          for (const id of sentPaths.keys()) if (!have.has(id)) return false;
          return true;
        },
        10_000,
        20,
      ).catch(() => {});
      await Bun.sleep(50);
      // Every line the process wrote, read back from the pipe exactly as a log shipper would.
      const rawLines = gw.stdout().split("\n").filter((l) => l !== "");
      const unparsable = rawLines.filter((l) => {
        try {
          const v: unknown = JSON.parse(l);
          return v === null || typeof v !== "object";
        } catch {
          return true;
        }
      });
      expect(unparsable.map((l) => `${l.length} bytes: ${l.slice(0, 120)}`)).toEqual([]);
      const long = accessLines(gw).filter((l) => sentPaths.has(String(l["request_id"])));
      expect(long.length).toBe(sentPaths.size);
      for (const l of long) {
        const want = sentPaths.get(String(l["request_id"])) ?? "";
        expect({ id: l["request_id"], pathLength: String(l["path"]).length, intact: l["path"] === want }).toEqual({
          id: l["request_id"],
          pathLength: want.length,
          intact: true,
        });
      }
      expect(rawLines.filter((l) => l.length >= 8192).length).toBeGreaterThanOrEqual(sentPaths.size);
    },
    60_000,
  );

  test("without BEYOND_AI_TEST_HOOKS=1 the kill hook does not exist: 404, and no worker restarts", async () => {
    const res = await fetch(`${gw.metricsUrl}/debug/kill-worker?index=1`, { method: "POST" });
    expect(res.status).toBe(404);
    await res.text();
    expect(await metric(gw, "ai_workers")).toBe(2);
    expect(await metric(gw, "ai_worker_restarts_total")).toBe(0);
    expect((await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${BYO}` } })).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------

describe("rate limits are process-wide", () => {
  test(
    "rate_limit_rps = 20 with 2 workers: a burst of 80 on one key over 40 connections admits 20, not 40, and both workers answered",
    async () => {
      const mock = newMock();
      const gw = await launch(gatewayConfig(mock, { workers: 2, rate_limit_rps: 20, byo_rate_limit_rps: 0 }));
      const CONNS = 40;
      // Every connection is warmed with its own key (one request each, far under the limit) and is then idle.
      const conns = await openConnections(gw, CONNS, (i) => modelsRequest(`sk-warm-${i}`));
      const perWorkerConns = new Map<string, number>();
      for (const { worker } of conns) perWorkerConns.set(worker, (perWorkerConns.get(worker) ?? 0) + 1);
      expect(perWorkerConns.size).toBe(2);

      // A burst spans at most a few tens of ms, but a fixed 1-s window may still end inside one: such a burst can
      // legitimately admit up to 2 × 20. Three bursts on three fresh keys; the limit is judged on the smallest, which
      // per-worker counting (the bug) would put at about 40 in every burst (each worker admitting its own 20).
      const bursts: Array<{ admitted: number; limited: number; other: number; workers: Map<string, number> }> = [];
      for (let b = 0; b < 3; b++) {
        const key = `sk-burst-${b}-${crypto.randomUUID()}`;
        const replies = (await Promise.all(conns.map(async ({ conn }) => [await conn.send(chatRequest(key)), await conn.send(chatRequest(key))]))).flat();
        const workers = new Map<string, number>();
        for (const r of replies) workers.set(workerOf(r.id), (workers.get(workerOf(r.id)) ?? 0) + 1);
        const limited = replies.filter((r) => r.status === 429);
        if (limited[0] !== undefined) {
          expect(limited[0].headers["retry-after"]).toBeTruthy();
          expect(JSON.parse(limited[0].body)).toMatchObject({ error: { type: "rate_limit_error" } });
        }
        // Only the admitted requests reached the provider.
        expect(mock.requests.filter((q) => q.headers["authorization"] === `Bearer ${key}`).length).toBe(replies.filter((r) => r.status === 200).length);
        bursts.push({
          admitted: replies.filter((r) => r.status === 200).length,
          limited: limited.length,
          other: replies.filter((r) => r.status !== 200 && r.status !== 429).length,
          workers,
        });
        await Bun.sleep(50);
      }
      closeAll(conns);
      for (const b of bursts) {
        expect(b.other).toBe(0);
        expect(b.admitted + b.limited).toBe(80);
        expect(b.workers.size).toBe(2); // both workers saw the burst
        expect(b.admitted).toBeGreaterThanOrEqual(20);
        expect(b.admitted).toBeLessThanOrEqual(40);
      }
      const fewest = Math.min(...bursts.map((b) => b.admitted));
      expect({ fewestAdmitted: fewest, bursts: bursts.map((b) => b.admitted) }).toMatchObject({ fewestAdmitted: 20 });
      // The rejection counter is a process total too.
      const totalLimited = bursts.reduce((n, b) => n + b.limited, 0);
      await waitFor("rate_limit rejections counted", async () => (await metric(gw, "ai_rejections_total", { reason: "rate_limit" })) >= totalLimited, 5000, 25);
      expect(await metric(gw, "ai_rejections_total", { reason: "rate_limit" })).toBe(totalLimited);
    },
    60_000,
  );
});

describe("the forged-key budget is process-wide", () => {
  /** Well-formed under the trusted kid 1, random payload and signature (canonical S): a full verification to reject. */
  function forged(): string {
    const sig = randomBytes(64);
    sig[63] = (sig[63] as number) & 0x0f;
    return `bai_v1.1.${randomBytes(16).toString("base64url")}.${sig.toString("base64url")}`;
  }

  test(
    "failed-verification budget (100 a second) with 2 workers: a burst of 200 forged keys over 40 connections gets 100 verified (401), the rest 429 before any signature work, not 100 per worker",
    async () => {
      const mock = newMock();
      const gw = await launch(gatewayConfig(mock, { workers: 2 }));
      const conns = await openConnections(gw, 40, () => modelsRequest(BYO));
      expect(new Set(conns.map((c) => c.worker)).size).toBe(2);
      // As for the rate limit: a burst may straddle a 1-s window and legitimately get up to 2 × 100 checks, so three
      // bursts, each after a full window without failures, and the budget is judged on the smallest. Counting per
      // worker (the bug) would verify about 200 in every burst.
      const bursts: Array<{ verified: number; throttled: number; other: number; workers: number }> = [];
      for (let b = 0; b < 3; b++) {
        await Bun.sleep(1100); // one budget window with no failures
        const replies = (
          await Promise.all(
            conns.map(async ({ conn }) => {
              const out: HttpReply[] = [];
              for (let k = 0; k < 5; k++) out.push(await conn.send(chatRequest(forged())));
              return out;
            }),
          )
        ).flat();
        const throttled = replies.filter((r) => r.status === 429);
        if (throttled[0] !== undefined) expect(JSON.parse(throttled[0].body)).toMatchObject({ error: { type: "rate_limit_error" } });
        bursts.push({
          verified: replies.filter((r) => r.status === 401).length,
          throttled: throttled.length,
          other: replies.filter((r) => r.status !== 401 && r.status !== 429).length,
          workers: new Set(replies.map((r) => workerOf(r.id))).size,
        });
      }
      closeAll(conns);
      expect(mock.requests.filter((q) => q.path === "/v1/chat/completions").length).toBe(0);
      for (const b of bursts) {
        expect(b).toMatchObject({ other: 0, workers: 2 });
        expect(b.verified + b.throttled).toBe(200);
        expect(b.verified).toBeGreaterThanOrEqual(100);
      }
      const fewest = Math.min(...bursts.map((b) => b.verified));
      expect({ fewestVerified: fewest <= 110, bursts: bursts.map((b) => b.verified) }).toMatchObject({ fewestVerified: true });
      expect(await metric(gw, "ai_rejections_total", { reason: "auth_throttled" })).toBe(bursts.reduce((n, b) => n + b.throttled, 0));
    },
    60_000,
  );
});

describe("circuit breakers are process-wide", () => {
  test(
    "circuit_breaker_threshold = 6 with 2 workers: 3 provider failures on each worker open the breaker for every connection (503), not 6 per worker; another provider still passes",
    async () => {
      const mock = newMock();
      mock.setMode({ kind: "status", status: 500 }, "/v1/chat/completions");
      const gw = await launch(gatewayConfig(mock, { workers: 2, circuit_breaker_threshold: 6, circuit_breaker_window_secs: 60, circuit_breaker_reset_secs: 120 }));
      // Warm on /v1/models (200 from the mock: a success, which leaves the failure count at 0).
      const conns = await openConnections(gw, 16, () => modelsRequest(BYO));
      const byWorker = new Map<string, KeepAlive[]>();
      for (const { conn, worker } of conns) byWorker.set(worker, [...(byWorker.get(worker) ?? []), conn]);
      expect(byWorker.size).toBe(2);
      const [onA, onB] = [...byWorker.values()].map((list) => list[0] as KeepAlive);

      // Six failures, one at a time, alternating between the workers: three each.
      const failures: Array<{ status: number; worker: string }> = [];
      for (let i = 0; i < 6; i++) {
        const r = await (i % 2 === 0 ? (onA as KeepAlive) : (onB as KeepAlive)).send(chatRequest(BYO));
        failures.push({ status: r.status, worker: workerOf(r.id) });
      }
      expect(failures.map((f) => f.status)).toEqual([500, 500, 500, 500, 500, 500]);
      expect(new Set(failures.map((f) => f.worker)).size).toBe(2);
      const forwarded = mock.requests.filter((q) => q.path === "/v1/chat/completions").length;
      expect(forwarded).toBe(6);

      // Open everywhere: every connection on both workers gets the breaker's 503, and nothing more is forwarded.
      for (const { conn } of conns) {
        const r = await conn.send(chatRequest(BYO));
        expectGatewayError({ status: r.status, headers: new Headers(r.headers), text: r.body, json: JSON.parse(r.body) }, "openai", 503, "api_error", "provider temporarily unavailable");
      }
      expect(mock.requests.filter((q) => q.path === "/v1/chat/completions").length).toBe(forwarded);
      // The breaker is per provider: Anthropic on the same connections is untouched.
      for (const { conn } of conns) {
        const r = await conn.send(
          httpRequest("POST", "/v1/messages", { "x-api-key": BYO, "anthropic-version": "2023-06-01" }, JSON.stringify({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] })),
        );
        expect(r.status).toBe(200);
      }
      closeAll(conns);
    },
    60_000,
  );
});

// ---------------------------------------------------------------------------------------------

/** A separate NATS connection, the way the control plane writes holds. */
async function openKv(url: string): Promise<{ nc: NatsConnection; kv: KV }> {
  const nc = await connect({ servers: url, reconnect: false });
  const kv = await nc.jetstream().views.kv(BUCKET, { history: 1 });
  return { nc, kv };
}

describe("the deny-set reaches every worker", () => {
  test(
    "blackhole.<tenant> put while 24 connections send: every connection gets 402 within 1 s and never a 200 for it again; others still pass, nothing denied is forwarded",
    async () => {
      const T = 7001;
      const OTHER = 7002;
      const nats = await newNats();
      const mock = newMock();
      const gw = await launch(gatewayConfig(mock, { workers: 2, nats_url: nats.url }));
      await waitReady(gw);
      const { nc, kv } = await openKv(nats.url);
      try {
        const CONNS = 24;
        const conns = await openConnections(gw, CONNS, () => chatRequest(managed(T)));
        expect(new Set(conns.map((c) => c.worker)).size).toBe(2);

        let putDoneAt = Number.POSITIVE_INFINITY;
        let stop = false;
        const seen: Array<Array<{ status: number; at: number; id: string }>> = conns.map(() => []);
        const loops = conns.map(async ({ conn }, i) => {
          while (!stop) {
            const r = await conn.send(chatRequest(managed(T)));
            (seen[i] as Array<{ status: number; at: number; id: string }>).push({ status: r.status, at: Date.now(), id: r.id });
          }
        });
        // Traffic flows on every connection before the put.
        await waitFor("traffic on every connection", () => seen.every((s) => s.length >= 2), 10_000, 10);
        await kv.put(`blackhole.${T}`, new TextEncoder().encode("spend"));
        putDoneAt = Date.now();
        await waitFor("a 402 on every connection", () => seen.every((s) => s.some((r) => r.status === 402)), 5000, 10);
        // A few more rounds after the last connection flipped, to catch a connection (a worker) flipping back.
        const counts = seen.map((s) => s.length);
        await waitFor("three more answers on every connection", () => seen.every((s, i) => s.length >= (counts[i] ?? 0) + 3), 10_000, 10);
        stop = true;
        await Promise.all(loops);

        for (let i = 0; i < CONNS; i++) {
          const s = seen[i] as Array<{ status: number; at: number; id: string }>;
          const first = s.findIndex((r) => r.status === 402);
          expect(first).toBeGreaterThanOrEqual(0);
          // Before the flip only 200s; from it on only 402s.
          expect(s.slice(0, first).filter((r) => r.status !== 200)).toEqual([]);
          expect({ conn: i, after: s.slice(first).filter((r) => r.status !== 402) }).toEqual({ conn: i, after: [] });
          // Within 1 s of the put being acknowledged by NATS.
          expect({ conn: i, lateByMs: Math.max(0, (s[first] as { at: number }).at - putDoneAt - 1000) }).toEqual({ conn: i, lateByMs: 0 });
        }

        // Every connection, one more time: the tenant's requests are denied in the gateway's own error shape and
        // never reach the provider; another tenant on the same connections still passes.
        const forwardedBefore = mock.requests.length;
        for (const { conn } of conns) {
          const r = await conn.send(chatRequest(managed(T)));
          expectGatewayError({ status: r.status, headers: new Headers(r.headers), text: r.body, json: JSON.parse(r.body) }, "openai", 402, "access_denied", DENIED_MSG);
        }
        expect(mock.requests.length).toBe(forwardedBefore);
        for (const { conn } of conns) expect((await conn.send(chatRequest(managed(OTHER)))).status).toBe(200);
        // A fresh connection (fetch) is denied too.
        const fresh = await toReply(
          await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${managed(T)}` }, body: CHAT_BODY }),
        );
        expectGatewayError(fresh, "openai", 402, "access_denied", DENIED_MSG);
        closeAll(conns);
      } finally {
        await nc.close().catch(() => {});
      }
    },
    60_000,
  );
});

// ---------------------------------------------------------------------------------------------

describe("a worker that dies is replaced", () => {
  // What may fail when a worker dies: only requests on connections that worker had accepted (the one in flight at
  // the moment of death, or the next one written before the close reached the client): a thread's sockets die with
  // it, and nothing can move an HTTP/1.1 connection to another thread. Those connections must be closed, never left
  // hanging. Every connection the surviving worker holds must see no failure at all, and every new connection
  // after the replacement must succeed, with both workers answering again.
  test(
    "POST /debug/kill-worker (BEYOND_AI_TEST_HOOKS=1): logged, replaced (ai_worker_restarts_total 1, ai_workers 2, ai_requests_total never drops); the survivor's connections never fail; new connections all succeed on both workers",
    async () => {
      const mock = newMock();
      const gw = await launch(gatewayConfig(mock, { workers: 2 }), { BEYOND_AI_TEST_HOOKS: "1" });
      const CONNS = 16;
      const conns = await openConnections(gw, CONNS, () => chatRequest(BYO));
      const before = new Set(conns.map((c) => c.worker));
      expect(before.size).toBe(2);

      interface Outcome {
        conn: number;
        ok: boolean;
        status?: number;
        worker?: string;
        error?: string;
      }
      const outcomes: Outcome[] = [];
      let stop = false;
      const loops = conns.map(async ({ conn }, i) => {
        // A connection that failed is not reopened: the assertion below is about the connections that existed.
        while (!stop) {
          try {
            const r = await conn.send(chatRequest(BYO), 5000);
            outcomes.push({ conn: i, ok: r.status === 200, status: r.status, worker: workerOf(r.id) });
          } catch (e) {
            outcomes.push({ conn: i, ok: false, error: e instanceof Error ? e.message : String(e) });
            return;
          }
        }
      });
      await waitFor("traffic on every connection", () => conns.every((_, i) => outcomes.filter((o) => o.conn === i).length >= 3), 10_000, 10);

      // Counters stay monotonic across a death (a process total that dropped would read as a reset to rate()):
      // ai_requests_total is scraped every 20 ms from before the kill until after the replacement serves.
      const samples: number[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push(await metric(gw, "ai_requests_total"));
          await Bun.sleep(20);
        }
      })();
      await waitFor("a first ai_requests_total sample", () => samples.length > 0, 5000, 5);
      expect(samples[0]).toBeGreaterThanOrEqual(3 * CONNS);
      const kill = await fetch(`${gw.metricsUrl}/debug/kill-worker?index=1`, { method: "POST" });
      await kill.text();
      expect(kill.status).toBeGreaterThanOrEqual(200);
      expect(kill.status).toBeLessThan(300);

      await waitFor("ai_worker_restarts_total 1", async () => (await metric(gw, "ai_worker_restarts_total")) === 1, 10_000, 25);
      await waitFor("ai_workers back to 2", async () => (await metric(gw, "ai_workers")) === 2, 10_000, 25);
      const died = await gw.waitForLog((l) => l["target"] === "ai.gateway" && l["level"] === "error" && (l["worker"] === 1 || l["index"] === 1), 5000);
      expect(JSON.stringify(died)).not.toContain(BYO);
      // The survivor keeps serving its connections after the replacement too.
      const mark = outcomes.length;
      await waitFor("more answers after the replacement", () => outcomes.length >= mark + 2 * CONNS || outcomes.slice(mark).filter((o) => o.ok).length >= CONNS, 10_000, 10);
      const sampled = samples.length;
      await waitFor("an ai_requests_total sample after the replacement", () => samples.length > sampled, 5000, 5);
      stop = true;
      await Promise.all(loops);
      sampling = false;
      await sampler;
      const drops = samples.flatMap((v, i) => (i > 0 && v < (samples[i - 1] as number) ? [`${samples[i - 1]} -> ${v}`] : []));
      expect({ samples: samples.length >= 2, drops }).toEqual({ samples: true, drops: [] });

      // New connections after the replacement: every request succeeds, and both workers (the survivor and the new
      // one) answer; the dead worker's id prefix never appears again.
      const fresh = await openConnections(gw, CONNS, () => chatRequest(BYO));
      const freshWorkers = new Set<string>();
      await Promise.all(
        fresh.map(async ({ conn, worker }) => {
          freshWorkers.add(worker);
          for (let k = 0; k < 4; k++) {
            const r = await conn.send(chatRequest(BYO));
            expect(r.status).toBe(200);
            freshWorkers.add(workerOf(r.id));
          }
        }),
      );
      closeAll(fresh);
      expect(freshWorkers.size).toBe(2);
      const gone = [...before].filter((w) => !freshWorkers.has(w));
      const survivors = [...before].filter((w) => freshWorkers.has(w));
      expect(gone.length).toBe(1);
      expect(survivors.length).toBe(1);
      const killed = gone[0] as string;
      const newcomer = [...freshWorkers].find((w) => !before.has(w));
      expect(newcomer).toBeDefined();

      for (let i = 0; i < CONNS; i++) {
        const mine = outcomes.filter((o) => o.conn === i);
        const onWorker = (conns[i] as { worker: string }).worker;
        const failures = mine.filter((o) => !o.ok);
        if (onWorker !== killed) {
          // The survivor's connections: no failure, and answers after the kill.
          expect({ conn: i, failures }).toEqual({ conn: i, failures: [] });
        } else {
          // The dead worker's connections: exactly the one failure that ended the connection (the loop sends until
          // the end, so a connection the dead worker still served would show none), never an HTTP error, never a
          // hang, never an answer from another thread.
          expect({ conn: i, failures: failures.length }).toEqual({ conn: i, failures: 1 });
          for (const f of failures) {
            expect(f.status).toBeUndefined();
            expect(f.error ?? "").not.toContain("timeout");
          }
        }
        expect(mine.filter((o) => o.worker !== undefined && o.worker !== onWorker)).toEqual([]);
      }
      // No request anywhere was answered with an error status.
      expect(outcomes.filter((o) => o.status !== undefined && o.status !== 200)).toEqual([]);
      closeAll(conns);
    },
    90_000,
  );
});

// ---------------------------------------------------------------------------------------------

describe("SIGTERM drains every worker", () => {
  test(
    "streams open on both workers when SIGTERM arrives all complete, each gets its access line, the deny-set snapshot is written, exit 0",
    async () => {
      const HELD = 8001;
      const nats = await newNats();
      const mock = newMock();
      const snapshot = join(makeTempDir(), "deny.snap");
      const gw = await launch(gatewayConfig(mock, { workers: 2, nats_url: nats.url, snapshot_path: snapshot, shutdown_grace_period_secs: 30 }));
      await waitReady(gw);
      const { nc, kv } = await openKv(nats.url);
      try {
        await kv.put(`blackhole.${HELD}`, new TextEncoder().encode("fraud"));
      } finally {
        await nc.close().catch(() => {});
      }
      await waitFor(
        "the hold applied",
        async () =>
          (await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${managed(HELD)}` }, body: CHAT_BODY })).status === 403,
        5000,
        25,
      );

      // Every stream sends its first event, then waits on the gate.
      const gate = createGate();
      const events = openaiChatSseEvents(false);
      mock.setMode({ kind: "sse", events, gates: [undefined, gate.promise] }, "/v1/chat/completions");

      const openStream = async () => {
        const res = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${BYO}` }, body: STREAM_BODY });
        expect(res.status).toBe(200);
        if (res.body === null) throw new Error("stream without a body");
        const reader = res.body.getReader();
        const { value } = await reader.read();
        return { id: res.headers.get("x-beyond-request-id") ?? "", reader, first: dec.decode(value) };
      };
      const open: Array<Awaited<ReturnType<typeof openStream>>> = [];
      // Streams until both workers hold several (each stream is its own connection while it is open).
      while (open.length < 40) {
        open.push(...(await Promise.all(Array.from({ length: 6 }, openStream))));
        const perWorker = new Map<string, number>();
        for (const s of open) perWorker.set(workerOf(s.id), (perWorker.get(workerOf(s.id)) ?? 0) + 1);
        if (open.length >= 12 && perWorker.size === 2 && Math.min(...perWorker.values()) >= 3) break;
      }
      expect(new Set(open.map((s) => workerOf(s.id))).size).toBe(2);
      for (const s of open) expect(s.first).toContain("data: ");

      gw.proc.kill("SIGTERM");
      await gw.waitForLog((l) => String(l["msg"] ?? "").includes("shutting down"), 5000);
      // The process is still draining: nothing has exited while streams are held open.
      await Bun.sleep(300);
      expect(gw.proc.exitCode).toBeNull();
      gate.open();

      const texts = await Promise.all(
        open.map(async (s) => {
          let text = s.first;
          for (;;) {
            const { value, done } = await s.reader.read();
            if (done) break;
            text += dec.decode(value);
          }
          return text;
        }),
      );
      for (const t of texts) {
        expect(t).toContain("data: [DONE]");
        for (const d of MOCK_DELTAS) expect(t).toContain(JSON.stringify(d));
      }
      expect(await gw.proc.exited).toBe(0);
      // Every stream's access line was written before the exit (workers' pending log lines are flushed too).
      for (const s of open) {
        const line = await gw.accessLog(s.id, 3000);
        expect(line["status"]).toBe(200);
      }
      const snap = await loadSnapshot(snapshot);
      if (!("entries" in snap)) throw new Error(`snapshot not written: ${JSON.stringify(snap)}`);
      expect(snap.entries).toContainEqual([String(HELD), "fraud"]);
    },
    90_000,
  );
});

// ---------------------------------------------------------------------------------------------

describe("the workers setting", () => {
  const bad: Array<[string, string, Record<string, string>]> = [
    ["workers = 0", "0", {}],
    ["workers = -1", "-1", {}],
    ["workers = 1.5", "1.5", {}],
    ['workers = "many"', '"many"', {}],
    ["AI_WORKERS=0", "", { AI_WORKERS: "0" }],
    ["AI_WORKERS=many", "", { AI_WORKERS: "many" }],
  ];
  test.each(bad)("%s: the boot fails with exit 2 and one stderr line naming `workers`", async (_name, value, env) => {
    const mock = newMock();
    // baseConfig's own `workers` line (the fetch run pins 1) goes; the bad value, if any, takes its place.
    let config = withoutWorkers(gatewayConfig(mock));
    if (value !== "") config = config.replace(/^(listen = .*)$/m, `$1\nworkers = ${value}`);
    const r = await runGatewayExpectExit({ config, env });
    expect(r.code).toBe(2);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines.length).toBe(1);
    expect(lines[0] ?? "").toContain("workers");
    expect(r.stdout).not.toContain('"listening"');
    expect(r.stderr + r.stdout).not.toContain(OPENAI_POOL);
  });

  test('workers = "auto" runs os.availableParallelism() workers; AI_WORKERS = "2" runs two', async () => {
    const mock = newMock();
    const auto = await launch(gatewayConfig(mock, { workers: "auto" }));
    expect(await metric(auto, "ai_workers")).toBe(availableParallelism());
    expect((await fetch(`${auto.url}/v1/models`, { headers: { authorization: `Bearer ${BYO}` } })).status).toBe(200);
    expect(await auto.stop()).toBe(0);
    const env = await launch(withoutWorkers(gatewayConfig(mock)), { AI_WORKERS: "2" });
    expect(await metric(env, "ai_workers")).toBe(2);
    const conns = await openConnections(env, 16, () => modelsRequest(BYO));
    expect(new Set(conns.map((c) => c.worker)).size).toBe(2);
    closeAll(conns);
    expect(await env.stop()).toBe(0);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

describe("the compiled binary runs workers", () => {
  let previousBin: string | undefined;
  let bin: string;

  beforeAll(async () => {
    bin = await buildBinary();
    previousBin = process.env["BEYOND_AI_BIN"];
  }, 180_000);

  afterAll(() => {
    if (previousBin === undefined) delete process.env["BEYOND_AI_BIN"];
    else process.env["BEYOND_AI_BIN"] = previousBin;
  });

  test(
    "started from an empty folder with workers = 2 it serves, both workers answer, ai_workers = 2",
    async () => {
      process.env["BEYOND_AI_BIN"] = bin;
      const mock = newMock();
      // The harness runs the binary from its own folder, which holds nothing but the binary.
      const gw = await launch(gatewayConfig(mock, { workers: 2 }));
      const conns = await openConnections(gw, 16, () => chatRequest(BYO));
      const workers = new Set(conns.map((c) => c.worker));
      for (const { conn } of conns) {
        const r = await conn.send(chatRequest(BYO));
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body)).toMatchObject({ choices: [{ message: { content: MOCK_TEXT } }] });
        workers.add(workerOf(r.id));
      }
      closeAll(conns);
      expect(workers.size).toBe(2);
      expect(await metric(gw, "ai_workers")).toBe(2);
      expect(await gw.stop()).toBe(0);
    },
    60_000,
  );
});
