// Bun.serve plus the gateway's own pooled transport and nothing else: no route, auth, meter, logs or metrics. It is
// the floor under any gateway built on Bun.serve with this transport, so compare.sh's gateway/thin-pool ratio is the
// share of a request the pipeline itself costs. Env: PORT (default 18084), UP (upstream host:port, default
// 127.0.0.1:18080).
import { Cancel } from "../../src/transport/transport.ts";
import { PoolTransport } from "../../src/transport/transport-pool.ts";

const up = process.env["UP"] ?? "127.0.0.1:18080";
const transport = new PoolTransport({ tls: false, verifyCert: false, connectTimeoutMs: 5000, idleTimeoutMs: 60_000 });
Bun.serve({
  port: Number(process.env["PORT"] ?? 18084),
  hostname: "127.0.0.1",
  async fetch(req) {
    const url = req.url;
    const path = url.slice(url.indexOf("/", url.indexOf("://") + 3));
    const headers = req.headers.toJSON() as Record<string, string>;
    headers["authorization"] = "Bearer sk-pool";
    delete headers["host"];
    const body = req.body === null ? null : await req.bytes();
    const res = await transport.send({ url: `http://${up}${path}`, method: req.method, headers, body, cancel: new Cancel() });
    return new Response(res.whole ?? res.body, { status: res.status, headers: res.headers });
  },
});
