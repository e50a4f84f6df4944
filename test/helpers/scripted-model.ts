// Scripted model turns for the agent's end-to-end tests (reference §C.1.3): each builder returns the SSE events of
// one provider answer, in the provider's exact wire format, ready for the mock provider's queue:
//   mock.queue({ kind: "sse", events: openaiTools([{ id: "c1", name: "read", args: { path: "a.txt" } }]) })
// OpenAI: `chat.completion.chunk` events (role chunk, content deltas, `tool_calls` deltas keyed by index whose first
// fragment carries id and name with empty arguments, `finish_reason` on its own chunk, the `choices: []` usage chunk,
// `[DONE]`). Anthropic: `event:`/`data:` pairs (message_start with input usage, content_block_start/delta/stop, tool_use
// blocks with `input_json_delta` fragments, message_delta with stop_reason and output usage, message_stop).
// Arguments are cut into fragments at fixed character offsets, so a fragment may end inside a key, a string or a
// multi-byte character's JSON escape; `interleave` alternates the fragments of different calls (OpenAI only: an
// Anthropic stream never interleaves blocks).

export interface TurnUsage {
  input: number;
  output: number;
  /** Cached input tokens (OpenAI `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`). */
  cacheRead?: number;
}

export interface ScriptedCall {
  id: string;
  name: string;
  /** An object (serialised with JSON.stringify) or the raw argument text (for invalid JSON). */
  args: Record<string, unknown> | string;
  /** How many fragments the argument text is cut into (default 3). */
  fragments?: number;
}

export interface TurnOptions {
  /** Text before the tool calls. */
  text?: string;
  usage?: TurnUsage;
  /** OpenAI: alternate the calls' argument fragments by index. */
  interleave?: boolean;
  model?: string;
}

export const DEFAULT_TEXT_USAGE: TurnUsage = { input: 21, output: 4 };
export const DEFAULT_TOOL_USAGE: TurnUsage = { input: 33, output: 12 };
const OPENAI_MODEL = "gpt-4o-mini-2024-07-18";
const ANTHROPIC_MODEL = "claude-test-20250101";

/** `text` cut into `n` pieces of about equal length (by UTF-16 unit; JSON text here is ASCII-safe after escaping). */
export function fragmentsOf(text: string, n: number): string[] {
  const parts = Math.max(1, Math.min(n, text.length));
  const size = Math.ceil(text.length / parts);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [""];
}

function argText(args: ScriptedCall["args"]): string {
  return typeof args === "string" ? args : JSON.stringify(args);
}

// ---- OpenAI chat completions ------------------------------------------------------------------------------------

