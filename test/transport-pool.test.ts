// PoolTransport (issue 7): HTTP/1.1 framing, connection reuse and its safety rules, failure mapping, and backpressure,
// over real loopback sockets. Odd framings come from raw Bun.listen servers that write exactly the bytes a test names.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { PoolTransport, type PoolTransportOptions } from "../src/transport/transport-pool.ts";
import { Cancel, classifyFailure, type HeaderFields, type UpstreamRequest, type UpstreamResponse } from "../src/transport/transport.ts";

const HOST = "127.0.0.1";
const enc = new TextEncoder();
const dec = new TextDecoder();

// Self-signed for localhost / 127.0.0.1, valid until 2126; only ever served on loopback by these tests.
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBnDCCAUGgAwIBAgIUWXiFNlUmLJxjOklPJQ91Cy3YJ88wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzEwNTMzNFoYDzIxMjYxMDMw
MTA1MzM0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASLiK+jeZapAFjfWD+Kex8b0s6zgSqQJhuM88wGDbkENQ6rMZzefj0G
6+CnVDv6L3jUrmCeFXLl8GIoE/WRKblNo28wbTAdBgNVHQ4EFgQUnfAw32FCn2lo
65Lm1r+KgugFdAEwHwYDVR0jBBgwFoAUnfAw32FCn2lo65Lm1r+KgugFdAEwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSQAwRgIhANnOT5hBfopSfRroo5jPFnSkBslYu7HxB7bIK2dL791wAiEA
goirncO1slEeN82zZrBXAJbdJfekQfiOYAJyQw8l11w=
-----END CERTIFICATE-----`;
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXYdeUrR145Jxz9gh
6GpXEINeLhQKRYxbU77Ld7KAQBehRANCAASLiK+jeZapAFjfWD+Kex8b0s6zgSqQ
JhuM88wGDbkENQ6rMZzefj0G6+CnVDv6L3jUrmCeFXLl8GIoE/WRKblN
-----END PRIVATE KEY-----`;

// ---- helpers ----

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/**
 * The pool as these tests read it: send() answers a standard Response built from the plain UpstreamResponse (the same
 * wrapping the gateway's client answer does), so a test reads bodies with text()/json(); sendRaw() shows the object
 * the transport returned.
 */
class TestPool extends PoolTransport {
  override send(r: UpstreamRequest): Promise<Response> {
    return super.send(r).then(toResponse);
  }
  sendRaw(r: UpstreamRequest): Promise<UpstreamResponse> {
    return super.send(r);
  }
}

function toResponse(up: UpstreamResponse): Response {
  return new Response(up.whole ?? up.body, { status: up.status, statusText: up.statusText, headers: up.headers });
}

function pool(opts: Partial<PoolTransportOptions> = {}): TestPool {
  const t = new TestPool({ tls: false, verifyCert: true, connectTimeoutMs: 2000, idleTimeoutMs: 30_000, ...opts });
  cleanups.push(() => t.close());
  return t;
}

/** A request as the pipeline hands it over: its head as plain fields, read from a Headers (as the pipeline does). */
function req(url: string, init: { method?: string; headers?: Record<string, string> | Headers; body?: UpstreamRequest["body"]; cancel?: Cancel } = {}): UpstreamRequest {
  const headers = new Headers(init.headers);
  if (!headers.has("host")) headers.set("host", new URL(url).host);
  return { url, method: init.method ?? "GET", headers: headers.toJSON() as HeaderFields, body: init.body ?? null, cancel: init.cancel ?? new Cancel() };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

interface RawRequest {
  head: string;
  body: Uint8Array;
  /** 0-based index of the accepted connection. */
  conn: number;
  /** 0-based index of this request on its connection. */
  n: number;
}
interface ConnData {
  buf: Uint8Array;
  conn: number;
  n: number;
}
type RawSocket = Socket<ConnData>;
interface RawServer {
  url: string;
  accepted: number;
  closed: number;
  requests: RawRequest[];
  sockets: Set<RawSocket>;
}

/**
 * A raw HTTP/1.1 server: parses request heads (and content-length bodies), then lets the test write whatever bytes it
 * wants. Counts accepted and closed connections so reuse is observable from the server side.
 */
function rawServer(respond: (s: RawSocket, r: RawRequest) => void | Promise<void>): RawServer {
  const state: RawServer = { url: "", accepted: 0, closed: 0, requests: [], sockets: new Set() };
  const listener: TCPSocketListener<ConnData> = Bun.listen<ConnData>({
    hostname: HOST,
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: new Uint8Array(0), conn: state.accepted++, n: 0 };
        state.sockets.add(s);
      },
      data(s, d) {
        const joined = new Uint8Array(s.data.buf.byteLength + d.byteLength);
        joined.set(s.data.buf, 0);
        joined.set(d, s.data.buf.byteLength);
        s.data.buf = joined;
        for (;;) {
          const text = Buffer.from(s.data.buf).toString("latin1");
          const end = text.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = text.slice(0, end);
          const m = /\r\ncontent-length: *(\d+)/i.exec(head);
          const len = m ? Number(m[1]) : 0;
          if (s.data.buf.byteLength < end + 4 + len) return;
          const body = s.data.buf.slice(end + 4, end + 4 + len);
          s.data.buf = s.data.buf.slice(end + 4 + len);
          const r: RawRequest = { head, body, conn: s.data.conn, n: s.data.n++ };
          state.requests.push(r);
          void respond(s, r);
        }
      },
      close(s) {
        state.closed++;
        state.sockets.delete(s);
      },
    },
  });
  state.url = `http://${HOST}:${listener.port}`;
  cleanups.push(() => listener.stop(true));
  return state;
}

