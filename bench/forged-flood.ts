// Forged managed-key flood (issue 12 item 5): what a flood of well-formed but forged `bai_v1` tokens under a trusted
// kid does to a legitimate managed client's latency.
//
// Run: node_modules/.bin/bun bench/forged-flood.ts [--root DIR] [--seconds N] [--conns N]
//   --root     tree whose src/main.ts is the gateway (default: this one), e.g. a copy of an older commit
//   --seconds  length of each phase (default 5)
//   --conns    flood connections (default 20)
//   --kind     what the flood sends: `forged` (default) or `notfound` (a BYO request to an unknown provider, the
//              cheapest request the gateway answers: the floor any flood of that rate costs, for comparison)
//
// Everything is on 127.0.0.1: a mock OpenAI upstream (in this process), the real gateway (a child process, default
// rate limits), and the flood (a second child process, so the flood's own event loop never delays the legitimate
// client's measurements). The legitimate client sends one managed chat request every 20 ms (50/s: under the default
// `rate_limit_rps = 100`) and the script prints its p50/p99 unloaded, then under the flood, plus what the flood got.
// Bounded: two phases of --seconds each, then everything it started is killed.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { keygen, mint } from "../src/controls/keys.ts";

const args = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

const BUN = process.execPath;
const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });

/** A well-formed token under `kid` with a random payload and a random signature whose S is canonical (< 2^252 < L),
 * so it passes every cheap check and costs a full signature verification to reject. */
function forgedToken(kid: number): string {
  const payload = randomBytes(16).toString("base64url");
  const sig = randomBytes(64);
  sig[63]! &= 0x0f;
  return `bai_v1.${kid}.${payload}.${sig.toString("base64url")}`;
}

// ---- flood mode: the child process --------------------------------------------------------------------------------
if (args[0] === "--flood") {
  const url = args[1]!;
  const conns = Number(args[2]);
  const untilMs = Date.now() + Number(args[3]) * 1000;
  const notFound = args[4] === "notfound";
  const counts = new Map<number, number>();
  let errors = 0;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (Date.now() < untilMs) {
        try {
          const res = await fetch(notFound ? `${url}/nosuchprovider/v1/chat/completions` : `${url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${notFound ? "sk-byo" : forgedToken(1)}`, "content-type": "application/json" },
            body: CHAT,
          });
          await res.arrayBuffer();
          counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
        } catch {
          errors++;
        }
      }
    }),
  );
  console.log(JSON.stringify({ statuses: Object.fromEntries(counts), errors }));
  process.exit(0);
}

// ---- main mode ----------------------------------------------------------------------------------------------------
const root = resolve(opt("--root", join(import.meta.dir, "..")));
const seconds = Number(opt("--seconds", "5"));
const conns = Number(opt("--conns", "20"));
const kind = opt("--kind", "forged");
const INTERVAL_MS = 20;

const upstream = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: () =>
    new Response(
      JSON.stringify({
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o-mini",
        choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
      }),
      { headers: { "content-type": "application/json" } },
    ),
});

const { seed, publicKey } = keygen();
const legit = mint(1, seed, 42n, 7n);
const dir = mkdtempSync(join(tmpdir(), "forged-flood-"));
const cfgPath = join(dir, "config.toml");
writeFileSync(
  cfgPath,
  [
    `listen = "127.0.0.1:0"`,
    `metrics_listen = "127.0.0.1:0"`,
    `upstream_tls = false`,
    `nats_url = ""`,
    `[provider_authorities]`,
    `openai = "127.0.0.1:${upstream.port}"`,
    `[pool_keys]`,
    `openai = "sk-pool-bench"`,
    `[signing_keys]`,
    `1 = "${Buffer.from(publicKey).toString("base64")}"`,
  ].join("\n") + "\n",
);

// A free port chosen here (bind to 0, read it, close), so the gateway can run at log level warn with its stdout
// ignored: reading its access log in this process would compete with the legitimate client being measured.
const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const gwPort = probe.port;
probe.stop(true);
const gwUrl = `http://127.0.0.1:${gwPort}`;
const gw = Bun.spawn([BUN, join(root, "src/main.ts"), "serve", "--config", cfgPath], {
  cwd: root,
  env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", AI_LOG_LEVEL: "warn", AI_LISTEN: `127.0.0.1:${gwPort}` },
  stdout: "ignore",
  stderr: "inherit",
});
const children: { kill(): void }[] = [gw];
const cleanup = () => {
  for (const c of children) c.kill();
  upstream.stop(true);
};
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});
for (let deadline = Date.now() + 15_000; ; ) {
  if (Date.now() > deadline) throw new Error("gateway did not start");
  try {
    await fetch(`${gwUrl}/`);
    break;
  } catch {
    await Bun.sleep(50);
  }
}

async function legitPhase(label: string): Promise<void> {
  const lat: number[] = [];
  const statuses = new Map<number, number>();
  const until = performance.now() + seconds * 1000;
  let next = performance.now();
  while (performance.now() < until) {
    const t0 = performance.now();
    const res = await fetch(`${gwUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${legit}`, "content-type": "application/json" },
      body: CHAT,
    });
    await res.arrayBuffer();
    lat.push(performance.now() - t0);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    next += INTERVAL_MS;
    const wait = next - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    else next = performance.now();
  }
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2);
  console.log(`${label}: legit n=${lat.length} p50=${q(0.5)} ms p99=${q(0.99)} ms statuses=${JSON.stringify(Object.fromEntries(statuses))}`);
}

// Warm up (JIT, connection pools, the verifier's success cache), then the two phases.
for (let i = 0; i < 50; i++) {
  const r = await fetch(`${gwUrl}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${legit}` }, body: CHAT });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`legit key got ${r.status}`);
}
console.log(`gateway: ${root}/src/main.ts  bun ${Bun.version}  phase ${seconds} s  flood ${conns} connections of ${kind}`);
await legitPhase("unloaded     ");

const flood = Bun.spawn([BUN, import.meta.path, "--flood", gwUrl, String(conns), String(seconds + 1), kind], { stdout: "pipe", stderr: "inherit" });
children.push(flood);
await Bun.sleep(500); // let the flood reach full rate
await legitPhase(`${kind} flood`.padEnd(13));
const floodOut = (await new Response(flood.stdout).text()).trim();
const f = JSON.parse(floodOut) as { statuses: Record<string, number>; errors: number };
const total = Object.values(f.statuses).reduce((a, b) => a + b, 0);
console.log(`flood: ${total} requests in ${seconds + 1} s (${Math.round(total / (seconds + 1))}/s) statuses=${JSON.stringify(f.statuses)} errors=${f.errors}`);
cleanup();
process.exit(0);
