// The bash tool against real processes (reference §B.8, §C.2 #2, #2b, #2c, #4): the timeout and abort kill the
// whole process group, long output is tail-truncated with the full text in a 0600 spill file, the agent's keys are
// not in the command's environment, and each ending has its exact text.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { bashTool, killAllToolProcesses } from "../../src/agent/tools/bash.ts";
import { Workspace } from "../../src/agent/tools/workspace.ts";
import { makeTempDir } from "../helpers/gateway.ts";

function setup(timeoutSecs?: number) {
  const dir = makeTempDir();
  const spill = makeTempDir();
  const ws = new Workspace(dir);
  const env = { ...process.env, AI_AGENT_KEY: "bai_v1.1.secret.key", OPENAI_API_KEY: "sk-openai-secret", AI_POOL_KEY_OPENAI: "sk-pool", AI_API_KEY: "sk-direct", ANTHROPIC_API_KEY: "sk-ant" };
  const tool = bashTool(ws, { timeoutSecs, tmpDir: spill, env });
  return { dir, spill, ws, tool };
}

const never = new AbortController().signal;

async function run(tool: ReturnType<typeof bashTool>, args: Record<string, unknown>, signal = never, progress: string[] = []) {
  try {
    const out = await tool.execute(args, signal, (s) => progress.push(s));
    return { ok: true as const, text: out.text, details: out.details as Record<string, unknown> };
  } catch (e) {
    return { ok: false as const, text: (e as Error).message };
  }
}

