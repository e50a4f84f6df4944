// Folds one turn's StreamEvents into the assistant Message: blocks in first-seen index order (OpenAI's tool calls
// and Anthropic's blocks both arrive keyed by index, and OpenAI's fragments of different calls interleave), tool
// input parsed once at the end (with a repair for JSON cut short, e.g. by max_tokens), usage as each field's last
// non-null value. One Accumulator per attempt: a retried turn starts from a fresh one, so no partial delta leaks.

import type { StreamEvent } from "./events.ts";
import { type ContentBlock, type Message, type StopReason, type Usage, emptyUsage } from "./types.ts";

type BlockState =
  | { kind: "text"; parts: string[] }
  | { kind: "thinking"; parts: string[]; signature: string }
  | { kind: "redacted"; data: string }
  | { kind: "tool"; id: string; name: string; json: string[] };

export interface AccumulatedTurn {
  message: Message;
  /** Tool-use id → parser message, for the calls whose input was neither JSON nor repairable (input is {}). */
  malformed: Map<string, string>;
}

export class Accumulator {
  /** Map keeps insertion order: blocks come out in the order their index was first seen. */
  private readonly blocks = new Map<number, BlockState>();
  private stop: StopReason | undefined;
  private readonly usage: Usage = emptyUsage();
  private sawUsage = false;
  requestId: string | undefined;

  /** True once any content (text, thinking, tool call) has streamed. */
  get hasContent(): boolean {
    return this.blocks.size > 0;
  }

  push(ev: StreamEvent): void {
    switch (ev.type) {
      case "message_start":
        if (ev.request_id !== undefined) this.requestId = ev.request_id;
        return;
      case "text_delta": {
        const b = this.blocks.get(ev.index);
        if (b === undefined) this.blocks.set(ev.index, { kind: "text", parts: [ev.text] });
        else if (b.kind === "text" || b.kind === "thinking") b.parts.push(ev.text);
        return;
      }
      case "thinking_delta": {
        const b = this.blocks.get(ev.index);
        if (b === undefined) this.blocks.set(ev.index, { kind: "thinking", parts: [ev.text], signature: "" });
        else if (b.kind === "thinking") b.parts.push(ev.text);
        return;
      }
      case "signature_delta": {
        const b = this.blocks.get(ev.index);
        if (b === undefined) this.blocks.set(ev.index, { kind: "thinking", parts: [], signature: ev.signature });
        else if (b.kind === "thinking") b.signature += ev.signature;
        return;
      }
      case "redacted_thinking":
        if (!this.blocks.has(ev.index)) this.blocks.set(ev.index, { kind: "redacted", data: ev.data });
        return;
      case "tool_use_start":
        if (!this.blocks.has(ev.index)) this.blocks.set(ev.index, { kind: "tool", id: ev.id, name: ev.name, json: [] });
        return;
      case "input_json_delta": {
        const b = this.blocks.get(ev.index);
        if (b !== undefined && b.kind === "tool") b.json.push(ev.partial_json);
        return;
      }
      case "content_block_stop":
        return;
      case "usage":
        this.sawUsage = true;
        if (ev.input_tokens != null) this.usage.input_tokens = ev.input_tokens;
        if (ev.output_tokens != null) this.usage.output_tokens = ev.output_tokens;
        if (ev.cache_read_tokens != null) this.usage.cache_read_tokens = ev.cache_read_tokens;
        if (ev.cache_write_tokens != null) this.usage.cache_write_tokens = ev.cache_write_tokens;
        if (ev.reasoning_tokens != null) this.usage.reasoning_tokens = ev.reasoning_tokens;
        return;
      case "message_stop":
        this.stop = ev.stop_reason;
        return;
    }
  }

  /** The assistant message so far. `stop_reason` is end_turn when no message_stop arrived. */
  finish(model: string, now: number): AccumulatedTurn {
    const content: ContentBlock[] = [];
    const malformed = new Map<string, string>();
    for (const b of this.blocks.values()) {
      switch (b.kind) {
        case "text":
          content.push({ type: "text", text: b.parts.join("") });
          break;
        case "thinking":
          content.push({ type: "thinking", thinking: b.parts.join(""), signature: b.signature });
          break;
        case "redacted":
          content.push({ type: "redacted_thinking", data: b.data });
          break;
        case "tool": {
          const parsed = parseToolInput(b.json.join(""));
          if (parsed.error !== undefined) malformed.set(b.id, parsed.error);
          content.push({ type: "tool_use", id: b.id, name: b.name, input: parsed.input });
          break;
        }
      }
    }
    const message: Message = { role: "assistant", content, model, stop_reason: this.stop ?? "end_turn", ts: now };
    if (this.sawUsage) message.usage = { ...this.usage };
    if (this.requestId !== undefined) message.request_id = this.requestId;
    return { message, malformed };
  }
}

