// bash (reference §B.8): `<shell> -c command` in the workspace root, as the leader of its own process group
// (detached), with the agent's keys removed from its environment. stdout and stderr go, in arrival order, into one
// OutputAccumulator; the model gets the tail. On timeout or abort the whole group is killed (SIGKILL to -pgid), so
// a backgrounded child dies with its shell. Every group that may still have members is tracked, and
// killAllToolProcesses() (also run on process exit) kills them all.

import { existsSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename } from "node:path";
import { ToolError, type Tool } from "../core/tool.ts";
import { optNum, str } from "./args.ts";
import { OutputAccumulator } from "./output-accumulator.ts";
import { scrubbedEnv, type Workspace } from "./workspace.ts";

export const BASH_DEFAULT_TIMEOUT_SECS = 1800;
/** setTimeout's ceiling (2^31 − 1 ms), in whole seconds. */
export const BASH_MAX_TIMEOUT_SECS = 2_147_483;
const PROGRESS_THROTTLE_MS = 100;
/** After the shell exits, how long pipes held by its leftover children may still deliver output. */
const POST_EXIT_GRACE_MS = 100;

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Kills every process group a bash call started that may still be alive (the CLI's exit path; also on "exit"). */
export function killAllToolProcesses(): void {
  for (const pid of liveGroups) killGroup(pid);
  liveGroups.clear();
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

let shellPath: string | undefined;
function shell(): string {
  shellPath ??= existsSync("/bin/bash") ? "/bin/bash" : (Bun.which("bash") ?? "sh");
  return shellPath;
}

export interface BashOptions {
  /** Default timeout of a call that gives none (seconds). */
  timeoutSecs?: number;
  /** Spill directory of the full output (default os.tmpdir()). */
  tmpDir?: string;
  /** Environment the command starts from, before scrubbing (default process.env). */
  env?: Record<string, string | undefined>;
}

const TIMEOUT_ERROR = `Invalid timeout: must be a positive number of seconds (max ${BASH_MAX_TIMEOUT_SECS})`;

export function bashTool(ws: Workspace, opts: BashOptions = {}): Tool {
  const defaultTimeout = opts.timeoutSecs ?? BASH_DEFAULT_TIMEOUT_SECS;
  return {
    name: "bash",
    description:
      `Run a shell command (\`${basename(shell())} -c\`) in the workspace root and return its combined stdout and stderr ` +
      `(the last 2000 lines or 50KB; the full output is saved to a file named in the result when it is longer). ` +
      `The command runs with no stdin, is killed with its whole process group after \`timeout\` seconds ` +
      `(default ${defaultTimeout}), and a non-zero exit code is an error. It is not confined to the workspace: it ` +
      `can read and change anything the agent's user can, so prefer read, write, edit, ls, grep and find for files.`,
    parameters: {
      type: "object",
      properties: {
        command: { type: "string", description: "The command line to run" },
        timeout: { type: "number", description: `Timeout in seconds (default ${defaultTimeout})` },
      },
      required: ["command"],
    },
    exclusive: true,
    async execute(args, signal, onProgress) {
      const command = str(args, "command");
      const timeoutSecs = readTimeout(args, defaultTimeout);
      if (signal.aborted) throw new ToolError("Command aborted");
      return runCommand(command, timeoutSecs, ws.root, signal, onProgress, opts);
    },
  };
}

function readTimeout(args: Record<string, unknown>, dflt: number): number {
  let secs: number | undefined;
  try {
    secs = optNum(args, "timeout");
    if (secs === undefined) {
      const ms = optNum(args, "timeout_ms");
      if (ms !== undefined) secs = ms / 1000;
    }
  } catch {
    throw new ToolError(TIMEOUT_ERROR);
  }
  if (secs === undefined) return dflt;
  if (!(secs > 0) || secs > BASH_MAX_TIMEOUT_SECS) throw new ToolError(TIMEOUT_ERROR);
  return secs;
}

async function runCommand(
  command: string,
  timeoutSecs: number,
  cwd: string,
  signal: AbortSignal,
  onProgress: (snapshot: string, details?: unknown) => void,
  opts: BashOptions,
) {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", killAllToolProcesses);
  }
  // Forget groups whose last member is gone, so that a later kill cannot reach a new group that reused the id.
  for (const g of liveGroups) if (!groupAlive(g)) liveGroups.delete(g);
  const acc = new OutputAccumulator({ tmpDir: opts.tmpDir });
  onProgress("");
  let proc;
  try {
    proc = Bun.spawn([shell(), "-c", command], {
      cwd,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: scrubbedEnv(opts.env ?? process.env),
      detached: true, // its own process group: pgid == pid, so -pid reaches every process it starts
    });
  } catch (e) {
    // The workspace root removed under us, no shell, no processes left: say so rather than throw a stack.
    const code = (e as { code?: string }).code;
    throw new ToolError(`Cannot run the command: ${code ?? (e instanceof Error ? e.message : String(e))}`);
  }
  const pid = proc.pid;
  liveGroups.add(pid);

  let ended: "timeout" | "abort" | undefined;
  const kill = (why: "timeout" | "abort") => {
    if (ended === undefined) ended = why;
    killGroup(pid);
  };
  const timer = setTimeout(() => kill("timeout"), Math.max(1, Math.round(timeoutSecs * 1000)));
  const onAbort = () => kill("abort");
  signal.addEventListener("abort", onAbort, { once: true });

  // Progress: at most one snapshot per PROGRESS_THROTTLE_MS; a chunk inside the window schedules one at its end.
  let lastEmit = 0;
  let pending: ReturnType<typeof setTimeout> | undefined;
  const emit = () => {
    pending = undefined;
    lastEmit = performance.now();
    const s = acc.snapshot();
    const text = s.notice ? `${s.text}\n\n${s.notice}` : s.text;
    onProgress(text, s.truncation ? { truncation: s.truncation, full_output_path: s.fullOutputPath } : {});
  };
  const onChunk = (chunk: Uint8Array) => {
    acc.push(chunk);
    if (pending !== undefined) return;
    const wait = lastEmit + PROGRESS_THROTTLE_MS - performance.now();
    if (wait <= 0) emit();
    else pending = setTimeout(emit, wait);
  };

  const readers = [proc.stdout.getReader(), proc.stderr.getReader()];
  const pumps = readers.map(async (r) => {
    try {
      for (;;) {
        const { done, value } = await r.read();
        if (done) return;
        onChunk(value);
      }
    } catch {
      // cancelled after the grace period
    }
  });

  try {
    await proc.exited;
    clearTimeout(timer); // finished in time: the grace below is ours, not the command's
    // Output written just before exit, or by children that outlive the shell, may still be in the pipes.
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((res) => (graceTimer = setTimeout(res, POST_EXIT_GRACE_MS)));
    await Promise.race([Promise.all(pumps), grace]);
    clearTimeout(graceTimer);
    for (const r of readers) r.cancel().catch(() => {});
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    if (pending !== undefined) clearTimeout(pending);
    // A normal exit may leave background children running (a server the model started): keep the group tracked
    // so the agent's exit still kills it.
    if (ended !== undefined || !groupAlive(pid)) liveGroups.delete(pid);
  }

  const s = acc.snapshot();
  acc.close();
  const details = s.truncation ? { truncation: s.truncation, full_output_path: s.fullOutputPath } : {};
  onProgress(s.notice ? `${s.text}\n\n${s.notice}` : s.text, details);
  let text = s.text;
  if (s.notice) text = text === "" ? s.notice : `${text}\n\n${s.notice}`;

  const prefix = text === "" ? "" : `${text}\n\n`;
  if (ended === "timeout") throw new ToolError(`${prefix}Command timed out after ${timeoutSecs} seconds`);
  if (ended === "abort") throw new ToolError(`${prefix}Command aborted`);
  const code = proc.exitCode ?? signalExitCode(proc.signalCode);
  if (code !== 0) throw new ToolError(`${prefix}Command exited with code ${code}`);
  return { text: text === "" ? "(no output)" : text, details };
}

/** The shell's convention for a process killed by a signal: 128 + the signal's number. */
function signalExitCode(sig: string | number | null): number {
  if (sig === null) return 1;
  if (typeof sig === "number") return 128 + sig;
  const n = (osConstants.signals as Record<string, number>)[sig];
  return n === undefined ? 1 : 128 + n;
}
