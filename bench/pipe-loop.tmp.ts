/**
 * The pipeline's own JavaScript per request, without sockets: the real handler (createHandler over buildGateway, the
 * same objects a serving thread builds) driven in-process with a stub transport that answers every send with the
 * mock's canned chat completion, whole, as the pool transport does for a small answer. What it measures is everything
 * between Bun.serve handing over a Request and the handler returning a Response whose body is read: route, auth
 * (verify with a warm cache), guards, body read, meter, key swap, the attempt, the relay, both log lines, the metrics.
 * Not measured: Bun.serve's parsing and writing, the upstream socket work.
 *
 * Also prints the bytes allocated per request (heap growth over a batch with the collector held off by a large
 * batch-free heap) and the collections a run of 20,000 requests triggers, since the lone-client tail follows the
 * allocation rate (every eden collection pauses the thread).
 *
 * The log lines are built as in the gateway (their cost is measured) and handed, batch by batch, to a no-op instead
 * of stdout (the worker-mode hand-off), so the write syscalls are not.
 *
 * Run: ./node_modules/.bin/bun bench/pipeline.bench.ts
 */
import { heapStats } from "bun:jsc";
import { bench, do_not_optimize, run } from "mitata";
import { keygen, mint } from "../src/controls/keys.ts";
import { DenySet } from "../src/controls/denyset.ts";
import { loadConfig } from "../src/ops/config.ts";
import { log } from "../src/ops/log.ts";
import { Metrics } from "../src/ops/metrics.ts";
import { createHandler } from "../src/pipeline/pipeline.ts";
import { buildGateway, buildProviders } from "../src/server.ts";
import type { Transport, UpstreamRequest, UpstreamResponse } from "../src/transport/transport.ts";

log.toMain(() => {});
const enc = new TextEncoder();
const ANSWER = enc.encode(
  '{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}',
);
const BODY = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":64}';

/** Answers every send at once with the canned completion, held whole (as PoolTransport does for a small answer). */
class StubTransport implements Transport {
  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const b = req.body;
    if (b !== null && b !== undefined && !(b instanceof Uint8Array)) await new Response(b as ReadableStream).arrayBuffer();
    return {
      status: 200,
      statusText: "OK",
      headers: new Headers({ "content-type": "application/json", "content-length": String(ANSWER.byteLength), "x-request-id": "req_1" }),
      body: null,
      whole: ANSWER,
    };
  }
  close(): void {}
}

const signing = keygen();
const token = mint(1, signing.seed, 42n, 7n);

function handlerFor(extraToml: string): (req: Request) => Promise<Response> {
  const fileText = `listen = "127.0.0.1:0"\nmetrics_listen = "127.0.0.1:0"\nupstream_tls = false\nnats_url = ""\nrate_limit_rps = 0\nworkers = 1\n${extraToml}\n[provider_authorities]\nopenai = "127.0.0.1:9"\n[pool_keys]\nopenai = "sk-pool"\n[signing_keys]\n1 = "${Buffer.from(signing.publicKey).toString("base64")}"\n`;
  const cfg = loadConfig({ configPath: "/virtual/bench.toml", fileText, env: {} });
  const gw = buildGateway(cfg, buildProviders(cfg), new DenySet(), new Metrics());
  gw.transport = new StubTransport();
  const handle = createHandler(gw);
  const server = { timeout(): void {}, requestIP(): null { return null; } } as unknown as Parameters<typeof handle>[1];
  return (req) => handle(req, server);
}

function request(model = "gpt-4o-mini"): Request {
  return new Request("http://127.0.0.1:8080/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": String(BODY.length - 11 + model.length), "user-agent": "wrk" },
    body: model === "gpt-4o-mini" ? BODY : BODY.replace('"gpt-4o-mini"', `"${model}"`),
  });
}

const cases: Array<[string, (req: Request) => Promise<Response>, string]> = [
  ["managed, metered (direct)", handlerFor(""), "gpt-4o-mini"],
  ["managed, one-target alias", handlerFor('[models."gpt-4o-mini"]\ntargets = ["openai/gpt-4o-mini"]'), "gpt-4o-mini"],
  ["managed, model auto", handlerFor('[auto]\ntiers = { simple = "openai/gpt-4o-mini" }'), "auto"],
];

async function once(h: (req: Request) => Promise<Response>, model: string): Promise<void> {
  const res = await h(request(model));
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  do_not_optimize(await res.arrayBuffer());
}

// Warm up and check every case answers.
for (const [, h, m] of cases) for (let i = 0; i < 2000; i++) await once(h, m);

// Objects allocated per request, by type: heapStats() counts every cell in the heap, garbage not yet collected
// included, so with a full collection first and a batch too small to trigger another (checked), the growth is what
// the batch allocated.
const out: string[] = [];
for (const [name, h, m] of cases) {
  Bun.gc(true);
  const n = 100;
  const before = heapStats();
  for (let i = 0; i < n; i++) await once(h, m);
  const after = heapStats();
  const grown: Array<[string, number]> = [];
  for (const [type, count] of Object.entries(after.objectTypeCounts)) {
    const d = count - (before.objectTypeCounts[type] ?? 0);
    if (d >= n / 2) grown.push([type, d / n]);
  }
  grown.sort((a, b) => b[1] - a[1]);
  const total = grown.reduce((s, [, c]) => s + c, 0);
  const valid = after.objectCount >= before.objectCount;
  out.push(`${name}: ${valid ? "" : "(a collection ran: invalid) "}~${total.toFixed(0)} objects per request: ${grown.map(([t, c]) => `${t} ${c.toFixed(1)}`).join(", ")}`);
}

const only = cases[0]!; for (let w = 0; w < 20000; w++) await once(only[1], only[2]); const t0 = Bun.nanoseconds(); let k = 0; while (Bun.nanoseconds() - t0 < 5e9) { await once(only[1], only[2]); k++; } console.log("RESULT", (5e6 / k).toFixed(2), "us/iter");


