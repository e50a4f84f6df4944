// Runs the agent CLI as a real process for end-to-end tests: `bun src/agent/cli.ts …`, or the compiled binary when
// BEYOND_AI_AGENT_BIN is set. `runAgent` runs to exit and returns the output; `startServe` drives `serve` over its
// stdio and checks that every stdout line is a JSON frame. `startAgentWorld` starts what the agent talks to: one mock
// provider per dialect behind a real gateway holding their pool keys and trusting the signing key of a minted
// managed key (gateway retries off, so the agent's own retries are what a test sees).
import { join } from "node:path";
import type { Subprocess } from "bun";
import { keygen, mint } from "../../src/controls/keys.ts";
import { baseConfig, type Gateway, makeTempDir, REPO_ROOT, startGateway } from "./gateway.ts";
import { type MockProvider, startMockProvider } from "./mock-provider.ts";

export const AGENT_CLI = join(REPO_ROOT, "src", "agent", "cli.ts");
export const OPENAI_POOL = "sk-pool-secret";
export const ANTHROPIC_POOL = "sk-anthropic-pool";

/** argv of the agent: the compiled binary ($BEYOND_AI_AGENT_BIN, read per call) or bun on the source. */
export function agentArgv(args: readonly string[]): string[] {
  const bin = process.env["BEYOND_AI_AGENT_BIN"];
  return bin !== undefined && bin !== "" ? [bin, ...args] : [process.execPath, AGENT_CLI, ...args];
}

export interface AgentWorld {
  gw: Gateway;
  openaiMock: MockProvider;
  anthropicMock: MockProvider;
  /** A managed key (tenant 42, vpc 7) the gateway trusts. */
  key: string;
  /** Env for an agent process: PATH, HOME, AI_GATEWAY_URL, AI_AGENT_KEY (and `extra`). */
  env(extra?: Record<string, string>): Record<string, string>;
  mockFor(dialect: "openai" | "anthropic"): MockProvider;
  reset(): void;
  stop(): Promise<void>;
}

export async function startAgentWorld(): Promise<AgentWorld> {
  const signing = keygen();
  const key = mint(1, signing.seed, 42n, 7n);
  const openaiMock = startMockProvider();
  const anthropicMock = startMockProvider();
  const gw = await startGateway({
    config: baseConfig({
      authorities: { openai: openaiMock.authority, anthropic: anthropicMock.authority },
      extra: "workers = 1",
      tables: [
        "[pool_keys]",
        `openai = "${OPENAI_POOL}"`,
        `anthropic = "${ANTHROPIC_POOL}"`,
        "",
        "[signing_keys]",
        `1 = "${Buffer.from(signing.publicKey).toString("base64")}"`,
        "",
        // One attempt per request: a 503 or a cut stream reaches the agent, whose own retries are under test.
        "[retry]",
        "max_attempts = 1",
      ].join("\n"),
    }),
  });
  const tmp = makeTempDir();
  return {
    gw,
    openaiMock,
    anthropicMock,
    key,
    env(extra = {}) {
      // TMPDIR: the agent's bash spill files land in the test's own temp folder, not the machine's /tmp.
      return { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", TMPDIR: tmp, AI_GATEWAY_URL: gw.url, AI_AGENT_KEY: key, ...extra };
    },
    mockFor(dialect) {
      return dialect === "openai" ? openaiMock : anthropicMock;
    },
    reset() {
      openaiMock.reset();
      anthropicMock.reset();
    },
    async stop() {
      await gw.stop();
      await openaiMock.stop();
      await anthropicMock.stop();
    },
  };
}

export interface AgentResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout lines parsed as JSON (for --json); non-JSON lines are skipped. */
  frames: Array<Record<string, unknown>>;
}

export interface RunOptions {
  args: readonly string[];
  env: Record<string, string>;
  cwd: string;
  /** Text for stdin (else stdin is empty). */
  stdin?: string;
  timeoutMs?: number;
  /** argv in front of the agent's (e.g. setpriv to run it as another user). */
  prefix?: readonly string[];
}

