// Request translation (SPEC §12), the pure half: a parsed client body in one dialect → the body for a target of the
// other dialect, plus the client fields that had no counterpart (named in `x-beyond-dropped-params`).
//
// Formats, from the providers' references:
//   OpenAI Chat Completions request: https://platform.openai.com/docs/api-reference/chat/create
//   Anthropic Messages request:      https://docs.anthropic.com/en/api/messages
//   Anthropic tool use (tool_choice, disable_parallel_tool_use, tool_result):
//                                    https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use
//   Anthropic vision (base64 and url image sources): https://docs.anthropic.com/en/docs/build-with-claude/vision
//
// Each side is a table of the top-level fields this module knows → its handler; a field not in the table is dropped
// and named. Wrong types on a mapped field, content we cannot carry, and malformed tool arguments throw
// TranslateError naming the JSON path; nothing else is ever thrown, whatever JSON value arrives.

import { TranslateError } from "./types.ts";
import type { Dialect, TranslateOptions, TranslatedRequest } from "./types.ts";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The dropped field names, in first-seen order, each once. Small lists: a linear scan beats a Set here. */
class Dropped {
  readonly names: string[] = [];
  add(name: string): void {
    if (!this.names.includes(name)) this.names.push(name);
  }
}

function fail(field: string, message: string): never {
  throw new TranslateError(field, message);
}

function str(v: unknown, field: string): string {
  if (typeof v !== "string") fail(field, `${field} must be a string`);
  return v;
}

function num(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(field, `${field} must be a number`);
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") fail(field, `${field} must be a boolean`);
  return v;
}

function posInt(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) fail(field, `${field} must be a positive integer`);
  return v;
}

function arr(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) fail(field, `${field} must be an array`);
  return v;
}

function obj(v: unknown, field: string): Obj {
  if (!isObj(v)) fail(field, `${field} must be an object`);
  return v;
}

/** `stop` (string or array of strings) ↔ `stop_sequences` (array of strings). */
function stopList(v: unknown, field: string): string[] {
  if (typeof v === "string") return [v];
  const a = arr(v, field);
  for (let i = 0; i < a.length; i++) str(a[i], `${field}[${i}]`);
  return a as string[];
}

