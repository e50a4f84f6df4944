// The events a turn's stream yields (StreamEvent, dialect-neutral) and the events a run emits (AgentEvent, the
// `event` of serve's and `run --json`'s frames).

import type { StopReason, Usage } from "./types.ts";

export type StreamEvent =
  | { type: "message_start"; request_id?: string }
  | { type: "text_delta"; index: number; text: string }
  | { type: "thinking_delta"; index: number; text: string }
  | { type: "signature_delta"; index: number; signature: string }
  | { type: "redacted_thinking"; index: number; data: string }
  | { type: "tool_use_start"; index: number; id: string; name: string }
  | { type: "input_json_delta"; index: number; partial_json: string }
  | { type: "content_block_stop"; index: number }
  | ({ type: "usage" } & Partial<Usage>)
  | { type: "message_stop"; stop_reason: StopReason };

export type RunStatus = "done" | "refused" | "stopped" | "terminated" | "max_steps" | "aborted" | "error";

export type AgentEvent =
  | { kind: "agent_start" }
  | { kind: "turn_start"; step: number }
  | ({ kind: "stream" } & StreamEvent)
  | { kind: "tool_start"; id: string; name: string; input: unknown }
  | { kind: "tool_progress"; id: string; name: string; snapshot: string; details?: unknown }
  | { kind: "tool_end"; id: string; name: string; result: string; is_error: boolean }
  | { kind: "turn_end"; stop_reason: StopReason; step: number; request_id?: string }
  /** Ours: the step's partial deltas so far are void; the turn is tried again after `delay_ms`. */
  | { kind: "turn_retry"; step: number; attempt: number; delay_ms: number; message: string }
  | { kind: "steered"; messages: number; lane: "steer" | "follow_up" }
  /** Emitted for every end, abort and error included. */
  | { kind: "agent_end"; steps: number; status: RunStatus }
  | { kind: "error"; message: string }
  | { kind: "model_switched"; model: string; thinking?: number }
  | { kind: "tools_updated"; tool_names: string[] };
