// Start-up time of the agent CLI (issue 19: "start-up time of `beyond-ai-agent --version` and of a one-turn `run`").
// hyperfine is not installed, so this times each process with Bun.nanoseconds() around spawn → exit, sequentially.
//
// Run: node_modules/.bin/bun bench/agent-startup.ts [--n 30] [--bin dist/beyond-ai-agent]
//   --n    runs per case (default 30; one warm-up run per case is not counted)
//   --bin  also time this compiled binary (build it with `npm run build:agent`); by default the source
//          (`bun src/agent/cli.ts`) is timed, and the binary too when dist/beyond-ai-agent exists
//
// Cases, each for source and binary:
//   version   `beyond-ai-agent --version`: process start, module load, argv parse, exit
//   run       `beyond-ai-agent run "hi"` in an empty folder: start-up plus one streamed model turn through the real
//             gateway (a child process, managed key minted here) to the mock provider on 127.0.0.1 answering a short
//             scripted OpenAI text turn, then exit. The gateway and the mock stay up across runs.
// Prints median, p90, min and max in milliseconds per case.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AGENT_CLI, startAgentWorld } from "../test/helpers/agent.ts";
import { makeTempDir, REPO_ROOT } from "../test/helpers/gateway.ts";
import { openaiText } from "../test/helpers/scripted-model.ts";

const args = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const N = Number(flag("--n") ?? 30);
const defaultBin = join(REPO_ROOT, "dist", "beyond-ai-agent");
const bin = flag("--bin") ?? (existsSync(defaultBin) ? defaultBin : undefined);

function pct(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

async function timeOnce(argv: string[], env: Record<string, string>, cwd: string): Promise<number> {
  const t0 = Bun.nanoseconds();
  const p = Bun.spawn(argv, { env, cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).arrayBuffer()]);
  const code = await p.exited;
  const ms = (Bun.nanoseconds() - t0) / 1e6;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}`);
  return ms;
}

async function bench(label: string, argv: string[], env: Record<string, string>, cwd: string, before?: () => void): Promise<void> {
  before?.();
  await timeOnce(argv, env, cwd); // warm-up: page cache, JIT of the bundle
  const samples: number[] = [];
  for (let i = 0; i < N; i++) {
    before?.();
    samples.push(await timeOnce(argv, env, cwd));
  }
  samples.sort((a, b) => a - b);
  const f = (x: number): string => x.toFixed(1).padStart(7);
  console.log(`${label.padEnd(28)} median ${f(pct(samples, 50))} ms   p90 ${f(pct(samples, 90))} ms   min ${f(samples[0] as number)}   max ${f(samples[samples.length - 1] as number)}   (n=${N})`);
}

const world = await startAgentWorld();
try {
  const empty = makeTempDir();
  const env = world.env({ AI_AGENT_MODEL: "gpt-4o-mini" });
  const plainEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin" };
  const queueTurn = (): void => world.openaiMock.queue({ kind: "sse", events: openaiText("hi there") });
  const targets: Array<[string, string[]]> = [["source (bun src/agent/cli.ts)", [process.execPath, AGENT_CLI]]];
  if (bin !== undefined) targets.push(["binary (" + bin.replace(REPO_ROOT + "/", "") + ")", [bin]]);
  console.log(`agent start-up, ${N} runs per case after one warm-up; Bun ${Bun.version}`);
  for (const [name, argv] of targets) {
    await bench(`${name.split(" ")[0]} --version`, [...argv, "--version"], plainEnv, empty);
    await bench(`${name.split(" ")[0]} run (one turn)`, [...argv, "run", "hi"], env, empty, queueTurn);
  }
} finally {
  await world.stop();
}
