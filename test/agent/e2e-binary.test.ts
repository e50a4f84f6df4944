// End to end, the compiled agent (issue 19: `npm run build` makes dist/beyond-ai-agent, and the binary started from
// an empty folder works against a running gateway). Built here with package.json's build:agent command into a temp
// folder, then run from another empty folder with only PATH, HOME and the agent's variables: --version, and one
// streamed turn through the real gateway with a managed key.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { ANTHROPIC_POOL, type AgentWorld, startAgentWorld } from "../helpers/agent.ts";
import { makeTempDir, REPO_ROOT } from "../helpers/gateway.ts";
import { anthropicText } from "../helpers/scripted-model.ts";

let world: AgentWorld;
let bin: string;

beforeAll(async () => {
  world = await startAgentWorld();
  const out = join(makeTempDir(), "beyond-ai-agent");
  // The same command as package.json's "build:agent", with the output in a temp folder.
  const cmd = pkg.scripts["build:agent"].split(" ");
  expect(cmd.slice(0, 2)).toEqual(["bun", "build"]);
  const argv = [process.execPath, ...cmd.slice(1, cmd.indexOf("--outfile")), "--outfile", out];
  const p = Bun.spawn(argv, { cwd: REPO_ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [o, e, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0 || !existsSync(out)) throw new Error(`bun build --compile failed (exit ${code}):\n${o}\n${e}`);
  bin = out;
}, 120_000);

afterAll(async () => {
  await world.stop();
});

async function exec(argv: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = Bun.spawn(argv, { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  return { code: p.exitCode, stdout, stderr };
}

test("the compiled agent prints its version and runs one turn through the gateway from an empty folder", async () => {
  expect(statSync(bin).mode & 0o111).not.toBe(0);
  const empty = makeTempDir();
  const v = await exec([bin, "--version"], { PATH: "/usr/bin:/bin" }, empty);
  expect(v.code).toBe(0);
  expect(v.stdout).toBe(`beyond-ai-agent ${pkg.version}\n`);

  world.anthropicMock.queue({ kind: "sse", events: anthropicText("compiled and working") });
  const r = await exec([bin, "run", "say something"], world.env({ AI_AGENT_MODEL: "claude-test", PATH: "/usr/bin:/bin" }), empty);
  expect(r.stderr).toMatch(/\[done in 1 step\(s\); 21 in \/ 4 out tokens\]\n$/);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("compiled and working\n");
  expect(world.anthropicMock.requests.length).toBe(1);
  expect(world.anthropicMock.requests[0]?.headers["x-api-key"]).toBe(ANTHROPIC_POOL);
  expect(readdirSync(empty)).toEqual([]); // the run wrote nothing into the folder
});
