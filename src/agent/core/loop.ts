// The agent loop (reference §B.4): one step = one model turn, streamed with mid-stream retries, then the turn's
// tool calls dispatched (≤ 8 groups at once, one at a time when an exclusive tool is in the batch, calls writing the
// same target in call order), their results pushed as one user message, and round again until the model stops, a
// limit is hit, the driver stops or aborts it. run() never throws: every end is a status, an agent_end event and a
// session left valid (each tool_use answered, each prompt closed by an assistant record) for the next run.

import { Accumulator } from "./accumulator.ts";
import type { AgentEvent, RunStatus, StreamEvent } from "./events.ts";
import type { QueuedMessage, Steering } from "./steering.ts";
import { type Tool, type ToolOutput, formatValidationErrors, runSchemaValidation } from "./tool.ts";
import { type ModelRequest, type ModelTransport, TransportError } from "./transport.ts";
import { type ContentBlock, type Message, type StopReason, type ToolDef, type Usage, emptyUsage } from "./types.ts";

export interface Session {
  id: string;
  messages: Message[];
  /** Model turns over the session's life. */
  steps: number;
  /** Usage over the session's life. */
  usage: Usage;
  /** Called for every message the loop appends: the persistence hook. */
  onAppend?(m: Message): void;
}

export function newSession(id: string, messages: Message[] = []): Session {
  return { id, messages, steps: 0, usage: emptyUsage() };
}

/** Appends a message and tells the persistence hook. */
export function appendMessage(session: Session, m: Message): void {
  session.messages.push(m);
  session.onAppend?.(m);
}

/** A user message from queued (prompt, steer, follow-up) messages, text and images in order. */
export function userMessage(msgs: readonly QueuedMessage[], now = Date.now()): Message {
  return { role: "user", content: queuedBlocks(msgs), ts: now };
}

function queuedBlocks(msgs: readonly QueuedMessage[]): ContentBlock[] {
  const out: ContentBlock[] = [];
  for (const m of msgs) {
    if (m.text !== "") out.push({ type: "text", text: m.text });
    for (const img of m.images ?? []) out.push({ type: "image", source: img });
  }
  return out;
}

export interface ToolCall {
  id: string;
  name: string;
  input: Record<string, unknown>;
}

export interface AgentHooks {
  /** Fails closed: a hook that throws blocks the call. */
  beforeToolCall?(ctx: { call: ToolCall; args: Record<string, unknown>; session: Session }): Promise<{ block?: boolean; reason?: string } | undefined | void>;
  /** Fails open. May override the result's text and error flag. */
  afterToolCall?(ctx: { call: ToolCall; args: Record<string, unknown>; result: { text: string; is_error: boolean }; session: Session }): Promise<{ text?: string; is_error?: boolean } | undefined | void>;
  /** Fails open. May rewrite the assistant message before it is pushed. */
  onAssistantMessage?(msg: Message): Promise<Message | undefined | void>;
  /** Fails open (does not stop). */
  shouldStopAfterTurn?(ctx: { message: Message; results: Message; session: Session }): Promise<boolean>;
  /** For tests and policy: sees (and may replace) each request before it is sent. Fails open. */
  beforeRequest?(req: ModelRequest): Promise<ModelRequest | undefined | void>;
}

export interface AgentOptions {
  transport: ModelTransport;
  model: string;
  /** Re-evaluated each turn when a function. */
  system?: string | (() => string);
  tools?: readonly Tool[];
  /** 0 = unbounded. */
  maxSteps?: number;
  maxTokens?: number;
  temperature?: number;
  thinkingBudget?: number;
  maxParallelToolGroups?: number;
  sequentialTools?: boolean;
  midStreamRetries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  toolAbortGraceMs?: number;
  hooks?: AgentHooks;
  cacheKey?: string;
  toolChoice?: ModelRequest["tool_choice"];
  /** Abortable wait used for retry backoff (tests inject a fake clock). Rejects or resolves early on abort. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Epoch ms for message timestamps. */
  now?: () => number;
}

export interface RunOptions {
  signal?: AbortSignal;
  steering?: Steering;
  onEvent?: (e: AgentEvent) => void;
  /** Ours, optional: a user message to append before the first turn (else the caller appended it). */
  prompt?: string | QueuedMessage;
}

