// Streaming scenario (issue 7): N concurrent SSE streams, each 20 events 50 ms apart from a mock provider, first
// straight to the mock (the floor), then through the gateway with a managed key (so usage injection, the response tap
// and the usage-chunk strip all run). Reports completion time against the direct run, lost events, stalled and failed
// streams, the gateway's peak RSS and RSS per stream, its CPU seconds (utime+stime from /proc) and peak descriptors.
// Columns: lost = events expected minus received; wrong = completed streams with another event count (an unstripped
// usage chunk shows here); stalled = streams with two events further apart than STALL_MS; late1st = streams whose first
// event came later than the slowest direct one + STALL_MS. The peak descriptor count tells how many upstream streams
// the gateway really held at once; well below N, the run is flagged NOT CONCURRENT (its RSS figures understate N).
// Each N ends with one verdict line: "PASSED: …", or "FAILED: …" listing every problem in words (capped below the N
// asked for, failed, timed-out, lost, wrong, stalled or late streams, not concurrent, over the memory budget); the
// script exits 1 when any N failed.
//
// Run: node_modules/.bin/bun bench/streams.ts [N ...]      (default: 1000 then 10000; env STREAMS_N="1000,10000")
// Env: BEYOND_AI_TRANSPORT=fetch|pool (the gateway's upstream_transport, default pool), AI_WORKERS (the gateway's
// worker threads, passed through; unset: the e2e default, "auto" in the pool run, 1 in the fetch run), STALL_MS (default 1000: a
// stream is stalled when two events arrive further apart than this, 20 intervals), STREAM_TIMEOUT_MS (default 120000),
// STREAMS_FD_POLICY=cap|run (default cap: see below), BUN_CONFIG_MAX_HTTP_REQUESTS (passed to the gateway when set).
//
// Descriptors: every relayed stream holds two in the gateway (client socket, upstream socket). The script re-executes
// itself once under `ulimit -n` raised as far as the kernel allows (nr_open, else the hard limit), then works out the
// largest N the gateway's limit can hold. With the default policy `cap`, a larger N is run at that cap and the result
// is marked CAPPED, with both figures printed; `run` runs the requested N anyway (and measures the limit instead).
//
// Internal modes (the same file, so the mock and the client never share an event loop with what they measure):
//   --mock               start the SSE mock on an ephemeral port, print the port
//   --client URL N AUTH  open N streams, print one JSON line of results
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, startGateway, upstreamTransport, type Gateway } from "../test/helpers/gateway.ts";
import { rssBytes } from "../test/helpers/rss.ts";
import { type StreamsOutcome, streamsProblems, streamsVerdictLine } from "./verdict.ts";

const EVENTS = 20;
const INTERVAL_MS = 50;
/** Events a client counts per stream: the content chunks plus `data: [DONE]`. */
const EXPECTED_PER_STREAM = EVENTS + 1;
const MiB = 1024 * 1024;
const REQUEST_BODY = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "Stream me twenty tokens." }] });

const mode = process.argv[2];
if (mode === "--mock") mockMain();
else if (mode === "--client") await clientMain(process.argv[3] ?? "", Number(process.argv[4]), process.argv[5] ?? "Bearer sk-byo");
else await orchestrate();

// ------------------------------------------------------------------------------------------------------------------
// Mock provider: 20 OpenAI chat chunks 50 ms apart, then [DONE]. When the request asked for include_usage (the gateway
// injects it for managed streams), every chunk carries "usage":null and a usage-only chunk precedes [DONE], as OpenAI
// does; the gateway must strip both, so the client counts 21 events either way.

