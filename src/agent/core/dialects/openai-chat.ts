// OpenAI Chat Completions: the request body (reference §B.5) and the SSE decoder (chat.completion.chunk → StreamEvents).

import type { StreamEvent } from "../events.ts";
import type { SseRecord } from "../sse.ts";
import { type ModelRequest, TransportError } from "../transport.ts";
import type { ContentBlock, ImageSource, Message, StopReason } from "../types.ts";
import { NO_CONTENT_TEXT, prepareMessages } from "./hygiene.ts";

export const OPENAI_CHAT_PATH = "/v1/chat/completions";

type Json = Record<string, unknown>;
type Part = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };

function imagePart(img: ImageSource): Part {
  return { type: "image_url", image_url: { url: `data:${img.media_type};base64,${img.data}` } };
}

/** A user turn's content: a plain string for one text block, parts otherwise. */
function userContent(parts: Part[]): string | Part[] {
  const only = parts[0];
  if (parts.length === 1 && only !== undefined && only.type === "text") return only.text;
  return parts;
}

/** Reasoning-model families that take max_completion_tokens (pi's compat.maxTokensField, the seed's ModelCaps). */
export function usesMaxCompletionTokens(model: string): boolean {
  return /^(gpt-|o\d|chatgpt)/.test(model);
}

export function openaiMessages(system: string | undefined, messages: readonly Message[]): Json[] {
  const out: Json[] = [];
  if (system !== undefined && system !== "") out.push({ role: "system", content: system });
  for (const m of prepareMessages(messages)) {
    if (m.role === "assistant") {
      const text: string[] = [];
      const calls: Json[] = [];
      for (const b of m.content) {
        if (b.type === "text") text.push(b.text);
        else if (b.type === "tool_use") calls.push({ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input) } });
        // thinking and redacted thinking have no Chat Completions form: dropped.
      }
      const joined = text.join("");
      const msg: Json = { role: "assistant", content: joined !== "" ? joined : calls.length > 0 ? null : NO_CONTENT_TEXT };
      if (calls.length > 0) msg.tool_calls = calls;
      out.push(msg);
      continue;
    }
    // A user message: its tool results fan out into one tool message each, in order; then its own text and images
    // (steers) and any images the results carried go into one user message behind them.
    const parts: Part[] = [];
    const resultImages: ImageSource[] = [];
    for (const b of m.content as readonly ContentBlock[]) {
      switch (b.type) {
        case "tool_result":
          out.push({ role: "tool", tool_call_id: b.tool_use_id, content: b.content !== "" ? b.content : b.images !== undefined && b.images.length > 0 ? "(see attached image)" : "(no output)" });
          if (b.images !== undefined) resultImages.push(...b.images);
          break;
        case "text":
          if (b.text !== "") parts.push({ type: "text", text: b.text });
          break;
        case "image":
          parts.push(imagePart(b.source));
          break;
        default:
          break;
      }
    }
    if (resultImages.length > 0) {
      parts.push({ type: "text", text: "Attached image(s) from tool result:" });
      for (const img of resultImages) parts.push(imagePart(img));
    }
    if (parts.length > 0) out.push({ role: "user", content: userContent(parts) });
  }
  return out;
}

export function buildOpenAIChatBody(req: ModelRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: req.model,
    stream: true,
    // The gateway strips the usage chunk it asked for itself; asking ourselves is how the agent gets usage.
    stream_options: { include_usage: true },
    messages: openaiMessages(req.system, req.messages),
  };
  if (req.tools.length > 0) {
    body.tools = req.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } }));
  }
  const tc = req.tool_choice;
  if (tc !== undefined) body.tool_choice = typeof tc === "object" ? { type: "function", function: { name: tc.name } } : tc;
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (usesMaxCompletionTokens(req.model)) body.max_completion_tokens = req.max_tokens;
  else body.max_tokens = req.max_tokens;
  return body;
}

export function mapOpenAIStop(s: unknown): StopReason {
  switch (s) {
    case "stop":
      return "end_turn";
    case "length":
      return "max_tokens";
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "content_filter":
      return "refusal";
    default:
      return "other";
  }
}

const RETRYABLE_ERRORS = new Set(["server_error", "rate_limit_exceeded", "internal_error", "service_unavailable"]);

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/**
 * Chat Completions chunks → StreamEvents. Tool calls are keyed by `tool_calls[].index` (fragments of different calls
 * may interleave); text, reasoning and each call get a block index in first-seen order. finish_reason closes every
 * open block; after it only usage counts (a replayed tool_calls array must not dispatch twice). message_stop comes
 * at [DONE], or at the end of a stream that had its finish_reason, so the trailing usage chunk is never missed.
 */
