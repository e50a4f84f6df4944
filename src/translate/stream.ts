// Streaming (SSE) translation, SPEC §12: the provider's stream in one dialect becomes the client's in the other,
// event by event. `client` is the CLIENT's dialect; the provider's stream is the other one.
//
//  - client "openai": Anthropic Messages events → OpenAI `chat.completion.chunk` lines ending `data: [DONE]`.
//  - client "anthropic": OpenAI chunks (the pipeline always asks an OpenAI-wire target for include_usage, so the
//    last chunk before `[DONE]` carries usage) → Anthropic `event: …` / `data: …` events.
//
// Each push parses the events its bytes complete (SseSplitter) and returns the client's bytes for them at once: a
// text delta in is a text delta out in the same push. Output is built as strings from fixed fragments around
// JSON.stringify'd values (no object per chunk) and encoded once per push. State is the open content block or tool
// call (OpenAI → Anthropic: tool calls whose arguments wait behind the open one), the ids, the model and the usage
// numbers; nothing of the stream is kept beyond the one incomplete event the splitter holds.
//
// The commit point (SPEC §10) is decided by the pipeline on the provider's events before they reach this module.

import { openaiErrorType } from "./response.ts";
import { SseSplitter } from "./sse.ts";
import type { Dialect, StreamOptions, StreamTranslator } from "./types.ts";

