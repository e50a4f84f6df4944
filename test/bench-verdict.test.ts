// Benchmark verdicts: a capped, stalled or lossy streams run is FAILED (never "ok"), and `npm run bench` reports a step
// whose tool is missing as NOT RUN and fails, instead of skipping it in silence. The verdict logic is bench/verdict.ts;
// the last tests run the real scripts (bench/compare.sh, bench/run.ts) with wrk hidden from PATH (nothing is started).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NOT_RUN_EXIT, type StreamsOutcome, stepVerdict, streamsProblems, streamsVerdictLine } from "../bench/verdict.ts";
import { REPO_ROOT } from "./helpers/gateway.ts";

const CLEAN: StreamsOutcome = {
  requested: 1000,
  ran: 1000,
  cap: 9955,
  failed: 0,
  timedOut: 0,
  lostEvents: 0,
  wrongCount: 0,
  stalled: 0,
  lateFirst: 0,
  stallMs: 1000,
  lateFirstMs: 1120,
  concurrent: true,
  upstreamAtPeak: 1000,
  projected10kMiB: 700,
  budgetMiB: 1024,
  errors: {},
  statuses: { "200": 1000 },
};

describe("streams verdict", () => {
  test("a run with every stream whole, on time and within budget passes", () => {
    expect(streamsProblems(CLEAN)).toEqual([]);
    expect(streamsVerdictLine(CLEAN, 1100, 1150)).toStartWith("PASSED: N = 1000: every stream complete");
  });

  test("the capped and stalled 10,000-stream run of the issue is FAILED, with each problem in words", () => {
    const run: StreamsOutcome = { ...CLEAN, requested: 10000, ran: 9955, stalled: 9904, lateFirst: 9584, upstreamAtPeak: 9955 };
    const line = streamsVerdictLine(run, 1300, 9000);
    expect(line).toStartWith("FAILED: N = 10000: ");
    expect(line).toContain("ran only 9955 of the 10000 streams asked for (the gateway's descriptor limit holds 9955)");
    expect(line).toContain("9904 of 9955 streams stalled (two events more than 1000 ms apart)");
    expect(line).toContain("9584 of 9955 streams got their first event late (after 1120 ms");
    expect(line).not.toContain("ok");
  });

  const oneProblem: [string, Partial<StreamsOutcome>, string][] = [
    ["capped below N", { requested: 2000, ran: 1500 }, "ran only 1500 of the 2000"],
    ["failed streams", { failed: 3, errors: { ECONNRESET: 3 } }, "3 of 1000 streams failed"],
    ["timed-out streams", { timedOut: 2 }, "2 of 1000 streams were still open"],
    ["lost events", { lostEvents: 21 }, "21 events lost"],
    ["wrong event counts", { wrongCount: 4 }, "4 completed streams had a wrong event count"],
    ["stalled streams", { stalled: 1 }, "1 of 1000 streams stalled"],
    ["late first events", { lateFirst: 7 }, "7 of 1000 streams got their first event late"],
    ["streams not concurrent", { concurrent: false, upstreamAtPeak: 256 }, "not concurrent: the gateway held only about 256"],
    ["memory over budget", { projected10kMiB: 1500 }, "memory over budget: 1500 MiB"],
  ];
  for (const [name, change, words] of oneProblem) {
    test(`${name} alone makes the run FAILED`, () => {
      const problems = streamsProblems({ ...CLEAN, ...change });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(words);
      expect(streamsVerdictLine({ ...CLEAN, ...change }, 1, 1)).toStartWith("FAILED: ");
    });
  }
});

describe("bench step verdict", () => {
  test("only a zero exit without a FAILED or NOT RUN line is ok", () => {
    expect(stepVerdict(0, [])).toBe("ok");
    expect(stepVerdict(0, ["FAILED: N = 10000: ran only 9955 of the 10000 streams asked for"])).toBe("FAILED");
    expect(stepVerdict(1, ["FAILED: gateway answered 12 non-2xx responses"])).toBe("FAILED");
    expect(stepVerdict(1, [])).toBe("CRASHED");
    expect(stepVerdict(134, [])).toBe("CRASHED");
  });

  test("a missing tool is NOT RUN, by its exit code or its line", () => {
    expect(stepVerdict(NOT_RUN_EXIT, [])).toBe("NOT RUN");
    expect(stepVerdict(NOT_RUN_EXIT, ["NOT RUN: compare needs wrk"])).toBe("NOT RUN");
    expect(stepVerdict(0, ["NOT RUN: compare needs wrk"])).toBe("NOT RUN");
  });
});

describe("load scripts without their tools", () => {
  // A PATH with the basics the scripts use before their tool check, and no wrk (nor anything else).
  const dir = mkdtempSync(join(tmpdir(), "bai-bench-path-"));
  for (const tool of ["bash", "dirname", "mktemp", "rm", "node", "sleep", "cat"]) {
    const found = Bun.which(tool);
    if (found !== null) symlinkSync(found, join(dir, tool));
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(argv: string[]): Promise<{ code: number; out: string }> {
    const proc = Bun.spawn(argv, { cwd: REPO_ROOT, env: { PATH: dir, HOME: process.env["HOME"] ?? "/tmp" }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(killer);
    return { code: await proc.exited, out: out + err };
  }

  test("compare.sh says NOT RUN, naming wrk and its package, and exits 3", async () => {
    const r = await run([join(dir, "bash"), "bench/compare.sh"]);
    expect(r.code).toBe(NOT_RUN_EXIT);
    expect(r.out).toMatch(/^NOT RUN: compare needs .*wrk.* \(not found on PATH; Debian\/Ubuntu: apt-get install .*wrk/m);
    expect(r.out).not.toContain("req/s");
  });

  test("npm run bench's runner reports the compare step as NOT RUN and exits 1", async () => {
    const r = await run([process.execPath, "bench/run.ts", "compare"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^NOT RUN +compare /m);
    expect(r.out).toContain("1 of 1 step(s) not ok: compare (NOT RUN)");
  });
});
