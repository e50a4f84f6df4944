// The README's start command, `npm start`, run as a user runs it: SIGTERM to the npm process (what a supervisor
// or `kill` sends) and Ctrl-C (SIGINT to the terminal's whole process group) must stop the gateway, drained, with
// both its ports freed and no process of the tree left behind. npm forwards SIGINT/SIGTERM only to its direct child,
// the `sh -c` running the script, so the script must `exec` the gateway for the signal to reach it.
import { afterAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import pkg from "../package.json" with { type: "json" };
import { baseConfig, type Gateway, REPO_ROOT, startGateway, writeTempConfig } from "./helpers/gateway.ts";
import { type MockProvider, startMockProvider } from "./helpers/mock-provider.ts";

const GRACE_SECS = 1;
const CONFIG = [
  `listen = "127.0.0.1:0"`,
  `metrics_listen = "127.0.0.1:0"`,
  `nats_url = "nats://127.0.0.1:1"`,
  `shutdown_grace_period_secs = ${GRACE_SECS}`,
].join("\n");

const leftovers = new Set<number>();
afterAll(() => {
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, "SIGKILL");
});

/** Live (not zombie) process? */
function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    const s = readFileSync(stat, "utf8");
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Every descendant of `root`, found through /proc's parent pids. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = s.slice(s.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(name), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [pid, ppid] of parent) {
      if (ppid === p) {
        out.push(pid);
        walk(pid);
      }
    }
  };
  walk(root);
  return out;
}

/** Resolves true when something accepts a TCP connection at host:port, false when it is refused. */
function accepts(addr: string): Promise<boolean> {
  const colon = addr.lastIndexOf(":");
  return new Promise((resolve) => {
    const s = connect({ host: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

interface Started {
  npm: ChildProcess;
  addr: string;
  metricsAddr: string;
  out: () => string;
  exited: Promise<void>;
}

/** `npm start` in the repo, in its own process group (like a terminal job), the config found through $AI_CONFIG_PATH. */
async function npmStart(): Promise<Started> {
  const npm = spawn("npm", ["start"], {
    cwd: REPO_ROOT,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", AI_CONFIG_PATH: writeTempConfig(CONFIG) },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  leftovers.add(npm.pid!);
  let out = "";
  npm.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  npm.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => npm.once("exit", () => resolve()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = out.split("\n").find((l) => l.includes('"msg":"listening"'));
    if (line !== undefined) {
      const l = JSON.parse(line) as { addr: string; metrics_addr: string };
      for (const pid of descendants(npm.pid!)) leftovers.add(pid);
      return { npm, addr: l.addr, metricsAddr: l.metrics_addr, out: () => out, exited };
    }
    if (npm.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not report "listening":\n${out}`);
    await Bun.sleep(25);
  }
}

describe("npm start (the README's start command)", () => {
  test("package.json's start script execs the gateway, so npm's signals reach it", () => {
    expect(pkg.scripts.start).toMatch(/^exec bun src\/main\.ts\b/);
  });

  for (const [what, send] of [
    ["SIGTERM to the npm process", (npm: ChildProcess) => process.kill(npm.pid!, "SIGTERM")],
    ["Ctrl-C (SIGINT to the whole process group)", (npm: ChildProcess) => process.kill(-npm.pid!, "SIGINT")],
  ] as const) {
    test(
      `${what} drains and stops the gateway: both ports freed, no process of the tree left`,
      async () => {
        const s = await npmStart();
        const tree = descendants(s.npm.pid!);
        // npm runs the script through a shell: the gateway is somewhere below npm.
        expect(tree.length).toBeGreaterThan(0);
        expect(await accepts(s.addr)).toBe(true);
        expect(await accepts(s.metricsAddr)).toBe(true);

        send(s.npm);
        // Bounded wait: the grace period plus a margin for npm and the runtime to exit.
        const stopped = await Promise.race([s.exited.then(() => true), Bun.sleep((GRACE_SECS + 8) * 1000).then(() => false)]);
        expect({ npmExited: stopped }).toEqual({ npmExited: true });
        expect(tree.filter(alive)).toEqual([]);
        expect(await accepts(s.addr)).toBe(false);
        expect(await accepts(s.metricsAddr)).toBe(false);
        // A drain, not the "second signal: exit now" path (Ctrl-C reaches the gateway twice: from the terminal and
        // forwarded by npm).
        expect(s.out()).toContain('"msg":"stopped"');
        expect(s.out()).not.toContain("second signal");
      },
      40_000,
    );
  }
});

describe("a repeated signal", () => {
  let mock: MockProvider | undefined;
  let gw: Gateway | undefined;
  afterAll(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test(
    "the same signal twice within a second (Ctrl-C under npm arrives from the terminal and from npm) is one request to drain, not 'exit now'",
    async () => {
      mock = startMockProvider();
      gw = await startGateway({ config: baseConfig({ authorities: { openai: mock.authority } }), env: { AI_SHUTDOWN_GRACE_PERIOD_SECS: String(GRACE_SECS) } });
      // A stream that never ends, so the drain lasts the whole grace period.
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer sk-byo-start-test", "content-type": "application/json", "x-mock-mode": "drip:100" },
        body: JSON.stringify({ model: "m", stream: true, messages: [] }),
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      expect((await reader.read()).done).toBe(false);
      const draining = (async () => {
        try {
          while (!(await reader.read()).done);
        } catch {
          // cut at the end of the grace period
        }
      })();
      gw.proc.kill("SIGINT");
      await gw.waitForLog((l) => typeof l["msg"] === "string" && (l["msg"] as string).startsWith("shutting down"), 3000);
      gw.proc.kill("SIGINT");
      const exited = await Promise.race([gw.proc.exited.then(() => true), Bun.sleep((GRACE_SECS + 8) * 1000).then(() => false)]);
      expect(exited).toBe(true);
      expect(gw.proc.exitCode).toBe(0);
      await draining;
      const msgs = gw.logs().map((l) => l["msg"]);
      // The drain ran to its end (the grace period cut the endless stream); the repeat did not cut it short.
      expect(msgs).toContain("grace period over: closing remaining connections");
      expect(msgs).not.toContain("second signal: exiting now");
    },
    30_000,
  );
});