export function streamTranslator(client: Dialect, opts: StreamOptions): StreamTranslator {
  return client === "openai" ? new AnthropicToOpenAI(opts) : new OpenAIToAnthropic(opts);
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
/** A token count: a non-negative finite number, else undefined. */
function count(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** What both directions share: the splitter, the output of the current push, and the end of translation. */
abstract class Translator implements StreamTranslator {
  protected out = "";
  /** Translation is over (the client got its end, or an error): later provider bytes are ignored. */
  protected done = false;
  private readonly splitter: SseSplitter;

  constructor(protected readonly opts: StreamOptions) {
    this.splitter = new SseSplitter((event, data) => {
      if (!this.done) this.onEvent(event, data);
    });
  }

  push(chunk: Uint8Array): Uint8Array {
    if (this.done) return EMPTY;
    this.splitter.push(chunk);
    if (this.splitter.overflowed && !this.done) this.fail("the provider sent a stream event over the size limit");
    return this.take();
  }

  end(): Uint8Array {
    if (!this.done) {
      this.splitter.finish();
      if (!this.done) this.onEnd();
      this.done = true;
    }
    return this.take();
  }

  private take(): Uint8Array {
    if (this.out === "") return EMPTY;
    const bytes = encoder.encode(this.out);
    this.out = "";
    return bytes;
  }

  /** One event's data, parsed; a provider event that is not a JSON object ends the stream with an error. */
  protected parse(data: string): Json | undefined {
    let v: unknown;
    try {
      v = JSON.parse(data);
    } catch {
      v = undefined;
    }
    const o = obj(v);
    if (o === undefined) this.fail("the provider sent a stream event that is not a JSON object");
    return o;
  }

  protected abstract onEvent(event: string, data: string): void;
  /** The provider's stream ended cleanly (before this translator saw its own end of stream). */
  protected abstract onEnd(): void;
  /** The stream cannot go on: an error event in the client's dialect, then nothing more. */
  protected abstract fail(message: string): void;
}

// ---------------------------------------------------------------------------------------------------------------
// Anthropic Messages events → OpenAI chat.completion.chunk (client "openai")
// ---------------------------------------------------------------------------------------------------------------

/** An Anthropic content block that maps to text; tool blocks map to their tool call's ordinal (≥ 0). */
const TEXT_BLOCK = -1;
/** thinking / redacted_thinking / server tool blocks: Chat Completions has no place for them, so they are dropped. */
const DROPPED_BLOCK = -2;

/** SPEC §12 finish reasons; `refusal` is what Chat Completions calls `content_filter`, and a full context window
 *  is `length` (both beyond the four SPEC names). */
function finishReasonOf(stopReason: string): string {
  switch (stopReason) {
    case "end_turn":
    case "stop_sequence":
    case "pause_turn":
      return "stop";
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    default:
      return "stop";
  }
}

class AnthropicToOpenAI extends Translator {
  /** `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…` once known. */
  private base = "";
  /** After a choice: `,"usage":null` when the client asked for include_usage (OpenAI's own chunks carry it). */
  private readonly usageNull: string;
  /** Anthropic block index → TEXT_BLOCK, DROPPED_BLOCK or the tool call's ordinal; only open blocks are kept. */
  private readonly blocks = new Map<number, number>();
  private tools = 0;
  private input = 0;
  private cacheRead = 0;
  private cacheWrite = 0;
  private output = 0;
  private finishSeen = false;

  constructor(opts: StreamOptions) {
    super(opts);
    this.usageNull = opts.includeUsage ? ',"usage":null' : "";
  }

  protected onEvent(event: string, data: string): void {
    if (event === "ping" || data === "") return;
    const o = this.parse(data);
    if (o === undefined) return;
    const type = str(o["type"]) ?? event;
    switch (type) {
      case "message_start": {
        const m = obj(o["message"]);
        this.start(str(m?.["id"]) ?? "", str(m?.["model"]) ?? this.opts.model);
        this.readUsage(obj(m?.["usage"]));
        return;
      }
      case "content_block_start":
        this.blockStart(o);
        return;
      case "content_block_delta":
        this.blockDelta(o);
        return;
      case "content_block_stop": {
        const index = count(o["index"]);
        if (index !== undefined) this.blocks.delete(index);
        return;
      }
      case "message_delta": {
        this.readUsage(obj(o["usage"]));
        const stop = str(obj(o["delta"])?.["stop_reason"]);
        if (stop !== undefined) {
          this.ensureStarted();
          this.finishSeen = true;
          this.out += `${this.base},"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${finishReasonOf(stop)}"}]${this.usageNull}}\n\n`;
        }
        return;
      }
      case "message_stop":
        this.close();
        return;
      case "error": {
        const e = obj(o["error"]);
        this.error(str(e?.["message"]) ?? "the provider reported an error", str(e?.["type"]) ?? "api_error");
        return;
      }
      default:
        return; // ping, and event types added later: nothing for the client
    }
  }

  protected onEnd(): void {
    // A stream that stopped without message_stop but after its stop reason lost only the end marker; one that
    // stopped before it is cut short, and the client sees it cut short (no [DONE] is made up).
    if (this.finishSeen) this.close();
  }

  protected fail(message: string): void {
    this.error(message, "api_error");
  }

  private start(id: string, model: string): void {
    if (this.base !== "") return;
    const created = Math.floor(Date.now() / 1000);
    this.base = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)}`;
    this.out += `${this.base},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${this.usageNull}}\n\n`;
  }

  /** Content before message_start (a provider that skipped it) still gets the opening chunk. */
  private ensureStarted(): void {
    if (this.base === "") this.start("", this.opts.model);
  }

  private delta(delta: string): void {
    this.out += `${this.base},"choices":[{"index":0,"delta":${delta},"logprobs":null,"finish_reason":null}]${this.usageNull}}\n\n`;
  }

  private blockStart(o: Json): void {
    const index = count(o["index"]);
    const block = obj(o["content_block"]);
    if (index === undefined || block === undefined) return;
    this.ensureStarted();
    const type = block["type"];
    if (type === "text") {
      this.blocks.set(index, TEXT_BLOCK);
      const text = str(block["text"]);
      if (text !== undefined && text !== "") this.delta(`{"content":${JSON.stringify(text)}}`);
    } else if (type === "tool_use") {
      const ordinal = this.tools++;
      this.blocks.set(index, ordinal);
      // The input arrives as input_json_delta fragments; a start that already carries a whole input (not what
      // the Messages API streams, but valid) gives it as the first fragment.
      const input = obj(block["input"]);
      const args = input !== undefined && Object.keys(input).length > 0 ? JSON.stringify(input) : "";
      this.delta(
        `{"tool_calls":[{"index":${ordinal},"id":${JSON.stringify(str(block["id"]) ?? "")},"type":"function","function":{"name":${JSON.stringify(str(block["name"]) ?? "")},"arguments":${JSON.stringify(args)}}}]}`,
      );
    } else {
      this.blocks.set(index, DROPPED_BLOCK);
    }
  }

  private blockDelta(o: Json): void {
    const index = count(o["index"]);
    const d = obj(o["delta"]);
    if (index === undefined || d === undefined) return;
    const kind = this.blocks.get(index);
    const type = d["type"];
    if (type === "text_delta") {
      const text = str(d["text"]);
      if (kind === TEXT_BLOCK && text !== undefined && text !== "") this.delta(`{"content":${JSON.stringify(text)}}`);
    } else if (type === "input_json_delta") {
      const part = str(d["partial_json"]);
      if (kind !== undefined && kind >= 0 && part !== undefined && part !== "") {
        this.delta(`{"tool_calls":[{"index":${kind},"function":{"arguments":${JSON.stringify(part)}}}]}`);
      }
    }
    // thinking_delta, signature_delta, citations_delta: no Chat Completions counterpart, dropped.
  }

  /** Usage numbers are cumulative: message_delta's win over message_start's where present. */
  private readUsage(u: Json | undefined): void {
    if (u === undefined) return;
    this.input = count(u["input_tokens"]) ?? this.input;
    this.cacheRead = count(u["cache_read_input_tokens"]) ?? this.cacheRead;
    this.cacheWrite = count(u["cache_creation_input_tokens"]) ?? this.cacheWrite;
    this.output = count(u["output_tokens"]) ?? this.output;
  }

  /** The usage chunk (if asked for) and `[DONE]`. */
  private close(): void {
    this.ensureStarted();
    if (this.opts.includeUsage) {
      const prompt = this.input + this.cacheRead + this.cacheWrite;
      this.out += `${this.base},"choices":[],"usage":{"prompt_tokens":${prompt},"completion_tokens":${this.output},"total_tokens":${prompt + this.output},"prompt_tokens_details":{"cached_tokens":${this.cacheRead}}}}\n\n`;
    }
    this.out += "data: [DONE]\n\n";
    this.done = true;
  }

  /** What OpenAI sends when a stream fails part-way: a `data:` line holding `error` (the openai SDK throws an
   *  APIError on it), and no `[DONE]`. */
  private error(message: string, anthropicType: string): void {
    this.out += `data: {"error":{"message":${JSON.stringify(message)},"type":${JSON.stringify(openaiErrorType(anthropicType, 500))},"param":null,"code":${JSON.stringify(anthropicType)}}}\n\n`;
    this.done = true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI chat.completion.chunk → Anthropic Messages events (client "anthropic")
// ---------------------------------------------------------------------------------------------------------------

/** Whether a JSON text fed in pieces is complete: tracks depth outside strings (O(1) state per tool call). Used to
 *  tell when a tool call's arguments are whole, so the next tool call's block may start. */
class JsonEnd {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  complete = false;

  feed(s: string): void {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 92 /* \ */) this.escaped = true;
        else if (c === 34 /* " */) this.inString = false;
      } else if (c === 34) {
        this.inString = true;
      } else if (c === 123 /* { */ || c === 91 /* [ */) {
        this.depth++;
        this.started = true;
        this.complete = false;
      } else if (c === 125 /* } */ || c === 93 /* ] */) {
        this.depth--;
        if (this.depth === 0 && this.started) this.complete = true;
      }
    }
  }
}

const WAITING = 0;
const OPEN = 1;
const CLOSED = 2;

interface ToolCall {
  id: string;
  name: string;
  state: number;
  /** The Anthropic block index, once opened. */
  block: number;
  /** Argument text received while the call waited behind another (sent as one fragment when it opens). */
  pending: string;
  readonly json: JsonEnd;
}

function stopReasonOf(finish: string): string {
  switch (finish) {
    case "length":
      return "max_tokens";
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "content_filter":
      return "refusal";
    default:
      return "end_turn"; // "stop" (Chat Completions does not say whether a stop sequence matched)
  }
}

/** OpenAI error type/code → the Anthropic error type. */
function anthropicErrorType(type: string, code: string): string {
  if (type === "invalid_request_error") return code === "invalid_api_key" ? "authentication_error" : "invalid_request_error";
  if (type === "authentication_error" || code === "invalid_api_key") return "authentication_error";
  if (type === "permission_error" || type === "not_found_error") return type;
  if (type === "rate_limit_error" || type === "requests" || type === "tokens" || code === "rate_limit_exceeded" || type === "insufficient_quota") {
    return "rate_limit_error";
  }
  return "api_error"; // server_error and anything else
}

class OpenAIToAnthropic extends Translator {
  private started = false;
  private nextBlock = 0;
  /** The open text block's index, or -1. */
  private textBlock = -1;
  /** The open tool_use block's call. */
  private current: ToolCall | undefined;
  /** Tool calls seen while another was open with arguments not yet whole (interleaved streams), in order. */
  private readonly waiting: ToolCall[] = [];
  /** By the tool call's OpenAI index. */
  private readonly tools = new Map<number, ToolCall>();
  /** The mapped stop reason once finish_reason came. */
  private stopReason: string | undefined;
  private usageSeen = false;
  private prompt = 0;
  private completion = 0;
  private cached = 0;

  protected onEvent(event: string, data: string): void {
    if (data === "") return;
    if (data === "[DONE]") {
      this.finishMessage(true);
      return;
    }
    const o = this.parse(data);
    if (o === undefined) return;
    const e = obj(o["error"]);
    if (event === "error" || (e !== undefined && o["choices"] === undefined)) {
      const err = e ?? o;
      this.error(
        str(err["message"]) ?? "the provider reported an error",
        anthropicErrorType(str(err["type"]) ?? "", str(err["code"]) ?? ""),
      );
      return;
    }
    if (!this.started) this.start(str(o["id"]) ?? "", str(o["model"]) ?? this.opts.model);
    const choices = o["choices"];
    if (Array.isArray(choices)) {
      for (const c of choices) {
        const choice = obj(c);
        // One choice: the request translator never asks for n > 1.
        if (choice === undefined || (choice["index"] !== undefined && choice["index"] !== 0)) continue;
        const delta = obj(choice["delta"]);
        if (delta !== undefined) this.delta(delta);
        const finish = str(choice["finish_reason"]);
        if (finish !== undefined) {
          this.closeAll();
          this.stopReason = stopReasonOf(finish);
        }
      }
    }
    const u = obj(o["usage"]);
    if (u !== undefined) {
      this.usageSeen = true;
      this.prompt = count(u["prompt_tokens"]) ?? this.prompt;
      this.completion = count(u["completion_tokens"]) ?? this.completion;
      this.cached = count(obj(u["prompt_tokens_details"])?.["cached_tokens"]) ?? this.cached;
    }
    if (this.stopReason !== undefined && this.usageSeen) this.finishMessage(false);
  }

  protected onEnd(): void {
    // Without [DONE]: a stream that had finished (stop reason seen, usage never came) gets its end; one cut
    // before that stays cut (no message_stop is made up).
    if (this.stopReason !== undefined) this.finishMessage(false);
  }

  protected fail(message: string): void {
    this.error(message, "api_error");
  }

  private ev(name: string, data: string): void {
    this.out += `event: ${name}\ndata: ${data}\n\n`;
  }

  /** message_start. Input tokens are known only from the usage chunk at the end, so it says 0 here and the
   *  final message_delta carries the real counts (the Anthropic SDK takes message_delta's numbers). */
  private start(id: string, model: string): void {
    this.started = true;
    this.ev(
      "message_start",
      `{"type":"message_start","message":{"id":${JSON.stringify(id)},"type":"message","role":"assistant","model":${JSON.stringify(model)},"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`,
    );
  }

  private delta(delta: Json): void {
    const content = str(delta["content"]);
    if (content !== undefined && content !== "") this.text(content);
    // A refusal is text the model said; Anthropic carries it as text too.
    const refusal = str(delta["refusal"]);
    if (refusal !== undefined && refusal !== "") this.text(refusal);
    const calls = delta["tool_calls"];
    if (Array.isArray(calls)) {
      for (let i = 0; i < calls.length; i++) {
        const call = obj(calls[i]);
        if (call === undefined) continue;
        const fn = obj(call["function"]);
        this.toolFragment(count(call["index"]) ?? i, str(call["id"]), str(fn?.["name"]), str(fn?.["arguments"]));
      }
    }
    // reasoning_content (some OpenAI-wire providers) has no signed thinking block to become: dropped.
  }

  private text(text: string): void {
    if (this.textBlock < 0) {
      this.closeAll();
      this.textBlock = this.nextBlock++;
      this.ev("content_block_start", `{"type":"content_block_start","index":${this.textBlock},"content_block":{"type":"text","text":""}}`);
    }
    this.ev(
      "content_block_delta",
      `{"type":"content_block_delta","index":${this.textBlock},"delta":{"type":"text_delta","text":${JSON.stringify(text)}}}`,
    );
  }

  private toolFragment(index: number, id: string | undefined, name: string | undefined, args: string | undefined): void {
    let call = this.tools.get(index);
    if (call === undefined) {
      call = { id: id ?? "", name: name ?? "", state: WAITING, block: -1, pending: "", json: new JsonEnd() };
      this.tools.set(index, call);
      this.closeText();
      // The open call ends when the next one starts, if its arguments are whole; otherwise the calls are
      // interleaved and the new one waits (its fragments kept) until the open one's arguments are.
      const cur = this.current;
      if (cur !== undefined && cur.json.complete && this.waiting.length === 0) this.closeCurrent();
      if (this.current === undefined && this.waiting.length === 0) this.open(call);
      else this.waiting.push(call);
    } else if (call.state === WAITING) {
      if (id !== undefined && call.id === "") call.id = id;
      if (name !== undefined && call.name === "") call.name = name;
    }
    if (args === undefined || args === "") return;
    if (call.state === CLOSED) return; // arguments after whole ones: not JSON any more, nowhere to go
    call.json.feed(args);
    if (call.state === WAITING) {
      call.pending += args;
      return;
    }
    this.ev(
      "content_block_delta",
      `{"type":"content_block_delta","index":${call.block},"delta":{"type":"input_json_delta","partial_json":${JSON.stringify(args)}}}`,
    );
    if (call.json.complete && this.waiting.length > 0) this.promote();
  }

  private open(call: ToolCall): void {
    call.state = OPEN;
    call.block = this.nextBlock++;
    this.current = call;
    this.ev(
      "content_block_start",
      `{"type":"content_block_start","index":${call.block},"content_block":{"type":"tool_use","id":${JSON.stringify(call.id)},"name":${JSON.stringify(call.name)},"input":{}}}`,
    );
    if (call.pending !== "") {
      this.ev(
        "content_block_delta",
        `{"type":"content_block_delta","index":${call.block},"delta":{"type":"input_json_delta","partial_json":${JSON.stringify(call.pending)}}}`,
      );
      call.pending = "";
    }
  }

  /** The open call's arguments are whole: close it and open the waiting ones, while each is whole too. */
  private promote(): void {
    this.closeCurrent();
    while (this.waiting.length > 0) {
      const next = this.waiting.shift() as ToolCall;
      this.open(next);
      if (!next.json.complete || this.waiting.length === 0) return;
      this.closeCurrent();
    }
  }

  private closeCurrent(): void {
    const cur = this.current;
    if (cur === undefined) return;
    cur.state = CLOSED;
    this.current = undefined;
    this.ev("content_block_stop", `{"type":"content_block_stop","index":${cur.block}}`);
  }

  private closeText(): void {
    if (this.textBlock < 0) return;
    this.ev("content_block_stop", `{"type":"content_block_stop","index":${this.textBlock}}`);
    this.textBlock = -1;
  }

  /** Every open block closed and every waiting call sent whole, in order. */
  private closeAll(): void {
    this.closeText();
    this.closeCurrent();
    while (this.waiting.length > 0) {
      this.open(this.waiting.shift() as ToolCall);
      this.closeCurrent();
    }
  }

  /** message_delta (stop reason, usage) and message_stop. `atDone`: the provider's [DONE] came; a stream that
   *  never said why it stopped gets stop_reason null. */
  private finishMessage(atDone: boolean): void {
    if (!this.started) {
      this.done = true;
      return;
    }
    if (this.stopReason === undefined && !atDone) return;
    this.closeAll();
    const stop = this.stopReason === undefined ? "null" : `"${this.stopReason}"`;
    const input = Math.max(0, this.prompt - this.cached);
    this.ev(
      "message_delta",
      `{"type":"message_delta","delta":{"stop_reason":${stop},"stop_sequence":null},"usage":{"input_tokens":${input},"cache_creation_input_tokens":0,"cache_read_input_tokens":${this.cached},"output_tokens":${this.completion}}}`,
    );
    this.ev("message_stop", `{"type":"message_stop"}`);
    this.done = true;
  }

  private error(message: string, type: string): void {
    this.ev("error", `{"type":"error","error":{"type":${JSON.stringify(type)},"message":${JSON.stringify(message)}}}`);
    this.done = true;
  }
}
