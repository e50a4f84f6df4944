// End-to-end: HTTP/1.1 pipelining. Bun.serve (uWS) closes a connection when a second request head arrives while
// the first response is still pending (every gateway answer is async), so today a pipelined pair gets no answer
// and a closed socket: a documented Bun limitation (ARCHITECTURE.md). What the gateway must guarantee regardless:
// whatever is sent is in order and complete, never a mix, and the process and other connections are unaffected.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { baseConfig, startGateway, type Gateway } from "./helpers/gateway.ts";
import { startMockProvider, type MockProvider } from "./helpers/mock-provider.ts";

const BYO = "sk-byo-pipelining-0123456789";
let mock: MockProvider;
let gw: Gateway;

beforeAll(async () => {
  mock = startMockProvider();
  gw = await startGateway({ config: baseConfig({ authorities: { openai: mock.authority } }) });
});
afterAll(async () => {
  await gw?.stop();
  await mock?.stop();
});

/** Writes `text` in one write and collects everything until the server closes (or 3 s pass). */
function exchange(port: number, text: string): Promise<{ bytes: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    let bytes = "";
    const s = connect(port, "127.0.0.1", () => s.write(text));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ bytes, closedByServer: false });
    }, 3000);
    s.on("data", (d) => (bytes += d.toString("latin1")));
    s.on("close", () => {
      clearTimeout(timer);
      resolve({ bytes, closedByServer: true });
    });
    s.on("error", () => {});
  });
}

test("two pipelined requests in one write: any answers are whole and in order, and the gateway keeps serving", async () => {
  const req = (n: number) => `GET /v1/models?n=${n} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${BYO}\r\n\r\n`;
  const r = await exchange(gw.port, req(1) + req(2));
  const heads = [...r.bytes.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
  expect(heads.length).toBeLessThanOrEqual(2);
  for (const status of heads) expect(status).toBe("200");
  // Request ids grow per request: two answers must come in request order.
  const seqs = [...r.bytes.matchAll(/x-beyond-request-id: [0-9a-f]+-([0-9a-f]+)/gi)].map((m) => Number.parseInt(m[1] as string, 16));
  expect(seqs.length).toBe(heads.length);
  if (seqs.length === 2) expect((seqs[0] as number) < (seqs[1] as number)).toBe(true);
  // Fewer than two answers means Bun closed the connection (the limitation), not that it hung.
  if (heads.length < 2) expect(r.closedByServer).toBe(true);

  // A fresh connection right after is served normally, and the process is still up.
  const res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${BYO}` } });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  expect(gw.proc.exitCode).toBeNull();
});

test("a request written after its predecessor's answer arrived (keep-alive, not pipelined) is served on the same connection", async () => {
  const answers = await new Promise<string[]>((resolve, reject) => {
    const got: string[] = [];
    let buf = "";
    const s = connect(gw.port, "127.0.0.1", () => s.write(`GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${BYO}\r\n\r\n`));
    s.on("data", (d) => {
      buf += d.toString("latin1");
      // /v1/models answers with a content-length body: one answer is complete once its body is.
      const end = buf.indexOf("\r\n\r\n");
      const status = /^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1];
      const length = /\r\ncontent-length: (\d+)\r\n/i.exec(buf.slice(0, end + 2))?.[1];
      if (end >= 0 && status !== undefined && length !== undefined && buf.length >= end + 4 + Number(length)) {
        got.push(status);
        buf = buf.slice(end + 4 + Number(length));
        if (got.length === 1) s.write(`GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${BYO}\r\n\r\n`);
        else {
          s.destroy();
          resolve(got);
        }
      }
    });
    s.on("error", reject);
    setTimeout(() => reject(new Error(`timed out with ${got.length} answers`)), 5000);
  });
  expect(answers).toEqual(["200", "200"]);
});
