/**
 * The model rewriter (a virtual model's target model written over the root "model" value) in bytes/s, beside the
 * request-side passes it builds on, on the same bodies: a 4 KiB and a 1 MiB chat body, whole (one buffer) and streamed in 16 KiB chunks, with and without the
 * include_usage injection. Bodies put `model` first (the JS SDKs' order) and `stream` last; the 1 MiB body is also
 * run with `model` last (the Python SDKs' order), where every pass has to read the whole body.
 * Run: node_modules/.bin/bun bench/rewrite-model.bench.ts
 */
import { bench, run, summary, do_not_optimize } from "mitata";
import { ModelRewriter, rewriteModelWhole } from "../src/metering/rewrite-model.ts";
import { ModelScanner } from "../src/metering/scan-model.ts";
import { UsageInjector, injectWhole } from "../src/metering/inject-usage.ts";

const enc = new TextEncoder();
const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 16 * KiB;
const TARGET = "llama-3.3-70b-versatile";

const LINE = 'It was the best of times, it was the worst of times; \\"quoted\\" words and a newline\\n';

/** A chat body of about `size` bytes (messages of up to ~16 KB each), model first or last, `"stream":true` last. */
function chatBody(size: number, modelFirst: boolean): Uint8Array {
  const messages: string[] = [];
  let total = 0;
  while (total < size - 200) {
    const content = LINE.repeat(Math.max(1, Math.min(200, Math.floor((size - total - 120) / LINE.length))));
    messages.push(`{"role":"user","content":"${content}"}`);
    total += content.length + 32;
  }
  const m = '"model":"smart"';
  const inner = `"messages":[${messages.join(",")}],"temperature":0.7,"stream":true`;
  return enc.encode(modelFirst ? `{${m},${inner}}` : `{${inner},${m}}`);
}

function chunksOf(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < body.length; i += CHUNK) out.push(body.subarray(i, i + CHUNK));
  return out;
}

const bodies = [
  { name: "4 KiB, model first", bytes: chatBody(4 * KiB, true) },
  { name: "1 MiB, model first", bytes: chatBody(MiB, true) },
  { name: "1 MiB, model last", bytes: chatBody(MiB, false) },
].map((b) => ({ ...b, chunks: chunksOf(b.bytes) }));

function streamRewrite(chunks: Uint8Array[], injectUsage: boolean): number {
  const rw = new ModelRewriter(TARGET, { injectUsage });
  let n = 0;
  for (const c of chunks) for (const p of rw.push(c)) n += p.length;
  for (const p of rw.end()) n += p.length;
  return n;
}

function streamInject(chunks: Uint8Array[]): number {
  const inj = new UsageInjector();
  let n = 0;
  for (const c of chunks) for (const p of inj.push(c)) n += p.length;
  return n;
}

function streamScan(chunks: Uint8Array[]): ModelScanner {
  const s = new ModelScanner();
  for (const c of chunks) s.feed(c);
  return s;
}

// Sanity: every pass does the real work on these bodies (replaced, injected, model found), not an early exit.
for (const b of bodies) {
  const want = b.bytes.length + TARGET.length - "smart".length;
  const inj = '"stream_options":{"include_usage":true}'.length + 1;
  if (streamRewrite(b.chunks, false) !== want || streamRewrite(b.chunks, true) !== want + inj) throw new Error(`bench body (${b.name}) not rewritten`);
  const w = rewriteModelWhole(b.bytes, TARGET, { injectUsage: true });
  if (!w.replaced || !w.injected || w.model !== "smart") throw new Error(`bench body (${b.name}) not rewritten whole`);
  if (!injectWhole(b.bytes).injected || streamScan(b.chunks).model() !== "smart") throw new Error(`bench body (${b.name}) not scanned`);
}

const sizeOf = new Map<string, number>();
for (const b of bodies) {
  summary(() => {
    const add = (what: string, fn: () => unknown) => {
      const alias = `${b.name} (${b.bytes.length} B): ${what}`;
      sizeOf.set(alias, b.bytes.length);
      bench(alias, () => do_not_optimize(fn()));
    };
    add("rewriteModelWhole", () => rewriteModelWhole(b.bytes, TARGET, { injectUsage: false }));
    add("rewriteModelWhole + include_usage", () => rewriteModelWhole(b.bytes, TARGET, { injectUsage: true }));
    add("ModelRewriter, 16 KiB chunks", () => streamRewrite(b.chunks, false));
    add("ModelRewriter + include_usage, 16 KiB chunks", () => streamRewrite(b.chunks, true));
    add("injectWhole (contrast)", () => injectWhole(b.bytes));
    add("UsageInjector, 16 KiB chunks (contrast)", () => streamInject(b.chunks));
    add("ModelScanner, 16 KiB chunks (contrast)", () => streamScan(b.chunks));
  });
}

const result = await run();

for (const trial of result.benchmarks) {
  const stats = trial.runs[0]?.stats;
  if (stats === undefined) continue;
  const bytes = sizeOf.get(trial.alias) ?? 0;
  // stats are in nanoseconds: bytes per ns is GB/s.
  console.log(`${trial.alias}: avg ${stats.avg.toFixed(0)} ns, p50 ${stats.p50.toFixed(0)} ns → ${(bytes / stats.avg).toFixed(2)} GB/s (avg), ${(bytes / stats.p50).toFixed(2)} GB/s (p50)`);
}
