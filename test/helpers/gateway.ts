// Runs the real gateway (`bun src/main.ts serve`) as a child process for end-to-end tests, collects its
// JSON log lines, and offers a raw HTTP/1.1 client for requests `fetch` cannot express.
// With `BEYOND_AI_BIN=/path/to/beyond-ai` in the environment the same helpers run that compiled binary
// instead (same arguments), so any end-to-end file can be pointed at the release artefact.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { concatBytes } from "./bytes.ts";
import { type MockProvider, startMockProvider } from "./mock-provider.ts";

export const REPO_ROOT = resolve(import.meta.dir, "..", "..");
export const MAIN_TS = join(REPO_ROOT, "src", "main.ts");
export const WORKER_TS = join(REPO_ROOT, "src", "worker.ts");

export type LogLine = Record<string, unknown>;

export interface GatewayOptions {
  /** TOML text; written to a temp file and passed as `--config` (unless `configArg` is false). */
  config?: string;
  /** Pass `--config <file>` for `config` (default true). False: the file is only written (see configPath). */
  configArg?: boolean;
  /** Extra environment. The child gets only PATH, HOME and these: nothing from the outer AI_* world. */
  env?: Record<string, string>;
  /** Arguments after `src/main.ts` (or the binary); default `["serve"]` plus `--config` when `config` is given. */
  args?: string[];
  /** Working directory; default the repo root, or the binary's folder when `BEYOND_AI_BIN` is set. */
  cwd?: string;
  /** How long to wait for the `listening` line (default 10 s). */
  startTimeoutMs?: number;
}

export interface Gateway {
  /** `http://127.0.0.1:PORT` of the client listener. */
  url: string;
  /** `http://127.0.0.1:PORT` of the metrics listener. */
  metricsUrl: string;
  host: string;
  port: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Path of the temp config file, when `config` was given. */
  configPath: string | undefined;
  /** Every stdout line parsed so far (non-JSON lines are kept as {"unparsed": line}). */
  logs(): LogLine[];
  /** Polls the log until a line satisfies `pred` (logs may be flushed in batches). */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** The ai.access line for a request id. */
  accessLog(requestId: string, timeoutMs?: number): Promise<LogLine>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 3 s. Returns the exit code. */
  stop(): Promise<number | null>;
}

// Temp configs and working dirs live under one folder per test process. bun test fires no process "exit" event,
// so instead of cleaning up at exit, each run removes the folders of earlier runs whose process is gone.
const TMP_PREFIX = "bai-e2e-";
for (const name of readdirSync(tmpdir())) {
  const m = /^bai-e2e-(\d+)$/.exec(name);
  if (m && !existsSync(`/proc/${m[1]}`)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
}
const tmpRoot = join(tmpdir(), `${TMP_PREFIX}${process.pid}`);

/** A fresh empty directory under this test process's temp folder. */
export function makeTempDir(): string {
  mkdirSync(tmpRoot, { recursive: true });
  return mkdtempSync(join(tmpRoot, "d-"));
}

export function writeTempConfig(toml: string, dir = makeTempDir()): string {
  const path = join(dir, "config.toml");
  writeFileSync(path, toml);
  return path;
}

/** The config every e2e gateway shares: loopback ephemeral listeners, plaintext upstreams, the guardrails that
 * would make tests order-dependent (rate limits, circuit breaker) off, and a NATS URL where nothing listens. */
export function baseConfig(opts: { authorities?: Record<string, string>; extra?: string; tables?: string } = {}): string {
  const lines = [
    `listen = "127.0.0.1:0"`,
    `metrics_listen = "127.0.0.1:0"`,
    `upstream_tls = false`,
    `nats_url = "nats://127.0.0.1:1"`,
    `rate_limit_rps = 0`,
    `byo_rate_limit_rps = 0`,
    `circuit_breaker_threshold = 0`,
    `shutdown_grace_period_secs = 1`,
    // The whole e2e suite runs once per upstream transport: `BEYOND_AI_TRANSPORT=fetch bun test` (see package.json).
    `upstream_transport = "${upstreamTransport()}"`,
  ];
  // Both serving paths run the whole e2e suite at no extra time: the pool run keeps the default (workers = "auto":
  // 2 worker threads on the 2-core CI box), the fetch run pins the single-thread path. A test that sets `workers`
  // itself (in `extra`) wins.
  if (upstreamTransport() === "fetch" && !/^workers\s*=/m.test(opts.extra ?? "")) lines.push(`workers = 1`);
  if (opts.extra) lines.push(opts.extra);
  if (opts.authorities && Object.keys(opts.authorities).length > 0) {
    lines.push("", "[provider_authorities]");
    for (const [name, auth] of Object.entries(opts.authorities)) lines.push(`${tomlKey(name)} = "${auth}"`);
  }
  if (opts.tables) lines.push("", opts.tables);
  return lines.join("\n") + "\n";
}

/** Which upstream transport the e2e gateways use: `pool` (the default) unless BEYOND_AI_TRANSPORT says `fetch`. */
export function upstreamTransport(): "fetch" | "pool" {
  return process.env["BEYOND_AI_TRANSPORT"] === "fetch" ? "fetch" : "pool";
}

function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

function childEnv(extra: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: process.env["HOME"] ?? "/tmp",
  };
  return { ...env, ...(extra ?? {}) };
}

