/**
 * Dialect translation's own cost, per request and per stream: a typical request (system prompt, a few turns, a tool,
 * a tool call and its result) parsed, translated and serialised each way; and a 200-event provider stream (text
 * deltas and a tool call's argument fragments) translated each way, whole and in 64-byte chunks.
 * Run: node_modules/.bin/bun bench/translate.bench.ts
 */
import { bench, do_not_optimize, run, summary } from "mitata";
import { prepareTranslation, targetBody } from "../src/translate/exchange.ts";
import { streamTranslator } from "../src/translate/stream.ts";

const enc = new TextEncoder();
const tools = [{ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const openaiRequest = enc.encode(
  JSON.stringify({
    model: "smart",
    messages: [
      { role: "system", content: "You are a helpful assistant. Answer briefly." },
      { role: "user", content: "What is the weather in Paris and in Rome today? Compare them." },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: '{"temp_c":14,"sky":"cloudy"}' },
      { role: "user", content: "And what should I wear?" },
    ],
    tools,
    tool_choice: "auto",
    temperature: 0.3,
    max_tokens: 512,
    stream: true,
    stream_options: { include_usage: true },
  }),
);
const anthropicRequest = enc.encode(
  JSON.stringify({
    model: "smart",
    system: "You are a helpful assistant. Answer briefly.",
    max_tokens: 512,
    messages: [
      { role: "user", content: "What is the weather in Paris and in Rome today? Compare them." },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: '{"temp_c":14,"sky":"cloudy"}' }, { type: "text", text: "And what should I wear?" }] },
    ],
    tools: [{ name: "get_weather", description: "Weather for a city", input_schema: tools[0]!.function.parameters }],
    stream: true,
  }),
);

/** A 200-event Anthropic stream: message_start, a text block of 150 deltas, a tool_use block of 40 argument fragments. */
function anthropicStream(): Uint8Array {
  const ev = (t: string, d: unknown) => `event: ${t}\ndata: ${JSON.stringify(d)}\n\n`;
  let s = ev("message_start", { type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", model: "claude-x", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 100, output_tokens: 1 } } });
  s += ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
  for (let i = 0; i < 150; i++) s += ev("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: ` word${i}` } });
  s += ev("content_block_stop", { type: "content_block_stop", index: 0 });
  s += ev("content_block_start", { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_1", name: "get_weather", input: {} } });
  s += ev("content_block_delta", { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"city":"' } });
  for (let i = 0; i < 38; i++) s += ev("content_block_delta", { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "x" } });
  s += ev("content_block_delta", { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '"}' } });
  s += ev("content_block_stop", { type: "content_block_stop", index: 1 });
  s += ev("message_delta", { type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 190 } });
  s += ev("message_stop", { type: "message_stop" });
  return enc.encode(s);
}

/** A 200-event OpenAI stream: the role chunk, 150 content deltas, a tool call in 45 fragments, finish, usage, [DONE]. */
function openaiStream(): Uint8Array {
  const c = (delta: unknown, finish: string | null = null) => `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-x", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  let s = c({ role: "assistant", content: "" });
  for (let i = 0; i < 150; i++) s += c({ content: ` word${i}` });
  s += c({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }] });
  s += c({ tool_calls: [{ index: 0, function: { arguments: '{"city":"' } }] });
  for (let i = 0; i < 42; i++) s += c({ tool_calls: [{ index: 0, function: { arguments: "x" } }] });
  s += c({ tool_calls: [{ index: 0, function: { arguments: '"}' } }] });
  s += c({}, "tool_calls");
  s += `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-x", choices: [], usage: { prompt_tokens: 100, completion_tokens: 190, total_tokens: 290 } })}\n\n`;
  s += "data: [DONE]\n\n";
  return enc.encode(s);
}

function chunks(b: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

const aStream = anthropicStream();
const oStream = openaiStream();
const aChunks = chunks(aStream, 64);
const oChunks = chunks(oStream, 64);
console.log(`request bodies: openai ${openaiRequest.length} B, anthropic ${anthropicRequest.length} B; streams: anthropic ${aStream.length} B, openai ${oStream.length} B (200 events each)`);

summary(() => {
  bench("request openai → anthropic (parse, translate, serialise)", () => {
    const p = prepareTranslation("openai", openaiRequest, 4096);
    if (p.ok) do_not_optimize(targetBody(p.request, "claude-x"));
  });
  bench("request anthropic → openai (parse, translate, serialise)", () => {
    const p = prepareTranslation("anthropic", anthropicRequest, 4096);
    if (p.ok) do_not_optimize(targetBody(p.request, "gpt-x"));
  });
});

summary(() => {
  bench("stream anthropic → openai, 200 events, whole", () => {
    const t = streamTranslator("openai", { includeUsage: true, model: "smart" });
    do_not_optimize(t.push(aStream));
    do_not_optimize(t.end());
  });
  bench("stream anthropic → openai, 200 events, 64 B chunks", () => {
    const t = streamTranslator("openai", { includeUsage: true, model: "smart" });
    for (const c of aChunks) do_not_optimize(t.push(c));
    do_not_optimize(t.end());
  });
  bench("stream openai → anthropic, 200 events, whole", () => {
    const t = streamTranslator("anthropic", { includeUsage: false, model: "smart" });
    do_not_optimize(t.push(oStream));
    do_not_optimize(t.end());
  });
  bench("stream openai → anthropic, 200 events, 64 B chunks", () => {
    const t = streamTranslator("anthropic", { includeUsage: false, model: "smart" });
    for (const c of oChunks) do_not_optimize(t.push(c));
    do_not_optimize(t.end());
  });
});

await run();
