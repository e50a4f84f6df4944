// The test mock paces streams like a real provider (issue 12, item 1): checked on a raw socket that each SSE event,
// or each half of a split event, really goes out in a write of its own, since a mock that coalesced them would hide
// exactly the read boundaries the paced end-to-end tests are about.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openaiChatSseEvents, pacedPieces, parsePaceHeader, startMockProvider, type MockProvider } from "./helpers/mock-provider.ts";

let mock: MockProvider;
beforeAll(() => {
  mock = startMockProvider();
});
afterAll(async () => {
  await mock?.stop();
});

const dec = new TextDecoder();

/** Sends one raw request and returns the bytes of every socket read, in order, until the server closes. */
function rawReads(port: number, request: string): Promise<Uint8Array[]> {
  const reads: Uint8Array[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("mock did not finish within 5 s")), 5000);
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(request);
        },
        data(_s, d) {
          reads.push(new Uint8Array(d));
        },
        close() {
          clearTimeout(timer);
          resolve(reads);
        },
        error(_s, e) {
          clearTimeout(timer);
          reject(e);
        },
      },
    });
  });
}

/** The payloads of the HTTP/1.1 chunks that start in one read (the reads here hold whole chunks). */
function chunkPayloads(read: Uint8Array): string[] {
  let text = dec.decode(read);
  const headEnd = text.indexOf("\r\n\r\n");
  if (text.startsWith("HTTP/1.1 ") && headEnd >= 0) text = text.slice(headEnd + 4);
  const out: string[] = [];
  while (text.length > 0) {
    const crlf = text.indexOf("\r\n");
    const size = parseInt(text.slice(0, crlf), 16);
    if (size === 0) break;
    out.push(text.slice(crlf + 2, crlf + 2 + size));
    text = text.slice(crlf + 2 + size + 2);
  }
  return out;
}

function streamRequest(pace: string): string {
  const body = JSON.stringify({ model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: [] });
  return (
    `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n` +
    `x-mock-pace: ${pace}\r\ncontent-length: ${body.length}\r\n\r\n${body}`
  );
}

describe("paced mock streams", () => {
  test("x-mock-pace parses the delay and the optional split offset, and refuses nonsense", () => {
    expect(parsePaceHeader("20")).toEqual({ delayMs: 20 });
    expect(parsePaceHeader("5/17")).toEqual({ delayMs: 5, splitAt: 17 });
    expect(parsePaceHeader("x")).toBeUndefined();
    expect(parsePaceHeader("5/0")).toBeUndefined();
  });

  test("each event of a paced stream arrives in its own socket read", async () => {
    const reads = await rawReads(mock.port, streamRequest("20"));
    const events = openaiChatSseEvents(true);
    expect(reads.map(chunkPayloads).map((p) => p.length)).toEqual(events.map(() => 1));
    // The payloads are the events, in order (created differs by at most a second; compare without it).
    const strip = (s: string): string => s.replace(/"created":\d+/, "");
    expect(reads.map((r) => strip(chunkPayloads(r)[0] ?? ""))).toEqual(events.map(strip));
  });

  test("a split stream sends every event, usage chunk and [DONE] included, as two reads cut at the offset", async () => {
    const k = 9;
    const reads = await rawReads(mock.port, streamRequest(`20/${k}`));
    const payloads = reads.map(chunkPayloads);
    expect(payloads.every((p) => p.length === 1)).toBe(true);
    const want = pacedPieces(openaiChatSseEvents(true), { delayMs: 20, splitAt: k }).map((b) => dec.decode(b));
    expect(want.length).toBe(openaiChatSseEvents(true).length * 2);
    const strip = (s: string): string => s.replace(/"created":\d+/, "");
    expect(payloads.map((p) => strip(p[0] ?? ""))).toEqual(want.map(strip));
    // The first piece of every event is exactly k bytes; the usage chunk's and [DONE]'s too.
    expect(payloads.filter((_, i) => i % 2 === 0).every((p) => (p[0] ?? "").length === k)).toBe(true);
    expect(payloads[payloads.length - 2]?.[0]).toBe("data: [DO");
  });
});