function ok(body: string, extra = ""): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

function serve(fetch: (r: Request) => Response | Promise<Response>, tls?: { cert: string; key: string }): string {
  const s = Bun.serve({ hostname: HOST, port: 0, fetch, tls });
  cleanups.push(() => void s.stop(true));
  return `${tls ? "https" : "http"}://${HOST}:${s.port}`;
}

/** Deterministic bytes, so a hash mismatch means lost, duplicated or reordered data. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

function sha(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

function streamOf(data: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (off >= data.byteLength) return c.close();
      c.enqueue(data.subarray(off, Math.min(off + chunk, data.byteLength)));
      off += chunk;
    },
  });
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

// ---- request framing ----

describe("request framing", () => {
  test("a repeated request header goes out once with its values combined; set-cookie lines stay separate", async () => {
    const srv = rawServer((s) => void s.write(ok("done")));
    const t = pool();
    const h = new Headers();
    h.append("x-dup", "1");
    h.append("x-dup", "2");
    h.append("set-cookie", "a=1");
    h.append("set-cookie", "b=2");
    const r0 = req(srv.url + "/", { headers: h });
    expect(await (await t.send(r0)).text()).toBe("done");
    const head = srv.requests[0]!.head;
    expect(head.match(/^x-dup:.*$/gim)).toEqual(["x-dup: 1, 2"]);
    expect(head.match(/^set-cookie:.*$/gim)).toEqual(["set-cookie: a=1", "set-cookie: b=2"]);
  });

  test("a Uint8Array body goes out with its content-length, replacing the caller's, and host is sent once", async () => {
    const srv = rawServer((s) => void s.write(ok("done")));
    const t = pool();
    const res = await t.send(req(srv.url + "/v1/x?q=1", { method: "POST", headers: { host: "api.example", "content-length": "999", "x-keep": "yes" }, body: enc.encode("hello") }));
    expect(await res.text()).toBe("done");
    const r = srv.requests[0]!;
    expect(r.head.split("\r\n")[0]).toBe("POST /v1/x?q=1 HTTP/1.1");
    expect(r.head.match(/^host:/gim)).toEqual(["host:"]);
    expect(r.head).toContain("\r\nhost: api.example");
    expect(r.head.match(/^content-length:.*$/gim)).toEqual(["content-length: 5"]);
    expect(r.head).toContain("\r\nx-keep: yes");
    expect(dec.decode(r.body)).toBe("hello");
  });

  test("a Uint8Array body larger than the write buffer arrives intact", async () => {
    const data = pattern(3 << 20, 5);
    const url = serve(async (r) => new Response(sha(await r.bytes())));
    const t = pool();
    const res = await t.send(req(url + "/", { method: "PUT", body: data }));
    expect(await res.text()).toBe(sha(data));
    expect(t.idleCount).toBe(1);
  });

  test("a bodiless POST says content-length: 0 and a GET sends no framing at all", async () => {
    const srv = rawServer((s) => void s.write(ok("k")));
    const t = pool();
    await (await t.send(req(srv.url + "/p", { method: "POST" }))).text();
    await (await t.send(req(srv.url + "/g"))).text();
    expect(srv.requests[0]!.head).toMatch(/\r\ncontent-length: 0(\r|$)/);
    expect(srv.requests[1]!.head).not.toMatch(/content-length|transfer-encoding/i);
  });

  test("an 8 MiB streamed body with the caller's content-length arrives intact and unchunked", async () => {
    const data = pattern(8 << 20, 7);
    const url = serve(async (r) => {
      const b = await r.bytes();
      return Response.json({ sha: sha(b), size: b.byteLength, cl: r.headers.get("content-length"), te: r.headers.get("transfer-encoding") });
    });
    const t = pool();
    const res = await t.send(req(url + "/up", { method: "POST", headers: { "content-length": String(data.byteLength) }, body: streamOf(data, 100_000) }));
    expect(await res.json()).toEqual({ sha: sha(data), size: data.byteLength, cl: String(data.byteLength), te: null });
    expect(t.idleCount).toBe(1);
  });

  test("an 8 MiB streamed body without content-length goes chunked and arrives intact", async () => {
    const data = pattern(8 << 20, 9);
    const url = serve(async (r) => {
      const b = await r.bytes();
      return Response.json({ sha: sha(b), size: b.byteLength, cl: r.headers.get("content-length"), te: r.headers.get("transfer-encoding") });
    });
    const t = pool();
    // Mixed chunk sizes: small ones take the one-write path, large ones the three-write path.
    let off = 0;
    const sizes = [1, 300_000, 17, 65_536, 200_000];
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (off >= data.byteLength) return c.close();
        const n = sizes[i++ % sizes.length]!;
        c.enqueue(data.subarray(off, Math.min(off + n, data.byteLength)));
        off += n;
      },
    });
    const res = await t.send(req(url + "/up", { method: "POST", headers: { "transfer-encoding": "chunked" }, body }));
    expect(await res.json()).toEqual({ sha: sha(data), size: data.byteLength, cl: null, te: "chunked" });
    expect(t.idleCount).toBe(1);
  });

  test("a streamed body shorter than its content-length fails the exchange instead of hanging", async () => {
    const srv = rawServer(() => {});
    const t = pool();
    const err = await rejection(t.send(req(srv.url + "/", { method: "POST", headers: { "content-length": "10" }, body: streamOf(enc.encode("abc"), 3) })));
    expect(err.code).toBe("ERR_BODY_LENGTH");
    expect(t.openCount).toBe(0);
  });

  test("a request target with a space is refused before anything is sent", async () => {
    const srv = rawServer((s) => void s.write(ok("x")));
    const t = pool();
    const err = await rejection(t.send(req(srv.url + "/a b")));
    expect(err.code).toBe("ERR_INVALID_URL");
    expect(srv.accepted).toBe(0);
  });
});

// ---- response framing ----

describe("response framing", () => {
  test("a content-length body that arrives with its head is handed over whole, with no stream", async () => {
    const srv = rawServer((s) => void s.write(ok('{"a":1}', "content-type: application/json\r\n")));
    const t = pool();
    const res = await t.sendRaw(req(srv.url + "/"));
    expect(res.body).toBeNull();
    expect(dec.decode(res.whole)).toBe('{"a":1}');
    expect(JSON.parse(dec.decode(res.whole))).toEqual({ a: 1 });
    expect(t.idleCount).toBe(1);
  });

  test("a content-length body streamed in pieces is delivered whole and the socket is pooled", async () => {
    const body = pattern(300_000, 3);
    const srv = rawServer(async (s) => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.byteLength}\r\n\r\n`);
      for (let off = 0; off < body.byteLength; off += 50_000) {
        await Bun.sleep(1);
        s.write(body.subarray(off, off + 50_000));
      }
    });
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect(res.headers.get("content-length")).toBe(String(body.byteLength));
    expect(sha(await res.bytes())).toBe(sha(body));
    expect(t.idleCount).toBe(1);
  });

  const CHUNKED =
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n" +
    "5;name=value\r\nhello\r\n" +
    "1\r\n,\r\n" +
    "A\r\n world!!!!\r\n" +
    "0\r\nx-trailer: yes\r\n\r\n";

  // The same body without trailers: whole, it takes the one-shot decoder; split, the streaming parser.
  const CHUNKED_PLAIN = CHUNKED.replace("0\r\nx-trailer: yes\r\n\r\n", "0\r\n\r\n");

  test.each([
    ["with extensions and trailers", CHUNKED],
    ["without trailers", CHUNKED_PLAIN],
  ])("a chunked body %s decodes identically when split at every byte boundary", async (_name, wire) => {
    const bytes = enc.encode(wire);
    let split = 1;
    const srv = rawServer(async (s) => {
      const at = split;
      s.write(bytes.subarray(0, at));
      s.flush();
      await Bun.sleep(2);
      s.write(bytes.subarray(at));
    });
    const t = pool();
    for (split = 1; split < bytes.byteLength; split++) {
      const res = await t.send(req(srv.url + "/"));
      expect(res.status).toBe(200);
      // The framing is the transport's business: the head it hands over carries no transfer-encoding.
      expect(res.headers.get("transfer-encoding")).toBeNull();
      expect(await res.text()).toBe("hello, world!!!!");
    }
    // Every split reused the one socket: the parser always found the exact end of each response.
    expect(srv.accepted).toBe(1);
  });

  test("a chunked body that arrives whole with its head is decoded in one piece and handed over whole", async () => {
    const srv = rawServer((s) => void s.write(CHUNKED_PLAIN));
    const t = pool();
    const res = await t.sendRaw(req(srv.url + "/"));
    expect(res.body).toBeNull();
    expect(dec.decode(res.whole)).toBe("hello, world!!!!");
    // The decoder stopped exactly at the end: the socket is pooled and the next response parses.
    expect(t.idleCount).toBe(1);
    expect(await (await t.send(req(srv.url + "/"))).text()).toBe("hello, world!!!!");
    expect(srv.accepted).toBe(1);
  });

  test("a response that is still streaming has no whole body, only its stream", async () => {
    const srv = rawServer(async (s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nabc");
      await Bun.sleep(5);
      s.write("def");
    });
    const t = pool();
    const raw = await t.sendRaw(req(srv.url + "/"));
    expect(raw.whole).toBeUndefined();
    expect(raw.body).not.toBeNull();
    expect(await toResponse(raw).text()).toBe("abcdef");
  });

  test("a chunked response written one byte per write decodes correctly", async () => {
    const bytes = enc.encode(CHUNKED);
    const srv = rawServer(async (s) => {
      for (let i = 0; i < bytes.byteLength; i++) {
        s.write(bytes.subarray(i, i + 1));
        await Bun.sleep(0);
      }
    });
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect(await res.text()).toBe("hello, world!!!!");
    expect(t.idleCount).toBe(1);
  });

  test("a close-delimited body is read to EOF and its socket is not pooled", async () => {
    const srv = rawServer(async (s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: 1\n\n");
      await Bun.sleep(5);
      s.write("data: 2\n\n");
      s.end();
    });
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect(await res.text()).toBe("data: 1\n\ndata: 2\n\n");
    expect(t.idleCount).toBe(0);
    expect(t.openCount).toBe(0);
  });

  test("100 Continue is skipped and the final 200 is returned", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 100 Continue\r\n\r\n" + ok("final")));
    const t = pool();
    const res = await t.send(req(srv.url + "/", { method: "POST", body: enc.encode("x") }));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("final");
  });

  test("103 Early Hints arriving in its own read is skipped, and its headers do not leak into the final response", async () => {
    const srv = rawServer(async (s) => {
      s.write("HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n");
      await Bun.sleep(5);
      s.write(ok("after hints", "x-final: 1\r\n"));
    });
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect(res.status).toBe(200);
    expect(res.headers.get("link")).toBeNull();
    expect(res.headers.get("x-final")).toBe("1");
    expect(await res.text()).toBe("after hints");
    expect(t.idleCount).toBe(1);
  });

  test("a HEAD response has no body despite its content-length, and the socket stays usable", async () => {
    const srv = rawServer((s, r) => {
      if (r.head.startsWith("HEAD")) s.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
      else s.write(ok("second"));
    });
    const t = pool();
    const res = await t.send(req(srv.url + "/", { method: "HEAD" }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("1000");
    expect(res.body).toBeNull();
    const res2 = await t.send(req(srv.url + "/"));
    expect(await res2.text()).toBe("second");
    expect(srv.accepted).toBe(1);
  });

  test("204 and 304 carry no body and the next response on the socket parses", async () => {
    const srv = rawServer((s, r) => {
      if (r.n === 0) s.write("HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n");
      else if (r.n === 1) s.write("HTTP/1.1 304 Not Modified\r\netag: \"e\"\r\n\r\n");
      else s.write(ok("third"));
    });
    const t = pool();
    const a = await t.send(req(srv.url + "/"));
    expect(a.status).toBe(204);
    expect(a.body).toBeNull();
    const b = await t.send(req(srv.url + "/"));
    expect(b.status).toBe(304);
    expect(b.headers.get("etag")).toBe('"e"');
    expect(await (await t.send(req(srv.url + "/"))).text()).toBe("third");
    expect(srv.accepted).toBe(1);
  });

  test("two set-cookie headers stay two, and status text and odd header spacing survive", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 201 Made It\r\nset-cookie: a=1\r\nSet-Cookie: b=2; Path=/\r\nx-pad:   spaced  \r\ncontent-length: 0\r\n\r\n"));
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect(res.status).toBe(201);
    expect(res.statusText).toBe("Made It");
    expect(res.headers.getSetCookie()).toEqual(["a=1", "b=2; Path=/"]);
    expect(res.headers.get("x-pad")).toBe("spaced");
  });

  test("a garbage status line rejects with EPROTO and the socket is closed", async () => {
    const srv = rawServer((s) => void s.write("HTTP/9 nope\r\n\r\n"));
    const t = pool();
    const err = await rejection(t.send(req(srv.url + "/")));
    expect(err.code).toBe("EPROTO");
    expect(t.openCount).toBe(0);
  });

  test("a bad chunk size is a protocol error on the body stream", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5g\r\nhello\r\n0\r\n\r\n"));
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect((await rejection(res.text())).code).toBe("EPROTO");
    expect(t.openCount).toBe(0);
  });

  test("conflicting content-length values are a protocol error", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd"));
    const t = pool();
    expect((await rejection(t.send(req(srv.url + "/")))).code).toBe("EPROTO");
  });
});

// ---- reuse ----

describe("hop-by-hop response headers", () => {
  test("are left out of the head the transport hands over, which is then marked stripped; end-to-end headers stay", async () => {
    const wire =
      "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x-t\r\nUpgrade: h2c\r\n" +
      "Proxy-Connection: keep-alive\r\nProxy-Authenticate: Basic\r\nProxy-Authorization: Basic eA==\r\nTransfer-Encoding: chunked\r\n" +
      "Content-Type: text/plain\r\nX-Request-Id: req_1\r\nTetris: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const srv = rawServer((s) => void s.write(wire));
    const up = await pool().sendRaw(req(srv.url + "/"));
    expect(up.hopByHopStripped).toBe(true);
    const names = [...up.headers.keys()].sort();
    expect(names).toEqual(["content-type", "tetris", "x-request-id"]);
    expect(dec.decode(up.whole ?? (await new Response(up.body).arrayBuffer()))).toBe("hello");
  });

  test("a Connection header that names another header stays for the pipeline's rewrite, and the head is not marked stripped", async () => {
    const wire = "HTTP/1.1 200 OK\r\nX-Hop: 1\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok";
    const srv = rawServer((s) => void s.write(wire));
    const up = await pool().sendRaw(req(srv.url + "/"));
    expect(up.hopByHopStripped).toBe(false);
    expect(up.headers.get("connection")).toBe("keep-alive, X-Hop");
    expect(up.headers.get("x-hop")).toBe("1");
    // Fixed hop-by-hop names go regardless.
    expect(up.headers.get("keep-alive")).toBeNull();
  });
});

describe("connection reuse", () => {
  test("two sequential requests share one connection", async () => {
    const srv = rawServer((s) => void s.write(ok("r")));
    const t = pool();
    for (let i = 0; i < 2; i++) expect(await (await t.send(req(srv.url + "/"))).text()).toBe("r");
    expect(srv.accepted).toBe(1);
    expect(t.idleCount).toBe(1);
  });

  test("1,000 sequential requests run over one connection", async () => {
    const srv = rawServer((s, r) => void s.write(ok(String(r.n))));
    const t = pool();
    for (let i = 0; i < 1000; i++) {
      const res = await t.send(req(srv.url + "/", { method: "POST", body: enc.encode("{}") }));
      expect(await res.text()).toBe(String(i));
    }
    expect(srv.accepted).toBe(1);
  });

  test("concurrent requests open separate connections, which are all pooled afterwards", async () => {
    const srv = rawServer(async (s) => {
      await Bun.sleep(10);
      s.write(ok("c"));
    });
    const t = pool();
    const all = await Promise.all(Array.from({ length: 4 }, () => t.send(req(srv.url + "/")).then((r) => r.text())));
    expect(all).toEqual(["c", "c", "c", "c"]);
    expect(srv.accepted).toBe(4);
    expect(t.idleCount).toBe(4);
  });

  test("a response with connection: close is not reused", async () => {
    const srv = rawServer((s) => void s.write(ok("bye", "connection: close\r\n")));
    const t = pool();
    for (let i = 0; i < 2; i++) expect(await (await t.send(req(srv.url + "/"))).text()).toBe("bye");
    expect(srv.accepted).toBe(2);
    expect(t.idleCount).toBe(0);
  });

  test("a request with connection: close is not reused", async () => {
    const srv = rawServer((s) => void s.write(ok("x")));
    const t = pool();
    await (await t.send(req(srv.url + "/", { headers: { connection: "close" } }))).text();
    expect(t.idleCount).toBe(0);
    await waitFor("server saw the close", () => srv.closed === 1);
  });

  test("an HTTP/1.0 response is not reused", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    const t = pool();
    expect(await (await t.send(req(srv.url + "/"))).text()).toBe("ok");
    expect(t.idleCount).toBe(0);
  });

  test("an idle socket the server closed leaves the pool and the next request connects afresh", async () => {
    const srv = rawServer((s) => {
      s.write(ok("once"));
      s.end();
    });
    const t = pool();
    expect(await (await t.send(req(srv.url + "/"))).text()).toBe("once");
    await waitFor("pool drop", () => t.idleCount === 0);
    expect(await (await t.send(req(srv.url + "/"))).text()).toBe("once");
    expect(srv.accepted).toBe(2);
  });

  test("keep-alive race: a pooled socket closed as the request arrives is retried once on a fresh connection", async () => {
    const srv = rawServer((s, r) => {
      // The second request on the first connection meets a server that already decided to close.
      if (r.conn === 0 && r.n === 1) s.end();
      else s.write(ok(`conn${r.conn}`));
    });
    const t = pool();
    expect(await (await t.send(req(srv.url + "/"))).text()).toBe("conn0");
    const res = await t.send(req(srv.url + "/", { method: "POST", body: enc.encode("replay me") }));
    expect(await res.text()).toBe("conn1");
    expect(srv.accepted).toBe(2);
    expect(srv.requests.filter((r) => dec.decode(r.body) === "replay me")).toHaveLength(2);
  });

  test("keep-alive race with a streamed body is not retried (the body cannot be replayed)", async () => {
    const srv = rawServer((s, r) => {
      if (r.conn === 0 && r.n === 1) s.end();
      else s.write(ok("fine"));
    });
    const t = pool();
    await (await t.send(req(srv.url + "/"))).text();
    const err = await rejection(t.send(req(srv.url + "/", { method: "POST", headers: { "content-length": "3" }, body: streamOf(enc.encode("abc"), 3) })));
    expect(err.code).toBe("ECONNRESET");
    expect(classifyFailure(err)).toBe("reset");
    expect(srv.accepted).toBe(1);
  });

  test("idle sockets are closed after idleTimeoutMs", async () => {
    const srv = rawServer((s) => void s.write(ok("i")));
    const t = pool({ idleTimeoutMs: 50 });
    await (await t.send(req(srv.url + "/"))).text();
    expect(t.idleCount).toBe(1);
    await waitFor("idle close", () => t.idleCount === 0 && srv.closed === 1);
    expect(t.openCount).toBe(0);
  });

  test("stray bytes on an idle socket get it dropped from the pool", async () => {
    let sock: RawSocket | undefined;
    const srv = rawServer((s) => {
      sock = s;
      s.write(ok("a"));
    });
    const t = pool();
    await (await t.send(req(srv.url + "/"))).text();
    expect(t.idleCount).toBe(1);
    sock!.write("HTTP/1.1 200 OK\r\n\r\n");
    await waitFor("pool drop", () => t.idleCount === 0);
    expect(t.openCount).toBe(0);
  });

  test("an early response before the upload finished closes the socket instead of pooling it", async () => {
    const srv = rawServer(() => {});
    // Answer on the head alone: the raw server parses content-length bodies, so reply from a Bun.serve-less raw hook.
    const early = Bun.listen<undefined>({
      hostname: HOST,
      port: 0,
      socket: {
        data(s) {
          s.write("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n");
        },
      },
    });
    cleanups.push(() => early.stop(true));
    void srv;
    const t = pool();
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        pulls++;
        await Bun.sleep(20);
        c.enqueue(new Uint8Array(1000));
      },
    });
    const res = await t.send(req(`http://${HOST}:${early.port}/`, { method: "POST", body }));
    expect(res.status).toBe(413);
    await waitFor("socket released", () => t.openCount === 0);
    expect(t.idleCount).toBe(0);
    const at = pulls;
    await Bun.sleep(60);
    // The upload stopped: nobody keeps pulling the client's body for a dead exchange.
    expect(pulls).toBeLessThanOrEqual(at + 1);
  });
});

// ---- failures ----

describe("write batching (small requests after the first in an event-loop turn go out together at the turn's end)", () => {
  /** n pooled connections to srv, so the next n sends in one turn take idle sockets synchronously. */
  async function warm(t: TestPool, url: string, n: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, () => t.send(req(url + "/warm")).then((r) => r.text())));
    expect(t.idleCount).toBe(n);
  }

  test("40 requests sent in one turn each reach the server once, on its own connection, and get their own answer", async () => {
    const srv = rawServer((s, r) => void s.write(ok(`${r.head.split(" ")[1]}:${dec.decode(r.body)}`)));
    const t = pool();
    await warm(t, srv.url, 40);
    const sent = Array.from({ length: 40 }, (_, i) => t.send(req(`${srv.url}/r${i}`, { method: "POST", body: enc.encode(`body ${i}`) })).then((r) => r.text()));
    expect(await Promise.all(sent)).toEqual(Array.from({ length: 40 }, (_, i) => `/r${i}:body ${i}`));
    expect(srv.accepted).toBe(40);
    const posts = srv.requests.filter((r) => r.head.startsWith("POST"));
    expect(posts).toHaveLength(40);
    expect(new Set(posts.map((r) => r.conn)).size).toBe(40);
    expect(t.idleCount).toBe(40);
  });

  test("more than the batch buffer holds in one turn: 8 requests with 60 KiB bodies each arrive intact", async () => {
    const srv = rawServer((s, r) => void s.write(ok(sha(r.body))));
    const t = pool();
    await warm(t, srv.url, 8);
    const bodies = Array.from({ length: 8 }, (_, i) => pattern(60 * 1024, i + 1));
    const sent = bodies.map((b) => t.send(req(srv.url + "/big", { method: "POST", body: b })).then((r) => r.text()));
    expect(await Promise.all(sent)).toEqual(bodies.map(sha));
  });

  test("a request cancelled while it waits in the turn's batch is never written, and its socket is not pooled again", async () => {
    const srv = rawServer((s, r) => void s.write(ok(r.head.split(" ")[1] ?? "")));
    const t = pool();
    await warm(t, srv.url, 2);
    const first = t.send(req(srv.url + "/first"));
    const cancel = new Cancel();
    const second = t.send(req(srv.url + "/second", { cancel }));
    cancel.abort("client closed");
    const err = await rejection(second);
    expect(err.name).toBe("AbortError");
    expect(await (await first).text()).toBe("/first");
    await Bun.sleep(50);
    expect(srv.requests.map((r) => r.head.split(" ")[1])).not.toContain("/second");
    expect(t.idleCount).toBe(1);
  });

  test("keep-alive race on a batched request: the server closes that socket, and the request is replayed once on a fresh one", async () => {
    // "b" is the turn's second request, so it waits in the batch; the server has decided to close whichever warm
    // connection it arrives on.
    const srv = rawServer((s, r) => {
      if (dec.decode(r.body) === "b" && r.conn < 2) s.end();
      else s.write(ok(`conn${r.conn}:${dec.decode(r.body)}`));
    });
    const t = pool();
    await warm(t, srv.url, 2);
    const a = t.send(req(srv.url + "/", { method: "POST", body: enc.encode("a") })).then((r) => r.text());
    const b = t.send(req(srv.url + "/", { method: "POST", body: enc.encode("b") })).then((r) => r.text());
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toMatch(/^conn[01]:a$/);
    expect(rb).toBe("conn2:b");
    expect(srv.requests.filter((r) => dec.decode(r.body) === "b")).toHaveLength(2);
    expect(srv.accepted).toBe(3);
  });
});