function openaiChunker(model: string): (delta: Record<string, unknown>, finish: string | null) => string {
  const base = { id: "chatcmpl-scripted", object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model, system_fingerprint: "fp_scripted" };
  return (delta, finish) => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null })}\n\n`;
}

function openaiUsageChunk(model: string, u: TurnUsage): string {
  const cached = u.cacheRead ?? 0;
  const usage = {
    prompt_tokens: u.input + cached,
    completion_tokens: u.output,
    total_tokens: u.input + cached + u.output,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  return `data: ${JSON.stringify({ id: "chatcmpl-scripted", object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model, choices: [], usage })}\n\n`;
}

/** A text answer: role chunk, `text` in a few deltas, finish_reason stop, the usage chunk, [DONE]. */
export function openaiText(text: string, usage: TurnUsage = DEFAULT_TEXT_USAGE, model = OPENAI_MODEL): string[] {
  const chunk = openaiChunker(model);
  const events = [chunk({ role: "assistant", content: "", refusal: null }, null)];
  for (const piece of fragmentsOf(text, 3)) events.push(chunk({ content: piece }, null));
  events.push(chunk({}, "stop"), openaiUsageChunk(model, usage), "data: [DONE]\n\n");
  return events;
}

/** Text deltas only (no finish, no usage, no [DONE]): the first part of a stream a test cuts or gates. */
export function openaiTextDeltas(pieces: readonly string[], model = OPENAI_MODEL): string[] {
  const chunk = openaiChunker(model);
  return [chunk({ role: "assistant", content: "", refusal: null }, null), ...pieces.map((p) => chunk({ content: p }, null))];
}

/** Tool calls: optional text, then each call's opening delta (index, id, type, name, empty arguments) and its argument
 * fragments (in call order, or alternating between calls with `interleave`), finish_reason tool_calls, usage, [DONE]. */
export function openaiTools(calls: readonly ScriptedCall[], opts: TurnOptions = {}): string[] {
  const model = opts.model ?? OPENAI_MODEL;
  const chunk = openaiChunker(model);
  // The role chunk carries the text before the calls (real OpenAI sends `content: null` when there is none).
  const events = [chunk({ role: "assistant", content: opts.text ?? null, refusal: null }, null)];
  const opening = (i: number): string => {
    const c = calls[i] as ScriptedCall;
    return chunk({ tool_calls: [{ index: i, id: c.id, type: "function", function: { name: c.name, arguments: "" } }] }, null);
  };
  const fragment = (i: number, f: string): string => chunk({ tool_calls: [{ index: i, function: { arguments: f } }] }, null);
  const frags = calls.map((c) => fragmentsOf(argText(c.args), c.fragments ?? 3));
  if (opts.interleave === true) {
    // Every call opens first, then round-robin fragments: index 0, 1, 2, 0, 1, 2, …
    calls.forEach((_, i) => events.push(opening(i)));
    const longest = Math.max(0, ...frags.map((f) => f.length));
    for (let k = 0; k < longest; k++) {
      frags.forEach((f, i) => {
        const piece = f[k];
        if (piece !== undefined) events.push(fragment(i, piece));
      });
    }
  } else {
    calls.forEach((_, i) => {
      events.push(opening(i));
      for (const piece of frags[i] ?? []) events.push(fragment(i, piece));
    });
  }
  events.push(chunk({}, "tool_calls"), openaiUsageChunk(model, opts.usage ?? DEFAULT_TOOL_USAGE), "data: [DONE]\n\n");
  return events;
}

/** OpenAI's in-band stream error (a `data:` chunk whose body is `{error:{…}}`). */
export function openaiError(type = "server_error", message = "The server had an error while processing your request."): string {
  return `data: ${JSON.stringify({ error: { message, type, param: null, code: null } })}\n\n`;
}

// ---- Anthropic Messages -------------------------------------------------------------------------------------------

function ev(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

function anthropicStart(model: string, u: TurnUsage): string {
  return ev("message_start", {
    type: "message_start",
    message: {
      id: "msg_scripted",
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: u.input, cache_creation_input_tokens: 0, cache_read_input_tokens: u.cacheRead ?? 0, output_tokens: 1 },
    },
  });
}

function anthropicEnd(stop: string, u: TurnUsage): string[] {
  return [
    ev("message_delta", { type: "message_delta", delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: u.output } }),
    ev("message_stop", { type: "message_stop" }),
  ];
}

function anthropicTextBlock(index: number, text: string): string[] {
  const events = [ev("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } })];
  for (const piece of fragmentsOf(text, 3)) {
    events.push(ev("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: piece } }));
  }
  events.push(ev("content_block_stop", { type: "content_block_stop", index }));
  return events;
}

/** A text answer: message_start, ping, one text block in a few deltas, message_delta end_turn, message_stop. */
export function anthropicText(text: string, usage: TurnUsage = DEFAULT_TEXT_USAGE, model = ANTHROPIC_MODEL, stop = "end_turn"): string[] {
  return [anthropicStart(model, usage), ev("ping", { type: "ping" }), ...anthropicTextBlock(0, text), ...anthropicEnd(stop, usage)];
}

/** The preamble and `pieces` as text deltas of block 0 (no stop): the first part of a stream a test cuts or gates. */
export function anthropicTextDeltas(pieces: readonly string[], usage: TurnUsage = DEFAULT_TEXT_USAGE, model = ANTHROPIC_MODEL): string[] {
  return [
    anthropicStart(model, usage),
    ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    ...pieces.map((p) => ev("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: p } })),
  ];
}

/** Tool calls: optional text block, then per call a tool_use block (input {}) with its `input_json_delta` fragments
 * (the first one empty, as the API sends it), message_delta tool_use, message_stop. */
export function anthropicTools(calls: readonly ScriptedCall[], opts: TurnOptions = {}): string[] {
  const model = opts.model ?? ANTHROPIC_MODEL;
  const usage = opts.usage ?? DEFAULT_TOOL_USAGE;
  const events = [anthropicStart(model, usage), ev("ping", { type: "ping" })];
  let index = 0;
  if (opts.text !== undefined && opts.text !== "") events.push(...anthropicTextBlock(index++, opts.text));
  for (const c of calls) {
    const i = index++;
    events.push(ev("content_block_start", { type: "content_block_start", index: i, content_block: { type: "tool_use", id: c.id, name: c.name, input: {} } }));
    for (const piece of ["", ...fragmentsOf(argText(c.args), c.fragments ?? 3)]) {
      events.push(ev("content_block_delta", { type: "content_block_delta", index: i, delta: { type: "input_json_delta", partial_json: piece } }));
    }
    events.push(ev("content_block_stop", { type: "content_block_stop", index: i }));
  }
  events.push(...anthropicEnd("tool_use", usage));
  return events;
}

/** Anthropic's in-band `event: error` (e.g. overloaded_error mid-stream). */
export function anthropicError(type = "overloaded_error", message = "Overloaded"): string {
  return ev("error", { type: "error", error: { type, message } });
}

// ---- both ---------------------------------------------------------------------------------------------------------

/** The stream without its terminal events: OpenAI loses finish_reason, usage and [DONE]; Anthropic loses
 * message_delta and message_stop. What a cut connection leaves a client with. */
export function truncated(events: readonly string[]): string[] {
  return events.filter((e) => !/"finish_reason":"[a-z_]+"/.test(e) && !e.startsWith("data: [DONE]") && !/"choices":\[\],"usage"/.test(e) && !e.startsWith("event: message_delta") && !e.startsWith("event: message_stop"));
}

export type ScriptDialect = "openai" | "anthropic";

/** The dialect-neutral builders, so one test body can run against both providers. */
export interface Script {
  dialect: ScriptDialect;
  model: string;
  text(text: string, usage?: TurnUsage): string[];
  tools(calls: readonly ScriptedCall[], opts?: TurnOptions): string[];
  textDeltas(pieces: readonly string[]): string[];
  inbandError(): string;
}

export function scriptFor(dialect: ScriptDialect): Script {
  return dialect === "openai"
    ? { dialect, model: "gpt-4o-mini", text: (t, u) => openaiText(t, u), tools: openaiTools, textDeltas: (p) => openaiTextDeltas(p), inbandError: () => openaiError() }
    : { dialect, model: "claude-test", text: (t, u) => anthropicText(t, u), tools: anthropicTools, textDeltas: (p) => anthropicTextDeltas(p), inbandError: () => anthropicError() };
}
