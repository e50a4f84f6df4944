#!/usr/bin/env bun
// beyond-ai-agent: the coding agent's entry point (SPEC §15, reference §B.9). Subcommands run | serve | tools,
// --version, --help. Every model call goes to the gateway with the managed key (or, with AI_DIRECT=1, to the
// provider). Usage and configuration errors are one `beyond-ai-agent: …` line and exit 2, never a stack.
// Signals: run aborts on the first SIGINT (the run ends gracefully, exit 130) and exits at once on a second; SIGTERM
// exits 143. serve treats SIGINT/SIGTERM like end of stdin (abort, wait for idle, exit 0). On every exit path the
// tools' live process groups are killed, so no command the model started outlives the agent.

import { dlopen, FFIType } from "bun:ffi";
import { type AgentConfig, AGENT_VERSION, parseConfig, USAGE, UsageError } from "./config.ts";
import { readTaskFromStdin, runTask } from "./run.ts";
import { buildRuntime, openWorkspace, toolsFor } from "./runtime.ts";
import { serve } from "./serve.ts";
import { SessionFileError } from "./session-file.ts";
import { killAllToolProcesses } from "./tools/index.ts";

/** How long SIGTERM waits for the run to end before exiting regardless. */
const SIGNAL_GRACE_MS = 2000;

function fail(message: string, code: number): number {
  process.stderr.write(`beyond-ai-agent: ${message}\n`);
  return code;
}

/** Exits now, after killing every tool process group (the exit handler does it too; doing it first is cheaper than
 * relying on it when the process is going down on a signal). */
function exitNow(code: number): never {
  killAllToolProcesses();
  process.exit(code);
}

/**
 * Makes this process non-dumpable (Linux prctl PR_SET_DUMPABLE 0): its /proc/<pid>/environ, mem and fds become
 * root-only and same-user ptrace is refused. The agent's key sits in its environment; without this, any command the
 * model runs could read it back with `cat /proc/$PPID/environ`, scrubbed child environment or not. Children regain
 * the default on exec, so tools are unaffected. Best effort: outside Linux/glibc nothing happens.
 */
function hideKeyFromChildren(): void {
  if (process.platform !== "linux") return;
  try {
    const libc = dlopen("libc.so.6", { prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 } });
    libc.symbols.prctl(4 /* PR_SET_DUMPABLE */, 0n, 0n, 0n, 0n);
    libc.close();
  } catch {
    // musl, or FFI unavailable: the scrubbed tool environment still holds; /proc stays as the kernel has it.
  }
}

async function runCommand(cfg: AgentConfig): Promise<number> {
  let task = cfg.task ?? "";
  if (task === "-") task = await readTaskFromStdin();
  if (task.trim() === "") throw new UsageError("run: the task is empty");
  const rt = buildRuntime(cfg);
  if (!cfg.direct && cfg.key !== undefined && !cfg.key.startsWith("bai_v1.")) {
    process.stderr.write("beyond-ai-agent: warning: the key is not a bai_v1 managed key; the gateway will forward it to the provider as your own\n");
  }
  const controller = new AbortController();
  let sigints = 0;
  let terminated = false;
  process.on("SIGINT", () => {
    sigints++;
    // First: end the run gracefully (tools killed, session left valid, [aborted] printed). Second: leave now.
    if (sigints === 1) controller.abort();
    else exitNow(130);
  });
  process.on("SIGTERM", () => {
    // Kill the tool groups at once, then let the run end through the loop, so the agent reaps its own children
    // (and the session file gets its closing records); leave anyway if that takes more than the grace.
    terminated = true;
    killAllToolProcesses();
    controller.abort();
    setTimeout(() => exitNow(143), SIGNAL_GRACE_MS).unref();
  });
  const outcome = await runTask(rt, task, controller.signal);
  if (terminated) return 143;
  return sigints > 0 && outcome.status === "aborted" ? 130 : outcome.code;
}

async function serveCommand(cfg: AgentConfig): Promise<number> {
  const rt = buildRuntime(cfg);
  if (!cfg.direct && cfg.key !== undefined && !cfg.key.startsWith("bai_v1.")) {
    process.stderr.write("beyond-ai-agent: warning: the key is not a bai_v1 managed key; the gateway will forward it to the provider as your own\n");
  }
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  await serve(rt, stopped);
  return 0;
}

function toolsCommand(cfg: AgentConfig): number {
  const tools = toolsFor(cfg, openWorkspace(cfg));
  const defs = tools
    .map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  process.stdout.write(JSON.stringify(defs, null, 2) + "\n");
  return 0;
}

async function main(): Promise<number> {
  let cfg: AgentConfig;
  try {
    cfg = parseConfig(process.argv.slice(2), process.env, process.cwd());
  } catch (e) {
    if (e instanceof UsageError) return fail(`${e.message}\n(see beyond-ai-agent --help)`, 2);
    throw e;
  }
  try {
    switch (cfg.command) {
      case "version":
        process.stdout.write(`beyond-ai-agent ${AGENT_VERSION}\n`);
        return 0;
      case "help":
        process.stdout.write(USAGE);
        return 0;
      case "tools":
        return toolsCommand(cfg);
      case "run":
        hideKeyFromChildren();
        return await runCommand(cfg);
      case "serve":
        hideKeyFromChildren();
        return await serveCommand(cfg);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof SessionFileError) return fail(e.message, 2);
    return fail(`unexpected error: ${(e as Error).message}`, 1);
  }
}

/** Resolves once everything written to stdout and stderr so far has been handed to the OS. */
function flushed(): Promise<void> {
  const one = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => s.write("", () => resolve()));
  return Promise.all([one(process.stdout), one(process.stderr)]).then(() => undefined);
}

process.on("exit", () => killAllToolProcesses());
main().then(
  async (code) => {
    // Pending handles (a keep-alive socket, a stdin reader) must not keep a finished agent alive; the output must
    // still get out first.
    await flushed();
    exitNow(code);
  },
  async (e: unknown) => {
    fail(`unexpected error: ${(e as Error).message}`, 1);
    await flushed();
    exitNow(1);
  },
);
