// `beyond-ai-agent run`: one task, one run. Text mode writes what the seed writes (text deltas to stdout as they
// arrive, `[tool: NAME]` lines, the `[done …]` line on stderr); `--json` writes every event as serve's frame and then
// a result frame. The exit code follows the run's status (SPEC §15).

import type { AgentEvent, RunStatus } from "./core/events.ts";
import type { Runtime } from "./runtime.ts";
import { pushUser } from "./runtime.ts";

export const EXIT_BY_STATUS: Readonly<Record<RunStatus, number>> = {
  done: 0,
  stopped: 0,
  terminated: 0,
  error: 1,
  max_steps: 3,
  refused: 4,
  aborted: 130,
};

export interface RunIo {
  out(s: string): void;
  err(s: string): void;
}

/** Writes to stdout/stderr synchronously enough for a CLI: Bun's process.stdout buffers and flushes at exit. */
export const processIo: RunIo = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

/** One-line rendering for stderr (--verbose): the first 200 characters, newlines shown as ⏎. */
function preview(s: string): string {
  const one = s.replace(/\n/g, "⏎");
  return one.length > 200 ? `${one.slice(0, 200)}…` : one;
}

/** Renders events in text mode. */
export function textRenderer(io: RunIo, verbose: boolean): (e: AgentEvent) => void {
  let atLineStart = true;
  const out = (s: string): void => {
    if (s === "") return;
    io.out(s);
    atLineStart = s.endsWith("\n");
  };
  return (e) => {
    switch (e.kind) {
      case "stream":
        if (e.type === "text_delta") out(e.text);
        else if (e.type === "tool_use_start") out(`\n[tool: ${e.name}]\n`);
        break;
      case "turn_retry":
        // The failed attempt's text is already on stdout; the note tells the reader it is being tried again.
        if (!atLineStart) out("\n");
        io.err(`[retrying turn ${e.step} (attempt ${e.attempt}/3) in ${e.delay_ms} ms: ${e.message}]\n`);
        break;
      case "tool_end":
        if (verbose) io.err(`[tool: ${e.name} ${e.is_error ? "error" : "ok"}] ${preview(e.result)}\n`);
        break;
      case "error":
        io.err(`beyond-ai-agent: ${e.message}\n`);
        break;
      default:
        break;
    }
  };
}

export interface RunOutcome {
  status: RunStatus;
  code: number;
}

/** Runs `task` on the runtime's session. `signal` aborts it (SIGINT). */
export async function runTask(rt: Runtime, task: string, signal: AbortSignal, io: RunIo = processIo): Promise<RunOutcome> {
  const json = rt.cfg.json;
  const render = json ? (e: AgentEvent) => io.out(JSON.stringify({ type: "event", event: e }) + "\n") : textRenderer(io, rt.cfg.verbose);
  pushUser(rt.session, task);
  const result = await rt.agent.run(rt.session, { signal, onEvent: render });
  // This run's tokens (a resumed session's totals carry earlier runs too).
  const input = result.usage.input_tokens;
  const output = result.usage.output_tokens;
  if (json) {
    const frame: Record<string, unknown> = { type: "result", status: result.status, steps: result.steps, input_tokens: input, output_tokens: output };
    if (result.error !== undefined) frame["error"] = result.error;
    io.out(JSON.stringify(frame) + "\n");
  } else {
    io.out("\n");
    if (result.status === "aborted") io.err("[aborted]\n");
    const what = result.status === "done" || result.status === "stopped" || result.status === "terminated" ? "done in" : `${result.status} after`;
    io.err(`[${what} ${result.steps} step(s); ${input} in / ${output} out tokens]\n`);
  }
  return { status: result.status, code: EXIT_BY_STATUS[result.status] };
}

/** The task from `-`: all of stdin, trailing newline removed. */
export async function readTaskFromStdin(): Promise<string> {
  const text = await new Response(Bun.stdin.stream()).text();
  return text.replace(/\r?\n$/, "");
}
