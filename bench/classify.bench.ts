/**
 * What the `auto` classifier costs per request (its budget: ≤ 20 µs for a 4 KiB body).
 * Run: ./node_modules/.bin/bun bench/classify.bench.ts
 *
 * Bodies: a 4 KiB OpenAI chat body (system prompt, two earlier turns, a last user turn of prose with code), the same
 * size as an Anthropic body of text blocks with a tool_result turn, a 4 KiB body that is almost all one user turn of
 * dense code (the automaton's worst case: a keyword every few bytes), a small 300-byte body, and a 64 KiB body (the
 * whole lookahead).
 */
import { bench, do_not_optimize, run, summary } from "mitata";
import { classify, type ClassifyOptions } from "../src/routing/classify.ts";

const enc = new TextEncoder();
const opts: ClassifyOptions = {
  boundaries: [1500, 3500, 7500],
  margin: 300,
  tiers: [
    { vision: true, contextWindow: 1047576 },
    { vision: true, contextWindow: 1047576 },
    { vision: true, contextWindow: 1000000 },
    { vision: true, contextWindow: 200000 },
  ],
};

const prose =
  "We run a multi-tenant booking service; at peak the replica lag reaches 20 s and reminders go out late. First, explain what is going on. Then propose a design with partitioning, a queue for reminders and a migration plan. ";
const code = "```ts\nexport async function fetchAll(urls: string[]) {\n  const out = [];\n  for (const u of urls) out.push(await (await fetch(u)).json());\n  return out;\n}\n```\n";

function pad(text: string, size: number, build: (t: string) => string): Uint8Array {
  let t = text;
  while (enc.encode(build(t + text)).length <= size) t += text;
  return enc.encode(build(t));
}

const openai4k = pad(prose + code, 4096, (t) =>
  JSON.stringify({
    model: "auto",
    messages: [
      { role: "system", content: "You are a careful senior engineer. Answer precisely." },
      { role: "user", content: "Hi! Quick question about our database." },
      { role: "assistant", content: "Sure, what would you like to know?" },
      { role: "user", content: t },
    ],
    stream: true,
    max_tokens: 2048,
  }),
);
const anthropic4k = pad(prose, 4096, (t) =>
  JSON.stringify({
    model: "auto",
    max_tokens: 1024,
    system: "You are a coding agent.",
    messages: [
      { role: "user", content: [{ type: "text", text: t }] },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "run", input: { cmd: "ls" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "src\ntest\npackage.json" }] },
    ],
    tools: [{ name: "run", description: "Run a command", input_schema: { type: "object", properties: { cmd: { type: "string" } } } }],
  }),
);
const dense4k = pad(code, 4096, (t) => JSON.stringify({ model: "auto", messages: [{ role: "user", content: t }] }));
const small = enc.encode(JSON.stringify({ model: "auto", messages: [{ role: "user", content: "What is the capital of Australia? Thanks!" }], max_tokens: 256 }));
const big64k = pad(prose + code, 65536, (t) => JSON.stringify({ model: "auto", messages: [{ role: "user", content: t }] }));

const bodies = [
  { name: "4 KiB OpenAI chat (prose + code, 4 messages)", bytes: openai4k, dialect: "openai" as const },
  { name: "4 KiB Anthropic (text block, tool_result turn, tools)", bytes: anthropic4k, dialect: "anthropic" as const },
  { name: "4 KiB one turn of dense code", bytes: dense4k, dialect: "openai" as const },
  { name: "300 B chat", bytes: small, dialect: "openai" as const },
  { name: "64 KiB chat (the whole lookahead)", bytes: big64k, dialect: "openai" as const },
];

// Sanity: the bench measures real work (the last turn is found and scored), not an early exit.
for (const b of bodies) {
  const c = classify(b.bytes, true, b.dialect, opts);
  if (c.features.turnBytes === 0 || c.signals.includes("no_turn")) throw new Error(`bench body (${b.name}) not classified: ${JSON.stringify(c.signals)}`);
  console.log(`${b.name}: ${b.bytes.length} B → ${c.tier} (score ${c.score}; ${c.signals.join(",")})`);
}

const sizeOf = new Map<string, number>();
summary(() => {
  for (const b of bodies) {
    sizeOf.set(b.name, b.bytes.length);
    bench(b.name, () => do_not_optimize(classify(b.bytes, true, b.dialect, opts)));
  }
});

const result = await run();
for (const trial of result.benchmarks) {
  const stats = trial.runs[0]?.stats;
  if (stats === undefined) continue;
  const bytes = sizeOf.get(trial.alias) ?? 0;
  console.log(`${trial.alias}: avg ${(stats.avg / 1000).toFixed(2)} µs, p50 ${(stats.p50 / 1000).toFixed(2)} µs, p99 ${(stats.p99 / 1000).toFixed(2)} µs (${(bytes / stats.avg).toFixed(2)} GB/s)`);
}
