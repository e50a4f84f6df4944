// SSE framing and both dialects' decoders (split at every byte offset) and request bodies (reference §B.5, §C.1.2).
import { describe, expect, test } from "bun:test";
import { Accumulator } from "../../src/agent/core/accumulator.ts";
import { AnthropicDecoder, buildAnthropicBody } from "../../src/agent/core/dialects/anthropic.ts";
import { dialectFor } from "../../src/agent/core/dialects/index.ts";
import { NO_RESULT_TEXT } from "../../src/agent/core/dialects/hygiene.ts";
import { OpenAIChatDecoder, buildOpenAIChatBody } from "../../src/agent/core/dialects/openai-chat.ts";
import type { StreamEvent } from "../../src/agent/core/events.ts";
import { SseFramer } from "../../src/agent/core/sse.ts";
import { type ModelRequest, TransportError } from "../../src/agent/core/transport.ts";
import type { Message } from "../../src/agent/core/types.ts";

const enc = new TextEncoder();

type Decoder = AnthropicDecoder | OpenAIChatDecoder;

function decode(make: () => Decoder, chunks: readonly Uint8Array[]): StreamEvent[] {
  const framer = new SseFramer();
  const dec = make();
  const out: StreamEvent[] = [];
  for (const c of chunks) for (const rec of framer.push(c)) dec.push(rec, out);
  framer.end();
  dec.end(out);
  return out;
}

/** Every split of `bytes` into two chunks, plus one byte at a time, decodes to the same events as the whole. */
function expectSplitInvariant(make: () => Decoder, bytes: Uint8Array): StreamEvent[] {
  const whole = decode(make, [bytes]);
  for (let i = 0; i <= bytes.length; i++) {
    expect(decode(make, [bytes.slice(0, i), bytes.slice(i)])).toEqual(whole);
  }
  const singles: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i++) singles.push(bytes.slice(i, i + 1));
  expect(decode(make, singles)).toEqual(whole);
  return whole;
}

function anthropicSse(events: [string, unknown][], crlf = false): Uint8Array {
  const nl = crlf ? "\r\n" : "\n";
  return enc.encode(events.map(([name, data]) => `event: ${name}${nl}data: ${JSON.stringify(data)}${nl}${nl}`).join(""));
}

function openaiSse(chunks: unknown[], done = true): Uint8Array {
  return enc.encode(chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + (done ? "data: [DONE]\n\n" : ""));
}

