// Response translation (SPEC §12), the non-streaming half: a provider's 2xx JSON body and its error bodies, turned
// into what the client's SDK expects. Formats, from the providers' references:
//   OpenAI chat completion object: https://platform.openai.com/docs/api-reference/chat/object
//   OpenAI error codes/shape:      https://platform.openai.com/docs/guides/error-codes
//   Anthropic Message (response):  https://docs.anthropic.com/en/api/messages
//   Anthropic errors (types by status, `{"type":"error","error":{type,message}}`): https://docs.anthropic.com/en/api/errors
//   Anthropic stop reasons:        https://docs.anthropic.com/en/api/handling-stop-reasons
//
// Usage follows SPEC §12 exactly: OpenAI prompt_tokens = Anthropic input + cache read + cache write, cached_tokens =
// cache read, completion_tokens = output; the reverse takes the cached share out of input_tokens.

import { TranslateError } from "./types.ts";
import type { Dialect } from "./types.ts";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A table lookup that only sees the table's own keys (a provider's "constructor" is not a reason). */
function own(table: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0;
}

/**
 * A provider's 2xx non-stream JSON → the client's dialect. Tolerant of missing fields (a provider that omits usage
 * gets zeros, one without a stop reason gets the ordinary one); throws TranslateError (field "") only when the body
 * is not a JSON object at all, which the pipeline answers as a bad upstream reply.
 */
export function translateResponse(client: Dialect, provider: unknown): Record<string, unknown> {
  if (!isObj(provider)) throw new TranslateError("", "the provider's response is not a JSON object");
  return client === "openai" ? anthropicToOpenai(provider) : openaiToAnthropic(provider);
}

// ---------------------------------------------------------------------------------------------------------------
// Anthropic Message → OpenAI chat.completion

/** Anthropic stop_reason → OpenAI finish_reason. pause_turn (a server-tool turn paused, to be continued by the
 *  caller) → "stop": the turn ended without a limit or a tool call the client must run. refusal → "content_filter":
 *  OpenAI's reason for output withheld by the safety system. model_context_window_exceeded → "length". */
const FINISH: Readonly<Record<string, string>> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_use: "tool_calls",
  pause_turn: "stop",
  refusal: "content_filter",
};

export function openaiUsageFrom(u: unknown): Obj {
  const o = isObj(u) ? u : {};
  const input = count(o.input_tokens);
  const cacheRead = count(o.cache_read_input_tokens);
  const cacheWrite = count(o.cache_creation_input_tokens);
  const output = count(o.output_tokens);
  const prompt = input + cacheRead + cacheWrite;
  return { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output, prompt_tokens_details: { cached_tokens: cacheRead } };
}