/** The compiled gateway to run instead of `bun src/main.ts`: `$BEYOND_AI_BIN` when set (read per call, so a test
 * file can switch it in beforeAll), else undefined. */
export function gatewayBinary(): string | undefined {
  const bin = process.env["BEYOND_AI_BIN"];
  return bin !== undefined && bin !== "" ? bin : undefined;
}

/** argv for the gateway process, and its default working directory: the repo for source runs; the binary's own
 * folder for the binary, so nothing from the repo (node_modules, config files) is within its reach. */
function gatewayCommand(args: string[]): { argv: string[]; cwd: string } {
  const bin = gatewayBinary();
  if (bin !== undefined) return { argv: [bin, ...args], cwd: dirname(bin) };
  return { argv: [process.execPath, MAIN_TS, ...args], cwd: REPO_ROOT };
}

let binaryBuild: Promise<string> | undefined;

/**
 * Compiles the gateway as package.json's "build" does (`bun build --compile --minify src/main.ts src/worker.ts`: the
 * worker thread's entry is embedded too) once per test process and returns the path
 * of a copy that sits alone in a fresh empty temp folder (so a test proves it needs nothing beside it).
 */
export function buildBinary(): Promise<string> {
  binaryBuild ??= (async () => {
    const buildDir = makeTempDir();
    const built = join(buildDir, "beyond-ai");
    const proc = Bun.spawn([process.execPath, "build", "--compile", "--minify", MAIN_TS, WORKER_TS, "--outfile", built], {
      cwd: REPO_ROOT,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0 || !existsSync(built)) throw new Error(`bun build --compile failed (exit ${code}):\n${out}\n${err}`);
    const binDir = makeTempDir();
    const bin = join(binDir, "beyond-ai");
    copyFileSync(built, bin);
    // The compiled file is ~100 MB; keep one copy, and only the binary in its folder.
    rmSync(buildDir, { recursive: true, force: true });
    return bin;
  })();
  // A failed build is not cached: the next caller retries (and reports its own error).
  binaryBuild.catch(() => {
    binaryBuild = undefined;
  });
  return binaryBuild;
}

function buildArgs(opts: GatewayOptions, configPath: string | undefined): string[] {
  if (opts.args) return opts.args;
  const args = ["serve"];
  if (configPath !== undefined && opts.configArg !== false) args.push("--config", configPath);
  return args;
}

/** Reads a byte stream line by line into `onLine`, and the whole text into the returned getter. */
function collectLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): { text: () => string; done: Promise<void> } {
  let all = "";
  let partial = "";
  const dec = new TextDecoder();
  const done = (async () => {
    const reader = stream.getReader();
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      const s = dec.decode(value, { stream: true });
      all += s;
      partial += s;
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line.trim() !== "") onLine(line);
      }
    }
    if (partial.trim() !== "") onLine(partial);
  })().catch(() => {});
  return { text: () => all, done };
}

