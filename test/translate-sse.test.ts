// The SSE event splitter under the stream translator: the WHATWG event-stream rules it follows, chunk boundaries
// anywhere (inside a UTF-8 sequence, between `\r` and `\n`), and the bound on what it holds.
import { describe, expect, test } from "bun:test";
import { SseSplitter } from "../src/translate/sse.ts";
import { mulberry32 } from "./helpers/random.ts";

const enc = new TextEncoder();

type Ev = [string, string];

function split(chunks: Uint8Array[], maxEventBytes?: number): { events: Ev[]; splitter: SseSplitter } {
  const events: Ev[] = [];
  const splitter = new SseSplitter((e, d) => events.push([e, d]), maxEventBytes);
  for (const c of chunks) splitter.push(c);
  return { events, splitter };
}

function whole(text: string): Ev[] {
  const { events, splitter } = split([enc.encode(text)]);
  splitter.finish();
  return events;
}


const MIXED =
  "\uFEFFevent: message_start\r\ndata: {\"a\":\"café 😀\"}\r\n\r\n" +
  ": keep-alive comment\n\n" +
  "data: line one\ndata: line two — 你好\n\n" +
  "event: ping\rdata: {}\r\r" +
  "data:no-space\nid: 7\nretry: 100\n\n" +
  "data\n\n" +
  "event: only-name\n\n" +
  "data: [DONE]\n\n";

const MIXED_EVENTS: Ev[] = [
  ["message_start", '{"a":"café 😀"}'],
  ["", "line one\nline two — 你好"],
  ["ping", "{}"],
  ["", "no-space"],
  ["", ""],
  ["only-name", ""],
  ["", "[DONE]"],
];

describe("SseSplitter: the event-stream rules", () => {
  test("splits events on \\n\\n, \\r\\n\\r\\n and \\r\\r; joins data lines with \\n; skips comments, id, retry and a leading BOM", () => {
    expect(whole(MIXED)).toEqual(MIXED_EVENTS);
  });

  test("a field line without a colon is that field with an empty value; one space after the colon is dropped, a second kept", () => {
    expect(whole("event\ndata\n\ndata:  two spaces\n\n")).toEqual([
      ["", ""],
      ["", " two spaces"],
    ]);
  });

  test("a blank line with no field before it dispatches nothing", () => {
    expect(whole("\n\n\n: comment\n\n\r\n\r\n")).toEqual([]);
  });

  test("finish() hands on a last event whose blank line (or whole terminator) never came", () => {
    expect(whole("data: a\n\ndata: [DONE]\n")).toEqual([
      ["", "a"],
      ["", "[DONE]"],
    ]);
    expect(whole("data: a\n\ndata: [DONE]")).toEqual([
      ["", "a"],
      ["", "[DONE]"],
    ]);
  });

  test("an event completed by a push is handed on before that push returns", () => {
    const { events, splitter } = split([enc.encode("data: 1\n")]);
    expect(events).toEqual([]);
    splitter.push(enc.encode("\n"));
    expect(events).toEqual([["", "1"]]);
  });
});

describe("SseSplitter: chunk boundaries anywhere", () => {
  const bytes = enc.encode(MIXED);

  test("every two-piece split gives the same events (inside UTF-8 sequences, between \\r and \\n)", () => {
    for (let at = 0; at <= bytes.length; at++) {
      const { events, splitter } = split([bytes.subarray(0, at), bytes.subarray(at)]);
      splitter.finish();
      expect(events).toEqual(MIXED_EVENTS);
    }
  });

  test("one byte at a time gives the same events", () => {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i++) chunks.push(bytes.slice(i, i + 1));
    const { events, splitter } = split(chunks);
    splitter.finish();
    expect(events).toEqual(MIXED_EVENTS);
  });

  test("random chunkings (seeded) give the same events", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = mulberry32(seed);
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; ) {
        const n = 1 + Math.floor(next() * 24);
        chunks.push(bytes.slice(i, i + n));
        i += n;
      }
      const { events, splitter } = split(chunks);
      splitter.finish();
      expect(events).toEqual(MIXED_EVENTS);
    }
  });

  test("a \\r ending one chunk and a \\n starting the next are one line end, not two", () => {
    // Read as two terminators this would be a blank line, splitting one event into "a" and "b".
    const { events, splitter } = split([enc.encode("data: a\r"), enc.encode("\ndata: b\r\n\r\n")]);
    splitter.finish();
    expect(events).toEqual([["", "a\nb"]]);
  });

  test("an empty chunk between a \\r and its \\n changes nothing", () => {
    const { events } = split([enc.encode("data: a\r"), new Uint8Array(0), enc.encode("\n\r\n")]);
    expect(events).toEqual([["", "a"]]);
  });

  test("a chunk the caller reuses after push does not corrupt the held partial line", () => {
    const events: Ev[] = [];
    const s = new SseSplitter((e, d) => events.push([e, d]));
    const buf = new Uint8Array(8);
    buf.set(enc.encode("data: ab"));
    s.push(buf);
    buf.set(enc.encode("cd\n\nXXXX"));
    s.push(buf.subarray(0, 4));
    expect(events).toEqual([["", "abcd"]]);
  });
});

describe("SseSplitter: bounded", () => {
  test("after complete events nothing is held; a partial event holds only its own bytes", () => {
    const events: Ev[] = [];
    const s = new SseSplitter((e, d) => events.push([e, d]));
    const one = enc.encode(`event: content_block_delta\ndata: {"text":"${"x".repeat(100)}"}\n\n`);
    for (let i = 0; i < 1000; i++) s.push(one);
    expect(events.length).toBe(1000);
    expect(s.heldBytes).toBe(0);
    s.push(one.subarray(0, 40));
    expect(s.heldBytes).toBe(40 - 1); // "event: content_block_delta" (26) + its \n, then 13 bytes of the data line
  });

  test("an event over maxEventBytes stops the splitter (overflowed) and frees what it held", () => {
    const { events, splitter } = split([enc.encode("data: ok\n\n"), enc.encode("data: " + "y".repeat(200))], 100);
    expect(events).toEqual([["", "ok"]]);
    expect(splitter.overflowed).toBe(true);
    expect(splitter.heldBytes).toBe(0);
    splitter.push(enc.encode("\n\ndata: later\n\n"));
    splitter.finish();
    expect(events).toEqual([["", "ok"]]);
  });

  test("the bound counts an event's completed lines too (many short data lines, no blank line)", () => {
    const { splitter } = split([enc.encode("data: 0123456789\n".repeat(20))], 100);
    expect(splitter.overflowed).toBe(true);
  });
});