function anthropicToOpenai(msg: Obj): Obj {
  let text = "";
  let hasText = false;
  const calls: Obj[] = [];
  const content = Array.isArray(msg.content) ? msg.content : [];
  for (const b of content) {
    if (!isObj(b)) continue;
    if (b.type === "text" && typeof b.text === "string") {
      text += b.text;
      hasText = true;
    } else if (b.type === "tool_use") {
      calls.push({
        id: typeof b.id === "string" ? b.id : "",
        type: "function",
        function: { name: typeof b.name === "string" ? b.name : "", arguments: JSON.stringify(b.input === undefined ? {} : b.input) },
      });
    }
    // thinking / redacted_thinking / server-tool blocks have no chat.completion counterpart.
  }
  const message: Obj = { role: "assistant", content: hasText ? text : null, refusal: null };
  if (calls.length > 0) message.tool_calls = calls;
  const reason = typeof msg.stop_reason === "string" ? (own(FINISH, msg.stop_reason) ?? "stop") : "stop";
  return {
    id: typeof msg.id === "string" ? msg.id : "",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: typeof msg.model === "string" ? msg.model : "",
    choices: [{ index: 0, message, logprobs: null, finish_reason: reason }],
    usage: openaiUsageFrom(msg.usage),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI chat.completion → Anthropic Message

/** OpenAI finish_reason → Anthropic stop_reason; content_filter → refusal (output withheld by a safety system). */
const STOP: Readonly<Record<string, string>> = {
  stop: "end_turn",
  length: "max_tokens",
  tool_calls: "tool_use",
  function_call: "tool_use",
  content_filter: "refusal",
};

export function anthropicUsageFrom(u: unknown): Obj {
  const o = isObj(u) ? u : {};
  const prompt = count(o.prompt_tokens);
  const details = isObj(o.prompt_tokens_details) ? o.prompt_tokens_details : {};
  const cached = Math.min(count(details.cached_tokens), prompt);
  return { input_tokens: prompt - cached, output_tokens: count(o.completion_tokens), cache_creation_input_tokens: 0, cache_read_input_tokens: cached };
}

/** Tool arguments text → the `input` object. A model that wrote invalid JSON keeps its text (as a string input)
 *  rather than losing it: the client sees exactly what the model produced. */
function argumentsInput(v: unknown): unknown {
  if (typeof v !== "string") return isObj(v) ? v : {};
  if (v.trim() === "") return {};
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

function openaiToAnthropic(completion: Obj): Obj {
  const choices = Array.isArray(completion.choices) ? completion.choices : [];
  const choice = isObj(choices[0]) ? choices[0] : {};
  const message = isObj(choice.message) ? choice.message : {};
  const content: Obj[] = [];
  const c = message.content;
  if (typeof c === "string" && c !== "") content.push({ type: "text", text: c });
  else if (Array.isArray(c)) {
    for (const p of c) if (isObj(p) && p.type === "text" && typeof p.text === "string" && p.text !== "") content.push({ type: "text", text: p.text });
  }
  if (typeof message.refusal === "string" && message.refusal !== "") content.push({ type: "text", text: message.refusal });
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      if (!isObj(call)) continue;
      const f = isObj(call.function) ? call.function : {};
      content.push({ type: "tool_use", id: typeof call.id === "string" ? call.id : "", name: typeof f.name === "string" ? f.name : "", input: argumentsInput(f.arguments) });
    }
  }
  const reason = typeof choice.finish_reason === "string" ? (own(STOP, choice.finish_reason) ?? "end_turn") : "end_turn";
  return {
    id: typeof completion.id === "string" ? completion.id : "",
    type: "message",
    role: "assistant",
    model: typeof completion.model === "string" ? completion.model : "",
    content,
    stop_reason: reason,
    stop_sequence: null,
    usage: anthropicUsageFrom(completion.usage),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Error bodies

/** Anthropic's documented error type for a status (https://docs.anthropic.com/en/api/errors). */
function anthropicTypeFor(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 504:
      return "timeout_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

/** OpenAI's error type for a status; the SDK classifies by status, the type is for people and logs. A server-side
 * failure is `server_error`, the type OpenAI itself sends. */
function openaiTypeFor(status: number): string {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

/**
 * The OpenAI error type for an Anthropic error type (the Anthropic type itself goes in `code`), the status's when
 * OpenAI has no word for it. One table for answers (translateErrorBody) and for errors inside a stream (stream.ts,
 * where the status is already 200 and a failure is the server's: pass 500).
 */
export function openaiErrorType(anthropicType: string | undefined, status: number): string {
  return (anthropicType === undefined ? undefined : own(OPENAI_TYPE_OF, anthropicType)) ?? openaiTypeFor(status);
}

/** Anthropic error type → OpenAI type; the ones OpenAI has no word for take the status's. */
const OPENAI_TYPE_OF: Readonly<Record<string, string>> = {
  invalid_request_error: "invalid_request_error",
  request_too_large: "invalid_request_error",
  authentication_error: "authentication_error",
  permission_error: "permission_error",
  not_found_error: "not_found_error",
  rate_limit_error: "rate_limit_error",
  api_error: "server_error",
  overloaded_error: "server_error",
  timeout_error: "server_error",
  billing_error: "insufficient_quota",
};

const MAX_TEXT_MESSAGE = 512;

interface ProviderError {
  message: string;
  type: string | undefined;
  code: string | undefined;
}

/** Whatever the provider sent (its own error JSON, another JSON, HTML, nothing) → a message and maybe a type. */
function readProviderError(status: number, bytes: Uint8Array): ProviderError {
  const text = new TextDecoder().decode(bytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (isObj(parsed)) {
    const e = parsed.error;
    if (isObj(e)) {
      const message = typeof e.message === "string" ? e.message : undefined;
      const type = typeof e.type === "string" ? e.type : undefined;
      const code = typeof e.code === "string" ? e.code : typeof e.code === "number" ? String(e.code) : undefined;
      if (message !== undefined) return { message, type, code };
    } else if (typeof e === "string") return { message: e, type: undefined, code: undefined };
    if (typeof parsed.message === "string") return { message: parsed.message, type: undefined, code: undefined };
    if (typeof parsed.detail === "string") return { message: parsed.detail, type: undefined, code: undefined };
  }
  // Not an error JSON we know (a proxy's HTML page, plain text, empty): say the status, keep a short excerpt.
  const excerpt = text.replace(/\s+/g, " ").trim().slice(0, MAX_TEXT_MESSAGE);
  return { message: excerpt === "" ? `upstream returned HTTP ${status}` : `upstream returned HTTP ${status}: ${excerpt}`, type: undefined, code: undefined };
}

/**
 * Any provider non-2xx body → the client's error JSON (same status, chosen by the pipeline). The provider's message
 * text is kept; the type is the provider's own when the client's dialect has it, else the one for the status.
 */
export function translateErrorBody(client: Dialect, status: number, providerBody: Uint8Array): string {
  const e = readProviderError(status, providerBody);
  if (client === "anthropic") {
    // The provider speaks OpenAI, whose type strings are not Anthropic's: the status decides.
    return JSON.stringify({ type: "error", error: { type: anthropicTypeFor(status), message: e.message } });
  }
  // The provider speaks Anthropic: its type names the cause (overloaded vs rate limited); it stays as `code`.
  const type = openaiErrorType(e.type, status);
  return JSON.stringify({ error: { message: e.message, type, param: null, code: e.type ?? e.code ?? null } });
}
