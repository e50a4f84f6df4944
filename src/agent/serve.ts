// `beyond-ai-agent serve`: the agent driven over stdio (reference §B.9, SPEC §15). One JSON object per line each
// way, split on LF only (never on U+2028/U+2029, which JSON allows raw inside strings). stdout carries only frames
// (`ready`, `ack`, `event`, `response`), written through one queue that awaits drain; everything else goes to stderr.
// While a prompt runs, only abort, steer, follow_up, stop_after_turn, switch_model, get_state, get_messages and a
// prompt with streaming_behavior are served; the rest get "busy". `abort` is answered once the run has gone idle,
// after the prompt's own response, so a client never sees an event of a run after being told it is over.

import type { AgentEvent } from "./core/events.ts";
import type { RunResult } from "./core/loop.ts";
import { type QueuedMessage, type QueueMode, Steering } from "./core/steering.ts";
import { emptyUsage, type ImageSource } from "./core/types.ts";
import { AGENT_NAME, AGENT_VERSION } from "./config.ts";
import { pushUser, type Runtime } from "./runtime.ts";
import { newSessionId } from "./session-file.ts";

export const PROTOCOL_VERSION = 1;
export const BUSY_ERROR = "busy: a prompt is running";
/** How long end of stdin or a signal waits for a cancelled run to go idle before exiting anyway. */
export const SHUTDOWN_WAIT_MS = 5000;

/** Commands served while a prompt runs (prompt itself only with streaming_behavior). */
const ALLOWED_WHILE_BUSY = new Set(["abort", "steer", "follow_up", "stop_after_turn", "switch_model", "get_state", "get_messages", "set_steering_mode", "set_follow_up_mode"]);

type Id = string | number;
type Frame = Record<string, unknown>;

/** Serialises frames to a sink in order; `write` resolves once the sink has taken the line (drain). */
export class FrameWriter {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly sink: (line: string) => Promise<void> | void) {}

  write(frame: Frame): Promise<void> {
    // U+2028/U+2029 are legal raw in JSON but break line readers that treat them as line ends (JavaScript's
    // readline among them); escaped, the frame is the same JSON value and safe for any reader.
    const line = JSON.stringify(frame).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029") + "\n";
    // A sink failure (the client went away) must not reject every later write: frames after it are dropped.
    this.chain = this.chain.then(() => this.sink(line)).catch(() => undefined);
    return this.chain;
  }

  flush(): Promise<void> {
    return this.chain;
  }
}

/** Writes to process.stdout, waiting for 'drain' when the pipe is full. */
export function stdoutSink(line: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(line)) resolve();
    else process.stdout.once("drain", () => resolve());
  });
}

/** The longest command line serve reads (a prompt with a few images at the 4.5 MiB image budget fits easily); a
 * longer one is answered with an error and skipped, so a runaway client cannot grow the agent's memory without end. */
export const MAX_LINE_BYTES = 32 * 1024 * 1024;

/** What jsonLines yields for a line over the cap (its bytes are dropped up to the next LF). */
export const LINE_TOO_LONG = Symbol("line too long");

/** Splits a byte stream on LF (0x0A) only, decoding each whole line as UTF-8 and dropping a trailing CR. A line over
 * `maxBytes` yields LINE_TOO_LONG once and is skipped. */
export async function* jsonLines(stream: ReadableStream<Uint8Array>, maxBytes = MAX_LINE_BYTES): AsyncGenerator<string | typeof LINE_TOO_LONG> {
  const decoder = new TextDecoder();
  let pending: Uint8Array = new Uint8Array(0);
  let skipping = false;
  for await (const chunk of stream) {
    let buf: Uint8Array = chunk;
    if (pending.byteLength > 0) {
      buf = new Uint8Array(pending.byteLength + chunk.byteLength);
      buf.set(pending, 0);
      buf.set(chunk, pending.byteLength);
    }
    let start = 0;
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, start)) {
      if (skipping) skipping = false;
      else if (i - start > maxBytes) yield LINE_TOO_LONG;
      else yield decoder.decode(buf.subarray(start, i)).replace(/\r$/, "");
      start = i + 1;
    }
    pending = skipping ? new Uint8Array(0) : buf.slice(start);
    if (pending.byteLength > maxBytes) {
      yield LINE_TOO_LONG;
      skipping = true;
      pending = new Uint8Array(0);
    }
  }
  if (pending.byteLength > 0 && !skipping) yield decoder.decode(pending).replace(/\r$/, "");
}

