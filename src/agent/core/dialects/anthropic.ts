// Anthropic Messages: the request body (reference §B.5) and the SSE decoder (wire events → StreamEvents).

import type { StreamEvent } from "../events.ts";
import type { SseRecord } from "../sse.ts";
import { type ModelRequest, TransportError } from "../transport.ts";
import type { ContentBlock, Message, StopReason } from "../types.ts";
import { prepareMessages } from "./hygiene.ts";

export const ANTHROPIC_PATH = "/v1/messages";
export const ANTHROPIC_VERSION = "2023-06-01";

export interface BuildOptions {
  /** The three prompt-cache breakpoints (system, last tool, last block of the last message); default on. */
  cacheControl?: boolean;
}

type WireBlock = Record<string, unknown>;

function wireBlock(b: ContentBlock): WireBlock | undefined {
  switch (b.type) {
    case "text":
      return b.text === "" ? undefined : { type: "text", text: b.text };
    case "thinking":
      // A thinking block without its signature (e.g. reasoning from another dialect) would be rejected.
      return b.signature === "" ? undefined : { type: "thinking", thinking: b.thinking, signature: b.signature };
    case "redacted_thinking":
      return { type: "redacted_thinking", data: b.data };
    case "image":
      return { type: "image", source: b.source };
    case "tool_use":
      return { type: "tool_use", id: b.id, name: b.name, input: b.input };
    case "tool_result": {
      const content: WireBlock[] = [];
      if (b.content !== "") content.push({ type: "text", text: b.content });
      for (const img of b.images ?? []) content.push({ type: "image", source: img });
      if (content.length === 0) content.push({ type: "text", text: "(no output)" });
      return { type: "tool_result", tool_use_id: b.tool_use_id, content, is_error: b.is_error };
    }
  }
}

/** Wire messages: hygiene, then consecutive same-role messages merged (tool results first in a merged user turn). */
export function anthropicMessages(messages: readonly Message[]): { role: "user" | "assistant"; content: WireBlock[] }[] {
  const out: { role: "user" | "assistant"; content: WireBlock[] }[] = [];
  for (const m of prepareMessages(messages)) {
    const blocks: WireBlock[] = [];
    for (const b of m.content) {
      const w = wireBlock(b);
      if (w !== undefined) blocks.push(w);
    }
    if (blocks.length === 0) blocks.push({ type: "text", text: "(no content)" });
    const prev = out[out.length - 1];
    if (prev !== undefined && prev.role === m.role) {
      prev.content.push(...blocks);
      if (m.role === "user") {
        // Anthropic wants a turn's tool_result blocks ahead of its other blocks.
        const results = prev.content.filter((b) => b.type === "tool_result");
        if (results.length > 0) prev.content = [...results, ...prev.content.filter((b) => b.type !== "tool_result")];
      }
    } else {
      out.push({ role: m.role, content: blocks });
    }
  }
  return out;
}

export function buildAnthropicBody(req: ModelRequest, opts: BuildOptions = {}): Record<string, unknown> {
  const cache = opts.cacheControl !== false;
  const body: Record<string, unknown> = { model: req.model, max_tokens: req.max_tokens, stream: true };
  if (req.system !== undefined && req.system !== "") {
    const sys: WireBlock = { type: "text", text: req.system };
    if (cache) sys.cache_control = { type: "ephemeral" };
    body.system = [sys];
  }
  const messages = anthropicMessages(req.messages);
  if (cache) {
    const last = messages[messages.length - 1];
    const block = last?.content[last.content.length - 1];
    if (block !== undefined && block.type !== "thinking" && block.type !== "redacted_thinking") {
      last!.content[last!.content.length - 1] = { ...block, cache_control: { type: "ephemeral" } };
    }
  }
  body.messages = messages;
  if (req.tools.length > 0) {
    const tools: WireBlock[] = req.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.input_schema }));
    if (cache) tools[tools.length - 1] = { ...tools[tools.length - 1]!, cache_control: { type: "ephemeral" } };
    body.tools = tools;
  }
  const tc = req.tool_choice;
  if (tc !== undefined) {
    body.tool_choice = typeof tc === "object" ? { type: "tool", name: tc.name } : tc === "required" ? { type: "any" } : { type: tc };
  }
  if (req.thinking !== undefined) body.thinking = { type: "enabled", budget_tokens: req.thinking.budget_tokens };
  if (req.temperature !== undefined) body.temperature = req.temperature;
  return body;
}

export function mapAnthropicStop(s: unknown): StopReason {
  switch (s) {
    case "end_turn":
    case "pause_turn":
    case null:
    case undefined:
      return "end_turn";
    case "tool_use":
      return "tool_use";
    case "max_tokens":
    case "model_context_window_exceeded":
      return "max_tokens";
    case "stop_sequence":
      return "stop_sequence";
    case "refusal":
      return "refusal";
    default:
      return "other";
  }
}