const anthropicFixture: [string, unknown][] = [
  ["message_start", { type: "message_start", message: { id: "msg_1", usage: { input_tokens: 12, cache_read_input_tokens: 3, cache_creation_input_tokens: 2, output_tokens: 1 } } }],
  ["ping", { type: "ping" }],
  ["content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }],
  ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Héllo 😀" } }],
  ["content_block_stop", { type: "content_block_stop", index: 0 }],
  ["content_block_start", { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_1", name: "write", input: {} } }],
  ["content_block_delta", { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"path":"a.txt","con' } }],
  ["content_block_delta", { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: 'tent":"naïve €"}' } }],
  ["content_block_stop", { type: "content_block_stop", index: 1 }],
  ["message_delta", { type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 40 } }],
  ["message_stop", { type: "message_stop" }],
];

describe("SseFramer", () => {
  test("comments, event names, multi-line data, CRLF and a final unterminated record", () => {
    const f = new SseFramer();
    const recs = f.push(enc.encode(": keep-alive\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\ndata:x\n\n\ndata: cut"));
    expect(recs).toEqual([{ event: "a", data: "one\ntwo" }, { data: "x" }]);
    expect(f.end()).toEqual([]);
  });

  test("a multi-byte character split across chunks is decoded whole", () => {
    const bytes = enc.encode("data: é😀\n\n");
    const f = new SseFramer();
    const out = [...f.push(bytes.slice(0, 8)), ...f.push(bytes.slice(8, 10)), ...f.push(bytes.slice(10))];
    expect(out).toEqual([{ data: "é😀" }]);
  });
});

describe("Anthropic decoder", () => {
  test("the fixture gives the same events at every split point, including inside multi-byte tool JSON", () => {
    const events = expectSplitInvariant(() => new AnthropicDecoder("rid-7"), anthropicSse(anthropicFixture));
    expect(events).toEqual([
      { type: "message_start", request_id: "rid-7" },
      { type: "usage", input_tokens: 12, output_tokens: 1, cache_read_tokens: 3, cache_write_tokens: 2 },
      { type: "text_delta", index: 0, text: "Héllo 😀" },
      { type: "content_block_stop", index: 0 },
      { type: "tool_use_start", index: 1, id: "toolu_1", name: "write" },
      { type: "input_json_delta", index: 1, partial_json: '{"path":"a.txt","con' },
      { type: "input_json_delta", index: 1, partial_json: 'tent":"naïve €"}' },
      { type: "content_block_stop", index: 1 },
      { type: "usage", output_tokens: 40 },
      { type: "message_stop", stop_reason: "tool_use" },
    ]);
    const acc = new Accumulator();
    for (const e of events) acc.push(e);
    const { message } = acc.finish("claude-test", 1);
    expect(message.content).toEqual([
      { type: "text", text: "Héllo 😀" },
      { type: "tool_use", id: "toolu_1", name: "write", input: { path: "a.txt", content: "naïve €" } },
    ]);
    expect(message.usage).toEqual({ input_tokens: 12, output_tokens: 40, cache_read_tokens: 3, cache_write_tokens: 2 });
    expect(message.request_id).toBe("rid-7");
  });

  test("CRLF line ends decode the same as LF", () => {
    expect(decode(() => new AnthropicDecoder(), [anthropicSse(anthropicFixture, true)])).toEqual(decode(() => new AnthropicDecoder(), [anthropicSse(anthropicFixture)]));
  });

  test("thinking, signature and redacted thinking blocks", () => {
    const ev = decode(() => new AnthropicDecoder(), [
      anthropicSse([
        ["message_start", { type: "message_start", message: { usage: { input_tokens: 1, output_tokens: 0 } } }],
        ["content_block_start", { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } }],
        ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "hmm" } }],
        ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: "sig" } }],
        ["content_block_stop", { type: "content_block_stop", index: 0 }],
        ["content_block_start", { type: "content_block_start", index: 1, content_block: { type: "redacted_thinking", data: "xyz" } }],
        ["content_block_stop", { type: "content_block_stop", index: 1 }],
        ["message_delta", { type: "message_delta", delta: { stop_reason: "pause_turn" }, usage: { output_tokens: 5 } }],
        ["message_stop", { type: "message_stop" }],
      ]),
    ]);
    expect(ev.filter((e) => e.type !== "usage" && e.type !== "content_block_stop")).toEqual([
      { type: "message_start" },
      { type: "thinking_delta", index: 0, text: "hmm" },
      { type: "signature_delta", index: 0, signature: "sig" },
      { type: "redacted_thinking", index: 1, data: "xyz" },
      { type: "message_stop", stop_reason: "end_turn" },
    ]);
  });

  test("stop reasons map as the reference says", () => {
    const stopOf = (reason: string): unknown => {
      const ev = decode(() => new AnthropicDecoder(), [
        anthropicSse([
          ["message_start", { type: "message_start", message: {} }],
          ["message_delta", { type: "message_delta", delta: { stop_reason: reason } }],
          ["message_stop", { type: "message_stop" }],
        ]),
      ]);
      return ev[ev.length - 1];
    };
    expect(stopOf("model_context_window_exceeded")).toEqual({ type: "message_stop", stop_reason: "max_tokens" });
    expect(stopOf("refusal")).toEqual({ type: "message_stop", stop_reason: "refusal" });
    expect(stopOf("stop_sequence")).toEqual({ type: "message_stop", stop_reason: "stop_sequence" });
    expect(stopOf("something_new")).toEqual({ type: "message_stop", stop_reason: "other" });
  });

  test("an in-band overloaded error is a retryable TransportError; invalid_request_error is not", () => {
    const run = (type: string): TransportError => {
      try {
        decode(() => new AnthropicDecoder(), [anthropicSse([anthropicFixture[0]!, ["error", { type: "error", error: { type, message: "Overloaded" } }]])]);
      } catch (e) {
        if (e instanceof TransportError) return e;
      }
      throw new Error("no TransportError");
    };
    expect(run("overloaded_error").opts.retryable).toBe(true);
    expect(run("overloaded_error").message).toBe("overloaded_error: Overloaded");
    expect(run("invalid_request_error").opts.retryable).toBe(false);
  });

  test("a stream without message_stop is truncated (retryable)", () => {
    let err: unknown;
    try {
      decode(() => new AnthropicDecoder(), [anthropicSse(anthropicFixture.slice(0, 5))]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).message).toBe("stream truncated");
    expect((err as TransportError).opts).toEqual({ retryable: true, phase: "stream" });
  });
});