/** A process that exists and is not a zombie (a killed orphan waits for the container's init to reap it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Live (non-zombie) processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && Number(fields[2]) === pgid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}

describe("bash tool", () => {
  test("output comes back as printed, stdout and stderr together in arrival order, without the final newline", async () => {
    const { tool } = setup();
    // Two pipes: order is arrival order, so the writes are spaced out.
    const r = await run(tool, { command: "echo one; sleep 0.05; echo two 1>&2; sleep 0.05; echo three" });
    expect(r).toMatchObject({ ok: true, text: "one\ntwo\nthree" });
  });

  test("a command with no output says (no output)", async () => {
    const { tool } = setup();
    expect(await run(tool, { command: "true" })).toMatchObject({ ok: true, text: "(no output)" });
  });

  test("the command runs in the workspace root", async () => {
    const { tool, ws } = setup();
    expect(await run(tool, { command: "pwd -P" })).toMatchObject({ ok: true, text: ws.root });
  });

  test("a non-zero exit is an error ending 'Command exited with code N', the output before it", async () => {
    const { tool } = setup();
    expect(await run(tool, { command: "echo partial; exit 3" })).toEqual({ ok: false, text: "partial\n\nCommand exited with code 3" });
    expect(await run(tool, { command: "exit 7" })).toEqual({ ok: false, text: "Command exited with code 7" });
    // Killed by a signal it did not get from us: the shell's 128 + signal number.
    expect(await run(tool, { command: "kill -TERM $$" })).toEqual({ ok: false, text: "Command exited with code 143" });
  });

  test("the agent's key, the direct key, the provider keys and AI_POOL_KEY_* are not in the environment", async () => {
    const { tool } = setup();
    expect(await run(tool, { command: "echo k=$AI_AGENT_KEY" })).toMatchObject({ ok: true, text: "k=" });
    const env = await run(tool, { command: "env" });
    expect(env.ok).toBe(true);
    for (const name of ["AI_AGENT_KEY", "AI_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AI_POOL_KEY_OPENAI"]) {
      expect(env.text).not.toContain(`${name}=`);
    }
    expect(env.text).not.toContain("secret");
    expect(env.text).toContain("PATH="); // the rest of the environment is kept
  });

  test("timeout: 'sleep 5; echo late' with timeout 1 ends 'Command timed out after 1 seconds' and its group is gone", async () => {
    const { tool, dir } = setup();
    const r = await run(tool, { command: "echo $$ > sh.pid; sleep 5; echo late", timeout: 1 });
    expect(r).toEqual({ ok: false, text: "Command timed out after 1 seconds" });
    const sh = Number(readFileSync(join(dir, "sh.pid"), "utf8"));
    // The shell led its own group (detached): no live process is left in it, the foreground sleep included.
    await waitFor(() => groupMembers(sh).length === 0);
  });

  test("timeout_ms is accepted as well", async () => {
    const { tool } = setup();
    expect(await run(tool, { command: "echo before; sleep 5", timeout_ms: 300 })).toEqual({
      ok: false,
      text: "before\n\nCommand timed out after 0.3 seconds",
    });
  });

  test("the default timeout comes from the options", async () => {
    const { tool } = setup(0.3);
    expect(await run(tool, { command: "sleep 5" })).toEqual({ ok: false, text: "Command timed out after 0.3 seconds" });
  });

  test("a bad timeout is refused before anything runs", async () => {
    const { tool, dir } = setup();
    const msg = "Invalid timeout: must be a positive number of seconds (max 2147483)";
    for (const timeout of [0, -1, 2147484, "soon"]) {
      expect(await run(tool, { command: "touch ran", timeout })).toEqual({ ok: false, text: msg });
    }
    expect(existsSync(join(dir, "ran"))).toBe(false);
  });

  test("abort kills the whole process group: the shell and a backgrounded child are gone", async () => {
    const { tool, dir } = setup();
    const ac = new AbortController();
    const pending = run(tool, { command: "echo $$ > sh.pid; sleep 30 & echo $! > child.pid; echo started; wait" }, ac.signal);
    await waitFor(() => existsSync(join(dir, "child.pid")) && readFileSync(join(dir, "child.pid"), "utf8").endsWith("\n"));
    const sh = Number(readFileSync(join(dir, "sh.pid"), "utf8"));
    const child = Number(readFileSync(join(dir, "child.pid"), "utf8"));
    expect(alive(child)).toBe(true);
    ac.abort();
    expect(await pending).toEqual({ ok: false, text: "started\n\nCommand aborted" });
    await waitFor(() => !alive(sh) && !alive(child) && groupMembers(sh).length === 0);
  });

  test("a signal already aborted runs nothing", async () => {
    const { tool, dir } = setup();
    const ac = new AbortController();
    ac.abort();
    expect(await run(tool, { command: "touch ran" }, ac.signal)).toEqual({ ok: false, text: "Command aborted" });
    expect(existsSync(join(dir, "ran"))).toBe(false);
  });

  test("seq 1 5000 shows lines 3001-5000 and the spill file (0600) holds all 5000 lines", async () => {
    const { tool, spill } = setup();
    const r = await run(tool, { command: "seq 1 5000" });
    expect(r.ok).toBe(true);
    const m = /\n\n\[Showing lines 3001-5000 of 5000\. Full output: (.+)\]$/.exec(r.text);
    expect(m).not.toBeNull();
    const path = m![1]!;
    expect(path.startsWith(spill + "/beyond-agent-bash-")).toBe(true);
    expect(/beyond-agent-bash-[0-9a-f]{16}\.log$/.test(path)).toBe(true);
    expect(r.text.startsWith("3001\n3002\n")).toBe(true);
    expect(r.text.split("\n\n")[0]!.split("\n").length).toBe(2000);
    const full = readFileSync(path, "utf8");
    expect(full).toBe(Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join(""));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(r.details?.full_output_path).toBe(path);
    expect(r.details?.truncation).toMatchObject({ truncated_by: "lines", total_lines: 5000, output_lines: 2000 });
  });

  test("output over 50KB in few lines is cut by bytes: '(50.0KB limit)' in the notice", async () => {
    const { tool } = setup();
    // 40 lines of 2000 'x': 80,040 bytes, over 51,200 but under the 102,400 spill threshold.
    const r = await run(tool, { command: "for i in $(seq 1 40); do printf '%2000s\\n' '' | tr ' ' x; done" });
    const m = /\n\n\[Showing lines (\d+)-40 of 40 \(50\.0KB limit\)\. Full output: (.+)\]$/.exec(r.text);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(40 - 25 + 1); // 25 lines of 2001 bytes fit in 51,200
    expect(readFileSync(m![2]!, "utf8").length).toBe(40 * 2001); // spilled at the end, every byte
  });

  test("one line longer than 50KB shows its last 50KB: '[Showing last 50.0KB of line 1 (line is …)'", async () => {
    const { tool } = setup();
    const r = await run(tool, { command: "head -c 300000 /dev/zero | tr '\\0' y" });
    const m = /\n\n\[Showing last 50\.0KB of line 1 \(line is 293\.0KB\)\. Full output: (.+)\]$/.exec(r.text);
    expect(m).not.toBeNull();
    expect(r.text.indexOf("\n\n")).toBe(51_200);
    expect(readFileSync(m![1]!).length).toBe(300_000);
  });

  test("an error result keeps the truncation notice before the exit code", async () => {
    const { tool } = setup();
    const r = await run(tool, { command: "seq 1 3000; exit 2" });
    expect(r.ok).toBe(false);
    expect(/\[Showing lines 1001-3000 of 3000\. Full output: .+\]\n\nCommand exited with code 2$/.test(r.text)).toBe(true);
  });

  test("progress: an empty snapshot first, throttled snapshots, then the final text", async () => {
    const { tool } = setup();
    const progress: string[] = [];
    const r = await run(tool, { command: "for i in 1 2 3 4 5; do echo $i; sleep 0.05; done" }, never, progress);
    expect(r.ok).toBe(true);
    expect(progress[0]).toBe("");
    expect(progress[progress.length - 1]).toBe("1\n2\n3\n4\n5");
    // Five chunks 50 ms apart under a 100 ms throttle: fewer snapshots than chunks, each a prefix of the end.
    expect(progress.length).toBeLessThan(2 + 5);
    for (const p of progress) expect("1\n2\n3\n4\n5".startsWith(p)).toBe(true);
  });

  test("a background child holding the pipes does not hold the result past the grace period", async () => {
    const { tool, dir } = setup();
    const r = await run(tool, { command: "sleep 30 & echo $! > child.pid; echo done" });
    expect(r).toMatchObject({ ok: true, text: "done" });
    const child = Number(readFileSync(join(dir, "child.pid"), "utf8"));
    expect(alive(child)).toBe(true); // a normal exit leaves it running (a server the model started)...
    killAllToolProcesses(); // ...until the agent exits
    await waitFor(() => !alive(child));
  });

  test("a workspace root removed under the tool is an error result, not a crash", async () => {
    const { tool, dir } = setup();
    const { rmSync } = await import("node:fs");
    rmSync(dir, { recursive: true });
    const r = await run(tool, { command: "echo hi" });
    expect(r.ok).toBe(false);
    expect(r.text).toStartWith("Cannot run the command: ");
  });

  test("bash is exclusive and its description says it cannot be confined", () => {
    const { tool } = setup();
    expect(tool.exclusive).toBe(true);
    expect(tool.description).toContain("not confined");
    expect(tool.parameters).toMatchObject({ type: "object", required: ["command"] });
  });
});