export interface RunResult {
  status: RunStatus;
  /** Model turns in this run. */
  steps: number;
  /** Usage of this run's turns. */
  usage: Usage;
  error?: string;
  /** The last assistant turn's stop reason, when a turn finished. */
  stop_reason?: StopReason;
}

export const DEFAULT_MAX_STEPS = 50;
export const DEFAULT_MAX_TOKENS = 4096;
export const MAX_CONCURRENT_TOOL_GROUPS = 8;
export const MID_STREAM_RETRIES = 3;
export const RETRY_BASE_MS = 250;
export const RETRY_MAX_MS = 5000;
/** The longest Retry-After the loop honours between attempts of one turn. */
export const RETRY_AFTER_CAP_MS = 60_000;
export const TOOL_ABORT_GRACE_MS = 2000;
export const CANCELLED_TEXT = "cancelled: tool call aborted before it finished";

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function isAbort(e: unknown, signal: AbortSignal): boolean {
  if (signal.aborted) return true;
  return e instanceof Error && e.name === "AbortError";
}

function addUsage(into: Usage, u: Usage): void {
  into.input_tokens += u.input_tokens;
  into.output_tokens += u.output_tokens;
  into.cache_read_tokens += u.cache_read_tokens;
  into.cache_write_tokens += u.cache_write_tokens;
  if (u.reasoning_tokens !== undefined) into.reasoning_tokens = (into.reasoning_tokens ?? 0) + u.reasoning_tokens;
}

/** One settled tool call, as its tool_result will carry it. */
interface CallResult {
  text: string;
  is_error: boolean;
  images?: ToolOutput["images"];
  terminate: boolean;
}

interface PreparedCall {
  call: ToolCall;
  tool: Tool;
  args: Record<string, unknown>;
  target: string | undefined;
}

const NEVER_ABORTED = new AbortController().signal;

export class Agent {
  transport: ModelTransport;
  /** Mutable: a model switch (steering, or the driver between runs) changes it. */
  model: string;
  system: string | (() => string) | undefined;
  /** Every tool the agent knows; `activeTools` is the subset advertised (a tool-set switch narrows it). */
  readonly tools: readonly Tool[];
  private active: Tool[];
  private toolDefsCache: ToolDef[] | undefined;
  maxSteps: number;
  maxTokens: number;
  temperature: number | undefined;
  thinkingBudget: number | undefined;
  readonly maxParallelToolGroups: number;
  sequentialTools: boolean;
  readonly midStreamRetries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly toolAbortGraceMs: number;
  readonly hooks: AgentHooks;
  cacheKey: string | undefined;
  toolChoice: ModelRequest["tool_choice"];
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private running = false;

  constructor(opts: AgentOptions) {
    this.transport = opts.transport;
    this.model = opts.model;
    this.system = opts.system;
    this.tools = opts.tools ?? [];
    this.active = this.tools.slice();
    this.maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
    this.maxTokens = opts.maxTokens ?? DEFAULT_MAX_TOKENS;
    this.temperature = opts.temperature;
    this.thinkingBudget = opts.thinkingBudget;
    this.maxParallelToolGroups = Math.max(1, opts.maxParallelToolGroups ?? MAX_CONCURRENT_TOOL_GROUPS);
    this.sequentialTools = opts.sequentialTools ?? false;
    this.midStreamRetries = Math.max(0, opts.midStreamRetries ?? MID_STREAM_RETRIES);
    this.retryBaseMs = opts.retryBaseMs ?? RETRY_BASE_MS;
    this.retryMaxMs = opts.retryMaxMs ?? RETRY_MAX_MS;
    this.toolAbortGraceMs = opts.toolAbortGraceMs ?? TOOL_ABORT_GRACE_MS;
    this.hooks = opts.hooks ?? {};
    this.cacheKey = opts.cacheKey;
    this.toolChoice = opts.toolChoice;
    this.sleep = opts.sleep ?? abortableSleep;
    this.now = opts.now ?? Date.now;
  }

  /** True while a run is in progress. */
  get isRunning(): boolean {
    return this.running;
  }

  /** The tools advertised now. */
  get activeTools(): readonly Tool[] {
    return this.active;
  }

  /** Narrows (or restores) the advertised tools to these names; unknown names are ignored. Returns the names kept. */
  setToolSet(names: readonly string[]): string[] {
    const wanted = new Set(names);
    this.active = this.tools.filter((t) => wanted.has(t.name));
    this.toolDefsCache = undefined;
    return this.active.map((t) => t.name).sort();
  }