const openaiFixture = [
  { id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] },
  { id: "c1", choices: [{ index: 0, delta: { content: "Let me look ✓" }, finish_reason: null }] },
  { id: "c1", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "read", arguments: "" } }] }, finish_reason: null }] },
  { id: "c1", choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "read", arguments: '{"pa' } }] }, finish_reason: null }] },
  { id: "c1", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"path":"日本' } }] }, finish_reason: null }] },
  { id: "c1", choices: [{ index: 0, delta: { tool_calls: [{ index: 1, function: { arguments: 'th":"b.txt"}' } }] }, finish_reason: null }] },
  { id: "c1", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '.txt"}' } }] }, finish_reason: null }] },
  { id: "c1", choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] },
  { id: "c1", choices: [{ index: 0, delta: { tool_calls: [{ index: 2, id: "call_replayed", function: { name: "read", arguments: "{}" } }] }, finish_reason: null }] },
  { id: "c1", choices: [], usage: { prompt_tokens: 100, completion_tokens: 20, prompt_tokens_details: { cached_tokens: 30 }, completion_tokens_details: { reasoning_tokens: 4 } } },
];

describe("OpenAI chat decoder", () => {
  test("interleaved tool-call fragments keyed by index give the same events at every split point", () => {
    const events = expectSplitInvariant(() => new OpenAIChatDecoder("rid-9"), openaiSse(openaiFixture));
    expect(events).toEqual([
      { type: "message_start", request_id: "rid-9" },
      { type: "text_delta", index: 0, text: "Let me look ✓" },
      { type: "tool_use_start", index: 1, id: "call_a", name: "read" },
      { type: "tool_use_start", index: 2, id: "call_b", name: "read" },
      { type: "input_json_delta", index: 2, partial_json: '{"pa' },
      { type: "input_json_delta", index: 1, partial_json: '{"path":"日本' },
      { type: "input_json_delta", index: 2, partial_json: 'th":"b.txt"}' },
      { type: "input_json_delta", index: 1, partial_json: '.txt"}' },
      { type: "content_block_stop", index: 0 },
      { type: "content_block_stop", index: 1 },
      { type: "content_block_stop", index: 2 },
      { type: "usage", cache_read_tokens: 30, input_tokens: 70, output_tokens: 20, reasoning_tokens: 4 },
      { type: "message_stop", stop_reason: "tool_use" },
    ]);
    const acc = new Accumulator();
    for (const e of events) acc.push(e);
    const { message } = acc.finish("gpt-4o", 1);
    // The tool call replayed after finish_reason is ignored: two calls, not three.
    expect(message.content).toEqual([
      { type: "text", text: "Let me look ✓" },
      { type: "tool_use", id: "call_a", name: "read", input: { path: "日本.txt" } },
      { type: "tool_use", id: "call_b", name: "read", input: { path: "b.txt" } },
    ]);
  });

  test("the end of a stream after finish_reason without [DONE] still stops; before it, the stream is truncated", () => {
    const ev = decode(() => new OpenAIChatDecoder(), [openaiSse(openaiFixture, false)]);
    expect(ev[ev.length - 1]).toEqual({ type: "message_stop", stop_reason: "tool_use" });
    expect(() => decode(() => new OpenAIChatDecoder(), [openaiSse(openaiFixture.slice(0, 4), false)])).toThrow("stream truncated");
  });

  test("finish reasons map: stop, length, content_filter", () => {
    const stopOf = (fr: string): unknown => {
      const ev = decode(() => new OpenAIChatDecoder(), [openaiSse([{ choices: [{ index: 0, delta: { content: "x" }, finish_reason: fr }] }])]);
      return ev[ev.length - 1];
    };
    expect(stopOf("stop")).toEqual({ type: "message_stop", stop_reason: "end_turn" });
    expect(stopOf("length")).toEqual({ type: "message_stop", stop_reason: "max_tokens" });
    expect(stopOf("content_filter")).toEqual({ type: "message_stop", stop_reason: "refusal" });
  });

  test("an error chunk is a TransportError, retryable for server_error", () => {
    const run = (type: string): TransportError => {
      try {
        decode(() => new OpenAIChatDecoder(), [openaiSse([{ error: { message: "boom", type } }])]);
      } catch (e) {
        if (e instanceof TransportError) return e;
      }
      throw new Error("no TransportError");
    };
    expect(run("server_error").opts.retryable).toBe(true);
    expect(run("server_error").message).toBe("boom");
    expect(run("invalid_request_error").opts.retryable).toBe(false);
  });

  test("reasoning_content becomes thinking deltas in its own block", () => {
    const ev = decode(() => new OpenAIChatDecoder(), [openaiSse([{ choices: [{ index: 0, delta: { reasoning_content: "think" } }] }, { choices: [{ index: 0, delta: { content: "answer" }, finish_reason: "stop" }] }])]);
    expect(ev.slice(1, 3)).toEqual([
      { type: "thinking_delta", index: 0, text: "think" },
      { type: "text_delta", index: 1, text: "answer" },
    ]);
  });
});