function mockMain(): void {
  const enc = new TextEncoder();
  const chunk = (i: number, usage: boolean): Uint8Array =>
    enc.encode(
      `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini-2024-07-18",` +
        `"choices":[{"index":0,"delta":{"content":" tok${i}"},"finish_reason":null}]${usage ? ',"usage":null' : ""}}\n\n`,
    );
  const plain = Array.from({ length: EVENTS }, (_, i) => chunk(i, false));
  const withUsage = Array.from({ length: EVENTS }, (_, i) => chunk(i, true));
  const usageChunk = enc.encode(
    `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini-2024-07-18",` +
      `"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":${EVENTS},"total_tokens":${12 + EVENTS}}}\n\n`,
  );
  const done = enc.encode("data: [DONE]\n\n");
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const usage = (await req.text()).includes('"include_usage":true');
      const events = usage ? withUsage : plain;
      let i = 0;
      let timer: Timer | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          timer = setInterval(() => {
            if (i < EVENTS) {
              c.enqueue(events[i++]!);
              return;
            }
            clearInterval(timer);
            if (usage) c.enqueue(usageChunk);
            c.enqueue(done);
            c.close();
          }, INTERVAL_MS);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
    },
  });
  console.log(server.port);
}

// ------------------------------------------------------------------------------------------------------------------
// Client: node:http with a keep-alive agent, every stream opened at once. Per stream it counts complete SSE events
// (blank-line terminators, tracked across chunk boundaries) and the longest gap between two events.

interface ClientResult {
  n: number;
  ms: number;
  /** Streams that got a 200 and ended normally. */
  completed: number;
  /** Connection errors, non-200 answers, bodies cut before their end. */
  failed: number;
  /** Still open when STREAM_TIMEOUT_MS ran out. */
  timedOut: number;
  events: number;
  expected: number;
  /** Completed streams that still saw fewer (or more) events than expected. */
  wrongCount: number;
  /** Streams with a gap between two consecutive events above STALL_MS. */
  stalled: number;
  /** Streams whose first event came later than LATE_FIRST_MS after the request was sent (waited for a CPU or a queue). */
  lateFirst: number;
  firstEventMs: { p50: number; p99: number; max: number };
  maxGapMs: { p50: number; p99: number; max: number };
  statuses: Record<string, number>;
  errors: Record<string, number>;
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function clientMain(url: string, n: number, auth: string): Promise<void> {
  const stallMs = Number(process.env["STALL_MS"] ?? 1000);
  const timeoutMs = Number(process.env["STREAM_TIMEOUT_MS"] ?? 120_000);
  const lateFirstMs = Number(process.env["LATE_FIRST_MS"] ?? Infinity);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const events = new Uint16Array(n);
  const firstEvent = new Float64Array(n).fill(NaN);
  const maxGap = new Float64Array(n);
  const ended = new Uint8Array(n); // 0 open, 1 completed, 2 failed
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const requests: http.ClientRequest[] = [];
  const bump = (m: Record<string, number>, k: string): void => {
    m[k] = (m[k] ?? 0) + 1;
  };
  const t0 = performance.now();
  let open = n;
  let finish!: () => void;
  const allDone = new Promise<void>((r) => (finish = r));
  const end = (i: number, how: 1 | 2): void => {
    if (ended[i] !== 0) return;
    ended[i] = how;
    if (--open === 0) finish();
  };
  for (let i = 0; i < n; i++) {
    const sent = performance.now();
    let last = sent;
    let newline = false;
    const rq = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", authorization: auth } }, (res) => {
      bump(statuses, String(res.statusCode));
      res.on("data", (d: Buffer) => {
        let got = 0;
        for (let k = 0; k < d.length; k++) {
          const b = d[k];
          if (b === 10) {
            if (newline) {
              got++;
              newline = false;
            } else newline = true;
          } else if (b !== 13) newline = false;
        }
        if (got === 0) return;
        const now = performance.now();
        if (events[i] === 0) firstEvent[i] = now - sent;
        else if (now - last > maxGap[i]!) maxGap[i] = now - last;
        last = now;
        events[i] = events[i]! + got;
      });
      res.on("end", () => end(i, res.statusCode === 200 ? 1 : 2));
      res.on("error", (e) => {
        bump(errors, (e as NodeJS.ErrnoException).code ?? e.message);
        end(i, 2);
      });
      res.on("close", () => {
        if (!res.complete) {
          bump(errors, "cut before end");
          end(i, 2);
        }
      });
    });
    rq.on("error", (e) => {
      bump(errors, (e as NodeJS.ErrnoException).code ?? e.message);
      end(i, 2);
    });
    rq.end(REQUEST_BODY);
    requests.push(rq);
  }
  const timer = setTimeout(finish, timeoutMs);
  await allDone;
  clearTimeout(timer);
  const ms = performance.now() - t0;
  let total = 0;
  let completed = 0;
  let failed = 0;
  let timedOut = 0;
  let wrongCount = 0;
  let stalled = 0;
  let lateFirst = 0;
  const firsts: number[] = [];
  for (let i = 0; i < n; i++) {
    total += events[i]!;
    if (ended[i] === 1) completed++;
    else if (ended[i] === 2) failed++;
    else timedOut++;
    if (ended[i] === 1 && events[i] !== EXPECTED_PER_STREAM) wrongCount++;
    if (maxGap[i]! > stallMs) stalled++;
    if (!(firstEvent[i]! <= lateFirstMs)) lateFirst++;
    if (!Number.isNaN(firstEvent[i]!)) firsts.push(firstEvent[i]!);
  }
  const f = Float64Array.from(firsts).sort();
  const g = Float64Array.from(maxGap).sort();
  const r = (x: number): number => Math.round(x * 10) / 10;
  const result: ClientResult = {
    n,
    ms: Math.round(ms),
    completed,
    failed,
    timedOut,
    events: total,
    expected: n * EXPECTED_PER_STREAM,
    wrongCount,
    stalled,
    lateFirst,
    firstEventMs: { p50: r(pct(f, 0.5)), p99: r(pct(f, 0.99)), max: r(f[f.length - 1] ?? NaN) },
    maxGapMs: { p50: r(pct(g, 0.5)), p99: r(pct(g, 0.99)), max: r(g[g.length - 1] ?? NaN) },
    statuses,
    errors,
  };
  console.log(JSON.stringify(result));
  for (const rq of requests) rq.destroy();
  agent.destroy();
  process.exit(0);
}

