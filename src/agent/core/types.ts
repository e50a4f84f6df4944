// The agent's message model (its own, shaped like Anthropic Messages, which both dialect adapters map to and from).
// JSON on the wire and on disk is snake_case. Web APIs only: nothing under src/agent/core imports Bun, node:* or any
// gateway module, so the core could run in a browser or a worker.

export type StopReason = "end_turn" | "tool_use" | "max_tokens" | "stop_sequence" | "refusal" | "other";

export interface ImageSource {
  type: "base64";
  media_type: string;
  data: string;
}

export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "redacted_thinking"; data: string }
  | { type: "image"; source: ImageSource }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> }
  | { type: "tool_result"; tool_use_id: string; content: string; is_error: boolean; images?: ImageSource[] };

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens?: number;
}

export interface Message {
  role: "user" | "assistant";
  content: ContentBlock[];
  // assistant only:
  model?: string;
  stop_reason?: StopReason;
  usage?: Usage;
  /** The turn ended with a transport error after its retries (partial content kept). */
  error_message?: string;
  /** The turn was cut by an abort. */
  aborted?: boolean;
  /** The gateway's x-beyond-request-id of the attempt that answered: joins this turn to its ai.usage line. */
  request_id?: string;
  /** Epoch milliseconds. */
  ts: number;
}

/** The JSON-schema subset tools declare (type object at the root); validated and coerced by tool.ts. */
export interface JsonSchema {
  type?: "object" | "string" | "number" | "integer" | "boolean" | "array" | "null" | readonly string[];
  description?: string;
  properties?: Readonly<Record<string, JsonSchema>>;
  required?: readonly string[];
  items?: JsonSchema;
  enum?: readonly unknown[];
  minimum?: number;
  maximum?: number;
  minItems?: number;
  additionalProperties?: boolean | JsonSchema;
  anyOf?: readonly JsonSchema[];
  default?: unknown;
}

/** A tool as the model sees it (advertised as Anthropic `input_schema` / OpenAI `parameters`). */
export interface ToolDef {
  name: string;
  description: string;
  input_schema: JsonSchema;
}

export function emptyUsage(): Usage {
  return { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
}
