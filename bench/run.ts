// `npm run bench`: every benchmark in turn, then a summary. Run: node_modules/.bin/bun bench/run.ts [filter ...]
//   1. each bench/*.bench.ts (mitata micro-benchmarks), one bun process per file so none inherits another's JIT state;
//   2. bench/compare.sh (throughput beside nginx and a thin Bun proxy; ROUNDS, DURATION and CONNS pass through the
//      environment), then bench/metering-ab.sh (metering on vs off; PIN=1 in the environment pins it);
//   3. bench/streams.ts for N = 1,000, then N = 10,000 (each in a fresh process; env STREAMS_N overrides the list).
// Filters keep only the named steps: a step name, or its part before a dash (`bun bench/run.ts keys streams` runs
// keys, streams-1000 and streams-10000; `streams-1000` runs only that one).
// Every step ends in one of four words in the summary, and the run exits 1 unless all are "ok":
//   ok        ran and met its own criteria;
//   FAILED    ran, and printed a line starting "FAILED:" saying what went wrong (a capped, stalled or lossy streams
//             run; a proxy answering errors);
//   NOT RUN   a tool it needs is missing (it printed "NOT RUN: …" naming it and exited 3): nothing was measured;
//   CRASHED   exited non-zero without saying why.
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { isVerdictLine, stepVerdict } from "./verdict.ts";

const ROOT = resolve(import.meta.dir, "..");

interface Step {
  name: string;
  argv: string[];
  /** Lines of the step's output worth repeating in the summary. */
  keep?: (line: string) => boolean;
}

interface Outcome {
  step: Step;
  code: number;
  seconds: number;
  kept: string[];
  /** Lines starting "FAILED:" or "NOT RUN:": the step's own verdict, always repeated in the summary. */
  verdicts: string[];
}

function steps(): Step[] {
  const bun = process.execPath;
  const list: Step[] = readdirSync(join(ROOT, "bench"))
    .filter((f) => f.endsWith(".bench.ts"))
    .sort()
    .map((f) => ({ name: f.replace(/\.bench\.ts$/, ""), argv: [bun, join("bench", f)] }));
  list.push({ name: "compare", argv: ["bash", join("bench", "compare.sh")], keep: (l) => /ratio/.test(l) });
  // The same managed request with metering on and off: what metering costs.
  list.push({ name: "metering", argv: ["bash", join("bench", "metering-ab.sh")], keep: (l) => /^metering on\/off|^ai\.usage lines/.test(l) });
  const ns = (process.env["STREAMS_N"] ?? "1000,10000").split(",").map((s) => s.trim()).filter((s) => /^\d+$/.test(s));
  for (const n of ns) {
    list.push({
      name: `streams-${n}`,
      argv: [bun, join("bench", "streams.ts"), n],
      keep: (l) => /^(PASSED|CAPPED|OVER LIMIT|NOT CONCURRENT|path |direct |gateway|memory budget)/.test(l),
    });
  }
  return list;
}

/** Runs one step with its output passed through live, keeping the lines the summary repeats. */
async function runStep(step: Step): Promise<Outcome> {
  const started = performance.now();
  // STREAMS_N is run.ts's own knob: each streams step gets exactly one N on its command line.
  const env = { ...process.env };
  delete env["STREAMS_N"];
  const proc = Bun.spawn(step.argv, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "inherit", env });
  const kept: string[] = [];
  const verdicts: string[] = [];
  const dec = new TextDecoder();
  let partial = "";
  const consume = (text: string): void => {
    partial += text;
    let nl: number;
    while ((nl = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      // eslint-disable-next-line no-control-regex
      const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
      if (isVerdictLine(plain)) verdicts.push(plain);
      else if (step.keep?.(plain) === true) kept.push(line);
    }
  };
  for await (const chunk of proc.stdout) {
    process.stdout.write(chunk);
    consume(dec.decode(chunk, { stream: true }));
  }
  consume("\n");
  const code = await proc.exited;
  return { step, code, seconds: (performance.now() - started) / 1000, kept, verdicts };
}

const filters = process.argv.slice(2);
const selected = steps().filter((s) => filters.length === 0 || filters.some((f) => s.name === f || s.name.startsWith(`${f}-`)));
if (selected.length === 0) {
  console.error(`no benchmark step matches ${filters.join(", ")}`);
  process.exit(2);
}

const outcomes: Outcome[] = [];
for (const step of selected) {
  console.log(`\n######## ${step.name}: ${step.argv.join(" ")}\n`);
  outcomes.push(await runStep(step));
}

console.log("\n######## summary (on a busy machine compare ratios between rows of one run, not absolute figures across runs)\n");
for (const o of outcomes) {
  const v = stepVerdict(o.code, o.verdicts);
  const word = v === "CRASHED" ? `CRASHED (exit ${o.code})` : v;
  console.log(`${word.padEnd(17)} ${o.step.name.padEnd(14)} ${o.seconds.toFixed(1).padStart(6)} s`);
  for (const line of o.verdicts) console.log(`         ${line}`);
  for (const line of o.kept) console.log(`         ${line}`);
}
const bad = outcomes.filter((o) => stepVerdict(o.code, o.verdicts) !== "ok");
if (bad.length > 0) {
  console.log(`\n${bad.length} of ${outcomes.length} step(s) not ok: ${bad.map((o) => `${o.step.name} (${stepVerdict(o.code, o.verdicts)})`).join(", ")}`);
  process.exit(1);
}
console.log(`\nall ${outcomes.length} step(s) ok`);
