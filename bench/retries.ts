// Retries under provider chaos: what the gateway's key pool and retries buy a client when the provider answers 20 %
// of requests with a 429 (with a short `retry-after-ms`) and 5 % with a 503, and what they cost in latency.
//
// Run: node_modules/.bin/bun bench/retries.ts [--n 2000] [--conc 16] [--keys 3] [--p429 0.2] [--p503 0.05] [--ra 20]
//   --n      managed chat requests per run (default 2000)
//   --conc   concurrent client loops (default 16); each loop is one session (`x-session-id`), so affinity spreads
//            the sessions over the keys
//   --keys   pool keys for the provider (default 3)
//   --p429, --p503   the mock's failure shares (defaults 0.2, 0.05)
//   --ra     the 429's `retry-after-ms` (default 20)
//   --rate   requests per second, paced (request i starts at i/rate s, when a loop is free); 0 (default): closed loop,
//            each loop sends its next request as soon as the last one ends. Paced runs keep the load the same in the
//            chaos and the baseline runs, so their latencies compare; in a closed loop the requests sleeping in a
//            backoff lighten the load on the others, and the chaos run's p50 can come out below the baseline's
//
// Everything is on 127.0.0.1: the mock provider (test/helpers/mock-provider.ts, chaos mode with a fixed seed) and the
// client loops in this process, the real gateway as a child process, started fresh for each run so no key state
// carries over. The retry and key-pool settings are the defaults (initial backoff 200 ms, x1.5, full jitter, 4
// attempts, budget 20 % + 5/s, cooldown from the provider's retry-after-ms); only the guardrails every bench turns off
// are off (per-credential rate limit, circuit breaker), so what is measured is the retry machinery alone. Three runs:
//   1. no chaos, default retries: the latency baseline;
//   2. chaos, default retries: client-visible success rate and latency;
//   3. chaos, max_attempts = 1: the same chaos with the gateway's retries off, for contrast.
// Prints per run: success rate, what the client got (200 / provider 429 / gateway 429 / 503 …), upstream attempts per
// request, and client latency p50/p90/p99 (all requests; the chaos run also for its successes alone).
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, startGateway } from "../test/helpers/gateway.ts";
import { startMockProvider } from "../test/helpers/mock-provider.ts";

const args = process.argv.slice(2);
function opt(name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v)) throw new Error(`${name} wants a number`);
  return v;
}
const N = opt("--n", 2000);
const CONC = opt("--conc", 16);
const KEYS = opt("--keys", 3);
const P429 = opt("--p429", 0.2);
const P503 = opt("--p503", 0.05);
const RA = opt("--ra", 20);
const RATE = opt("--rate", 0);

const signing = keygen();
const MANAGED = mint(1, signing.seed, 77n, 1n);
const BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const mock = startMockProvider();

interface RunResult {
  name: string;
  wallMs: number;
  outcomes: Map<string, number>;
  latencies: number[];
  okLatencies: number[];
  upstream: number;
}

async function start(retry: string): Promise<Gateway> {
  const keys = Array.from({ length: KEYS }, (_, i) => `"sk-bench-retries-${i}"`).join(", ");
  return startGateway({
    config: baseConfig({
      authorities: { openai: mock.authority },
      tables: [`[pool_keys]`, `openai = [${keys}]`, ``, `[signing_keys]`, `1 = "${Buffer.from(signing.publicKey).toString("base64")}"`, retry].join("\n"),
    }),
  });
}

async function run(name: string, chaos: boolean, retry = ""): Promise<RunResult> {
  mock.reset();
  const gw = await start(retry);
  try {
    // Warm-up without chaos: connections, JIT.
    await load(gw, 200);
    mock.reset();
    if (chaos) mock.setChaos({ p429: P429, p503: P503, retryAfterMs: RA, seed: 12345 });
    const t0 = performance.now();
    const r = await load(gw, N);
    const wallMs = performance.now() - t0;
    return { name, wallMs, upstream: mock.requests.length, ...r };
  } finally {
    mock.setChaos(null);
    await gw.stop();
  }
}

async function load(gw: Gateway, n: number): Promise<Omit<RunResult, "name" | "wallMs" | "upstream">> {
  const outcomes = new Map<string, number>();
  const latencies: number[] = [];
  const okLatencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async (_, loop) => {
      while (next < n) {
        const i = next++;
        if (RATE > 0) {
          const due = t0 + (i * 1000) / RATE - performance.now();
          if (due > 0) await Bun.sleep(due);
        }
        const t = performance.now();
        let what: string;
        try {
          const res = await fetch(`${gw.url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", "x-session-id": `bench-session-${loop}` },
            body: BODY,
          });
          await res.arrayBuffer();
          // A provider answer carries the mock's x-mock-failure; the gateway's own 429 (every key cooling) does not.
          const failure = res.headers.get("x-mock-failure");
          what = res.status === 200 ? "200" : `${res.status} ${failure !== null ? "provider" : "gateway"}`;
        } catch {
          what = "network error";
        }
        const ms = performance.now() - t;
        latencies.push(ms);
        if (what === "200") okLatencies.push(ms);
        outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
      }
    }),
  );
  return { outcomes, latencies, okLatencies };
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function lat(xs: number[]): string {
  return `p50 ${pct(xs, 50).toFixed(1)} ms, p90 ${pct(xs, 90).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms`;
}

function report(r: RunResult): void {
  const ok = r.outcomes.get("200") ?? 0;
  const total = r.latencies.length;
  const parts = [...r.outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`);
  console.log(`\n${r.name}`);
  console.log(`  success ${((100 * ok) / total).toFixed(2)} % (${ok}/${total}); ${parts.join(", ")}`);
  console.log(`  upstream attempts ${r.upstream} (${(r.upstream / total).toFixed(3)} per request); ${(total / (r.wallMs / 1000)).toFixed(0)} req/s`);
  console.log(`  latency (all): ${lat(r.latencies)}`);
  if (ok !== total) console.log(`  latency (200s): ${lat(r.okLatencies)}`);
}

console.log(
  `bench/retries.ts: ${N} managed requests per run, ${CONC} concurrent sessions${RATE > 0 ? `, paced at ${RATE}/s` : ", closed loop"}, ${KEYS} pool keys; chaos ${P429 * 100} % 429 (retry-after-ms ${RA}), ${P503 * 100} % 503`,
);
try {
  const base = await run("1. no chaos, default retries (baseline)", false);
  report(base);
  const chaos = await run("2. chaos, default retries", true);
  report(chaos);
  const off = await run("3. chaos, max_attempts = 1 (gateway retries off)", true, "\n[retry]\nmax_attempts = 1");
  report(off);
  console.log(`\nadded latency under chaos vs baseline (all requests): p50 +${(pct(chaos.latencies, 50) - pct(base.latencies, 50)).toFixed(1)} ms, p90 +${(pct(chaos.latencies, 90) - pct(base.latencies, 90)).toFixed(1)} ms, p99 +${(pct(chaos.latencies, 99) - pct(base.latencies, 99)).toFixed(1)} ms`);
} finally {
  await mock.stop();
}