describe("failures", () => {
  test("a refused connect rejects with ECONNREFUSED, which classifyFailure calls a connect failure", async () => {
    const probe = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const t = pool();
    const err = await rejection(t.send(req(`http://${HOST}:${port}/`)));
    expect(err.code).toBe("ECONNREFUSED");
    expect(classifyFailure(err)).toBe("connect");
    expect(t.openCount).toBe(0);
  });

  test("a TLS handshake that never completes hits the connect timeout (ETIMEDOUT) and the socket is closed", async () => {
    // A plain TCP listener that accepts and stays silent: the TCP connect succeeds, the TLS handshake never does.
    let closed = 0;
    const silent = Bun.listen({ hostname: HOST, port: 0, socket: { data() {}, close() { closed++; } } });
    cleanups.push(() => silent.stop(true));
    const t = pool({ tls: true, verifyCert: false, connectTimeoutMs: 100 });
    const err = await rejection(t.send(req(`https://${HOST}:${silent.port}/`)));
    expect(err.code).toBe("ETIMEDOUT");
    expect(t.openCount).toBe(0);
    await waitFor("server saw the close", () => closed === 1);
  });

  test("an upstream that stops reading the request fails it after writeTimeoutMs", async () => {
    const stuck = Bun.listen({ hostname: HOST, port: 0, socket: { open(s) { s.pause(); }, data() {} } });
    cleanups.push(() => stuck.stop(true));
    const t = pool({ writeTimeoutMs: 100 });
    // Far more than loopback socket buffers hold, so the write must wait on a peer that never drains it.
    const err = await rejection(t.send(req(`http://${HOST}:${stuck.port}/`, { method: "POST", body: new Uint8Array(64 << 20) })));
    expect(err.code).toBe("ERR_WRITE_TIMEOUT");
    expect(classifyFailure(err)).toBe("reset");
    expect(t.openCount).toBe(0);
  });

  test("an upstream reset before the head rejects with ECONNRESET", async () => {
    const srv = rawServer((s) => s.terminate());
    const t = pool();
    const err = await rejection(t.send(req(srv.url + "/")));
    expect(err.code).toBe("ECONNRESET");
    expect(classifyFailure(err)).toBe("reset");
  });

  test("an upstream reset mid-body errors the body stream", async () => {
    const srv = rawServer(async (s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789");
      await Bun.sleep(10);
      s.terminate();
    });
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(dec.decode(first.value)).toBe("0123456789");
    const err = await rejection(reader.read());
    expect(err.code).toBe("ECONNRESET");
    expect(t.openCount).toBe(0);
    expect(t.idleCount).toBe(0);
  });

  test("a clean close mid chunked body is an error, not a short success", async () => {
    const srv = rawServer((s) => {
      s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel");
      s.end();
    });
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    expect((await rejection(res.text())).code).toBe("ECONNRESET");
  });

  test("abort before the head rejects with AbortError and releases the socket", async () => {
    const srv = rawServer(() => {});
    const t = pool();
    const ac = new Cancel();
    const p = t.send(req(srv.url + "/", { cancel: ac }));
    await waitFor("request arrived", () => srv.requests.length === 1);
    ac.abort();
    const err = await rejection(p);
    expect(err.name).toBe("AbortError");
    expect(classifyFailure(err)).toBe("aborted");
    expect(t.openCount).toBe(0);
    expect(t.idleCount).toBe(0);
    await waitFor("server saw the close", () => srv.closed === 1);
  });

  test("abort while connecting rejects with AbortError", async () => {
    const silent = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
    cleanups.push(() => silent.stop(true));
    const t = pool({ tls: true, verifyCert: false, connectTimeoutMs: 5000 });
    const ac = new Cancel();
    const p = t.send(req(`https://${HOST}:${silent.port}/`, { cancel: ac }));
    setTimeout(() => ac.abort(), 20);
    expect((await rejection(p)).name).toBe("AbortError");
    expect(t.openCount).toBe(0);
  });

  test("abort mid-body errors the body stream and releases the socket", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nfirst"));
    const t = pool();
    const ac = new Cancel();
    const res = await t.send(req(srv.url + "/", { cancel: ac }));
    const reader = res.body!.getReader();
    expect(dec.decode((await reader.read()).value)).toBe("first");
    ac.abort();
    expect((await rejection(reader.read())).name).toBe("AbortError");
    expect(t.openCount).toBe(0);
    expect(t.idleCount).toBe(0);
    await waitFor("server saw the close", () => srv.closed === 1);
  });

  test("cancelling the body mid-way closes the socket rather than pooling a half-read response", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nfirst"));
    const t = pool();
    const res = await t.send(req(srv.url + "/"));
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    expect(t.openCount).toBe(0);
    expect(t.idleCount).toBe(0);
  });

  test("an already cancelled exchange rejects without connecting", async () => {
    const srv = rawServer(() => {});
    const t = pool();
    const ac = new Cancel();
    ac.abort();
    expect((await rejection(t.send(req(srv.url + "/", { cancel: ac })))).name).toBe("AbortError");
    expect(srv.accepted).toBe(0);
  });

  test("close() fails in-flight exchanges and empties the pool", async () => {
    const srv = rawServer((s, r) => {
      if (r.n === 0 && r.conn === 0) s.write(ok("a"));
    });
    const t = pool();
    await (await t.send(req(srv.url + "/"))).text();
    const p1 = t.send(req(srv.url + "/"));
    const p2 = t.send(req(srv.url + "/"));
    await waitFor("requests arrived", () => srv.requests.length === 3);
    t.close();
    expect((await rejection(p1)).code).toBe("ERR_TRANSPORT_CLOSED");
    expect((await rejection(p2)).code).toBe("ERR_TRANSPORT_CLOSED");
    expect(t.openCount).toBe(0);
    expect((await rejection(t.send(req(srv.url + "/")))).code).toBe("ERR_TRANSPORT_CLOSED");
  });
});