/** Writes the config (if any) and starts the gateway (source or BEYOND_AI_BIN) with piped output. */
function spawnGateway(opts: GatewayOptions) {
  const configPath = opts.config !== undefined ? writeTempConfig(opts.config) : undefined;
  const args = buildArgs(opts, configPath);
  const cmd = gatewayCommand(args);
  const proc = Bun.spawn(cmd.argv, {
    cwd: opts.cwd ?? cmd.cwd,
    env: childEnv(opts.env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return { proc, args, configPath };
}

export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const { proc, args, configPath } = spawnGateway(opts);

  const lines: LogLine[] = [];
  const out = collectLines(proc.stdout, (line) => {
    try {
      const v: unknown = JSON.parse(line);
      lines.push(v !== null && typeof v === "object" && !Array.isArray(v) ? (v as LogLine) : { unparsed: line });
    } catch {
      lines.push({ unparsed: line });
    }
  });
  const err = collectLines(proc.stderr, () => {});

  const waitForLog = async (pred: (l: LogLine) => boolean, timeoutMs = 3000): Promise<LogLine> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = lines.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) {
        throw new Error(`gateway: no matching log line within ${timeoutMs} ms. stdout tail:\n${out.text().slice(-3000)}\nstderr tail:\n${err.text().slice(-2000)}`);
      }
      await Bun.sleep(15);
    }
  };

  const stop = async (): Promise<number | null> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
    if (!exited) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    return proc.exitCode;
  };

  // Wait for the `listening` line; with port 0 it is the only way to learn the ports.
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let listening: LogLine | undefined;
  while (!listening) {
    listening = lines.find((l) => l["msg"] === "listening" && typeof l["addr"] === "string");
    if (listening) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      await Promise.race([Promise.all([out.done, err.done]), Bun.sleep(500)]);
      throw new Error(
        `gateway did not report "listening" (exit code ${proc.exitCode}, args ${JSON.stringify(args)}).\nstdout:\n${out.text().slice(-4000)}\nstderr:\n${err.text().slice(-4000)}`,
      );
    }
    await Bun.sleep(15);
  }
  const addr = String(listening["addr"]);
  const metricsAddr = typeof listening["metrics_addr"] === "string" ? listening["metrics_addr"] : "";
  const colon = addr.lastIndexOf(":");
  const host = addr.slice(0, colon);
  const port = Number(addr.slice(colon + 1));

  return {
    url: `http://${addr}`,
    metricsUrl: metricsAddr ? `http://${metricsAddr}` : "",
    host,
    port,
    proc,
    configPath,
    logs: () => lines,
    waitForLog,
    accessLog: (requestId, ms = 3000) => waitForLog((l) => l["target"] === "ai.access" && l["request_id"] === requestId, ms),
    stdout: out.text,
    stderr: err.text,
    stop,
  };
}

