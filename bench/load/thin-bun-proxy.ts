// The thinnest possible Bun proxy (Bun.serve + fetch, no logic): the ceiling of a naive Bun design, for compare.sh and
// streams.sh. Env: PORT (default 18083), UP (upstream origin, default http://127.0.0.1:18080).
const up = process.env["UP"] ?? "http://127.0.0.1:18080";
Bun.serve({
  port: Number(process.env["PORT"] ?? 18083),
  hostname: "127.0.0.1",
  async fetch(req) {
    const u = new URL(req.url);
    const h = new Headers(req.headers);
    h.set("authorization", "Bearer sk-pool");
    h.delete("host");
    const init: RequestInit & { duplex: "half" } = { method: req.method, headers: h, body: req.body, duplex: "half" };
    const r = await fetch(up + u.pathname + u.search, init);
    return new Response(r.body, { status: r.status, headers: r.headers });
  },
});