// ---- backpressure ----

describe("backpressure", () => {
  test("a 20 MiB response read slowly never has more than ~1 MiB buffered in the transport", async () => {
    const size = 20 << 20;
    const data = pattern(size, 11);
    const url = serve(() => new Response(data));
    const t = pool();
    const res = await t.send(req(url + "/big"));
    const reader = res.body!.getReader();
    const hasher = new Bun.CryptoHasher("sha256");
    let got = 0;
    let peak = 0;
    let reads = 0;
    // Let the upstream run ahead before the first read, so the transport certainly has bytes buffered (and paused)
    // when it is first looked at: on a fast, idle machine the slow reads below could otherwise keep up.
    await Bun.sleep(50);
    peak = t.bufferedBytes;
    for (;;) {
      const r = await reader.read();
      peak = Math.max(peak, t.bufferedBytes);
      if (r.done) break;
      hasher.update(r.value);
      got += r.value.byteLength;
      // Slow consumer: give the upstream every chance to overrun us.
      if (reads++ % 4 === 0) await Bun.sleep(1);
    }
    expect(got).toBe(size);
    expect(hasher.digest("hex")).toBe(sha(data));
    expect(peak).toBeLessThanOrEqual(1 << 20);
    // Pausing really happened: a consumer this slow would otherwise have let megabytes pile up.
    expect(peak).toBeGreaterThan(0);
    expect(t.bufferedBytes).toBe(0);
    expect(t.idleCount).toBe(1);
  });

  test("a paused socket is resumed for its next exchange", async () => {
    const data = pattern(4 << 20, 5);
    const url = serve(() => new Response(data));
    const t = pool();
    const res = await t.send(req(url + "/"));
    await Bun.sleep(100); // let the transport fill up to its high-water mark and pause
    expect(sha(await res.bytes())).toBe(sha(data));
    const res2 = await t.send(req(url + "/"));
    expect(sha(await res2.bytes())).toBe(sha(data));
    expect(t.idleCount).toBe(1);
  });
});

