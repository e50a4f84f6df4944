// Upstream transport throughput (issue 7): the same small POST through FetchTransport (Bun's fetch with a keep-alive
// session) and PoolTransport (HTTP/1.1 over Bun.connect), sequentially and with M requests in flight.
// Run: node_modules/.bin/bun bench/transport.bench.ts [N sequential] [M concurrency] [K concurrent total]
// The mock upstream runs in a child process so that the transport under test has its own event loop, as in the gateway.
// Each response body is read to the end, as the gateway's relay would. Figures are req/s of the client side.
import { Cancel, FetchTransport, type Transport, type UpstreamRequest } from "../src/transport/transport.ts";
import { PoolTransport } from "../src/transport/transport-pool.ts";

const REQUEST_BODY = new TextEncoder().encode(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hi in one word." }] }));
const RESPONSE_BODY = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "Hi" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 1, total_tokens: 13 },
});

if (process.argv[2] === "--upstream") {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      await req.arrayBuffer();
      return new Response(RESPONSE_BODY, { headers: { "content-type": "application/json", "x-request-id": "req_bench" } });
    },
  });
  console.log(server.port);
} else {
  await main();
}

async function main(): Promise<void> {
  const N = Number(process.argv[2] ?? 5000);
  const M = Number(process.argv[3] ?? 64);
  const K = Number(process.argv[4] ?? 20000);
  const child = Bun.spawn([process.execPath, import.meta.path, "--upstream"], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  const first = await reader.read();
  const port = Number(new TextDecoder().decode(first.value).trim());
  const url = `http://127.0.0.1:${port}/v1/chat/completions`;

  const transports: Array<[string, () => Transport]> = [
    ["fetch", () => new FetchTransport({ verifyCert: true, idleTimeoutSecs: 90 })],
    ["pool", () => new PoolTransport({ tls: false, verifyCert: true, connectTimeoutMs: 10_000, idleTimeoutMs: 90_000 })],
  ];

  const one = async (t: Transport): Promise<void> => {
    const headers = {
      host: `127.0.0.1:${port}`,
      "content-type": "application/json",
      authorization: "Bearer sk-bench-0123456789",
      "accept-encoding": "identity",
      "user-agent": "OpenAI/JS 7.0.0",
    };
    const req: UpstreamRequest = { url, method: "POST", headers, body: REQUEST_BODY, cancel: new Cancel() };
    const res = await t.send(req);
    const body = res.whole ?? (res.body === null ? new Uint8Array(0) : await Bun.readableStreamToBytes(res.body));
    if (res.status !== 200 || body.byteLength !== RESPONSE_BODY.length) throw new Error(`bad response ${res.status} ${body.byteLength}`);
  };

  // On a small machine the upstream (one core) caps concurrent req/s for both transports alike, so the client's own
  // CPU time per request is reported too: that is what the transport choice changes in the gateway's budget.
  interface Run {
    rps: number;
    cpuUs: number;
  }
  const measure = async (n: number, body: () => Promise<void>): Promise<Run> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await body();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { rps: (n * 1000) / wall, cpuUs: (c.user + c.system) / n };
  };

  const sequential = (t: Transport, n: number): Promise<Run> =>
    measure(n, async () => {
      for (let i = 0; i < n; i++) await one(t);
    });

  const concurrent = (t: Transport, m: number, total: number): Promise<Run> =>
    measure(total, async () => {
      let left = total;
      const worker = async () => {
        while (left-- > 0) await one(t);
      };
      await Promise.all(Array.from({ length: m }, worker));
    });

  console.log(`bun ${Bun.version}, ${navigator.hardwareConcurrency} cpus; upstream: Bun.serve in a child process; ${REQUEST_BODY.byteLength} B POST -> ${RESPONSE_BODY.length} B JSON`);
  const fmt = (r: Run) => `${r.rps.toFixed(0).padStart(7)} req/s ${r.cpuUs.toFixed(1).padStart(6)} µs cpu/req`;
  const best: Record<string, { seq: Run; conc: Run }> = {};
  // Three rounds, alternating, so neither transport always runs on a colder machine; the best round counts.
  for (let round = 0; round < 3; round++) {
    for (const [name, make] of transports) {
      const t = make();
      await sequential(t, 500); // warm-up: JIT, connections
      await concurrent(t, M, 2000);
      const seq = await sequential(t, N);
      const conc = await concurrent(t, M, K);
      t.close();
      const prev = best[name];
      best[name] = { seq: prev === undefined || seq.rps > prev.seq.rps ? seq : prev.seq, conc: prev === undefined || conc.rps > prev.conc.rps ? conc : prev.conc };
      console.log(`  round ${round + 1} ${name.padEnd(5)}  sequential ${fmt(seq)}   ${M} in flight ${fmt(conc)}`);
    }
  }
  const f = best.fetch!;
  const p = best.pool!;
  console.log(`best of 3:`);
  console.log(`  fetch  sequential ${fmt(f.seq)}   ${M} in flight ${fmt(f.conc)}`);
  console.log(`  pool   sequential ${fmt(p.seq)}   ${M} in flight ${fmt(p.conc)}`);
  console.log(`  pool/fetch req/s: sequential ${(p.seq.rps / f.seq.rps).toFixed(2)}x, concurrent ${(p.conc.rps / f.conc.rps).toFixed(2)}x`);
  child.kill();
}
