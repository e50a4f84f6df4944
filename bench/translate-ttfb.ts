// Time to first content through dialect translation, against the same stream untranslated: one gateway, one
// Anthropic-dialect SSE mock that paces its events like a provider (message_start at once, then a text delta every
// DELAY ms), one virtual model "c" whose only target is that mock. The same request goes
//   direct:     the Anthropic wire, POST /c/v1/messages (no translation; the provider's bytes)
//   translated: the OpenAI wire,    POST /c/v1/chat/completions (Anthropic events → OpenAI chunks)
// alternating, one at a time. Measured from sending the request to the first bytes that carry text (a text_delta /
// a chunk whose delta has content), and to the stream's end. Prints medians and p90s and the translated/direct ratios.
//
// Run: node_modules/.bin/bun bench/translate-ttfb.ts [--n 200] [--delay 5] [--deltas 20]
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, startGateway } from "../test/helpers/gateway.ts";

const args = process.argv.slice(2);
function opt(name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v)) throw new Error(`${name} wants a number`);
  return v;
}
const N = opt("--n", 200);
const DELAY = opt("--delay", 5);
const DELTAS = opt("--deltas", 20);

const enc = new TextEncoder();
const ev = (type: string, data: unknown): Uint8Array => enc.encode(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The Anthropic Messages stream, event shapes as documented (message_start … message_stop).
const mock = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    await req.arrayBuffer();
    const stream = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(ev("message_start", { type: "message_start", message: { id: "msg_bench", type: "message", role: "assistant", model: "claude-bench", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } }));
        c.enqueue(ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }));
        for (let i = 0; i < DELTAS; i++) {
          await sleep(DELAY);
          c.enqueue(ev("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: `word${i} ` } }));
        }
        c.enqueue(ev("content_block_stop", { type: "content_block_stop", index: 0 }));
        c.enqueue(ev("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: DELTAS } }));
        c.enqueue(ev("message_stop", { type: "message_stop" }));
        c.close();
      },
    });
    return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8" } });
  },
});

const signing = keygen();
const KEY = mint(1, signing.seed, 42n, 7n);
const gw = await startGateway({
  config: baseConfig({
    authorities: { anthropic: `127.0.0.1:${mock.port}` },
    extra: "workers = 1",
    tables: ['[pool_keys]', 'anthropic = "sk-ant-bench"', "", "[signing_keys]", `1 = "${Buffer.from(signing.publicKey).toString("base64")}"`, "", "[models.c]", 'targets = ["anthropic/claude-bench"]'].join("\n"),
  }),
});

const messages = [{ role: "user", content: "hi" }];
const variants = {
  direct: { path: "/c/v1/messages", body: JSON.stringify({ model: "c", max_tokens: 256, stream: true, messages }), headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01" }, content: "text_delta" },
  translated: { path: "/c/v1/chat/completions", body: JSON.stringify({ model: "c", stream: true, messages }), headers: { authorization: `Bearer ${KEY}` }, content: '"content":"word' },
} as const;

async function once(v: (typeof variants)[keyof typeof variants]): Promise<{ first: number; end: number }> {
  const t0 = performance.now();
  const res = await fetch(gw.url + v.path, { method: "POST", headers: { "content-type": "application/json", ...v.headers }, body: v.body });
  if (res.status !== 200 || res.body === null) throw new Error(`${v.path}: status ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let seen = "";
  let first = -1;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    if (first < 0) {
      seen += dec.decode(r.value, { stream: true });
      if (seen.includes(v.content)) first = performance.now() - t0;
    }
  }
  if (first < 0) throw new Error(`${v.path}: no content in the stream`);
  return { first, end: performance.now() - t0 };
}

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
};

try {
  for (let i = 0; i < 20; i++) {
    await once(variants.direct);
    await once(variants.translated);
  }
  const out = { direct: { first: [] as number[], end: [] as number[] }, translated: { first: [] as number[], end: [] as number[] } };
  for (let i = 0; i < N; i++) {
    for (const name of i % 2 === 0 ? (["direct", "translated"] as const) : (["translated", "direct"] as const)) {
      const r = await once(variants[name]);
      out[name].first.push(r.first);
      out[name].end.push(r.end);
    }
  }
  console.log(`${N} streams each, one at a time, alternating; the mock sends a text delta every ${DELAY} ms (${DELTAS} deltas)`);
  for (const name of ["direct", "translated"] as const) {
    const o = out[name];
    console.log(`${name.padEnd(10)} first content p50 ${q(o.first, 0.5).toFixed(2)} ms  p90 ${q(o.first, 0.9).toFixed(2)} ms   whole stream p50 ${q(o.end, 0.5).toFixed(2)} ms`);
  }
  console.log(`translated/direct time to first content (p50): ${(q(out.translated.first, 0.5) / q(out.direct.first, 0.5)).toFixed(3)}`);
  console.log(`translated/direct whole stream (p50): ${(q(out.translated.end, 0.5) / q(out.direct.end, 0.5)).toFixed(3)}`);
} finally {
  await gw.stop();
  mock.stop(true);
}