class CommandError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function requiredString(cmd: Record<string, unknown>, field: string): string {
  const v = cmd[field];
  if (typeof v !== "string" || v === "") throw new CommandError(`missing \`${field}\``);
  return v;
}

function imagesOf(cmd: Record<string, unknown>): ImageSource[] | undefined {
  const v = cmd["images"];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new CommandError("invalid `images`: expected an array of {media_type, data}");
  return v.map((img, i) => {
    if (!isRecord(img) || typeof img["media_type"] !== "string" || typeof img["data"] !== "string") {
      throw new CommandError(`invalid \`images[${i}]\`: expected {media_type, data}`);
    }
    return { type: "base64", media_type: img["media_type"], data: img["data"] };
  });
}

function queued(cmd: Record<string, unknown>): QueuedMessage {
  const images = imagesOf(cmd);
  const text = requiredString(cmd, "message");
  return images === undefined ? { text } : { text, images };
}

interface RunningPrompt {
  controller: AbortController;
  /** Resolves once the prompt's response frame is queued. */
  done: Promise<void>;
}

export class Server {
  readonly steering = new Steering();
  private running: RunningPrompt | undefined;
  private model: string;
  /** A switch_model received while idle, not yet applied by a run (re-queued if new_session clears the steering). */
  private idleSwitch: { model: string; thinking?: number } | undefined;

  constructor(
    private readonly rt: Runtime,
    private readonly out: FrameWriter,
  ) {
    this.model = rt.model;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  ready(): Promise<void> {
    return this.out.write({ type: "ready", session_id: this.rt.session.id, model: this.model, protocol: PROTOCOL_VERSION, version: AGENT_VERSION });
  }

  private respond(id: Id | undefined, command: string, success: boolean, payload?: { data?: unknown; error?: string }): Promise<void> {
    const f: Frame = { type: "response" };
    if (id !== undefined) f["id"] = id;
    f["command"] = command;
    f["success"] = success;
    if (payload?.data !== undefined) f["data"] = payload.data;
    if (payload?.error !== undefined) f["error"] = payload.error;
    return this.out.write(f);
  }

  /** One input line. Never throws: every problem becomes an error response. */
  handleLine(line: string | typeof LINE_TOO_LONG): void {
    if (line === LINE_TOO_LONG) {
      void this.respond(undefined, "parse", false, { error: `line too long (over ${MAX_LINE_BYTES} bytes); skipped` });
      return;
    }
    if (line.trim() === "") return;
    let cmd: unknown;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      void this.respond(undefined, "parse", false, { error: `invalid JSON: ${(e as Error).message}` });
      return;
    }
    if (!isRecord(cmd)) {
      void this.respond(undefined, "parse", false, { error: "invalid command: expected a JSON object" });
      return;
    }
    const rawId = cmd["id"];
    const id = typeof rawId === "string" || typeof rawId === "number" ? rawId : undefined;
    const type = cmd["type"];
    if (typeof type !== "string" || type === "") {
      void this.respond(id, "parse", false, { error: "missing `type`" });
      return;
    }
    try {
      this.dispatch(id, type, cmd);
    } catch (e) {
      if (e instanceof CommandError) void this.respond(id, type, false, { error: e.message });
      else void this.respond(id, type, false, { error: `internal error: ${(e as Error).message}` });
    }
  }

