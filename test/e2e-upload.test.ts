// End to end, uploads and response heads at the edges (issue 12, items 10 and 11), with the real gateway process:
// - a managed client that aborts mid-upload is billed nothing (no ai.usage line): the provider never had the whole
//   request, so it never ran it; an upload that did complete is still billed, even when the client leaves later;
// - a streamed upload over max_request_body_bytes gets 413 with `connection: close` and the socket closes, instead of
//   the gateway draining the rest; a declared oversize body likewise; other requests are served meanwhile;
// - a response head over 64 KiB is refused with 502 in dialect whether it arrives in one read or spread over many.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, type LogLine, rawHttp, startGateway } from "./helpers/gateway.ts";
import { MOCK_OPENAI_MODEL, MOCK_USAGE, startMockProvider, type MockProvider } from "./helpers/mock-provider.ts";

const OPENAI_POOL = "sk-upload-openai-pool";
const signing = keygen();
const MANAGED = mint(1, signing.seed, 77n, 3n);
/** max_request_body_bytes of the gateway under test. */
const MAX_BODY = 1024 * 1024;

let mock: MockProvider;
let raw: RawUpstream;
let gw: Gateway;

beforeAll(async () => {
  mock = startMockProvider();
  raw = startRawUpstream();
  gw = await startGateway({
    config: baseConfig({
      authorities: { openai: mock.authority, groq: raw.authority, anthropic: raw.authority },
      extra: `max_request_body_bytes = ${MAX_BODY}`,
      tables: ["[pool_keys]", `openai = "${OPENAI_POOL}"`, "", "[signing_keys]", `1 = "${Buffer.from(signing.publicKey).toString("base64")}"`].join("\n"),
    }),
  });
});

afterAll(async () => {
  await gw?.stop();
  await mock?.stop();
  raw?.stop();
});

// ---------------------------------------------------------------------------------------------
// A raw upstream: answers with response heads no HTTP server library would write.

interface RawUpstream {
  authority: string;
  stop(): void;
}

