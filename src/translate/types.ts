// The contract between the translation modules and the pipeline (dialect translation: an OpenAI Chat Completions
// client reaching an Anthropic Messages target, and an Anthropic Messages client reaching an OpenAI-wire target).
// The pipeline decides *when* to translate (a virtual-model target whose dialect differs from the client's); the
// modules under src/translate/ decide *how*, as pure functions over parsed JSON and byte chunks, so each is tested
// on its own against golden files and the pipeline never learns a field name of the other dialect.

import type { Dialect } from "../routing/providers.ts";

export type { Dialect };

/** A request the translator cannot carry: answered 400 in the client's dialect, naming the field (a JSON path). */
export class TranslateError extends Error {
  constructor(
    /** Where in the client's body, e.g. `messages[2].content[0].type`. */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "TranslateError";
  }
}

export interface TranslateOptions {
  /** The target's model (what goes in the translated body's `model`). */
  readonly model: string;
  /** `max_tokens` for an Anthropic target when the OpenAI client named none (config `translate_default_max_tokens`). */
  readonly defaultMaxTokens: number;
}

export interface TranslatedRequest {
  /** The body for the target, in the target's dialect, ready for JSON.stringify. */
  readonly body: Record<string, unknown>;
  /** Client fields with no counterpart, dropped; the pipeline names them in `x-beyond-dropped-params` (in order, unique). */
  readonly dropped: readonly string[];
  /** The client asked for a stream. */
  readonly stream: boolean;
  /** An OpenAI client asked for `stream_options.include_usage` (the translated stream then ends with the usage chunk).
   *  Always false for an Anthropic client (its stream always carries usage). */
  readonly includeUsage: boolean;
}

/** What a translated stream needs to know about its request. */
export interface StreamOptions {
  /** The OpenAI client asked for the final usage chunk. */
  readonly includeUsage: boolean;
  /** The model name the client sees when the provider's events do not name one. */
  readonly model: string;
}

/** Translates one SSE response stream chunk by chunk (chunk boundaries anywhere, even inside a UTF-8 sequence).
 *  State is bounded by the open content blocks / tool calls; nothing is held beyond one incomplete event. */
export interface StreamTranslator {
  /** Bytes for the client from this chunk of provider bytes (possibly empty). */
  push(chunk: Uint8Array): Uint8Array;
  /** The provider's stream ended: whatever the client still needs (e.g. a final `[DONE]`), possibly empty. */
  end(): Uint8Array;
}