function req(messages: Message[], extra: Partial<ModelRequest> = {}): ModelRequest {
  return {
    model: "claude-test",
    system: "be brief",
    messages,
    tools: [
      { name: "edit", description: "e", input_schema: { type: "object", properties: { path: { type: "string" } } } },
      { name: "read", description: "r", input_schema: { type: "object" } },
    ],
    max_tokens: 4096,
    ...extra,
  };
}

const img = { type: "base64" as const, media_type: "image/png", data: "AAAA" };

const toolTurn: Message[] = [
  { role: "user", content: [{ type: "text", text: "read a" }], ts: 1 },
  {
    role: "assistant",
    content: [
      { type: "thinking", thinking: "hm", signature: "sig" },
      { type: "text", text: "Reading." },
      { type: "tool_use", id: "t1", name: "read", input: { path: "a" } },
      { type: "tool_use", id: "t2", name: "read", input: { path: "shot.png" } },
    ],
    model: "claude-test",
    stop_reason: "tool_use",
    usage: { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
    request_id: "r1",
    ts: 2,
  },
  {
    role: "user",
    content: [
      { type: "tool_result", tool_use_id: "t1", content: "     1\thello", is_error: false },
      { type: "tool_result", tool_use_id: "t2", content: "Read image file [image/png]", is_error: false, images: [img] },
      { type: "text", text: "use tabs" },
    ],
    ts: 3,
  },
];

describe("Anthropic buildBody", () => {
  test("system, tools, tool results with images, cache breakpoints, thinking and tool_choice", () => {
    const body = buildAnthropicBody(req(toolTurn, { thinking: { budget_tokens: 2048 }, tool_choice: "required", temperature: 0.2 }));
    expect(body.model).toBe("claude-test");
    expect(body.max_tokens).toBe(4096);
    expect(body.stream).toBe(true);
    expect(body.system).toEqual([{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }]);
    expect(body.tools).toEqual([
      { name: "edit", description: "e", input_schema: { type: "object", properties: { path: { type: "string" } } } },
      { name: "read", description: "r", input_schema: { type: "object" }, cache_control: { type: "ephemeral" } },
    ]);
    expect(body.tool_choice).toEqual({ type: "any" });
    expect(body.thinking).toEqual({ type: "enabled", budget_tokens: 2048 });
    expect(body.temperature).toBe(0.2);
    expect(body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "read a" }] },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "hm", signature: "sig" },
          { type: "text", text: "Reading." },
          { type: "tool_use", id: "t1", name: "read", input: { path: "a" } },
          { type: "tool_use", id: "t2", name: "read", input: { path: "shot.png" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "     1\thello" }], is_error: false },
          { type: "tool_result", tool_use_id: "t2", content: [{ type: "text", text: "Read image file [image/png]" }, { type: "image", source: img }], is_error: false },
          { type: "text", text: "use tabs", cache_control: { type: "ephemeral" } },
        ],
      },
    ]);
  });

  test("hygiene: an unanswered tool_use gets a synthetic result, aborted/errored/empty turns become (no content), same roles merge", () => {
    const msgs: Message[] = [
      { role: "user", content: [{ type: "text", text: "go" }], ts: 1 },
      { role: "assistant", content: [{ type: "tool_use", id: "o1", name: "read", input: {} }], ts: 2 },
      { role: "user", content: [{ type: "text", text: "next" }], ts: 3 },
      { role: "assistant", content: [{ type: "text", text: "half" }], aborted: true, ts: 4 },
      { role: "user", content: [{ type: "text", text: "again" }], ts: 5 },
      { role: "assistant", content: [], error_message: "stream truncated", ts: 6 },
      { role: "user", content: [{ type: "text", text: "p1" }], ts: 7 },
      { role: "user", content: [{ type: "text", text: "p2" }], ts: 8 },
      { role: "assistant", content: [{ type: "tool_use", id: "o2", name: "read", input: {} }], ts: 9 },
    ];
    const body = buildAnthropicBody(req(msgs, { system: undefined }), { cacheControl: false });
    expect(body.system).toBeUndefined();
    expect(body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "go" }] },
      { role: "assistant", content: [{ type: "tool_use", id: "o1", name: "read", input: {} }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "o1", content: [{ type: "text", text: NO_RESULT_TEXT }], is_error: true }, { type: "text", text: "next" }] },
      { role: "assistant", content: [{ type: "text", text: "(no content)" }] },
      { role: "user", content: [{ type: "text", text: "again" }] },
      { role: "assistant", content: [{ type: "text", text: "(no content)" }] },
      { role: "user", content: [{ type: "text", text: "p1" }, { type: "text", text: "p2" }] },
      { role: "assistant", content: [{ type: "tool_use", id: "o2", name: "read", input: {} }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "o2", content: [{ type: "text", text: NO_RESULT_TEXT }], is_error: true }] },
    ]);
    // The stored session is untouched.
    expect(msgs[3]!.content).toEqual([{ type: "text", text: "half" }]);
    expect(msgs[2]!.content.length).toBe(1);
  });

  test("a merged user turn keeps its tool results first", () => {
    const msgs: Message[] = [
      { role: "user", content: [{ type: "text", text: "go" }], ts: 1 },
      { role: "assistant", content: [{ type: "tool_use", id: "a", name: "read", input: {} }], ts: 2 },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "a", content: "x", is_error: false }], ts: 3 },
      { role: "user", content: [{ type: "text", text: "follow" }], ts: 4 },
    ];
    const m = buildAnthropicBody(req(msgs), { cacheControl: false }).messages as { content: { type: string }[] }[];
    expect(m[2]!.content.map((b) => b.type)).toEqual(["tool_result", "text"]);
  });

  test("tool_choice forms", () => {
    expect(buildAnthropicBody(req([], { tool_choice: "auto" })).tool_choice).toEqual({ type: "auto" });
    expect(buildAnthropicBody(req([], { tool_choice: "none" })).tool_choice).toEqual({ type: "none" });
    expect(buildAnthropicBody(req([], { tool_choice: { name: "read" } })).tool_choice).toEqual({ type: "tool", name: "read" });
  });
});