// ------------------------------------------------------------------------------------------------------------------
// Orchestrator.

interface FdLimits {
  soft: number;
  hard: number;
  nrOpen: number;
}

function fdLimits(): FdLimits {
  const out = Bun.spawnSync(["bash", "-c", "ulimit -Sn; ulimit -Hn; cat /proc/sys/fs/nr_open 2>/dev/null || echo 0"]).stdout.toString().trim().split("\n");
  const num = (s: string | undefined): number => (s === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: num(out[0]), hard: num(out[1]), nrOpen: num(out[2]) };
}

/** utime + stime of `pid` in seconds (fields 14 and 15 of /proc/pid/stat, counted after the parenthesised name). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name, field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12. Ticks are 1/100 s
  // on every Linux this runs on (CLK_TCK = 100).
  return (Number(f[11]) + Number(f[12])) / 100;
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text.split("\n")[0]!.trim();
}

/** `lateFirstMs`: a stream whose first event comes later than this counts in lateFirst; the direct run sets the bar. */
async function runClient(url: string, n: number, auth: string, lateFirstMs = Infinity): Promise<ClientResult> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--client", url, String(n), auth], {
    stdout: "pipe",
    stderr: "pipe",
    // Bun's fetch (under its node:http) queues requests beyond 256 in flight unless told otherwise; the load
    // generator must not be the bottleneck.
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "65535", LATE_FIRST_MS: String(lateFirstMs) },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const line = out.trim().split("\n").pop() ?? "";
  if (code !== 0 || !line.startsWith("{")) throw new Error(`stream client exited ${code}:\n${out.slice(-2000)}\n${err.slice(-2000)}`);
  return JSON.parse(line) as ClientResult;
}

