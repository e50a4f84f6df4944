// The two wire dialects behind one shape, and which one a model speaks.

import type { StreamEvent } from "../events.ts";
import type { SseRecord } from "../sse.ts";
import type { ModelRequest } from "../transport.ts";
import { ANTHROPIC_PATH, AnthropicDecoder, buildAnthropicBody } from "./anthropic.ts";
import { OPENAI_CHAT_PATH, OpenAIChatDecoder, buildOpenAIChatBody } from "./openai-chat.ts";

export type DialectName = "anthropic" | "openai";

export interface StreamDecoder {
  /** Appends the StreamEvents of one SSE record to `out`. Throws TransportError (in-band error, bad event). */
  push(rec: SseRecord, out: StreamEvent[]): void;
  /** The end of the bytes: appends what the end completes, or throws TransportError("stream truncated"). */
  end(out: StreamEvent[]): void;
  readonly complete: boolean;
}

export interface Dialect {
  name: DialectName;
  /** Appended to the base URL. */
  path: string;
  buildBody(req: ModelRequest): Record<string, unknown>;
  decoder(requestId?: string): StreamDecoder;
}

export const ANTHROPIC: Dialect = {
  name: "anthropic",
  path: ANTHROPIC_PATH,
  buildBody: (req) => buildAnthropicBody(req),
  decoder: (rid) => new AnthropicDecoder(rid),
};

export const OPENAI_CHAT: Dialect = {
  name: "openai",
  path: OPENAI_CHAT_PATH,
  buildBody: buildOpenAIChatBody,
  decoder: (rid) => new OpenAIChatDecoder(rid),
};

/** `auto` (or no override): a model starting "claude" or containing "anthropic" speaks Messages, else Chat Completions. */
export function dialectFor(model: string, override?: DialectName | "auto"): DialectName {
  if (override === "anthropic" || override === "openai") return override;
  const m = model.toLowerCase();
  return m.startsWith("claude") || m.includes("anthropic") ? "anthropic" : "openai";
}

export function dialect(name: DialectName): Dialect {
  return name === "anthropic" ? ANTHROPIC : OPENAI_CHAT;
}