/** A tool call's argument text → its input object: JSON, else repaired JSON, else {} with the parser's message. */
export function parseToolInput(text: string): { input: Record<string, unknown>; error?: string } {
  if (text.trim() === "") return { input: {} };
  let firstError: string;
  try {
    const v: unknown = JSON.parse(text);
    if (isPlainObject(v)) return { input: v };
    return { input: {}, error: "arguments must be a JSON object" };
  } catch (e) {
    firstError = e instanceof Error ? e.message : String(e);
  }
  const repaired = repairJson(text);
  if (repaired !== undefined && isPlainObject(repaired)) return { input: repaired };
  return { input: {}, error: firstError };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

interface Frame {
  obj: boolean;
  /** Objects: "key" (a key may start), "colon", "value", "after". Arrays: "value" or "after". */
  phase: "key" | "colon" | "value" | "after";
}

function closersOf(stack: readonly Frame[]): string {
  let s = "";
  for (let i = stack.length - 1; i >= 0; i--) s += stack[i]!.obj ? "}" : "]";
  return s;
}

/**
 * JSON cut short → the longest value it can still mean: an open string value is closed where it stopped
 * (`{"path":"a` → {path:"a"}), open arrays and objects are closed, and a dangling key, colon, comma or half literal
 * is cut back to the last complete value. Undefined when no prefix parses.
 */
export function repairJson(text: string): unknown {
  const stack: Frame[] = [];
  let inString = false;
  let stringIsKey = false;
  let escape = false;
  let inToken = false;
  let cut = -1;
  let cutClosers = "";
  const valueDone = (pos: number): void => {
    const top = stack[stack.length - 1];
    if (top !== undefined) top.phase = "after";
    cut = pos;
    cutClosers = closersOf(stack);
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escape) escape = false;
      else if (c === 0x5c) escape = true;
      else if (c === 0x22) {
        inString = false;
        if (stringIsKey) stack[stack.length - 1]!.phase = "colon";
        else valueDone(i + 1);
      }
      continue;
    }
    const structural = c === 0x7b || c === 0x7d || c === 0x5b || c === 0x5d || c === 0x2c || c === 0x3a || c === 0x22;
    const space = c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
    if (inToken && (structural || space)) {
      inToken = false;
      valueDone(i);
    }
    if (space) continue;
    switch (c) {
      case 0x7b: // {
        stack.push({ obj: true, phase: "key" });
        cut = i + 1;
        cutClosers = closersOf(stack);
        break;
      case 0x5b: // [
        stack.push({ obj: false, phase: "value" });
        cut = i + 1;
        cutClosers = closersOf(stack);
        break;
      case 0x7d: // }
      case 0x5d: // ]
        stack.pop();
        valueDone(i + 1);
        break;
      case 0x3a: // :
        if (stack.length > 0) stack[stack.length - 1]!.phase = "value";
        break;
      case 0x2c: // ,
        if (stack.length > 0) {
          const top = stack[stack.length - 1]!;
          top.phase = top.obj ? "key" : "value";
        }
        break;
      case 0x22: {
        const top = stack[stack.length - 1];
        inString = true;
        stringIsKey = top !== undefined && top.obj && top.phase === "key";
        break;
      }
      default:
        inToken = true;
    }
  }
  const candidates: string[] = [];
  if (inString && !stringIsKey) {
    // Drop a dangling backslash or a half \uXXXX escape before closing the string.
    const body = escape ? text.slice(0, -1) : text.replace(/\\u[0-9a-fA-F]{0,3}$/, "");
    candidates.push(`${body}"${closersOf(stack)}`);
  } else if (inToken) {
    candidates.push(text + closersOf(stack));
  }
  if (cut >= 0) candidates.push(text.slice(0, cut) + cutClosers);
  for (const c of candidates) {
    try {
      return JSON.parse(c);
    } catch {
      // try the next, shorter reading
    }
  }
  return undefined;
}