export interface ExitResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the gateway expecting it to exit on its own (bad config, CLI commands). Kills it after timeoutMs. */
export async function runGatewayExpectExit(opts: GatewayOptions & { timeoutMs?: number } = {}): Promise<ExitResult> {
  const { proc } = spawnGateway(opts);
  const stdoutP = new Response(proc.stdout).text();
  const stderrP = new Response(proc.stderr).text();
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(opts.timeoutMs ?? 10_000).then(() => false)]);
  if (!exited) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
  const [stdout, stderr] = await Promise.all([stdoutP, stderrP]);
  return { code: exited ? proc.exitCode : null, stdout, stderr };
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over a TCP socket, for requests fetch refuses or rewrites (both content-length and
// transfer-encoding, hop-by-hop headers, no accept-encoding at all).

export interface RawResponse {
  status: number;
  /** Lower-cased names; repeated headers joined by ", ". */
  headers: Record<string, string>;
  /** Body after transfer decoding (chunked removed); content-encoding left alone. */
  body: Uint8Array;
  text(): string;
}

function indexOfCrlfCrlf(buf: Uint8Array, from = 0): number {
  for (let i = from; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Parses one complete response from `buf`; undefined while more bytes are needed (or when `eof` decides). */
function tryParseResponse(buf: Uint8Array, eof: boolean, headRequest: boolean): RawResponse | undefined {
  const headEnd = indexOfCrlfCrlf(buf);
  if (headEnd < 0) return undefined;
  const head = new TextDecoder().decode(buf.subarray(0, headEnd));
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of headerLines) {
    const c = l.indexOf(":");
    if (c < 0) continue;
    const k = l.slice(0, c).trim().toLowerCase();
    const v = l.slice(c + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  const rest = buf.subarray(headEnd + 4);
  const mk = (body: Uint8Array): RawResponse => ({ status, headers, body, text: () => new TextDecoder().decode(body) });
  if (headRequest || status === 204 || status === 304 || (status >= 100 && status < 200)) return mk(new Uint8Array(0));
  if ((headers["transfer-encoding"] ?? "").toLowerCase().includes("chunked")) {
    const parts: Uint8Array[] = [];
    let off = 0;
    for (;;) {
      let lineEnd = -1;
      for (let i = off; i + 1 < rest.length; i++) {
        if (rest[i] === 13 && rest[i + 1] === 10) {
          lineEnd = i;
          break;
        }
      }
      if (lineEnd < 0) return eof ? mk(concatBytes(parts)) : undefined;
      const size = parseInt(new TextDecoder().decode(rest.subarray(off, lineEnd)).split(";")[0] ?? "", 16);
      if (!Number.isFinite(size)) return mk(concatBytes(parts));
      if (size === 0) return mk(concatBytes(parts));
      const start = lineEnd + 2;
      if (start + size + 2 > rest.length) return eof ? mk(concatBytes([...parts, rest.subarray(start)])) : undefined;
      parts.push(rest.subarray(start, start + size));
      off = start + size + 2;
    }
  }
  const cl = headers["content-length"];
  if (cl !== undefined) {
    const n = Number(cl);
    if (rest.length >= n) return mk(rest.subarray(0, n));
    return eof ? mk(rest) : undefined;
  }
  return eof ? mk(rest) : undefined;
}


/** Sends `request` (a full HTTP/1.1 message; use CRLF) to host:port and resolves with the first response.
 * Rejects if the connection closes before a status line arrives or after timeoutMs. */
export function rawHttp(host: string, port: number, request: string | Uint8Array, timeoutMs = 5000): Promise<RawResponse> {
  const bytes = typeof request === "string" ? new TextEncoder().encode(request) : request;
  const headRequest = typeof request === "string" && request.startsWith("HEAD ");
  return new Promise<RawResponse>((resolvePromise, reject) => {
    let buf: Uint8Array = new Uint8Array(0);
    let settled = false;
    const finish = (eof: boolean, socket?: { end(): void }): void => {
      if (settled) return;
      const r = tryParseResponse(buf, eof, headRequest);
      if (r) {
        settled = true;
        clearTimeout(timer);
        socket?.end();
        resolvePromise(r);
      } else if (eof) {
        settled = true;
        clearTimeout(timer);
        reject(new Error(`raw HTTP: connection closed after ${buf.length} bytes without a complete response: ${new TextDecoder().decode(buf.subarray(0, 500))}`));
      }
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new Error(`raw HTTP: no complete response within ${timeoutMs} ms; got: ${new TextDecoder().decode(buf.subarray(0, 500))}`));
    }, timeoutMs);
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open(socket) {
          socket.write(bytes);
        },
        data(socket, chunk) {
          buf = concat(buf, chunk);
          finish(false, socket);
        },
        close() {
          finish(true);
        },
        end() {
          finish(true);
        },
        error(_socket, e) {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(e);
        },
      },
    }).catch((e: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e instanceof Error ? e : new Error(String(e)));
    });
  });
}