export function translateRequest(client: Dialect, body: unknown, opts: TranslateOptions): TranslatedRequest {
  if (!isObj(body)) fail("", "the request body must be a JSON object");
  return client === "openai" ? openaiToAnthropic(body, opts) : anthropicToOpenai(body, opts);
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI Chat Completions client → Anthropic Messages target

interface A2State {
  readonly out: Obj;
  readonly dropped: Dropped;
  maxTokens: number | undefined;
  maxCompletionTokens: number | undefined;
  parallel: boolean | undefined;
  toolChoice: Obj | undefined;
  stream: boolean;
  includeUsage: boolean;
}

type OpenaiHandler = (v: unknown, s: A2State, key: string) => void;

/** Fields both dialects spell and mean alike: `model` and `messages` are handled outside the tables, the rest copied. */
const ALIKE: Readonly<Record<string, (v: unknown, s: { readonly out: Obj; stream: boolean }) => void>> = {
  model: () => {}, // replaced by the target's model
  messages: () => {}, // handled after the table (needs the whole list)
  temperature: (v, s) => {
    if (v !== null) s.out.temperature = num(v, "temperature");
  },
  top_p: (v, s) => {
    if (v !== null) s.out.top_p = num(v, "top_p");
  },
  stream: (v, s) => {
    if (v !== null) s.stream = bool(v, "stream");
  },
};

/** OpenAI top-level fields with an Anthropic counterpart (or consumed here). Everything else is dropped and named. */
const FROM_OPENAI: Readonly<Record<string, OpenaiHandler>> = {
  ...ALIKE,
  max_tokens: (v, s) => {
    if (v !== null) s.maxTokens = posInt(v, "max_tokens");
  },
  max_completion_tokens: (v, s) => {
    if (v !== null) s.maxCompletionTokens = posInt(v, "max_completion_tokens");
  },
  stop: (v, s) => {
    if (v !== null) s.out.stop_sequences = stopList(v, "stop");
  },
  stream_options: (v, s) => {
    if (v === null) return;
    const o = obj(v, "stream_options");
    for (const k in o) {
      if (k === "include_usage") {
        if (o[k] !== null) s.includeUsage = bool(o[k], "stream_options.include_usage");
      } else s.dropped.add(`stream_options.${k}`);
    }
  },
  user: (v, s) => {
    if (v !== null) s.out.metadata = { user_id: str(v, "user") };
  },
  tools: (v, s) => {
    if (v === null) return;
    const a = arr(v, "tools");
    const tools: Obj[] = new Array(a.length);
    for (let i = 0; i < a.length; i++) tools[i] = openaiTool(a[i], i, s.dropped);
    s.out.tools = tools;
  },
  tool_choice: (v, s) => {
    if (v === null) return;
    if (v === "auto") s.toolChoice = { type: "auto" };
    else if (v === "none") s.toolChoice = { type: "none" };
    else if (v === "required") s.toolChoice = { type: "any" };
    else if (isObj(v) && v.type === "function") {
      const f = obj(v.function, "tool_choice.function");
      s.toolChoice = { type: "tool", name: str(f.name, "tool_choice.function.name") };
    } else fail("tool_choice", 'tool_choice must be "auto", "none", "required" or {"type":"function","function":{"name":…}}');
  },
  parallel_tool_calls: (v, s) => {
    if (v !== null) s.parallel = bool(v, "parallel_tool_calls");
  },
  n: (v, s, key) => {
    if (v === null) return;
    if (posInt(v, "n") > 1) fail("n", "n > 1 (several choices) cannot be translated to an Anthropic model");
    s.dropped.add(key); // n: 1 is the only thing Anthropic does; named all the same, it had no counterpart
  },
};

function openaiTool(t: unknown, i: number, dropped: Dropped): Obj {
  const at = `tools[${i}]`;
  const o = obj(t, at);
  if (o.type !== "function") fail(`${at}.type`, `${at}.type must be "function" (other tool types cannot be translated)`);
  const f = obj(o.function, `${at}.function`);
  const tool: Obj = { name: str(f.name, `${at}.function.name`) };
  if (f.description !== undefined && f.description !== null) tool.description = str(f.description, `${at}.function.description`);
  // Anthropic requires input_schema; a function without parameters takes none.
  tool.input_schema = f.parameters === undefined || f.parameters === null ? { type: "object", properties: {} } : obj(f.parameters, `${at}.function.parameters`);
  for (const k in f) if (k !== "name" && k !== "description" && k !== "parameters") dropped.add(`tools.function.${k}`);
  for (const k in o) if (k !== "type" && k !== "function") dropped.add(`tools.${k}`);
  return tool;
}

/** `data:<media type>;base64,<data>` → base64 source; http(s) → url source. */
function imageSource(url: string, field: string): Obj {
  if (url.startsWith("data:")) {
    const comma = url.indexOf(",");
    const meta = comma < 0 ? "" : url.slice(5, comma);
    if (comma < 0 || !meta.endsWith(";base64")) fail(field, `${field}: a data URL must be base64 (data:<media type>;base64,<data>)`);
    return { type: "base64", media_type: meta.slice(0, -7), data: url.slice(comma + 1) };
  }
  if (url.startsWith("https://") || url.startsWith("http://")) return { type: "url", url };
  return fail(field, `${field} must be a data: URL or an http(s) URL`);
}

/** OpenAI user/system/tool content (string or parts) → Anthropic content (string or blocks). */
function openaiParts(content: unknown, at: string, allowImages: boolean, dropped: Dropped): string | Obj[] {
  if (typeof content === "string") return content;
  const parts = arr(content, `${at}.content`);
  const blocks: Obj[] = new Array(parts.length);
  for (let j = 0; j < parts.length; j++) {
    const pf = `${at}.content[${j}]`;
    const p = obj(parts[j], pf);
    if (p.type === "text") blocks[j] = { type: "text", text: str(p.text, `${pf}.text`) };
    else if (p.type === "image_url" && allowImages) {
      const iu = obj(p.image_url, `${pf}.image_url`);
      blocks[j] = { type: "image", source: imageSource(str(iu.url, `${pf}.image_url.url`), `${pf}.image_url.url`) };
      for (const k in iu) if (k !== "url") dropped.add(`messages.content.image_url.${k}`);
    } else fail(`${pf}.type`, `${pf}.type ${JSON.stringify(p.type) ?? "(missing)"} cannot be translated`);
  }
  return blocks;
}

/** Text of an OpenAI system/developer message, as Anthropic text blocks. */
function systemBlocks(content: unknown, at: string, into: Obj[]): void {
  if (typeof content === "string") {
    into.push({ type: "text", text: content });
    return;
  }
  const parts = arr(content, `${at}.content`);
  for (let j = 0; j < parts.length; j++) {
    const pf = `${at}.content[${j}]`;
    const p = obj(parts[j], pf);
    if (p.type !== "text") fail(`${pf}.type`, `${pf}.type must be "text" in a system message`);
    into.push({ type: "text", text: str(p.text, `${pf}.text`) });
  }
}

function parseArguments(text: string, field: string): Obj {
  // Some clients send "" for a call without arguments; Anthropic needs an object either way.
  if (text.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail(field, `${field} is not valid JSON`);
  }
  if (!isObj(v)) fail(field, `${field} must be a JSON object`);
  return v;
}

/** The message keys each role's translation reads; any other key on that message is dropped and named. */
function usedKey(role: unknown, k: string): boolean {
  if (k === "role" || k === "content") return true;
  if (role === "assistant") return k === "tool_calls" || k === "function_call";
  return role === "tool" && k === "tool_call_id";
}

function openaiMessages(list: unknown[], system: Obj[], dropped: Dropped): Obj[] {
  const out: Obj[] = [];
  for (let i = 0; i < list.length; i++) {
    const at = `messages[${i}]`;
    const m = obj(list[i], at);
    const role = m.role;
    for (const k in m) if (!usedKey(role, k)) dropped.add(`messages.${k}`);
    if (role === "system" || role === "developer") {
      systemBlocks(m.content, at, system);
    } else if (role === "user") {
      push(out, "user", openaiParts(m.content, at, true, dropped));
    } else if (role === "assistant") {
      const blocks: Obj[] = [];
      const c = m.content;
      if (typeof c === "string") {
        if (c !== "") blocks.push({ type: "text", text: c });
      } else if (c !== null && c !== undefined) {
        const parts = arr(c, `${at}.content`);
        for (let j = 0; j < parts.length; j++) {
          const pf = `${at}.content[${j}]`;
          const p = obj(parts[j], pf);
          if (p.type === "text") blocks.push({ type: "text", text: str(p.text, `${pf}.text`) });
          else if (p.type === "refusal") blocks.push({ type: "text", text: str(p.refusal, `${pf}.refusal`) });
          else fail(`${pf}.type`, `${pf}.type ${JSON.stringify(p.type) ?? "(missing)"} cannot be translated`);
        }
      }
      if (m.tool_calls !== undefined && m.tool_calls !== null) {
        const calls = arr(m.tool_calls, `${at}.tool_calls`);
        for (let j = 0; j < calls.length; j++) {
          const cf = `${at}.tool_calls[${j}]`;
          const call = obj(calls[j], cf);
          if (call.type !== undefined && call.type !== "function") fail(`${cf}.type`, `${cf}.type must be "function"`);
          const f = obj(call.function, `${cf}.function`);
          blocks.push({
            type: "tool_use",
            id: str(call.id, `${cf}.id`),
            name: str(f.name, `${cf}.function.name`),
            input: parseArguments(str(f.arguments, `${cf}.function.arguments`), `${cf}.function.arguments`),
          });
        }
      }
      if (m.function_call !== undefined && m.function_call !== null) fail(`${at}.function_call`, "function_call (deprecated) cannot be translated; use tool_calls");
      // An assistant turn that is only a string keeps its string (and an empty one never becomes an empty text
      // block: Anthropic refuses those).
      const onlyString = typeof c === "string" && (blocks.length === 0 || (blocks.length === 1 && blocks[0]!.type === "text"));
      push(out, "assistant", onlyString ? c : blocks);
    } else if (role === "tool") {
      if (typeof m.tool_call_id !== "string") fail(`${at}.tool_call_id`, `${at}.tool_call_id must be a string`);
      const result: Obj = { type: "tool_result", tool_use_id: m.tool_call_id, content: openaiParts(m.content, at, false, dropped) };
      push(out, "user", [result]);
    } else {
      fail(`${at}.role`, `${at}.role ${JSON.stringify(role) ?? "(missing)"} cannot be translated`);
    }
  }
  return out;
}

/** Anthropic wants alternating roles: a message of the same role as the last one is merged into it. */
function push(out: Obj[], role: "user" | "assistant", content: string | Obj[]): void {
  const last = out[out.length - 1];
  if (last === undefined || last.role !== role) {
    out.push({ role, content });
    return;
  }
  const prev = last.content;
  const merged: Obj[] = typeof prev === "string" ? (prev === "" ? [] : [{ type: "text", text: prev }]) : (prev as Obj[]);
  if (typeof content === "string") {
    if (content !== "") merged.push({ type: "text", text: content });
  } else for (const b of content) merged.push(b);
  last.content = merged;
}

function openaiToAnthropic(body: Obj, opts: TranslateOptions): TranslatedRequest {
  const dropped = new Dropped();
  const s: A2State = {
    out: { model: opts.model },
    dropped,
    maxTokens: undefined,
    maxCompletionTokens: undefined,
    parallel: undefined,
    toolChoice: undefined,
    stream: false,
    includeUsage: false,
  };
  const messages = arr(body.messages, "messages");
  for (const key in body) {
    const h = Object.hasOwn(FROM_OPENAI, key) ? FROM_OPENAI[key] : undefined; // a key like "constructor" is just unknown
    if (h === undefined) dropped.add(key);
    else h(body[key], s, key);
  }
  const system: Obj[] = [];
  const turns = openaiMessages(messages, system, dropped);
  // One system text stays a string (what most callers send); several stay separate text blocks, in order.
  if (system.length === 1) s.out.system = system[0]!.text;
  else if (system.length > 1) s.out.system = system;
  s.out.messages = turns;
  // max_completion_tokens supersedes max_tokens in OpenAI's API; Anthropic requires a value.
  s.out.max_tokens = s.maxCompletionTokens ?? s.maxTokens ?? opts.defaultMaxTokens;
  if (s.parallel === false) {
    const tc = s.toolChoice ?? { type: "auto" };
    // Anthropic's {type:"none"} takes no disable_parallel_tool_use (nothing runs in parallel anyway).
    if (tc.type !== "none") tc.disable_parallel_tool_use = true;
    s.toolChoice = tc;
  }
  if (s.toolChoice !== undefined) s.out.tool_choice = s.toolChoice;
  if (s.stream) s.out.stream = true;
  return { body: s.out, dropped: dropped.names, stream: s.stream, includeUsage: s.stream && s.includeUsage };
}

// ---------------------------------------------------------------------------------------------------------------
// Anthropic Messages client → OpenAI Chat Completions target

interface O2State {
  readonly out: Obj;
  readonly dropped: Dropped;
  stream: boolean;
  toolChoice: unknown;
  parallel: boolean | undefined;
}

type AnthropicHandler = (v: unknown, s: O2State, key: string) => void;

const FROM_ANTHROPIC: Readonly<Record<string, AnthropicHandler>> = {
  ...ALIKE,
  system: () => {}, // handled with the messages (it becomes the first one)
  // max_tokens, not max_completion_tokens: every OpenAI-wire provider takes it (several lack the newer name).
  max_tokens: (v, s) => {
    if (v !== null) s.out.max_tokens = posInt(v, "max_tokens");
  },
  stop_sequences: (v, s) => {
    if (v !== null) s.out.stop = stopList(v, "stop_sequences");
  },
  metadata: (v, s) => {
    if (v === null) return;
    const o = obj(v, "metadata");
    for (const k in o) {
      if (k === "user_id") {
        if (o[k] !== null) s.out.user = str(o[k], "metadata.user_id");
      } else s.dropped.add(`metadata.${k}`);
    }
  },
  tools: (v, s) => {
    if (v === null) return;
    const a = arr(v, "tools");
    const tools: Obj[] = new Array(a.length);
    for (let i = 0; i < a.length; i++) tools[i] = anthropicTool(a[i], i, s.dropped);
    s.out.tools = tools;
  },
  tool_choice: (v, s) => {
    if (v === null) return;
    const o = obj(v, "tool_choice");
    if (o.type === "auto") s.toolChoice = "auto";
    else if (o.type === "any") s.toolChoice = "required";
    else if (o.type === "none") s.toolChoice = "none";
    else if (o.type === "tool") s.toolChoice = { type: "function", function: { name: str(o.name, "tool_choice.name") } };
    else fail("tool_choice.type", 'tool_choice.type must be "auto", "any", "tool" or "none"');
    if (o.disable_parallel_tool_use !== undefined && o.disable_parallel_tool_use !== null) {
      s.parallel = !bool(o.disable_parallel_tool_use, "tool_choice.disable_parallel_tool_use");
    }
  },
};

function anthropicTool(t: unknown, i: number, dropped: Dropped): Obj {
  const at = `tools[${i}]`;
  const o = obj(t, at);
  // Server tools (web_search_…, bash_…, text_editor_…) carry a versioned type; only client tools translate.
  if (o.type !== undefined && o.type !== null && o.type !== "custom") fail(`${at}.type`, `${at}.type ${JSON.stringify(o.type)} cannot be translated`);
  const f: Obj = { name: str(o.name, `${at}.name`) };
  if (o.description !== undefined && o.description !== null) f.description = str(o.description, `${at}.description`);
  f.parameters = obj(o.input_schema, `${at}.input_schema`);
  for (const k in o) if (k !== "type" && k !== "name" && k !== "description" && k !== "input_schema") dropped.add(`tools.${k}`);
  return { type: "function", function: f };
}

function anthropicImageUrl(b: Obj, at: string): Obj {
  const src = obj(b.source, `${at}.source`);
  if (src.type === "base64") {
    return { type: "image_url", image_url: { url: `data:${str(src.media_type, `${at}.source.media_type`)};base64,${str(src.data, `${at}.source.data`)}` } };
  }
  if (src.type === "url") return { type: "image_url", image_url: { url: str(src.url, `${at}.source.url`) } };
  return fail(`${at}.source.type`, `${at}.source.type ${JSON.stringify(src.type) ?? "(missing)"} cannot be translated`);
}

/** Block keys that are the block's own payload; any other key (cache_control, citations…) is dropped and named. */
const BLOCK_KEYS: Readonly<Record<string, readonly string[]>> = {
  text: ["type", "text"],
  image: ["type", "source"],
  tool_use: ["type", "id", "name", "input"],
  tool_result: ["type", "tool_use_id", "content", "is_error"],
};

function dropExtraKeys(b: Obj, type: string, dropped: Dropped): void {
  const keep = Object.hasOwn(BLOCK_KEYS, type) ? BLOCK_KEYS[type] : undefined;
  if (keep === undefined) return;
  for (const k in b) if (!keep.includes(k)) dropped.add(`messages.content.${k}`);
}

/** A tool_result's content (string or text blocks) → an OpenAI tool message's content. */
function toolResultContent(c: unknown, at: string, dropped: Dropped): string | Obj[] {
  if (c === undefined || c === null) return "";
  if (typeof c === "string") return c;
  const blocks = arr(c, `${at}.content`);
  const parts: Obj[] = new Array(blocks.length);
  for (let k = 0; k < blocks.length; k++) {
    const bf = `${at}.content[${k}]`;
    const b = obj(blocks[k], bf);
    // OpenAI tool messages carry text parts only.
    if (b.type !== "text") fail(`${bf}.type`, `${bf}.type ${JSON.stringify(b.type) ?? "(missing)"} cannot be translated (tool results carry text only)`);
    dropExtraKeys(b, "text", dropped);
    parts[k] = { type: "text", text: str(b.text, `${bf}.text`) };
  }
  return parts.length === 1 ? (parts[0]!.text as string) : parts;
}

function anthropicMessages(list: unknown[], out: Obj[], dropped: Dropped): void {
  for (let i = 0; i < list.length; i++) {
    const at = `messages[${i}]`;
    const m = obj(list[i], at);
    for (const k in m) if (k !== "role" && k !== "content") dropped.add(`messages.${k}`);
    const role = m.role;
    if (role !== "user" && role !== "assistant") fail(`${at}.role`, `${at}.role must be "user" or "assistant"`);
    const c = m.content;
    if (typeof c === "string") {
      out.push({ role, content: c });
      continue;
    }
    const blocks = arr(c, `${at}.content`);
    if (role === "user") {
      const parts: Obj[] = [];
      for (let j = 0; j < blocks.length; j++) {
        const bf = `${at}.content[${j}]`;
        const b = obj(blocks[j], bf);
        if (b.type === "text") parts.push({ type: "text", text: str(b.text, `${bf}.text`) });
        else if (b.type === "image") parts.push(anthropicImageUrl(b, bf));
        else if (b.type === "tool_result") {
          // OpenAI wants each result as its own `tool` message right after the assistant's tool calls: results go
          // out first, in order, and the user's other content follows as one user message.
          // is_error: true has no OpenAI counterpart (the result's text still says what failed): named.
          if (b.is_error === true) dropped.add("messages.content.is_error");
          out.push({ role: "tool", tool_call_id: str(b.tool_use_id, `${bf}.tool_use_id`), content: toolResultContent(b.content, bf, dropped) });
        } else fail(`${bf}.type`, `${bf}.type ${JSON.stringify(b.type) ?? "(missing)"} cannot be translated`);
        dropExtraKeys(b, b.type, dropped);
      }
      if (parts.length === 1 && parts[0]!.type === "text") out.push({ role, content: parts[0]!.text });
      else if (parts.length > 0) out.push({ role, content: parts });
    } else {
      let text = "";
      let hasText = false;
      const calls: Obj[] = [];
      for (let j = 0; j < blocks.length; j++) {
        const bf = `${at}.content[${j}]`;
        const b = obj(blocks[j], bf);
        if (b.type === "text") {
          text += str(b.text, `${bf}.text`);
          hasText = true;
        } else if (b.type === "tool_use") {
          const input = b.input === undefined ? {} : b.input;
          calls.push({ id: str(b.id, `${bf}.id`), type: "function", function: { name: str(b.name, `${bf}.name`), arguments: JSON.stringify(input) } });
        } else if (b.type === "thinking" || b.type === "redacted_thinking") {
          // Extended-thinking history has no OpenAI counterpart; the blocks go, named.
          dropped.add(`messages.content.${b.type}`);
          continue;
        } else fail(`${bf}.type`, `${bf}.type ${JSON.stringify(b.type) ?? "(missing)"} cannot be translated`);
        dropExtraKeys(b, b.type, dropped);
      }
      const msg: Obj = { role, content: hasText ? text : null };
      if (calls.length > 0) msg.tool_calls = calls;
      else if (!hasText) msg.content = "";
      out.push(msg);
    }
  }
}

function anthropicSystem(v: unknown, dropped: Dropped): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  const blocks = arr(v, "system");
  const texts: string[] = new Array(blocks.length);
  for (let i = 0; i < blocks.length; i++) {
    const at = `system[${i}]`;
    const b = obj(blocks[i], at);
    if (b.type !== "text") fail(`${at}.type`, `${at}.type must be "text"`);
    for (const k in b) if (k !== "type" && k !== "text") dropped.add(`system.${k}`);
    texts[i] = str(b.text, `${at}.text`);
  }
  // Anthropic's system blocks become one OpenAI system message (a string: every OpenAI-wire provider takes that).
  return texts.join("\n\n");
}