// ---- TLS ----

describe("TLS", () => {
  test("TLS to a self-signed upstream works with verification off and reuses the socket", async () => {
    const url = serve((r) => new Response(`tls ${new URL(r.url).pathname}`), { cert: TEST_CERT, key: TEST_KEY });
    const t = pool({ tls: true, verifyCert: false });
    expect(await (await t.send(req(url + "/a"))).text()).toBe("tls /a");
    expect(await (await t.send(req(url + "/b", { method: "POST", body: enc.encode("x") }))).text()).toBe("tls /b");
    expect(t.openCount).toBe(1);
  });

  test("TLS with verification on accepts an upstream whose certificate chains to a configured CA", async () => {
    const url = serve(() => new Response("trusted"), { cert: TEST_CERT, key: TEST_KEY });
    const t = pool({ tls: true, verifyCert: true, ca: TEST_CERT });
    expect(await (await t.send(req(url + "/"))).text()).toBe("trusted");
  });

  test("TLS with verification on refuses a self-signed upstream", async () => {
    const url = serve(() => new Response("should not be reached"), { cert: TEST_CERT, key: TEST_KEY });
    const t = pool({ tls: true, verifyCert: true });
    const err = await rejection(t.send(req(url + "/")));
    expect(err.code).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    expect(t.openCount).toBe(0);
  });
});

