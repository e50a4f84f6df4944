// A tool is data plus one function: name, description, JSON-schema parameters, execute(). The loop validates and
// coerces arguments against `parameters` before execute (runSchemaValidation, in this file), so tools receive typed
// arguments. execute() signals failure by throwing: the message becomes the tool_result text with is_error: true.

import type { ImageSource, JsonSchema } from "./types.ts";

export interface ToolOutput {
  text: string;
  images?: ImageSource[];
  details?: unknown;
  /** Every call of the batch returning terminate ends the run with status "terminated". */
  terminate?: boolean;
}

export interface Tool<A = Record<string, unknown>> {
  name: string;
  description: string;
  /** Advertised as input_schema / parameters. */
  parameters: JsonSchema;
  /** The canonical absolute path this call writes: calls on the same path run one after another, in call order. */
  writeTarget?(args: A): string | undefined;
  /** True for bash: a batch holding it runs one call at a time. */
  exclusive?: boolean;
  execute(args: A, signal: AbortSignal, onProgress: (snapshot: string, details?: unknown) => void): Promise<ToolOutput>;
}

/** A failure whose message is meant for the model as it is. */
export class ToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ToolError";
  }
}
