// The seam between the loop and a model: a ModelTransport yields normalised StreamEvents for one turn.
// GatewayTransport (fetch, both dialects) and MockTransport (scripted, for tests) implement it.

import type { StreamEvent } from "./events.ts";
import type { Message, ToolDef } from "./types.ts";

export interface ModelRequest {
  model: string;
  system?: string;
  messages: readonly Message[];
  /** Sorted by name. */
  tools: readonly ToolDef[];
  max_tokens: number;
  temperature?: number;
  thinking?: { budget_tokens: number };
  tool_choice?: "auto" | "none" | "required" | { name: string };
  cache_key?: string;
}

export interface ModelTransport {
  /** Yields normalised StreamEvents. Throws TransportError. Must stop promptly when `signal` aborts (AbortError). */
  stream(req: ModelRequest, signal: AbortSignal): AsyncIterable<StreamEvent>;
}

export interface TransportErrorOptions {
  retryable: boolean;
  status?: number;
  phase: "connect" | "headers" | "stream";
  requestId?: string;
  /** Milliseconds the server asked to wait (Retry-After), when it said. */
  retryAfterMs?: number;
}

export class TransportError extends Error {
  readonly opts: TransportErrorOptions;
  constructor(message: string, opts: TransportErrorOptions) {
    super(message);
    this.name = "TransportError";
    this.opts = opts;
  }
}
