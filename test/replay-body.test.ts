// The replay copy of a streamed request body (SPEC §10): the first attempt streams at once while the chunks are kept,
// a later attempt gets every byte again (also one that starts while the client is still uploading), and the copy is
// bounded per request (max_replay_bytes) and per process (the pool): past either it is dropped, reported once, and the
// body cannot be replayed any more. release() (the commit point) gives the pool its bytes back.
import { describe, expect, test } from "bun:test";
import { type ReplayAbandon, type ReplayReserve, StreamedBody } from "../src/pipeline/forward.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A source that yields `parts` one per pull, each after `delayMs` (like separate socket reads). */
function source(parts: readonly string[], delayMs = 1): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        await Bun.sleep(delayMs);
        if (i >= parts.length) c.close();
        else c.enqueue(enc.encode(parts[i++] as string));
      },
    },
    { highWaterMark: 0 },
  );
}

class Pool implements ReplayReserve {
  used = 0;
  constructor(readonly limit: number) {}
  reserve(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  release(n: number): void {
    this.used -= n;
  }
}

async function readAll(s: ReadableStream<Uint8Array>, max = Infinity): Promise<string> {
  const reader = s.getReader();
  let out = "";
  let n = 0;
  for (;;) {
    if (n++ >= max) {
      await reader.cancel();
      return out;
    }
    const r = await reader.read();
    if (r.done) return out;
    out += dec.decode(r.value);
  }
}

function body(parts: readonly string[], maxBytes: number, pool: Pool, abandoned: ReplayAbandon[]): StreamedBody {
  return new StreamedBody(source(parts), undefined, undefined, undefined, undefined, { maxBytes, pool, onAbandon: (r) => abandoned.push(r) });
}

describe("replay copy", () => {
  test("a second attempt after a complete first one gets every byte again", async () => {
    const pool = new Pool(1 << 20);
    const abandoned: ReplayAbandon[] = [];
    const b = body(["ab", "cd", "ef"], 1024, pool, abandoned);
    expect(await readAll(b.attempt())).toBe("abcdef");
    expect(b.replayable).toBe(true);
    expect(pool.used).toBe(6);
    expect(await readAll(b.attempt())).toBe("abcdef");
    b.release();
    expect(pool.used).toBe(0);
    expect(abandoned).toEqual([]);
  });

  test("a second attempt that starts while the client is still uploading replays the start and reads on", async () => {
    const pool = new Pool(1 << 20);
    const b = body(["1", "2", "3", "4", "5"], 1024, pool, []);
    // The first attempt takes two chunks and is abandoned (the provider answered early).
    expect(await readAll(b.attempt(), 2)).toBe("12");
    expect(b.replayable).toBe(true);
    expect(await readAll(b.attempt())).toBe("12345");
  });

  test("past max_replay_bytes the copy is dropped once, the first attempt still gets everything, and no replay is possible", async () => {
    const pool = new Pool(1 << 20);
    const abandoned: ReplayAbandon[] = [];
    const b = body(["aaaa", "bbbb", "cccc"], 6, pool, abandoned);
    expect(await readAll(b.attempt())).toBe("aaaabbbbcccc");
    expect(abandoned).toEqual(["request_limit"]);
    expect(b.replayable).toBe(false);
    expect(pool.used).toBe(0);
  });

  test("a full process pool drops the copy with reason pool_limit", async () => {
    const pool = new Pool(5);
    const abandoned: ReplayAbandon[] = [];
    const b = body(["aaaa", "bbbb"], 1024, pool, abandoned);
    expect(await readAll(b.attempt())).toBe("aaaabbbb");
    expect(abandoned).toEqual(["pool_limit"]);
    expect(pool.used).toBe(0);
  });

  test("release at the commit point frees the pool while the upload goes on to the end", async () => {
    const pool = new Pool(1 << 20);
    const b = body(["x", "y", "z"], 1024, pool, []);
    const s = b.attempt().getReader();
    expect(dec.decode((await s.read()).value)).toBe("x");
    expect(pool.used).toBe(1);
    b.release();
    expect(pool.used).toBe(0);
    let rest = "";
    for (;;) {
      const r = await s.read();
      if (r.done) break;
      rest += dec.decode(r.value);
    }
    expect(rest).toBe("yz");
    expect(b.replayable).toBe(false);
    expect(pool.used).toBe(0);
  });

  test("without replay options nothing is kept and a started body is not replayable", async () => {
    const b = new StreamedBody(source(["a", "b"]));
    expect(b.replayable).toBe(true);
    expect(await readAll(b.attempt())).toBe("ab");
    expect(b.replayable).toBe(false);
  });
});
