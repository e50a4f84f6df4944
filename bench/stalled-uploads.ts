// Stalled uploads (issue 12 item 4): N clients each send a request head and part of its body, then go silent. Shows
// what the gateway holds for them after idle_timeout_secs (+ a margin): its open descriptors, how many clients got an
// answer (and which status), how many connections it closed, the ai_requests_in_flight gauge, and whether a normal
// request is served while they wait. Targets 127.0.0.1 only; bounded by N and by the wait.
//
// Run: node_modules/.bin/bun bench/stalled-uploads.ts [N] [shape]
//   N      stalled connections (default 1000)
//   shape  small   `content-length: 10`, 5 bytes sent (read whole before forwarding)          (default)
//          chunked `transfer-encoding: chunked`, one 5-byte chunk sent (streamed upstream)
//          large   `content-length: 100000`, 1000 bytes sent (streamed upstream)
//          keepalive  a complete request (no body), answered, then the keep-alive connection stays silent
// Env: BEYOND_AI_TRANSPORT=fetch|pool; BEYOND_AI_BIN=/path/to/wrapper runs another gateway build (for example the
// tree before a fix: a script that runs `bun /old/tree/src/main.ts "$@"`). The gateway runs with idle_timeout_secs = 8
// and read_timeout_secs = 2, the values the issue used.
import { readdirSync } from "node:fs";
import { baseConfig, metricValue, startGateway } from "../test/helpers/gateway.ts";
import { startMockProvider } from "../test/helpers/mock-provider.ts";

const N = Number(process.argv[2] ?? 1000);
const shape = process.argv[3] ?? "small";
const IDLE_SECS = 8;
const MARGIN_MS = 4000;

const heads: Record<string, string> = {
  small: "content-length: 10\r\n\r\n12345",
  chunked: "transfer-encoding: chunked\r\n\r\n5\r\n12345\r\n",
  large: `content-length: 100000\r\n\r\n${"x".repeat(1000)}`,
  keepalive: "\r\n",
};
const tail = heads[shape];
if (tail === undefined) throw new Error(`unknown shape ${shape}: small | chunked | large | keepalive`);

const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

const mock = startMockProvider();
const gw = await startGateway({
  config: baseConfig({ authorities: { openai: mock.authority }, extra: `idle_timeout_secs = ${IDLE_SECS}\nread_timeout_secs = 2` }),
});
const pid = gw.proc.pid;
try {
  const before = fds(pid);
  interface Conn {
    status: number | undefined;
    closedAt: number | undefined;
  }
  const conns: Conn[] = [];
  const t0 = Date.now();
  const method = shape === "keepalive" ? "GET /openai/v1/models" : "POST /openai/v1/chat/completions";
  const request = `${method} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer sk-byo-stall\r\ncontent-type: application/json\r\n${tail}`;
  await Promise.all(
    Array.from({ length: N }, async () => {
      const c: Conn = { status: undefined, closedAt: undefined };
      conns.push(c);
      let head = "";
      await Bun.connect({
        hostname: gw.host,
        port: gw.port,
        socket: {
          open(s) {
            s.write(request);
          },
          data(_s, d) {
            if (c.status !== undefined) return;
            head += d.toString("latin1");
            const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
            if (m) c.status = Number(m[1]);
          },
          close() {
            c.closedAt = Date.now() - t0;
          },
          error() {},
        },
      });
    }),
  );
  await Bun.sleep(1000);
  const opened = fds(pid);
  const inFlightOpen = await metricValue(gw.metricsUrl, "ai_requests_in_flight");
  // A normal request while the stalled ones wait.
  const n0 = performance.now();
  const normal = await fetch(`${gw.url}/openai/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer sk-byo-normal", "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
  });
  await normal.arrayBuffer();
  const normalMs = performance.now() - n0;
  await Bun.sleep(Math.max(0, IDLE_SECS * 1000 + MARGIN_MS - (Date.now() - t0)));
  const after = fds(pid);
  const statuses = new Map<string, number>();
  for (const c of conns) {
    const k = c.status === undefined ? "none" : String(c.status);
    statuses.set(k, (statuses.get(k) ?? 0) + 1);
  }
  const closed = conns.filter((c) => c.closedAt !== undefined).length;
  console.log(
    JSON.stringify({
      shape,
      n: N,
      transport: process.env["BEYOND_AI_TRANSPORT"] ?? "pool",
      gateway: process.env["BEYOND_AI_BIN"] ?? "this tree",
      fds_before: before,
      fds_1s_after_open: opened,
      in_flight_1s_after_open: inFlightOpen,
      [`fds_after_${IDLE_SECS + MARGIN_MS / 1000}s`]: after,
      in_flight_after: await metricValue(gw.metricsUrl, "ai_requests_in_flight"),
      answers: Object.fromEntries(statuses),
      closed_by_gateway: closed,
      normal_request: { status: normal.status, ms: Math.round(normalMs) },
      upstream_requests_seen_by_mock: mock.requests.length,
    }),
  );
} finally {
  await gw.stop();
  await mock.stop();
}
process.exit(0);