describe("OpenAI chat buildBody", () => {
  test("system message, tool calls as JSON strings, one tool message per result in order, then steers and result images", () => {
    const body = buildOpenAIChatBody(req(toolTurn, { model: "gpt-4o", tool_choice: { name: "read" } }));
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
    expect(body.max_completion_tokens).toBe(4096);
    expect(body.max_tokens).toBeUndefined();
    expect(body.tool_choice).toEqual({ type: "function", function: { name: "read" } });
    expect(body.tools).toEqual([
      { type: "function", function: { name: "edit", description: "e", parameters: { type: "object", properties: { path: { type: "string" } } } } },
      { type: "function", function: { name: "read", description: "r", parameters: { type: "object" } } },
    ]);
    expect(body.messages).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "read a" },
      {
        role: "assistant",
        content: "Reading.",
        tool_calls: [
          { id: "t1", type: "function", function: { name: "read", arguments: '{"path":"a"}' } },
          { id: "t2", type: "function", function: { name: "read", arguments: '{"path":"shot.png"}' } },
        ],
      },
      { role: "tool", tool_call_id: "t1", content: "     1\thello" },
      { role: "tool", tool_call_id: "t2", content: "Read image file [image/png]" },
      {
        role: "user",
        content: [
          { type: "text", text: "use tabs" },
          { type: "text", text: "Attached image(s) from tool result:" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
        ],
      },
    ]);
  });

  test("max_tokens for models outside the gpt-/o*/chatgpt families; null content beside tool calls; hygiene", () => {
    const msgs: Message[] = [
      { role: "user", content: [{ type: "text", text: "go" }, { type: "image", source: img }], ts: 1 },
      { role: "assistant", content: [{ type: "tool_use", id: "o1", name: "read", input: {} }], ts: 2 },
      { role: "user", content: [{ type: "text", text: "next" }], ts: 3 },
      { role: "assistant", content: [{ type: "text", text: "cut" }], aborted: true, ts: 4 },
      { role: "user", content: [{ type: "text", text: "again" }], ts: 5 },
    ];
    const body = buildOpenAIChatBody(req(msgs, { model: "llama-3.3-70b", system: undefined }));
    expect(body.max_tokens).toBe(4096);
    expect(body.max_completion_tokens).toBeUndefined();
    expect(body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "go" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] },
      { role: "assistant", content: null, tool_calls: [{ id: "o1", type: "function", function: { name: "read", arguments: "{}" } }] },
      { role: "tool", tool_call_id: "o1", content: NO_RESULT_TEXT },
      { role: "user", content: "next" },
      { role: "assistant", content: "(no content)" },
      { role: "user", content: "again" },
    ]);
  });
});