interface Mock {
  proc: ReturnType<typeof Bun.spawn>;
  authority: string;
  url: string;
}

async function startMock(): Promise<Mock> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--mock"], { stdout: "pipe", stderr: "inherit" });
  const port = Number(await firstLine(proc.stdout as ReadableStream<Uint8Array>));
  if (!Number.isInteger(port) || port <= 0) throw new Error("the SSE mock did not report a port");
  return { proc, authority: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}` };
}

interface GatewayRun {
  client: ClientResult;
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
  cpuSeconds: number;
  fdBase: number;
  fdPeak: number;
  accessOk: number;
  accessErrors: Record<string, number>;
  usageComplete: number;
  usageLines: number;
}

async function measureGateway(gw: Gateway, n: number, token: string, lateFirstMs: number): Promise<GatewayRun> {
  const pid = gw.proc.pid;
  const logsBefore = gw.logs().length;
  const fdBase = fdCount(pid);
  // Let the warm-up's garbage go before the baseline, so growth is the streams' own.
  await Bun.sleep(300);
  const rssBefore = rssBytes(pid);
  const cpu0 = cpuSeconds(pid);
  let rssPeak = rssBefore;
  let fdPeak = fdBase;
  let ticks = 0;
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, rssBytes(pid));
      // Listing /proc/pid/fd costs more than reading RSS: every fifth tick is enough to catch the plateau.
      if (ticks++ % 5 === 0) fdPeak = Math.max(fdPeak, fdCount(pid));
    } catch {
      // the gateway died: the client result will say how
    }
  }, 50);
  const client = await runClient(`${gw.url}/v1/chat/completions`, n, `Bearer ${token}`, lateFirstMs);
  clearInterval(sampler);
  const cpu = cpuSeconds(pid) - cpu0;
  rssPeak = Math.max(rssPeak, rssBytes(pid));
  // Access and usage lines are written when each response ends; give the log a moment to drain.
  const deadline = Date.now() + 5000;
  const countAccess = (): number => gw.logs().slice(logsBefore).filter((l) => l["target"] === "ai.access").length;
  while (countAccess() < n && Date.now() < deadline) await Bun.sleep(50);
  await Bun.sleep(1000);
  const rssAfter = rssBytes(pid);
  const lines = gw.logs().slice(logsBefore);
  let accessOk = 0;
  const accessErrors: Record<string, number> = {};
  let usageComplete = 0;
  let usageLines = 0;
  for (const l of lines) {
    if (l["target"] === "ai.access") {
      if (l["status"] === 200 && l["error"] === undefined) accessOk++;
      else {
        const k = `${String(l["status"])} ${String(l["error"] ?? "")}`.trim();
        accessErrors[k] = (accessErrors[k] ?? 0) + 1;
      }
    } else if (l["target"] === "ai.usage") {
      usageLines++;
      if (l["complete"] === true && l["output_tokens"] === EVENTS) usageComplete++;
    }
  }
  return { client, rssBefore, rssPeak, rssAfter, cpuSeconds: cpu, fdBase, fdPeak, accessOk, accessErrors, usageComplete, usageLines };
}

export interface StreamsSummary {
  requested: number;
  ran: number;
  capped: boolean;
  fdLimit: number;
  transport: string;
  /** AI_WORKERS as given to the gateway (undefined: the config default). */
  workers?: string;
  directMs: number;
  gatewayMs: number;
  ratio: number;
  lostEvents: number;
  failed: number;
  stalled: number;
  /** Relayed streams whose first event came later than the slowest direct one plus STALL_MS. */
  lateFirst: number;
  timedOut: number;
  peakRssMiB: number;
  rssPerStreamKiB: number;
  cpuSeconds: number;
  /** Peak RSS projected to 10,000 streams from the per-stream figure, against the 1 GiB budget. */
  projected10kMiB: number;
  /** False when the gateway never held (nearly) N upstream streams at once: then the RSS and CPU figures understate what
   * N concurrent streams cost. */
  concurrent: boolean;
  /** Upstream sockets the gateway held at the sampled peak (descriptors beyond the resting set and the N client sockets). */
  upstreamAtPeak: number;
  /** "passed" only when every requested stream ran and came through whole, on time and within the memory budget. */
  verdict: "passed" | "failed";
  /** What made the run fail, in words (empty when it passed). */
  problems: string[];
}

function parseNs(): number[] {
  const args = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
  if (args.length > 0) return args;
  const env = process.env["STREAMS_N"];
  if (env !== undefined && env.trim() !== "") return env.split(",").map((s) => Number(s.trim())).filter((x) => x > 0);
  return [1000, 10000];
}

async function orchestrate(): Promise<void> {
  // Raise the descriptor limit before anything is spawned: children inherit it, and Bun cannot call setrlimit itself.
  if (process.env["BAI_STREAMS_ULIMIT"] !== "1") {
    const script = 'ulimit -n "$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
    const child = Bun.spawn(["bash", "-c", script, "bash", process.execPath, import.meta.path, ...process.argv.slice(2)], {
      stdio: ["inherit", "inherit", "inherit"],
      env: { ...process.env, BAI_STREAMS_ULIMIT: "1" },
    });
    process.exit(await child.exited);
  }

  const limits = fdLimits();
  const ns = parseNs();
  const policy = process.env["STREAMS_FD_POLICY"] === "run" ? "run" : "cap";
  const transport = upstreamTransport();
  console.log(
    `streams: ${EVENTS} events ${INTERVAL_MS} ms apart per stream; gateway upstream_transport=${transport}; ` +
      `fd limit ${limits.soft} (hard ${limits.hard}, nr_open ${limits.nrOpen}${limits.soft < limits.nrOpen ? ": could not raise past the hard limit" : ""}); ` +
      `${navigator.hardwareConcurrency} cpus, bun ${Bun.version}; N = ${ns.join(", ")}`,
  );

  const summaries: StreamsSummary[] = [];
  for (const requested of ns) summaries.push(await scenario(requested, limits, policy, transport));
  for (const s of summaries) console.log(`STREAMS-SUMMARY ${JSON.stringify(s)}`);
  // A capped, stalled or lossy run is a failed run, whatever its figures: the exit status says so too.
  if (summaries.some((s) => s.verdict === "failed")) process.exit(1);
}

async function scenario(requested: number, limits: FdLimits, policy: "cap" | "run", transport: string): Promise<StreamsSummary> {
  const seed = keygen();
  const token = mint(1, seed.seed, 42n, 7n);
  const mock = await startMock();
  const env: Record<string, string> = { AI_POOL_KEY_OPENAI: "sk-pool-bench" };
  const maxHttp = process.env["BUN_CONFIG_MAX_HTTP_REQUESTS"];
  if (maxHttp !== undefined) env["BUN_CONFIG_MAX_HTTP_REQUESTS"] = maxHttp;
  const workers = process.env["AI_WORKERS"];
  if (workers !== undefined) env["AI_WORKERS"] = workers;
  const gw = await startGateway({
    config: baseConfig({
      authorities: { openai: mock.authority },
      tables: `[signing_keys]\n1 = "${Buffer.from(seed.publicKey).toString("base64")}"\n`,
    }),
    env,
  });
  try {
    // Descriptors before the warm-up: the upstream sockets the warm-up leaves idle in the pool are reused by the run,
    // so the upstream count at the peak is measured from here, not from the (warmer) resting count.
    const fdCold = fdCount(gw.proc.pid);
    // Warm-up on both paths: JIT, the gateway's upstream connections, the mock's first timers.
    await runClient(`${mock.url}/v1/chat/completions`, 50, "Bearer sk-byo");
    const warm = await runClient(`${gw.url}/v1/chat/completions`, 50, `Bearer ${token}`);
    if (warm.completed !== 50) throw new Error(`gateway warm-up failed: ${JSON.stringify(warm)}`);

    // The gateway needs two descriptors per stream on top of what it already holds; the client and the mock one each.
    const base = fdCount(gw.proc.pid);
    const margin = 32;
    const cap = Math.floor((limits.soft - base - margin) / 2);
    const capped = requested > cap;
    const n = capped && policy === "cap" ? cap : requested;
    console.log(`\n=== N = ${requested}${capped ? `: the gateway's fd limit (${limits.soft}, ${base} in use at rest) holds at most ${cap} streams` : ""}`);
    if (capped) {
      console.log(
        policy === "cap"
          ? `CAPPED: running N = ${n} instead of ${requested} (STREAMS_FD_POLICY=run runs ${requested} anyway)`
          : `OVER LIMIT: running N = ${n} anyway (STREAMS_FD_POLICY=run); failures past ${cap} streams measure the limit, not the gateway`,
      );
    }

    const direct = await runClient(`${mock.url}/v1/chat/completions`, n, "Bearer sk-byo");
    await Bun.sleep(500);
    // A relayed stream whose first event comes later than the slowest direct one plus STALL_MS waited: for a saturated
    // CPU, or in a queue in front of the upstream (which the descriptor count below tells apart).
    const stallMs = Number(process.env["STALL_MS"] ?? 1000);
    const g = await measureGateway(gw, n, token, direct.firstEventMs.max + stallMs);
    const c = g.client;

    const row = (name: string, r: ClientResult): string =>
      [
        name.padEnd(8),
        String(r.ms).padStart(7),
        String(r.expected - r.events).padStart(7),
        String(r.wrongCount).padStart(6),
        String(r.failed).padStart(6),
        String(r.timedOut).padStart(6),
        String(r.stalled).padStart(7),
        String(r.lateFirst).padStart(7),
        `${r.firstEventMs.p50}/${r.firstEventMs.p99}/${r.firstEventMs.max}`.padStart(22),
        `${r.maxGapMs.p50}/${r.maxGapMs.p99}/${r.maxGapMs.max}`.padStart(22),
      ].join(" ");
    console.log(
      ["path".padEnd(8), "ms".padStart(7), "lost".padStart(7), "wrong".padStart(6), "failed".padStart(6), "t/out".padStart(6), "stalled".padStart(7), "late1st".padStart(7), "1st event p50/p99/max".padStart(22), "max gap p50/p99/max".padStart(22)].join(" "),
    );
    console.log(row("direct", direct));
    console.log(row("gateway", c));
    const extra = (r: ClientResult): string =>
      Object.keys(r.errors).length > 0 || Object.keys(r.statuses).some((s) => s !== "200") ? ` statuses ${JSON.stringify(r.statuses)} errors ${JSON.stringify(r.errors)}` : "";
    if (extra(direct) !== "") console.log(`direct:${extra(direct)}`);
    if (extra(c) !== "") console.log(`gateway:${extra(c)}`);

    const growth = g.rssPeak - g.rssBefore;
    const perStream = growth / n;
    const projected = (g.rssPeak + perStream * Math.max(0, 10_000 - n)) / MiB;
    const events = c.events;
    console.log(`gateway/direct completion: ${(c.ms / direct.ms).toFixed(2)}x (${c.ms} ms vs ${direct.ms} ms; a perfect relay is 1.00x)`);
    console.log(
      `gateway RSS: ${(g.rssBefore / MiB).toFixed(1)} MiB at rest -> peak ${(g.rssPeak / MiB).toFixed(1)} MiB ` +
        `(+${(growth / MiB).toFixed(1)} MiB, ${(perStream / 1024).toFixed(1)} KiB per stream); ${(g.rssAfter / MiB).toFixed(1)} MiB 1 s after`,
    );
    console.log(
      `gateway CPU: ${g.cpuSeconds.toFixed(2)} s user+sys over ${(c.ms / 1000).toFixed(2)} s ` +
        `(${((g.cpuSeconds / (c.ms / 1000)) * 100).toFixed(0)}% of one core; ${events > 0 ? ((g.cpuSeconds * 1e6) / events).toFixed(1) : "n/a"} µs per relayed event, ` +
        `${((g.cpuSeconds * 1e3) / n).toFixed(2)} ms per stream)`,
    );
    const upstreamAtPeak = Math.max(0, g.fdPeak - fdCold - n);
    const concurrent = upstreamAtPeak >= 0.9 * n;
    console.log(
      `gateway descriptors: ${fdCold} before the warm-up, ${g.fdBase} at rest after it, peak seen ${g.fdPeak} (limit ${limits.soft}): ` +
        `about ${upstreamAtPeak} upstream sockets beside ${n} client ones`,
    );
    if (!concurrent) {
      console.log(
        `NOT CONCURRENT: the gateway held only about ${upstreamAtPeak} upstream streams at once (${c.lateFirst} of ${n} got their first event ` +
          `later than the slowest direct one + ${stallMs} ms): the RSS and CPU figures above understate ${n} concurrent streams. ` +
          (upstreamAtPeak < 300 && transport === "fetch"
            ? "With upstream_transport=fetch this is Bun's fetch limit of 256 requests in flight (env BUN_CONFIG_MAX_HTTP_REQUESTS, up to 65535, lifts it)."
            : ""),
      );
    }
    console.log(
      `gateway logs: ${g.accessOk}/${n} access lines 200 without error${Object.keys(g.accessErrors).length > 0 ? `, others ${JSON.stringify(g.accessErrors)}` : ""}; ` +
        `${g.usageComplete}/${g.usageLines} usage lines complete with ${EVENTS} output tokens`,
    );
    console.log(
      `memory budget (10,000 streams < 1 GiB): ${n >= 10_000 ? `peak ${(g.rssPeak / MiB).toFixed(0)} MiB` : `projected ${projected.toFixed(0)} MiB from ${n} streams`} -> ${projected < 1024 ? "within" : "OVER"} budget` +
        (concurrent ? "" : " (NOT MEASURED: the streams were not concurrent, see above)"),
    );
    // The verdict, in words a reader cannot misread: any problem makes the run FAILED, not ok.
    const outcome: StreamsOutcome = {
      requested,
      ran: n,
      cap,
      failed: c.failed,
      timedOut: c.timedOut,
      lostEvents: c.expected - c.events,
      wrongCount: c.wrongCount,
      stalled: c.stalled,
      lateFirst: c.lateFirst,
      stallMs,
      lateFirstMs: direct.firstEventMs.max + stallMs,
      concurrent,
      upstreamAtPeak,
      projected10kMiB: projected,
      budgetMiB: 1024,
      errors: c.errors,
      statuses: c.statuses,
    };
    const problems = streamsProblems(outcome);
    console.log(streamsVerdictLine(outcome, direct.ms, c.ms));
    return {
      requested,
      ran: n,
      capped,
      fdLimit: limits.soft,
      transport,
      workers,
      directMs: direct.ms,
      gatewayMs: c.ms,
      ratio: Math.round((c.ms / direct.ms) * 100) / 100,
      lostEvents: c.expected - c.events,
      failed: c.failed,
      stalled: c.stalled,
      lateFirst: c.lateFirst,
      timedOut: c.timedOut,
      peakRssMiB: Math.round((g.rssPeak / MiB) * 10) / 10,
      rssPerStreamKiB: Math.round((perStream / 1024) * 10) / 10,
      cpuSeconds: Math.round(g.cpuSeconds * 100) / 100,
      projected10kMiB: Math.round(projected),
      concurrent,
      upstreamAtPeak,
      verdict: problems.length === 0 ? "passed" : "failed",
      problems,
    };
  } finally {
    await gw.stop();
    mock.proc.kill();
    await mock.proc.exited;
  }
}
