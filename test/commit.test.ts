// The SSE commit hold (SPEC §10): the preamble (OpenAI's role-only chunk; Anthropic message_start,
// content_block_start, ping) is held, the first content event commits, an in-band error before content is caught
// (with the input tokens its message_start reported), and the hold's byte and time limits commit as they are.
import { describe, expect, test } from "bun:test";
import { holdPreamble, type HoldReader, PreambleScanner, scanWhole } from "../src/pipeline/commit.ts";
import { anthropicSseEvents, openaiChatSseEvents } from "./helpers/mock-provider.ts";

const enc = new TextEncoder();
const ANTHROPIC_OVERLOAD = `event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n`;
const OPENAI_ERROR = `data: {"error":{"message":"The server had an error","type":"server_error","code":null}}\n\n`;

/** A reader over `parts`, each read after `delayMs`; `hang`: after the parts, reads never resolve. */
function reader(parts: readonly string[], delayMs = 0, hang = false): HoldReader & { cancelled: boolean } {
  let i = 0;
  const r = {
    cancelled: false,
    async read() {
      if (delayMs > 0) await Bun.sleep(delayMs);
      if (i < parts.length) return { done: false as const, value: enc.encode(parts[i++] as string) };
      if (hang) return new Promise<never>(() => {});
      return { done: true as const };
    },
    async cancel() {
      r.cancelled = true;
    },
  };
  return r;
}

describe("PreambleScanner", () => {
  test("Anthropic: message_start, content_block_start and ping are preamble; the first delta is content", () => {
    const ev = anthropicSseEvents();
    const s = new PreambleScanner();
    expect(s.push(enc.encode(ev.slice(0, 3).join("")))).toBeUndefined();
    expect(s.inputTokens).toBe(13);
    expect(s.push(enc.encode(ev[3] as string))).toBe("content");
  });

  test("OpenAI: the role-only chunk is preamble; the first content delta is content", () => {
    const ev = openaiChatSseEvents(true);
    const s = new PreambleScanner();
    expect(s.push(enc.encode(ev[0] as string))).toBeUndefined();
    expect(s.push(enc.encode(ev[1] as string))).toBe("content");
  });

  test("an event split at every byte offset is classified the same", () => {
    const text = anthropicSseEvents().slice(0, 3).join("") + ANTHROPIC_OVERLOAD;
    for (let k = 1; k < text.length; k++) {
      const s = new PreambleScanner();
      const a = s.push(enc.encode(text.slice(0, k)));
      const b = a ?? s.push(enc.encode(text.slice(k)));
      expect(b).toBe("error");
    }
  });

  test("in-band errors in both dialects are errors; CRLF framing works", () => {
    expect(new PreambleScanner().push(enc.encode(ANTHROPIC_OVERLOAD))).toBe("error");
    expect(new PreambleScanner().push(enc.encode(OPENAI_ERROR))).toBe("error");
    expect(new PreambleScanner().push(enc.encode(ANTHROPIC_OVERLOAD.replaceAll("\n", "\r\n")))).toBe("error");
  });

  test("a tool-call delta, [DONE] and unknown JSON are content; keep-alive comments are not", () => {
    expect(new PreambleScanner().push(enc.encode(`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]},"finish_reason":null}]}\n\n`))).toBe("content");
    expect(new PreambleScanner().push(enc.encode("data: [DONE]\n\n"))).toBe("content");
    expect(new PreambleScanner().push(enc.encode(`data: {"n":1}\n\n`))).toBe("content");
    expect(new PreambleScanner().push(enc.encode(": keep-alive\n\n"))).toBeUndefined();
  });
});

describe("holdPreamble", () => {
  test("commits at the first content event with every held byte", async () => {
    const ev = anthropicSseEvents();
    const r = await holdPreamble(reader(ev), { maxMs: 1500, maxBytes: 16384 });
    expect(r.kind).toBe("commit");
    if (r.kind !== "commit") return;
    expect(r.why).toBe("content");
    expect(Buffer.concat(r.held).toString()).toBe(ev.slice(0, 4).join(""));
  });

  test("an in-band overload before content is reported with the preamble's input tokens", async () => {
    const ev = anthropicSseEvents();
    const r = await holdPreamble(reader([...ev.slice(0, 3), ANTHROPIC_OVERLOAD]), { maxMs: 1500, maxBytes: 16384 });
    expect(r.kind).toBe("in_band_error");
    if (r.kind === "in_band_error") expect(r.inputTokens).toBe(13);
  });

  test("a read error before content is a reset", async () => {
    const bad: HoldReader = { read: () => Promise.reject(new Error("ECONNRESET")), cancel: async () => {} };
    expect((await holdPreamble(bad, { maxMs: 1500, maxBytes: 16384 })).kind).toBe("reset");
  });

  test("the byte limit commits what is held", async () => {
    const pings = Array.from({ length: 50 }, () => `event: ping\ndata: {"type":"ping"}\n\n`);
    const r = await holdPreamble(reader(pings), { maxMs: 5000, maxBytes: 200 });
    expect(r.kind === "commit" && r.why === "bytes").toBe(true);
  });

  test("the time limit commits what is held and hands over the read in flight", async () => {
    const ev = openaiChatSseEvents(false);
    const r = await holdPreamble(reader([ev[0] as string], 0, true), { maxMs: 30, maxBytes: 16384 });
    expect(r.kind === "commit" && r.why === "time" && r.pending !== undefined && r.held.length === 1).toBe(true);
  });

  test("a stream that ends in its preamble commits (nothing to retry)", async () => {
    const ev = anthropicSseEvents();
    const r = await holdPreamble(reader(ev.slice(0, 2)), { maxMs: 1500, maxBytes: 16384 });
    expect(r.kind === "commit" && r.why === "end").toBe(true);
  });

  test("scanWhole finds an in-band error in a stream that arrived whole, and passes a good one", () => {
    const ev = anthropicSseEvents();
    expect(scanWhole(enc.encode(ev.slice(0, 3).join("") + ANTHROPIC_OVERLOAD))?.kind).toBe("in_band_error");
    expect(scanWhole(enc.encode(ev.join("")))).toBeUndefined();
  });
});