const RETRYABLE_ERRORS = new Set(["overloaded_error", "api_error", "rate_limit_error", "timeout_error"]);

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Anthropic SSE records → StreamEvents. Throws TransportError on an in-band error or an unparseable event. */
export class AnthropicDecoder {
  private stopReason: unknown;
  private done = false;
  private started = false;

  constructor(private readonly requestId?: string) {}

  /** True once message_stop arrived: anything shorter is a truncated stream. */
  get complete(): boolean {
    return this.done;
  }

  push(rec: SseRecord, out: StreamEvent[]): void {
    if (this.done) return;
    let ev: Json | undefined;
    try {
      ev = obj(JSON.parse(rec.data));
    } catch {
      throw new TransportError("malformed event in the model stream", { retryable: true, phase: "stream" });
    }
    if (ev === undefined) return;
    const type = rec.event ?? (typeof ev.type === "string" ? ev.type : "");
    switch (type) {
      case "message_start": {
        this.start(out);
        const u = obj(obj(ev.message)?.usage);
        if (u !== undefined) this.usage(u, out);
        return;
      }
      case "content_block_start": {
        this.start(out);
        const index = num(ev.index) ?? 0;
        const cb = obj(ev.content_block);
        if (cb === undefined) return;
        if (cb.type === "tool_use") {
          out.push({ type: "tool_use_start", index, id: String(cb.id ?? ""), name: String(cb.name ?? "") });
        } else if (cb.type === "redacted_thinking") {
          out.push({ type: "redacted_thinking", index, data: String(cb.data ?? "") });
        } else if (cb.type === "text" && typeof cb.text === "string" && cb.text !== "") {
          out.push({ type: "text_delta", index, text: cb.text });
        }
        return;
      }
      case "content_block_delta": {
        this.start(out);
        const index = num(ev.index) ?? 0;
        const d = obj(ev.delta);
        if (d === undefined) return;
        switch (d.type) {
          case "text_delta":
            if (typeof d.text === "string") out.push({ type: "text_delta", index, text: d.text });
            return;
          case "input_json_delta":
            if (typeof d.partial_json === "string") out.push({ type: "input_json_delta", index, partial_json: d.partial_json });
            return;
          case "thinking_delta":
            if (typeof d.thinking === "string") out.push({ type: "thinking_delta", index, text: d.thinking });
            return;
          case "signature_delta":
            if (typeof d.signature === "string") out.push({ type: "signature_delta", index, signature: d.signature });
            return;
        }
        return;
      }
      case "content_block_stop":
        out.push({ type: "content_block_stop", index: num(ev.index) ?? 0 });
        return;
      case "message_delta": {
        const d = obj(ev.delta);
        if (d !== undefined && d.stop_reason !== undefined && d.stop_reason !== null) this.stopReason = d.stop_reason;
        const u = obj(ev.usage);
        if (u !== undefined) this.usage(u, out);
        return;
      }
      case "message_stop":
        this.start(out);
        this.done = true;
        out.push({ type: "message_stop", stop_reason: mapAnthropicStop(this.stopReason) });
        return;
      case "error": {
        const e = obj(ev.error);
        const etype = typeof e?.type === "string" ? e.type : "";
        const message = typeof e?.message === "string" ? e.message : "model stream error";
        throw new TransportError(etype === "" ? message : `${etype}: ${message}`, { retryable: RETRYABLE_ERRORS.has(etype), phase: "stream" });
      }
      default:
        return; // ping and unknown events
    }
  }

  /** The end of the byte stream: without message_stop the stream was cut. */
  end(_out: StreamEvent[]): void {
    if (!this.done) throw new TransportError("stream truncated", { retryable: true, phase: "stream" });
  }

  private start(out: StreamEvent[]): void {
    if (this.started) return;
    this.started = true;
    out.push(this.requestId === undefined ? { type: "message_start" } : { type: "message_start", request_id: this.requestId });
  }

  private usage(u: Json, out: StreamEvent[]): void {
    const ev: StreamEvent & { type: "usage" } = { type: "usage" };
    let any = false;
    const input = num(u.input_tokens);
    if (input !== undefined) (ev.input_tokens = input), (any = true);
    const output = num(u.output_tokens);
    if (output !== undefined) (ev.output_tokens = output), (any = true);
    const read = num(u.cache_read_input_tokens);
    if (read !== undefined) (ev.cache_read_tokens = read), (any = true);
    const write = num(u.cache_creation_input_tokens);
    if (write !== undefined) (ev.cache_write_tokens = write), (any = true);
    if (any) out.push(ev);
  }
}
