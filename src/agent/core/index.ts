// The agent core's public API: what the CLI, serve and tests import.

export { Agent, newSession, appendMessage, userMessage, abortableSleep, CANCELLED_TEXT, DEFAULT_MAX_STEPS, DEFAULT_MAX_TOKENS } from "./loop.ts";
export type { Session, AgentOptions, AgentHooks, RunOptions, RunResult, ToolCall } from "./loop.ts";
export { Steering } from "./steering.ts";
export type { QueuedMessage, QueueMode } from "./steering.ts";
export { Accumulator, parseToolInput, repairJson } from "./accumulator.ts";
export { MockTransport, turn } from "./mock-transport.ts";
export type { ScriptedTurn, ScriptedCall } from "./mock-transport.ts";
export { ToolError, runSchemaValidation, formatValidationErrors } from "./tool.ts";
export type { Tool, ToolOutput, ValidationResult } from "./tool.ts";
export { TransportError } from "./transport.ts";
export type { ModelRequest, ModelTransport, TransportErrorOptions } from "./transport.ts";
export type { AgentEvent, StreamEvent, RunStatus } from "./events.ts";
export { emptyUsage } from "./types.ts";
export type { ContentBlock, ImageSource, JsonSchema, Message, StopReason, ToolDef, Usage } from "./types.ts";
