/**
 * Request-side metering costs: the incremental model scanner on a large chat body, and the
 * one-pass injectWhole on typical small bodies.
 * Run: node_modules/.bin/bun bench/scan-model.bench.ts
 */
import { bench, run, summary, do_not_optimize } from "mitata";
import { ModelScanner } from "../src/metering/scan-model.ts";
import { injectWhole } from "../src/metering/inject-usage.ts";

const enc = new TextEncoder();
const MiB = 1024 * 1024;
const CHUNK = 16 * 1024;

/** A chat body of about `size` bytes: long message contents (~16 KB each) repeating `line`, model key last. */
function chatBody(size: number, line: string): Uint8Array {
  const messages: string[] = [];
  let total = 0;
  while (total < size - 200) {
    const content = line.repeat(Math.min(200, Math.ceil((size - total) / line.length)));
    messages.push(`{"role":"user","content":"${content}"}`);
    total += content.length + 32;
  }
  return enc.encode(`{"messages":[${messages.join(",")}],"stream":true,"temperature":0.7,"model":"gpt-4o-mini"}`);
}

function chunksOf(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < body.length; i += CHUNK) out.push(body.subarray(i, i + CHUNK));
  return out;
}

// Escape-dense (code / quoted text: an escaped quote every ~38 bytes), plain prose (a `\n`
// now and then), and a base64 image (no escapes at all).
const bodies = [
  { name: "code-like content", bytes: chatBody(MiB, 'The quick brown fox jumps over the lazy dog; \\"quoted\\" text and a newline\\n') },
  { name: "prose content", bytes: chatBody(MiB, "It was the best of times, it was the worst of times, it was the age of wisdom.\\n") },
  { name: "base64 image", bytes: chatBody(MiB, "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg") },
].map((b) => ({ ...b, chunks: chunksOf(b.bytes) }));

const small = enc.encode(
  JSON.stringify({
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "Write a haiku about rate limits and streaming tokens please." },
    ],
    stream: true,
    temperature: 0.7,
    max_tokens: 256,
    user: "tenant-42/user-7",
    presence_penalty: 0.1,
    n: 1,
  }),
);
const medium = enc.encode(
  JSON.stringify({
    model: "gpt-4o",
    messages: [
      { role: "system", content: "You are a careful code reviewer. ".repeat(20) },
      { role: "user", content: "Review this diff:\n" + "- old line\n+ new line with \"quotes\" and \\ slashes\n".repeat(60) },
    ],
    tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } } }],
    stream: true,
  }),
);

function scanAll(chunks: Uint8Array[]): ModelScanner {
  const s = new ModelScanner();
  for (const c of chunks) s.feed(c);
  return s;
}

// Sanity: the bench measures real work, not an early exit.
for (const b of bodies) {
  const s = scanAll(b.chunks);
  if (s.model() !== "gpt-4o-mini" || s.stream !== true) throw new Error(`bench body (${b.name}) not scanned as expected`);
}
if (!injectWhole(small).injected || !injectWhole(medium).injected) throw new Error("bench bodies should inject");

const sizeOf = new Map<string, number>();
summary(() => {
  for (const b of bodies) {
    const alias = `ModelScanner: ${(b.bytes.length / MiB).toFixed(2)} MiB chat body (${b.name}), 16 KiB chunks, model last`;
    sizeOf.set(alias, b.bytes.length);
    bench(alias, () => do_not_optimize(scanAll(b.chunks)));
  }
});
summary(() => {
  for (const body of [small, medium]) {
    const alias = `injectWhole: ${body.length} B body`;
    sizeOf.set(alias, body.length);
    bench(alias, () => do_not_optimize(injectWhole(body)));
  }
});

const result = await run();

for (const trial of result.benchmarks) {
  const stats = trial.runs[0]?.stats;
  if (stats === undefined) continue;
  const bytes = sizeOf.get(trial.alias) ?? 0;
  // stats are in nanoseconds: bytes per ns is GB/s.
  console.log(`${trial.alias}: avg ${stats.avg.toFixed(0)} ns, p50 ${stats.p50.toFixed(0)} ns → ${(bytes / stats.avg).toFixed(2)} GB/s (avg), ${(bytes / stats.p50).toFixed(2)} GB/s (p50)`);
}