/** The value of one Prometheus sample from `/metrics` (labels matched exactly, in any order); 0 when absent. */
export async function metricValue(metricsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(",");
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? "")
      .split(",")
      .filter((s) => s !== "")
      .sort()
      .join(",");
    if (got === want) return Number(m[3]);
  }
  return 0;
}

/** What the managed end-to-end files start: one mock per dialect behind a gateway holding a pool key for each and one
 * signing key. `stop` ends all three. */
export interface ManagedPair {
  gw: Gateway;
  openaiMock: MockProvider;
  anthropicMock: MockProvider;
  stop(): Promise<void>;
}

export async function startManagedPair(o: { openaiPool: string; anthropicPool: string; publicKey: Uint8Array; kid?: number }): Promise<ManagedPair> {
  const openaiMock = startMockProvider();
  const anthropicMock = startMockProvider();
  const gw = await startGateway({
    config: baseConfig({
      authorities: { openai: openaiMock.authority, anthropic: anthropicMock.authority },
      tables: [
        "[pool_keys]",
        `openai = "${o.openaiPool}"`,
        `anthropic = "${o.anthropicPool}"`,
        "",
        "[signing_keys]",
        `${o.kid ?? 1} = "${Buffer.from(o.publicKey).toString("base64")}"`,
      ].join("\n"),
    }),
  });
  return {
    gw,
    openaiMock,
    anthropicMock,
    async stop() {
      await gw.stop();
      await openaiMock.stop();
      await anthropicMock.stop();
    },
  };
}

/** `[key_pool]` and `[retry]` settings as a test writes them (SPEC §10); values go into the TOML as they are. */
export type TomlSettings = Record<string, string | number>;

function tomlTable(name: string, entries: Record<string, string | number | readonly string[]>): string {
  const lines = [`[${name}]`];
  for (const [k, v] of Object.entries(entries)) {
    const value = typeof v === "number" ? String(v) : typeof v === "string" ? JSON.stringify(v) : `[${v.map((s) => JSON.stringify(s)).join(", ")}]`;
    lines.push(`${tomlKey(k)} = ${value}`);
  }
  return lines.join("\n");
}

/**
 * The config of a managed gateway with key pools and retries (SPEC §10): providers' authorities, `[pool_keys]` as
 * arrays, `[key_pool]` and `[retry]` as given, one signing key (kid 1). Retry tests pass small backoffs
 * (`initial_backoff_ms = 10`) so the suite stays fast.
 */
export function poolConfig(o: {
  authorities: Record<string, string>;
  poolKeys: Record<string, readonly string[]>;
  publicKey: Uint8Array;
  keyPool?: TomlSettings;
  retry?: TomlSettings;
  extra?: string;
}): string {
  const tables = [tomlTable("pool_keys", o.poolKeys), tomlTable("signing_keys", { "1": Buffer.from(o.publicKey).toString("base64") })];
  if (o.keyPool !== undefined) tables.push(tomlTable("key_pool", o.keyPool));
  if (o.retry !== undefined) tables.push(tomlTable("retry", o.retry));
  return baseConfig({ authorities: o.authorities, extra: o.extra, tables: tables.join("\n\n") });
}

/** Every `ai.usage` line a gateway wrote for `requestId` (SPEC §6: exactly one per managed request that reached a
 * provider); waits for the first. */
export async function usageLine(gw: Gateway, requestId: string, timeoutMs = 3000): Promise<LogLine> {
  return gw.waitForLog((l) => l["target"] === "ai.usage" && l["request_id"] === requestId, timeoutMs);
}