describe("Cancel (the exchange's cancellation)", () => {
  test("abort tells every listener once with the reason; an unlistened one hears nothing; a second abort is ignored", () => {
    const c = new Cancel();
    const heard: unknown[] = [];
    const a = { onCancel: (r: unknown) => heard.push(["a", r]) };
    const b = { onCancel: (r: unknown) => heard.push(["b", r]) };
    c.listen(a);
    c.listen(b);
    c.unlisten(a);
    c.abort("why");
    c.abort("again");
    expect(heard).toEqual([["b", "why"]]);
    expect(c.aborted).toBe(true);
    expect(c.reason).toBe("why");
  });

  test("signal() mirrors the cancellation, whether it is asked for before or after the abort", () => {
    const before = new Cancel();
    const s1 = before.signal();
    expect(s1.aborted).toBe(false);
    before.abort("timeout");
    expect(s1.aborted).toBe(true);
    expect(s1.reason).toBe("timeout");
    const after = new Cancel();
    after.abort("gone");
    expect(after.signal().aborted).toBe(true);
    expect(after.signal().reason).toBe("gone");
  });

  test("as a listener on a client's AbortSignal it cancels with reason \"client closed\"", () => {
    const client = new AbortController();
    const c = new Cancel();
    client.signal.addEventListener("abort", c);
    client.abort();
    expect(c.aborted).toBe(true);
    expect(c.reason).toBe("client closed");
  });
});