/** A response head of at least `bytes` bytes (one big header), with a 2-byte body. */
function bigHead(bytes: number): Uint8Array {
  const filler = "x".repeat(bytes);
  return new TextEncoder().encode(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-filler: ${filler}\r\ncontent-length: 2\r\n\r\n{}`);
}

/**
 * Routes on the request path: `/v1/head-one-write/N` sends an N-byte head in one write, `/v1/head-spread/N` the same
 * head in 4 KiB writes 2 ms apart. The request is answered once its head has arrived (these requests have no body).
 */
function startRawUpstream(): RawUpstream {
  const listener: TCPSocketListener<{ buf: string }> = Bun.listen<{ buf: string }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: "" };
      },
      async data(s, d) {
        s.data.buf += new TextDecoder().decode(d);
        if (!s.data.buf.includes("\r\n\r\n")) return;
        const path = s.data.buf.slice(0, s.data.buf.indexOf("\r\n")).split(" ")[1] ?? "";
        s.data.buf = "";
        const m = /\/head-(one-write|spread)\/(\d+)$/.exec(path);
        if (m === null) {
          s.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
          return;
        }
        const head = bigHead(Number(m[2]));
        if (m[1] === "one-write") {
          await writeAll(s, head);
          return;
        }
        // The gateway gives up on the head once it passes 64 KiB and closes: stop writing then.
        for (let off = 0; off < head.byteLength; off += 4096) {
          if (!(await writeAll(s, head.subarray(off, off + 4096)))) return;
          await Bun.sleep(2);
        }
      },
    },
  });
  return { authority: `127.0.0.1:${listener.port}`, stop: () => listener.stop(true) };
}

/** Writes all of `bytes`, waiting for the socket to drain when it takes only part; false once the peer closed. */
async function writeAll<T>(s: Socket<T>, bytes: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < bytes.byteLength) {
    const n = s.write(bytes.subarray(off));
    if (n < 0) return false;
    off += n;
    if (off < bytes.byteLength) await Bun.sleep(1);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// A raw client that uploads and can stop mid-way.

interface RawClient {
  /** Writes, or reports false once the gateway closed the connection. */
  write(bytes: Uint8Array | string): Promise<boolean>;
  /** Everything the gateway sent so far. */
  received(): string;
  closed(): boolean;
  /** Resolves when the gateway closed the connection (or after ms: false). */
  waitClosed(ms: number): Promise<boolean>;
  waitFor(pred: (text: string) => boolean, ms: number): Promise<boolean>;
  /** Close our end abruptly (the client gives up). */
  abort(): void;
}

async function rawClient(): Promise<RawClient> {
  let got = "";
  let isClosed = false;
  let onClose: (() => void) | undefined;
  const s = await Bun.connect({
    hostname: gw.host,
    port: gw.port,
    socket: {
      data(_s, d) {
        got += new TextDecoder().decode(d);
      },
      close() {
        isClosed = true;
        onClose?.();
      },
      error() {},
    },
  });
  const poll = async (pred: () => boolean, ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) return false;
      await Bun.sleep(5);
    }
    return true;
  };
  return {
    async write(bytes) {
      const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
      let off = 0;
      while (off < b.byteLength) {
        if (isClosed) return false;
        const n = s.write(b.subarray(off));
        if (n < 0) return false;
        off += n;
        if (off < b.byteLength) await Bun.sleep(1);
      }
      return !isClosed;
    },
    received: () => got,
    closed: () => isClosed,
    waitClosed: (ms) =>
      isClosed
        ? Promise.resolve(true)
        : Promise.race([new Promise<boolean>((r) => (onClose = () => r(true))), Bun.sleep(ms).then(() => isClosed)]),
    waitFor: (pred, ms) => poll(() => pred(got), ms),
    abort() {
      s.terminate();
    },
  };
}

function chunk(data: string | Uint8Array): Uint8Array {
  const b = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const size = new TextEncoder().encode(`${b.byteLength.toString(16)}\r\n`);
  const out = new Uint8Array(size.byteLength + b.byteLength + 2);
  out.set(size, 0);
  out.set(b, size.byteLength);
  out.set([13, 10], size.byteLength + b.byteLength);
  return out;
}

function managedHead(extra: string, path = "/v1/chat/completions"): string {
  return `POST ${path} HTTP/1.1\r\nhost: ${gw.host}:${gw.port}\r\nauthorization: Bearer ${MANAGED}\r\ncontent-type: application/json\r\n${extra}\r\n`;
}

/** Ids of access lines already written, so a test can find the line of a request that got no response. */
function accessIds(): Set<string> {
  return new Set(gw.logs().filter((l) => l["target"] === "ai.access").map((l) => String(l["request_id"])));
}

async function newAccessLine(before: Set<string>, pred: (l: LogLine) => boolean): Promise<LogLine> {
  return gw.waitForLog((l) => l["target"] === "ai.access" && !before.has(String(l["request_id"])) && pred(l), 5000);
}

function usageLines(id: string): LogLine[] {
  return gw.logs().filter((l) => l["target"] === "ai.usage" && l["request_id"] === id);
}

/** The start of a chat body, streamed, and padding inside a string so the JSON stays open while the upload is cut. */
const BODY_START = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"`;
const PAD = "a".repeat(16 * 1024);

// ---------------------------------------------------------------------------------------------

describe("an aborted upload is not billed", () => {
  test("a managed chunked upload the client aborts after the provider got part of it leaves no ai.usage line", async () => {
    mock.reset();
    const before = accessIds();
    const c = await rawClient();
    await c.write(managedHead("transfer-encoding: chunked\r\nx-mock-mode: stream-in\r\n"));
    await c.write(chunk(BODY_START + PAD));
    await c.write(chunk(PAD));
    // The provider really received part of the request before the client went away.
    await mock.waitForRequest((r) => r.bytesReceived > 0);
    c.abort();
    const access = await newAccessLine(before, (l) => l["path"] === "/v1/chat/completions");
    expect(access["managed"]).toBe(true);
    expect(access["status"]).toBe(499);
    // A usage line, were there one, is written before the access line on the same sink: it would be visible now.
    expect(usageLines(String(access["request_id"]))).toEqual([]);
    expect(mock.last().finished).toBe(false);
  });

  test("a managed upload with a content-length over 64 KiB the client aborts halfway leaves no ai.usage line", async () => {
    mock.reset();
    const before = accessIds();
    const c = await rawClient();
    const total = 200 * 1024;
    await c.write(managedHead(`content-length: ${total}\r\nx-mock-mode: stream-in\r\n`));
    await c.write(BODY_START + "a".repeat(100 * 1024));
    await mock.waitForRequest((r) => r.bytesReceived > 0);
    c.abort();
    const access = await newAccessLine(before, (l) => l["path"] === "/v1/chat/completions");
    expect(access["status"]).toBe(499);
    expect(usageLines(String(access["request_id"]))).toEqual([]);
  });

  test("a managed chunked upload that completes is still billed exactly", async () => {
    mock.reset();
    const c = await rawClient();
    await c.write(managedHead("transfer-encoding: chunked\r\n"));
    await c.write(chunk(`{"model":"gpt-4o","messages":[{"role":"user","content":"${PAD}"}]`));
    await c.write(chunk("}"));
    await c.write("0\r\n\r\n");
    expect(await c.waitFor((t) => t.includes("chatcmpl-mock"), 5000)).toBe(true);
    const id = /x-beyond-request-id: (\S+)/i.exec(c.received())?.[1];
    expect(id).toBeDefined();
    const line = await gw.waitForLog((l) => l["target"] === "ai.usage" && l["request_id"] === id);
    expect({ model: line["model"], input: line["input_tokens"], output: line["output_tokens"], complete: line["complete"] }).toEqual({
      model: MOCK_OPENAI_MODEL,
      input: MOCK_USAGE.openaiJson.prompt_tokens,
      output: MOCK_USAGE.openaiJson.completion_tokens,
      complete: true,
    });
    c.abort();
  });

  test("a client that leaves after its upload completed, before the answer, is billed an estimate (the provider had the request)", async () => {
    mock.reset();
    const before = accessIds();
    const c = await rawClient();
    await c.write(managedHead("transfer-encoding: chunked\r\nx-mock-mode: delay:1500\r\n"));
    await c.write(chunk(`{"model":"gpt-4o","messages":[{"role":"user","content":"${PAD}"}]}`));
    await c.write("0\r\n\r\n");
    await mock.waitForRequest(() => true);
    c.abort();
    const access = await newAccessLine(before, (l) => l["path"] === "/v1/chat/completions");
    expect(access["status"]).toBe(499);
    const lines = usageLines(String(access["request_id"]));
    expect(lines.length).toBe(1);
    expect(lines[0]?.["complete"]).toBe(false);
    expect(lines[0]?.["input_tokens"] as number).toBeGreaterThan(0);
  });
});

describe("413 on an upload closes the connection", () => {
  /** Sends `head`, then 64 KiB pieces until `total` bytes or the gateway closes; returns the client and bytes sent. */
  async function oversize(head: string, framed: (piece: Uint8Array) => Uint8Array, total: number): Promise<{ c: RawClient; sent: number }> {
    const c = await rawClient();
    await c.write(head);
    const piece = new Uint8Array(64 * 1024).fill(0x61);
    let sent = 0;
    while (sent < total && (await c.write(framed(piece)))) sent += piece.byteLength;
    return { c, sent };
  }

  test("a chunked upload over max_request_body_bytes gets 413 with connection: close and the socket closes while the client still sends", async () => {
    const total = 48 * 1024 * 1024;
    const { c, sent } = await oversize(managedHead("transfer-encoding: chunked\r\n"), chunk, total);
    expect(await c.waitClosed(5000)).toBe(true);
    // Closed long before the 48 MiB were all sent: the gateway did not drain the rest.
    expect(sent).toBeLessThan(total);
    const text = c.received();
    expect(text.startsWith("HTTP/1.1 413")).toBe(true);
    expect(text.toLowerCase()).toContain("connection: close");
    expect(text).toContain(`"code":"request_too_large"`);
    expect(text.toLowerCase()).toContain("x-beyond-request-id: ");
  });

  test("a declared content-length over max_request_body_bytes gets 413 with connection: close and the socket closes", async () => {
    const total = 48 * 1024 * 1024;
    const { c, sent } = await oversize(managedHead(`content-length: ${total}\r\n`), (p) => p, total);
    expect(await c.waitClosed(5000)).toBe(true);
    expect(sent).toBeLessThan(total);
    expect(c.received().startsWith("HTTP/1.1 413")).toBe(true);
    expect(c.received().toLowerCase()).toContain("connection: close");
  });

  test("other requests are served while an oversize upload is refused", async () => {
    const c = await rawClient();
    await c.write(managedHead("transfer-encoding: chunked\r\n"));
    const piece = chunk(new Uint8Array(64 * 1024).fill(0x61));
    const sending = (async () => {
      for (let i = 0; i < 200; i++) if (!(await c.write(piece))) return;
    })();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe(MOCK_OPENAI_MODEL);
    await sending;
    expect(await c.waitClosed(5000)).toBe(true);
    expect(c.received().startsWith("HTTP/1.1 413")).toBe(true);
  });
});

describe("response head over 64 KiB", () => {
  for (const how of ["one-write", "spread"] as const) {
    test(`a 100 KiB head sent ${how === "one-write" ? "in one write" : "across many writes"} is refused with 502 in the caller's dialect`, async () => {
      const r = await rawHttp(gw.host, gw.port, `GET /groq/v1/head-${how}/${100 * 1024} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-byo-test\r\nconnection: close\r\n\r\n`);
      expect(r.status).toBe(502);
      expect(JSON.parse(r.text())).toEqual({ error: { message: "upstream connection reset", type: "api_error", code: "upstream_reset" } });
      expect(r.headers["x-filler"]).toBeUndefined();
      const id = r.headers["x-beyond-request-id"];
      expect(id).toBeDefined();
      expect((await gw.accessLog(String(id)))["status"]).toBe(502);
    });
  }

  test("an Anthropic-dialect provider's oversize head gets the Anthropic error shape", async () => {
    const r = await rawHttp(gw.host, gw.port, `GET /anthropic/v1/head-one-write/${100 * 1024} HTTP/1.1\r\nhost: x\r\nx-api-key: sk-ant-byo\r\nconnection: close\r\n\r\n`);
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text())).toEqual({ type: "error", error: { type: "api_error", message: "upstream connection reset" } });
  });

  test("a 32 KiB head in one write is relayed", async () => {
    const r = await rawHttp(gw.host, gw.port, `GET /groq/v1/head-one-write/${32 * 1024} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-byo-test\r\nconnection: close\r\n\r\n`);
    expect(r.status).toBe(200);
    expect(r.headers["x-filler"]?.length).toBe(32 * 1024);
    expect(r.text()).toBe("{}");
  });
});
