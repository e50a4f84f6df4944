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
export { GatewayTransport, retryAfterMs } from "./gateway-transport.ts";
export type { GatewayTransportOptions } from "./gateway-transport.ts";
export { dialectFor, dialect, ANTHROPIC, OPENAI_CHAT } from "./dialects/index.ts";
export type { Dialect, DialectName, StreamDecoder } from "./dialects/index.ts";
export { AnthropicDecoder, buildAnthropicBody } from "./dialects/anthropic.ts";
export { OpenAIChatDecoder, buildOpenAIChatBody } from "./dialects/openai-chat.ts";
export { prepareMessages, NO_CONTENT_TEXT, NO_RESULT_TEXT } from "./dialects/hygiene.ts";
export { SseFramer } from "./sse.ts";
export type { SseRecord } from "./sse.ts";
