/**
 * The pipeline's own JavaScript per request, without sockets: the real handler (createHandler over buildGateway, the
 * same objects a serving thread builds) driven in-process with a stub transport that answers every send with the
 * mock's canned chat completion, whole, as the pool transport does for a small answer. What it measures is everything
 * between Bun.serve handing over a Request and the handler returning a Response whose body is read: route, auth
 * (verify with a warm cache), guards, body read, meter, key swap, the attempt, the relay, both log lines, the metrics.
 * Not measured: Bun.serve's parsing and writing, the upstream socket work.
 *
 * Also prints the objects each request allocates, by type (every eden collection pauses the thread, so the
 * allocation rate sets how often a lone client's request meets one; bench/gc-position.ts measures that directly).
 * The setup (stub transport, log hand-off) is bench/load/inprocess.ts.
 *
 * Run: ./node_modules/.bin/bun bench/pipeline.bench.ts
 */
import { heapStats } from "bun:jsc";
import { bench, do_not_optimize, run } from "mitata";
import { handlerFor, request } from "./load/inprocess.ts";

const direct = handlerFor("");
const cases: Array<[string, (req: Request) => Promise<Response>, string, boolean]> = [
  ["managed, metered (direct)", direct, "gpt-4o-mini", false],
  ["managed, metered (direct), OpenAI SDK's 16 headers", direct, "gpt-4o-mini", true],
  ["managed, one-target alias", handlerFor('[models."gpt-4o-mini"]\ntargets = ["openai/gpt-4o-mini"]'), "gpt-4o-mini", false],
  ["managed, model auto", handlerFor('[auto]\ntiers = { simple = "openai/gpt-4o-mini" }'), "auto", false],
];

async function once(h: (req: Request) => Promise<Response>, model: string, sdk: boolean): Promise<void> {
  const res = await h(request(model, sdk));
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  do_not_optimize(await res.arrayBuffer());
}

// Warm up and check every case answers.
for (const [, h, m, sdk] of cases) for (let i = 0; i < 2000; i++) await once(h, m, sdk);

// Objects allocated per request, by type: heapStats() counts every cell in the heap, garbage not yet collected
// included, so with a full collection first and a batch too small to trigger another (checked), the growth is what
// the batch allocated.
const out: string[] = [];
for (const [name, h, m, sdk] of cases) {
  Bun.gc(true);
  const n = 100;
  const before = heapStats();
  for (let i = 0; i < n; i++) await once(h, m, sdk);
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

for (const [name, h, m, sdk] of cases) bench(name, () => once(h, m, sdk));
await run();
console.log(out.join("\n"));