  private dispatch(id: Id | undefined, type: string, cmd: Record<string, unknown>): void {
    const known = type === "prompt" || type === "new_session" || ALLOWED_WHILE_BUSY.has(type);
    if (!known) throw new CommandError(`unknown command: ${type.length > 64 ? `${type.slice(0, 64)}…` : type}`);
    const sb = cmd["streaming_behavior"];
    if (type === "prompt" && sb !== undefined && sb !== "steer" && sb !== "follow_up") {
      throw new CommandError("invalid `streaming_behavior`: expected steer or follow_up");
    }
    if (this.busy && !ALLOWED_WHILE_BUSY.has(type)) {
      if (!(type === "prompt" && (sb === "steer" || sb === "follow_up"))) throw new CommandError(BUSY_ERROR);
    }
    switch (type) {
      case "prompt":
        return this.prompt(id, cmd);
      case "steer":
      case "follow_up": {
        const m = queued(cmd);
        if (type === "steer") this.steering.steer(m);
        else this.steering.followUp(m);
        void this.respond(id, type, true, { data: { pending: this.steering.pendingCount() } });
        return;
      }
      case "abort":
        return this.abort(id);
      case "stop_after_turn": {
        const requested = this.busy;
        if (requested) this.steering.requestStop();
        void this.respond(id, type, true, { data: { requested } });
        return;
      }
      case "switch_model":
        return this.switchModel(id, cmd);
      case "set_steering_mode":
      case "set_follow_up_mode": {
        const mode = cmd["mode"];
        if (mode !== "one_at_a_time" && mode !== "all") throw new CommandError("invalid `mode`: expected one_at_a_time or all");
        if (type === "set_steering_mode") this.steering.steeringMode = mode as QueueMode;
        else this.steering.followUpMode = mode as QueueMode;
        void this.respond(id, type, true, { data: { mode } });
        return;
      }
      case "get_state":
        void this.respond(id, type, true, { data: this.state() });
        return;
      case "get_messages": {
        const since = cmd["since"];
        if (since !== undefined && (typeof since !== "number" || !Number.isInteger(since) || since < 0)) throw new CommandError("invalid `since`: expected a message index");
        const all = this.rt.session.messages;
        void this.respond(id, type, true, { data: { messages: all.slice(since ?? 0), total: all.length } });
        return;
      }
      case "new_session":
        return this.newSession(id);
    }
  }

  private state(): Record<string, unknown> {
    const s = this.rt.session;
    return {
      session_id: s.id,
      model: this.model,
      is_streaming: this.busy,
      steps: s.steps,
      message_count: s.messages.length,
      pending_messages: this.steering.pendingCount(),
      steer_queue: this.steering.steerTexts(),
      follow_up_queue: this.steering.followUpTexts(),
      steering_mode: this.steering.steeringMode,
      follow_up_mode: this.steering.followUpMode,
      input_tokens: s.usage.input_tokens,
      output_tokens: s.usage.output_tokens,
      cwd: this.rt.workspace.root,
      session_file: this.rt.sessionFile?.path ?? null,
    };
  }

  private prompt(id: Id | undefined, cmd: Record<string, unknown>): void {
    const m = queued(cmd);
    if (this.busy) {
      // streaming_behavior (checked by dispatch): queued like steer / follow_up, a plain response and no ack.
      if (cmd["streaming_behavior"] === "steer") this.steering.steer(m);
      else this.steering.followUp(m);
      void this.respond(id, "prompt", true, { data: { queued: cmd["streaming_behavior"], pending: this.steering.pendingCount() } });
      return;
    }
    const ack: Frame = { type: "ack" };
    if (id !== undefined) ack["id"] = id;
    ack["command"] = "prompt";
    void this.out.write(ack);
    const controller = new AbortController();
    const run = this.runPrompt(id, m, controller.signal);
    this.running = { controller, done: run };
    void run.finally(() => {
      this.running = undefined;
    });
  }

  private async runPrompt(id: Id | undefined, m: QueuedMessage, signal: AbortSignal): Promise<void> {
    const s = this.rt.session;
    let r: RunResult;
    try {
      pushUser(s, m.text, m.images);
      const onEvent = (e: AgentEvent): void => {
        if (e.kind === "model_switched") {
          this.idleSwitch = undefined;
          this.modelSwitched(e.model);
        }
        void this.out.write({ type: "event", event: e });
      };
      r = await this.rt.agent.run(s, { signal, steering: this.steering, onEvent });
    } catch (e) {
      // run() is not meant to throw; if it does, the client still gets its response and the server keeps serving.
      const error = (e as Error).message;
      process.stderr.write(`beyond-ai-agent: run failed: ${error}\n`);
      r = { status: "error", steps: 0, usage: emptyUsage(), error };
    }
    const data = {
      status: r.status,
      steps: r.steps,
      stop_reason: r.stop_reason ?? null,
      refused: r.status === "refused",
      input_tokens: r.usage.input_tokens,
      output_tokens: r.usage.output_tokens,
    };
    const ok = r.status === "done" || r.status === "stopped" || r.status === "terminated" || r.status === "refused";
    if (ok) await this.respond(id, "prompt", true, { data });
    else await this.respond(id, "prompt", false, { data, error: r.status === "aborted" ? "run cancelled" : (r.error ?? r.status) });
  }