function anthropicToOpenai(body: Obj, opts: TranslateOptions): TranslatedRequest {
  const dropped = new Dropped();
  const s: O2State = { out: { model: opts.model }, dropped, stream: false, toolChoice: undefined, parallel: undefined };
  const list = arr(body.messages, "messages");
  for (const key in body) {
    const h = Object.hasOwn(FROM_ANTHROPIC, key) ? FROM_ANTHROPIC[key] : undefined;
    if (h === undefined) dropped.add(key);
    else h(body[key], s, key);
  }
  const messages: Obj[] = [];
  const system = anthropicSystem(body.system, dropped);
  if (system !== undefined) messages.push({ role: "system", content: system });
  anthropicMessages(list, messages, dropped);
  s.out.messages = messages;
  if (s.toolChoice !== undefined) s.out.tool_choice = s.toolChoice;
  // OpenAI refuses parallel_tool_calls without tools; Anthropic's flag means nothing without them either.
  if (s.parallel === false && Array.isArray(s.out.tools) && s.out.tools.length > 0) s.out.parallel_tool_calls = false;
  if (s.stream) {
    s.out.stream = true;
    // The gateway meters from the provider's usage, which an OpenAI stream sends only when asked.
    s.out.stream_options = { include_usage: true };
  }
  return { body: s.out, dropped: dropped.names, stream: s.stream, includeUsage: false };
}