  /** The advertised definitions, sorted by name so the prompt-cache prefix is stable. Cached until the set changes. */
  toolDefs(): ToolDef[] {
    if (this.toolDefsCache === undefined) {
      this.toolDefsCache = this.active
        .map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    return this.toolDefsCache;
  }

  async run(session: Session, opts: RunOptions = {}): Promise<RunResult> {
    const signal = opts.signal ?? NEVER_ABORTED;
    const steering = opts.steering;
    const onEvent = opts.onEvent;
    const emit = (e: AgentEvent): void => {
      if (onEvent === undefined) return;
      try {
        onEvent(e);
      } catch {
        // A listener's failure is the listener's: the run and the session go on.
      }
    };
    const state: RunState = { steps: 0, usage: emptyUsage(), stop: undefined };
    emit({ kind: "agent_start" });
    if (this.running) {
      // One run at a time per agent (its model and tool set are shared state); the caller gets a status, not a throw.
      const error = "busy: a prompt is running";
      emit({ kind: "error", message: error });
      emit({ kind: "agent_end", steps: 0, status: "error" });
      return { status: "error", steps: 0, usage: state.usage, error };
    }
    this.running = true;
    let result: RunResult;
    try {
      result = await this.runSteps(session, signal, steering, emit, opts.prompt, state, onEvent);
    } catch (e) {
      // Only a bug or a persistence hook that throws lands here; it still ends as a status, never an exception.
      const message = errorMessage(e);
      emit({ kind: "error", message });
      result = { status: "error", steps: state.steps, usage: state.usage, error: message };
    }
    if (steering !== undefined) {
      // A switch asked for after the last boundary still applies to the next prompt (never silently lost).
      this.applySwitches(steering, emit);
      steering.clearRunScoped();
    }
    if (state.stop !== undefined) result.stop_reason = state.stop;
    this.running = false;
    emit({ kind: "agent_end", steps: result.steps, status: result.status });
    return result;
  }

  private applySwitches(steering: Steering, emit: (e: AgentEvent) => void): void {
    const sw = steering.takeModelSwitch();
    if (sw !== undefined) {
      this.model = sw.model;
      if (sw.thinking !== undefined) this.thinkingBudget = sw.thinking > 0 ? sw.thinking : undefined;
      emit(sw.thinking === undefined ? { kind: "model_switched", model: sw.model } : { kind: "model_switched", model: sw.model, thinking: sw.thinking });
    }
    const ts = steering.takeToolSet();
    if (ts !== undefined) emit({ kind: "tools_updated", tool_names: this.setToolSet(ts) });
  }

  private async runSteps(
    session: Session,
    signal: AbortSignal,
    steering: Steering | undefined,
    emit: (e: AgentEvent) => void,
    prompt: string | QueuedMessage | undefined,
    state: RunState,
    onEvent: ((e: AgentEvent) => void) | undefined,
  ): Promise<RunResult> {
    const end = (status: RunStatus, error?: string): RunResult => {
      if (error !== undefined) emit({ kind: "error", message: error });
      return error === undefined ? { status, steps: state.steps, usage: state.usage } : { status, steps: state.steps, usage: state.usage, error };
    };

    if (prompt !== undefined) {
      appendMessage(session, userMessage([typeof prompt === "string" ? { text: prompt } : prompt], this.now()));
    }
    // Messages queued while idle are drained at the first boundary: steers join the prompt; when nothing waits for
    // an answer, a follow-up becomes the prompt.
    if (steering !== undefined && !signal.aborted) {
      const steers = steering.drainSteer();
      if (steers.length > 0) {
        appendMessage(session, userMessage(steers, this.now()));
        emit({ kind: "steered", messages: steers.length, lane: "steer" });
      } else if (!awaitsAnswer(session)) {
        const follow = steering.drainFollowUp();
        if (follow.length > 0) {
          appendMessage(session, userMessage(follow, this.now()));
          emit({ kind: "steered", messages: follow.length, lane: "follow_up" });
        }
      }
    }
    if (!awaitsAnswer(session)) return end("done");

    for (;;) {
      // 2. Turn boundary.
      if (steering !== undefined) this.applySwitches(steering, emit);
      if (signal.aborted) {
        this.closeAborted(session);
        return end("aborted");
      }
      if (this.maxSteps > 0 && state.steps >= this.maxSteps) {
        return end("max_steps", `reached max steps (${this.maxSteps}) without completion`);
      }

      // 3. The request.
      const step = state.steps + 1;
      emit({ kind: "turn_start", step });
      let req: ModelRequest = {
        model: this.model,
        messages: session.messages,
        tools: this.toolDefs(),
        max_tokens: this.maxTokens,
      };
      const system = typeof this.system === "function" ? this.system() : this.system;
      if (system !== undefined && system !== "") req.system = system;
      if (this.temperature !== undefined) req.temperature = this.temperature;
      if (this.thinkingBudget !== undefined && this.thinkingBudget > 0) req.thinking = { budget_tokens: this.thinkingBudget };
      if (this.toolChoice !== undefined) req.tool_choice = this.toolChoice;
      if (this.cacheKey !== undefined) req.cache_key = this.cacheKey;
      if (this.hooks.beforeRequest !== undefined) {
        try {
          req = (await this.hooks.beforeRequest(req)) ?? req;
        } catch {
          // fails open
        }
      }

      // 4. Stream the turn, retrying a retryable failure with a fresh accumulator.
      const streamed = await this.streamTurn(req, signal, step, emit, onEvent !== undefined);
      if (streamed.kind === "aborted") {
        const partial = streamed.acc.finish(req.model, this.now()).message;
        partial.aborted = true;
        delete partial.stop_reason;
        this.pushTurn(session, partial, state);
        return end("aborted");
      }
      if (streamed.kind === "error") {
        const partial = streamed.acc.finish(req.model, this.now()).message;
        partial.error_message = streamed.message;
        if (partial.request_id === undefined && streamed.requestId !== undefined) partial.request_id = streamed.requestId;
        delete partial.stop_reason;
        this.pushTurn(session, partial, state);
        return end("error", streamed.message);
      }

      // 5. The turn's message.
      const { message: raw, malformed } = streamed.acc.finish(req.model, this.now());
      let message = raw;
      if (this.hooks.onAssistantMessage !== undefined) {
        try {
          message = (await this.hooks.onAssistantMessage(raw)) ?? raw;
        } catch {
          message = raw;
        }
      }
      this.pushTurn(session, message, state);
      const stop = message.stop_reason ?? "end_turn";
      state.stop = stop;
      emit(message.request_id === undefined ? { kind: "turn_end", stop_reason: stop, step } : { kind: "turn_end", stop_reason: stop, step, request_id: message.request_id });

      // 6. Refusal is terminal, whatever else the turn holds; the queues stay as they are.
      if (stop === "refusal") return end("refused");

      // 7./8. No calls: stop, or take the next queued message.
      const calls: ToolCall[] = [];
      for (const b of message.content) if (b.type === "tool_use") calls.push({ id: b.id, name: b.name, input: b.input });
      if (calls.length === 0) {
        if (steering === undefined) return end("done");
        if (steering.stopRequested) return end("stopped");
        let lane: "steer" | "follow_up" = "steer";
        let drained = steering.drainSteer();
        if (drained.length === 0) {
          lane = "follow_up";
          drained = steering.drainFollowUp();
        }
        if (drained.length === 0) return end("done");
        appendMessage(session, userMessage(drained, this.now()));
        emit({ kind: "steered", messages: drained.length, lane });
        continue;
      }

      // 9. Dispatch.
      const outcome = await this.dispatch(session, calls, malformed, signal, emit);
      const content: ContentBlock[] = [];
      for (let i = 0; i < calls.length; i++) {
        const r = outcome.results[i]!;
        const block: ContentBlock = { type: "tool_result", tool_use_id: calls[i]!.id, content: r.text, is_error: r.is_error };
        if (r.images !== undefined && r.images.length > 0) block.images = r.images;
        content.push(block);
      }
      let steered = 0;
      if (!outcome.aborted && steering !== undefined) {
        const steers = steering.drainSteer();
        steered = steers.length;
        for (const b of queuedBlocks(steers)) content.push(b);
      }
      const results: Message = { role: "user", content, ts: this.now() };
      appendMessage(session, results);
      if (steered > 0) emit({ kind: "steered", messages: steered, lane: "steer" });
      if (outcome.aborted) return end("aborted");
      if (outcome.results.every((r) => r.terminate)) return end("terminated");
      if (steering?.stopRequested === true) return end("stopped");
      if (this.hooks.shouldStopAfterTurn !== undefined) {
        let stopNow = false;
        try {
          stopNow = await this.hooks.shouldStopAfterTurn({ message, results, session });
        } catch {
          stopNow = false;
        }
        if (stopNow) return end("stopped");
      }
    }
  }

  private pushTurn(session: Session, message: Message, state: RunState): void {
    appendMessage(session, message);
    if (message.usage !== undefined) {
      addUsage(session.usage, message.usage);
      addUsage(state.usage, message.usage);
    }
    session.steps++;
    state.steps++;
  }

  /** An abort at a boundary right after a prompt closes that prompt with an empty aborted record. */
  private closeAborted(session: Session): void {
    const last = session.messages[session.messages.length - 1];
    if (last === undefined || last.role !== "user") return;
    if (last.content.some((b) => b.type === "tool_result")) return;
    appendMessage(session, { role: "assistant", content: [], aborted: true, model: this.model, ts: this.now() });
  }

  private async streamTurn(
    req: ModelRequest,
    signal: AbortSignal,
    step: number,
    emit: (e: AgentEvent) => void,
    listening: boolean,
  ): Promise<{ kind: "ok" | "aborted"; acc: Accumulator } | { kind: "error"; acc: Accumulator; message: string; requestId?: string }> {
    for (let attempt = 0; ; attempt++) {
      const acc = new Accumulator();
      try {
        for await (const ev of this.transport.stream(req, signal)) {
          acc.push(ev);
          if (listening) emit(streamEvent(ev)); // no per-delta allocation when nobody listens
        }
        if (signal.aborted) return { kind: "aborted", acc };
        return { kind: "ok", acc };
      } catch (e) {
        if (isAbort(e, signal)) return { kind: "aborted", acc };
        const message = errorMessage(e);
        const retryable = e instanceof TransportError && e.opts.retryable;
        if (!retryable || attempt >= this.midStreamRetries) {
          const requestId = e instanceof TransportError ? e.opts.requestId : undefined;
          return requestId === undefined ? { kind: "error", acc, message } : { kind: "error", acc, message, requestId };
        }
        const asked = e.opts.retryAfterMs;
        const delay = asked !== undefined ? Math.min(Math.max(0, asked), RETRY_AFTER_CAP_MS) : Math.min(this.retryBaseMs * 2 ** attempt, this.retryMaxMs);
        emit({ kind: "turn_retry", step, attempt: attempt + 1, delay_ms: delay, message });
        await this.sleep(delay, signal);
        if (signal.aborted) return { kind: "aborted", acc: new Accumulator() };
      }
    }
  }

  private async dispatch(
    session: Session,
    calls: readonly ToolCall[],
    malformed: ReadonlyMap<string, string>,
    signal: AbortSignal,
    emit: (e: AgentEvent) => void,
  ): Promise<{ results: CallResult[]; aborted: boolean }> {
    const results: (CallResult | undefined)[] = new Array<CallResult | undefined>(calls.length);
    const settle = (i: number, r: CallResult): void => {
      if (results[i] !== undefined) return; // a late settle after the abort grace is dropped
      results[i] = r;
      const c = calls[i]!;
      emit({ kind: "tool_end", id: c.id, name: c.name, result: r.text, is_error: r.is_error });
    };
    for (const c of calls) emit({ kind: "tool_start", id: c.id, name: c.name, input: c.input });

    // Phase 1 (call order): what fails before running.
    const runnable: { index: number; prep: PreparedCall }[] = [];
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!;
      const tool = this.active.find((t) => t.name === call.name);
      if (tool === undefined) {
        settle(i, { text: `Tool ${call.name} not found`, is_error: true, terminate: false });
        continue;
      }
      const bad = malformed.get(call.id);
      if (bad !== undefined) {
        settle(i, { text: `Invalid JSON arguments for tool ${call.name}: ${bad}`, is_error: true, terminate: false });
        continue;
      }
      const valid = runSchemaValidation(tool.parameters, call.input);
      if (!valid.ok) {
        settle(i, { text: formatValidationErrors(call.name, valid.errors), is_error: true, terminate: false });
        continue;
      }
      const args = valid.value;
      if (this.hooks.beforeToolCall !== undefined) {
        let verdict: { block?: boolean; reason?: string } | undefined | void;
        try {
          verdict = await this.hooks.beforeToolCall({ call, args, session });
        } catch {
          verdict = { block: true };
        }
        if (verdict?.block === true) {
          settle(i, { text: verdict.reason ?? "Tool execution was blocked", is_error: true, terminate: false });
          continue;
        }
      }
      let target: string | undefined;
      try {
        target = tool.writeTarget?.(args);
      } catch {
        target = undefined; // the call itself will fail with the tool's own message
      }
      runnable.push({ index: i, prep: { call, tool, args, target } });
    }

    // Phase 2: groups by write target, run with bounded concurrency, each group in call order.
    const groups: { index: number; prep: PreparedCall }[][] = [];
    const byTarget = new Map<string, { index: number; prep: PreparedCall }[]>();
    let exclusive = this.sequentialTools;
    for (const r of runnable) {
      if (r.prep.tool.exclusive === true) exclusive = true;
      const t = r.prep.target;
      if (t === undefined) {
        groups.push([r]);
        continue;
      }
      const g = byTarget.get(t);
      if (g !== undefined) g.push(r);
      else {
        const ng = [r];
        byTarget.set(t, ng);
        groups.push(ng);
      }
    }
    const limit = exclusive ? 1 : this.maxParallelToolGroups;
    let nextGroup = 0;
    const runCall = async (index: number, prep: PreparedCall): Promise<void> => {
      const { call, tool, args } = prep;
      let r: CallResult;
      try {
        const out = await tool.execute(args, signal, (snapshot, details) => {
          if (results[index] !== undefined) return;
          emit(details === undefined ? { kind: "tool_progress", id: call.id, name: call.name, snapshot } : { kind: "tool_progress", id: call.id, name: call.name, snapshot, details });
        });
        // A tool that breaks its contract (no output object, no text) still yields a well-formed result.
        const text = typeof out?.text === "string" ? out.text : String(out?.text ?? "");
        r = { text, is_error: false, terminate: out?.terminate === true };
        if (Array.isArray(out?.images) && out.images.length > 0) r.images = out.images;
      } catch (e) {
        r = { text: errorMessage(e), is_error: true, terminate: false };
      }
      if (this.hooks.afterToolCall !== undefined) {
        try {
          const o = await this.hooks.afterToolCall({ call, args, result: { text: r.text, is_error: r.is_error }, session });
          if (o?.text !== undefined) r.text = o.text;
          if (o?.is_error !== undefined) r.is_error = o.is_error;
        } catch {
          // fails open
        }
      }
      settle(index, r);
    };
    const worker = async (): Promise<void> => {
      while (nextGroup < groups.length) {
        const g = groups[nextGroup++]!;
        for (const { index, prep } of g) {
          if (signal.aborted) return; // never start a call after an abort
          await runCall(index, prep);
        }
      }
    };
    const workers: Promise<void>[] = [];
    for (let w = 0; w < Math.min(limit, groups.length); w++) workers.push(worker());
    const all = Promise.all(workers);

    // Phase 3: an abort waits at most the grace for calls still running, then cancels the rest.
    let aborted = signal.aborted;
    if (workers.length > 0) {
      let onAbort: (() => void) | undefined;
      const abortSeen = new Promise<"abort">((resolve) => {
        if (signal.aborted) return resolve("abort");
        onAbort = () => resolve("abort");
        signal.addEventListener("abort", onAbort, { once: true });
      });
      const first = await Promise.race([all.then(() => "done" as const), abortSeen]);
      if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
      if (first === "abort") {
        aborted = true;
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.toolAbortGraceMs)))]);
        clearTimeout(timer);
      }
    }
    if (signal.aborted) aborted = true;
    for (let i = 0; i < calls.length; i++) {
      if (results[i] === undefined) settle(i, { text: CANCELLED_TEXT, is_error: true, terminate: false });
    }
    return { results: results as CallResult[], aborted };
  }
}

interface RunState {
  steps: number;
  usage: Usage;
  stop: StopReason | undefined;
}

/** True when the session's last message is a user turn the model has not answered. */
function awaitsAnswer(session: Session): boolean {
  const last = session.messages[session.messages.length - 1];
  return last !== undefined && last.role === "user";
}

function streamEvent(ev: StreamEvent): AgentEvent {
  return { kind: "stream", ...ev };
}