  private modelSwitched(model: string): void {
    if (model === this.model) return;
    this.model = model;
    this.rt.sessionFile?.appendModelChange(model);
  }

  private abort(id: Id | undefined): void {
    const r = this.running;
    if (r === undefined) {
      void this.respond(id, "abort", true, { data: { aborted: false } });
      return;
    }
    r.controller.abort();
    // Answered only once the run is idle and its prompt response is out.
    void r.done.then(() => this.respond(id, "abort", true, { data: { aborted: true } }));
  }

  private switchModel(id: Id | undefined, cmd: Record<string, unknown>): void {
    const model = requiredString(cmd, "model");
    const t = cmd["thinking"];
    if (t !== undefined && (typeof t !== "number" || !Number.isInteger(t) || t < 0)) throw new CommandError("invalid `thinking`: expected a token budget");
    // Applied by the loop at its next turn boundary: the current turn's if a run is going, else the next prompt's
    // first (the request stays queued while idle; clearRunScoped only runs at the end of a run).
    const thinking = t as number | undefined;
    this.steering.requestModelSwitch(model, thinking);
    const applies = this.busy ? "next_turn" : "next_prompt";
    if (!this.busy) {
      this.idleSwitch = thinking === undefined ? { model } : { model, thinking };
      this.modelSwitched(model);
    }
    void this.respond(id, "switch_model", true, { data: { model, applies } });
  }

  private newSession(id: Id | undefined): void {
    const s = this.rt.session;
    // Messages and queues go; a model switch asked for while idle stays (it is the model the new session starts on).
    this.steering.clear();
    if (this.idleSwitch !== undefined) this.steering.requestModelSwitch(this.idleSwitch.model, this.idleSwitch.thinking);
    s.messages.length = 0;
    s.steps = 0;
    s.usage = emptyUsage();
    if (this.rt.sessionFile !== undefined) {
      const h = this.rt.sessionFile.reset({ cwd: this.rt.workspace.root, model: this.model, agent: AGENT_NAME });
      s.id = h.id;
    } else {
      s.id = newSessionId();
    }
    void this.respond(id, "new_session", true, { data: { session_id: s.id } });
  }

  /** End of stdin or a signal: abort a running prompt, wait for it (at most SHUTDOWN_WAIT_MS), flush the frames. */
  async shutdown(): Promise<void> {
    const r = this.running;
    if (r !== undefined) {
      r.controller.abort();
      await Promise.race([r.done, Bun.sleep(SHUTDOWN_WAIT_MS)]);
    }
    await this.out.flush();
  }
}

/** Runs the protocol on stdin/stdout until end of stdin (or `stop` resolves). */
export async function serve(rt: Runtime, stop: Promise<void>): Promise<void> {
  // stdout is the protocol: anything a library logs goes to stderr instead.
  const toErr = (...args: unknown[]): void => void process.stderr.write(args.map((a) => (typeof a === "string" ? a : Bun.inspect(a))).join(" ") + "\n");
  console.log = toErr;
  console.info = toErr;
  console.debug = toErr;
  // A client that went away (EPIPE) is the end of the session, not a crash: stop as on end of stdin.
  let clientGone!: () => void;
  const gone = new Promise<void>((resolve) => {
    clientGone = resolve;
  });
  process.stdout.on("error", () => clientGone());
  const out = new FrameWriter(stdoutSink);
  const server = new Server(rt, out);
  await server.ready();
  const reading = (async () => {
    for await (const line of jsonLines(Bun.stdin.stream())) server.handleLine(line);
  })();
  await Promise.race([reading, stop, gone]);
  await server.shutdown();
}
