// The pull-driven streams of forward.ts (issue 12, item 1): a pull that produces no bytes must keep reading, since
// with highWaterMark 0 nothing calls pull again while the consumer's one read is pending. Each case feeds reads that
// the hook turns into nothing and expects the next real bytes (or the end) to reach the reader; a stalled stream
// fails through the race's deadline instead of hanging the file.
import { describe, expect, test } from "bun:test";
import { relayBody, type RelayEnd, StreamedBody } from "../src/pipeline/forward.ts";
import { Cancel } from "../src/transport/transport.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A source that yields `parts` one per pull, each after a macrotask (like separate socket reads). */
function source(parts: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        await Bun.sleep(1);
        if (i >= parts.length) c.close();
        else c.enqueue(parts[i++] as Uint8Array);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Reads `s` to its end, or rejects when that takes longer than 2 s (a stalled stream). */
async function readAll(s: ReadableStream<Uint8Array>): Promise<string[]> {
  const reader = s.getReader();
  const got: string[] = [];
  const deadline = Bun.sleep(2000).then(() => "stalled" as const);
  for (;;) {
    const r = await Promise.race([reader.read(), deadline]);
    if (r === "stalled") throw new Error(`stream stalled after ${JSON.stringify(got)}`);
    if (r.done) return got;
    got.push(dec.decode(r.value));
  }
}

describe("StreamedBody.attempt", () => {
  test("reads the hook turns into an empty chunk or an empty array do not stall the upload", async () => {
    const body = new StreamedBody(source(["a", "drop", "none", "b", "drop"].map((s) => enc.encode(s))), (chunk) => {
      const s = dec.decode(chunk);
      if (s === "drop") return new Uint8Array(0);
      if (s === "none") return [];
      return chunk;
    });
    expect(await readAll(body.attempt())).toEqual(["a", "b"]);
    expect(body.bytes).toBe(1 + 4 + 4 + 1 + 4);
  });

  test("a body whose every read becomes nothing still ends, with the end hook's tail", async () => {
    const body = new StreamedBody(
      source(["x", "y"].map((s) => enc.encode(s))),
      () => [],
      () => [enc.encode("tail")],
    );
    expect(await readAll(body.attempt())).toEqual(["tail"]);
  });
});

describe("relayBody", () => {
  test("reads the observer turns into zero bytes are skipped until bytes come, and the stream ends complete", async () => {
    const ends: RelayEnd[] = [];
    let counted = 0;
    const relayed = relayBody({
      body: source(["data: 1\n\n", "held", "usage-only", "data: 2\n\n", "usage-only"].map((s) => enc.encode(s))),
      cancel: new Cancel(),
      readTimeoutMs: 5000,
      observer: {
        // Like the tap: a partial line held, a usage-only chunk removed, everything else passed on.
        push: (chunk) => (dec.decode(chunk).startsWith("data:") ? chunk : new Uint8Array(0)),
        end: () => enc.encode("data: [DONE]\n\n"),
      },
      onBytes: (n) => {
        counted += n;
      },
      onEnd: (how) => ends.push(how),
    });
    expect(await readAll(relayed)).toEqual(["data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"]);
    expect(ends).toEqual(["complete"]);
    expect(counted).toBe(9 + 9 + 14);
  });
});