/** Runs the agent to exit (killed after timeoutMs, default 20 s). */
export async function runAgent(o: RunOptions): Promise<AgentResult> {
  const proc = Bun.spawn([...(o.prefix ?? []), ...agentArgv(o.args)], {
    cwd: o.cwd,
    env: o.env,
    stdin: o.stdin !== undefined ? new TextEncoder().encode(o.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), o.timeoutMs ?? 20_000);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(timer);
  const frames: Array<Record<string, unknown>> = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      frames.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // text mode output that happens to start with "{"
    }
  }
  return { code: proc.exitCode, stdout, stderr, frames };
}

export type Frame = Record<string, unknown> & { type: string };

export interface ServeHandle {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  /** Writes one command (an object is JSON-encoded) and a LF. */
  send(cmd: Record<string, unknown> | string): void;
  /** The first frame after the read cursor that satisfies `pred` (the cursor moves past it). */
  next(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Every frame so far. */
  frames(): Frame[];
  /** stdout as written so far (raw bytes decoded). */
  rawStdout(): string;
  /** The event frames' `event` objects so far. */
  events(): Array<Record<string, unknown>>;
  stderr(): string;
  /** Closes stdin (end of input) and waits for exit. */
  close(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL (cleanup). */
  kill(): void;
}

/** Starts `serve` and waits for its `ready` frame. A stdout line that is not a JSON object fails the next `next`. */
export async function startServe(o: { args?: readonly string[]; env: Record<string, string>; cwd: string }): Promise<ServeHandle & { ready: Frame }> {
  const proc = Bun.spawn(agentArgv(["serve", ...(o.args ?? [])]), { cwd: o.cwd, env: o.env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const frames: Frame[] = [];
  const bad: string[] = [];
  let errText = "";
  let cursor = 0;
  let stdoutDone = false;
  let raw = "";
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      const text = dec.decode(chunk, { stream: true });
      raw += text;
      buf += text;
      // Split on LF only: U+2028 inside a frame is not a line end.
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const v = JSON.parse(line) as unknown;
          if (typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as Frame).type !== "string") bad.push(line);
          else frames.push(v as Frame);
        } catch {
          bad.push(line);
        }
      }
    }
    if (buf !== "") bad.push(buf);
    stdoutDone = true;
  })();
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) errText += dec.decode(chunk, { stream: true });
  })();
  const h: ServeHandle = {
    proc,
    send(cmd) {
      proc.stdin.write(typeof cmd === "string" ? cmd + "\n" : JSON.stringify(cmd) + "\n");
      void proc.stdin.flush();
    },
    async next(pred, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (bad.length > 0) throw new Error(`serve wrote a non-frame line to stdout: ${JSON.stringify(bad[0])}`);
        for (let i = cursor; i < frames.length; i++) {
          const f = frames[i] as Frame;
          if (pred(f)) {
            cursor = i + 1;
            return f;
          }
        }
        if (Date.now() > deadline || stdoutDone) {
          throw new Error(`serve: no matching frame within ${timeoutMs} ms (exit ${proc.exitCode}). Frames after cursor:\n${frames.slice(cursor).map((f) => JSON.stringify(f).slice(0, 300)).join("\n")}\nstderr:\n${errText.slice(-2000)}`);
        }
        await Bun.sleep(10);
      }
    },
    frames: () => frames,
    rawStdout: () => raw,
    events: () => frames.filter((f) => f.type === "event").map((f) => f["event"] as Record<string, unknown>),
    stderr: () => errText,
    async close(timeoutMs = 10_000) {
      proc.stdin.end();
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(timeoutMs).then(() => false)]);
      if (!done) proc.kill("SIGKILL");
      await proc.exited;
      return proc.exitCode;
    },
    kill() {
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
  const ready = await h.next((f) => f.type === "ready", 15_000);
  return Object.assign(h, { ready });
}

/** Frame predicates. */
export const is = {
  event: (kind: string, extra: Record<string, unknown> = {}) => (f: Frame) =>
    f.type === "event" && (f["event"] as Record<string, unknown>)["kind"] === kind && Object.entries(extra).every(([k, v]) => Bun.deepEquals((f["event"] as Record<string, unknown>)[k], v)),
  response: (command: string, id?: string | number) => (f: Frame) => f.type === "response" && f["command"] === command && (id === undefined || f["id"] === id),
  ack: (id?: string | number) => (f: Frame) => f.type === "ack" && (id === undefined || f["id"] === id),
};

/** True while a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `cond` is true (or throws after timeoutMs). */
export async function until(cond: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}