export class OpenAIChatDecoder {
  private next = 0;
  private textIndex = -1;
  private reasoningIndex = -1;
  private readonly calls = new Map<number, number>();
  private readonly open: number[] = [];
  private finish: StopReason | undefined;
  private done = false;
  private started = false;

  constructor(private readonly requestId?: string) {}

  get complete(): boolean {
    return this.done;
  }

  push(rec: SseRecord, out: StreamEvent[]): void {
    if (this.done) return;
    const data = rec.data;
    if (data === "[DONE]") {
      this.stop(out);
      return;
    }
    let chunk: Json | undefined;
    try {
      chunk = obj(JSON.parse(data));
    } catch {
      throw new TransportError("malformed event in the model stream", { retryable: true, phase: "stream" });
    }
    if (chunk === undefined) return;
    const err = obj(chunk.error);
    if (err !== undefined) {
      const type = typeof err.type === "string" ? err.type : "";
      const code = typeof err.code === "string" ? err.code : "";
      const message = typeof err.message === "string" ? err.message : "model stream error";
      throw new TransportError(message, { retryable: RETRYABLE_ERRORS.has(type) || RETRYABLE_ERRORS.has(code), phase: "stream" });
    }
    this.start(out);
    const usage = obj(chunk.usage);
    const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
    const choice = obj(choices[0]);
    if (choice !== undefined && this.finish === undefined) {
      const delta = obj(choice.delta);
      if (delta !== undefined) this.delta(delta, out);
      const fr = choice.finish_reason;
      if (typeof fr === "string") {
        this.finish = mapOpenAIStop(fr);
        for (const i of this.open) out.push({ type: "content_block_stop", index: i });
        this.open.length = 0;
      }
    }
    if (usage !== undefined) {
      const prompt = num(usage.prompt_tokens);
      const completion = num(usage.completion_tokens);
      const cached = num(obj(usage.prompt_tokens_details)?.cached_tokens) ?? 0;
      const reasoning = num(obj(usage.completion_tokens_details)?.reasoning_tokens);
      const ev: StreamEvent & { type: "usage" } = { type: "usage", cache_read_tokens: cached };
      if (prompt !== undefined) ev.input_tokens = Math.max(0, prompt - cached);
      if (completion !== undefined) ev.output_tokens = completion;
      if (reasoning !== undefined) ev.reasoning_tokens = reasoning;
      out.push(ev);
    }
  }

  /** The end of the byte stream: message_stop when the finish_reason came, else the stream was cut. */
  end(out: StreamEvent[]): void {
    if (this.done) return;
    if (this.finish === undefined) throw new TransportError("stream truncated", { retryable: true, phase: "stream" });
    this.stop(out);
  }

  private stop(out: StreamEvent[]): void {
    this.start(out);
    for (const i of this.open) out.push({ type: "content_block_stop", index: i });
    this.open.length = 0;
    this.done = true;
    out.push({ type: "message_stop", stop_reason: this.finish ?? (this.calls.size > 0 ? "tool_use" : "end_turn") });
  }

  private start(out: StreamEvent[]): void {
    if (this.started) return;
    this.started = true;
    out.push(this.requestId === undefined ? { type: "message_start" } : { type: "message_start", request_id: this.requestId });
  }

  private delta(delta: Json, out: StreamEvent[]): void {
    const reasoning = typeof delta.reasoning_content === "string" ? delta.reasoning_content : typeof delta.reasoning === "string" ? delta.reasoning : "";
    if (reasoning !== "") {
      if (this.reasoningIndex < 0) {
        this.reasoningIndex = this.next++;
        this.open.push(this.reasoningIndex);
      }
      out.push({ type: "thinking_delta", index: this.reasoningIndex, text: reasoning });
    }
    if (typeof delta.content === "string" && delta.content !== "") {
      if (this.textIndex < 0) {
        this.textIndex = this.next++;
        this.open.push(this.textIndex);
      }
      out.push({ type: "text_delta", index: this.textIndex, text: delta.content });
    }
    if (!Array.isArray(delta.tool_calls)) return;
    for (const raw of delta.tool_calls) {
      const tc = obj(raw);
      if (tc === undefined) continue;
      const wireIndex = num(tc.index) ?? 0;
      const fn = obj(tc.function);
      let index = this.calls.get(wireIndex);
      if (index === undefined) {
        index = this.next++;
        this.calls.set(wireIndex, index);
        this.open.push(index);
        out.push({ type: "tool_use_start", index, id: typeof tc.id === "string" ? tc.id : `call_${wireIndex}`, name: typeof fn?.name === "string" ? fn.name : "" });
      }
      if (typeof fn?.arguments === "string" && fn.arguments !== "") out.push({ type: "input_json_delta", index, partial_json: fn.arguments });
    }
  }
}