describe("dialectFor", () => {
  test("claude* and *anthropic* speak Messages, the rest Chat Completions; an explicit dialect wins", () => {
    expect(dialectFor("claude-opus-4-8")).toBe("anthropic");
    expect(dialectFor("us.anthropic.claude-3")).toBe("anthropic");
    expect(dialectFor("gpt-4o-mini")).toBe("openai");
    expect(dialectFor("llama-3", "auto")).toBe("openai");
    expect(dialectFor("claude-test", "openai")).toBe("openai");
    expect(dialectFor("gpt-4o", "anthropic")).toBe("anthropic");
  });
});

describe("wire hygiene, property", () => {
  // Random sessions as aborts, errors, crashes and steers can leave them: whatever the history, the Anthropic body
  // alternates roles, starts with a user turn when the session does, answers every tool_use in the very next
  // message, has no empty content, and the OpenAI body gives every tool_call its tool message right after it.
  test("400 random sessions give well-formed bodies in both dialects", async () => {
    const { mulberry32 } = await import("../helpers/random.ts");
    for (let seed = 1; seed <= 400; seed++) {
      const rnd = mulberry32(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const msgs: Message[] = [];
      let open: string[] = [];
      let id = 0;
      const n = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < n; i++) {
        const role = i === 0 ? "user" : pick(["user", "assistant", "assistant"] as const);
        if (role === "assistant") {
          const content: Message["content"] = [];
          if (rnd() < 0.6) content.push({ type: "text", text: rnd() < 0.2 ? "" : `t${i}` });
          const calls = Math.floor(rnd() * 3);
          open = [];
          for (let c = 0; c < calls; c++) {
            const cid = `id${id++}`;
            open.push(cid);
            content.push({ type: "tool_use", id: cid, name: "read", input: {} });
          }
          const m: Message = { role, content, ts: i };
          const r = rnd();
          if (r < 0.15) m.aborted = true;
          else if (r < 0.25) m.error_message = "boom";
          msgs.push(m);
        } else {
          const content: Message["content"] = [];
          // Answer some (or none) of the open calls; aborted/errored turns' calls are answered sometimes too.
          for (const cid of open) if (rnd() < 0.7) content.push({ type: "tool_result", tool_use_id: cid, content: rnd() < 0.2 ? "" : "ok", is_error: false });
          open = [];
          if (rnd() < 0.6 || content.length === 0) content.push({ type: "text", text: rnd() < 0.1 ? "" : `u${i}` });
          msgs.push({ role, content, ts: i });
        }
      }
      const body = buildAnthropicBody(req(msgs), { cacheControl: false });
      const wire = body.messages as { role: string; content: { type: string; id?: string; tool_use_id?: string; text?: string }[] }[];
      for (let i = 0; i < wire.length; i++) {
        const m = wire[i]!;
        if (i > 0) expect(m.role === wire[i - 1]!.role).toBe(false);
        // Every result answers a call of the turn right before it.
        const prevUses = new Set(i > 0 ? wire[i - 1]!.content.filter((b) => b.type === "tool_use").map((b) => b.id) : []);
        for (const b of m.content) if (b.type === "tool_result") expect(prevUses.has(b.tool_use_id)).toBe(true);
        expect(m.content.length).toBeGreaterThan(0);
        for (const b of m.content) if (b.type === "text") expect(b.text).not.toBe("");
        const uses = m.content.filter((b) => b.type === "tool_use").map((b) => b.id);
        if (uses.length > 0) {
          const next = wire[i + 1];
          expect(next?.role).toBe("user");
          const answered = new Set(next!.content.filter((b) => b.type === "tool_result").map((b) => b.tool_use_id));
          for (const u of uses) expect(answered.has(u)).toBe(true);
          // Results lead their user turn.
          const kinds = next!.content.map((b) => b.type);
          expect(kinds.slice(0, answered.size).every((k) => k === "tool_result")).toBe(true);
        }
      }
      const oa = buildOpenAIChatBody(req(msgs, { model: "gpt-4o", system: undefined })).messages as { role: string; content: unknown; tool_calls?: { id: string }[]; tool_call_id?: string }[];
      for (let i = 0; i < oa.length; i++) {
        const m = oa[i]!;
        if (m.role === "assistant") expect(m.content === null ? (m.tool_calls?.length ?? 0) > 0 : m.content !== "").toBe(true);
        if (m.role === "tool") {
          // A tool message follows its assistant's tool_calls or another tool message of the same batch.
          let j = i - 1;
          while (j >= 0 && oa[j]!.role === "tool") j--;
          expect(oa[j]?.tool_calls?.some((c) => c.id === m.tool_call_id)).toBe(true);
        }
        if (m.tool_calls !== undefined) {
          const ids = m.tool_calls.map((c) => c.id);
          const following = oa.slice(i + 1, i + 1 + ids.length);
          expect(following.map((f) => [f.role, f.tool_call_id])).toEqual(ids.map((x) => ["tool", x]));
        }
      }
    }
  });
});
