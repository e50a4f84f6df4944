// Reads `perf sched timehist` output (stdin) of a one-connection run and rebuilds each request's cycle from the
// scheduler's own record: a cycle ends when the client's thread runs after the upstream mock has run since its last
// run (one request: client → gateway → mock → gateway → client). Prints the cycle percentiles, then for bands of cycle
// length how much the gateway's request thread ran inside the cycle (p50) and which other threads ran there: if slow
// cycles are the ones where the request thread ran longest, the tail is CPU on that thread (JS, GC, the runtime), not
// waiting to be scheduled. Usage: perf sched timehist -i FILE | bun bench/load/sched-cycles.ts CLIENT_COMM GATEWAY_PID
import { quantile } from "./quantile.ts";

const [clientComm = "one-conn", gatewayPid = ""] = process.argv.slice(2);
const text = await new Response(Bun.stdin.stream()).text();
interface Slice {
  end: number;
  task: string;
  run: number;
}
const slices: Slice[] = [];
for (const line of text.split("\n")) {
  const f = line.trim().split(/\s+/);
  if (f.length < 6 || !/^\d/.test(f[0] as string)) continue;
  const run = Number(f[f.length - 1]);
  const end = Number(f[0]);
  if (!Number.isFinite(run) || !Number.isFinite(end)) continue;
  slices.push({ end, task: f.slice(2, f.length - 3).join(" "), run });
}
const comm = (task: string): string => task.replace(/\[.*$/, "");
const isGatewayMain = (task: string): boolean => task.endsWith(`[${gatewayPid}]`);
const isMock = (task: string): boolean => comm(task) === "nginx";
interface Cycle {
  ms: number;
  mainRun: number;
  others: Set<string>;
}
const cycles: Cycle[] = [];
let startIdx = -1;
let sawMock = false;
for (let i = 0; i < slices.length; i++) {
  const s = slices[i] as Slice;
  if (isMock(s.task)) sawMock = true;
  else if (comm(s.task) === clientComm && sawMock) {
    if (startIdx >= 0) {
      let mainRun = 0;
      const others = new Set<string>();
      for (let j = startIdx + 1; j <= i; j++) {
        const t = (slices[j] as Slice).task;
        if (isGatewayMain(t)) mainRun += (slices[j] as Slice).run;
        else if (t.includes(`/${gatewayPid}]`)) others.add(comm(t));
      }
      cycles.push({ ms: s.end * 1000 - (slices[startIdx] as Slice).end * 1000, mainRun, others });
    }
    startIdx = i;
    sawMock = false;
  }
}
if (cycles.length === 0) {
  console.log(`no request cycles found (client thread "${clientComm}", gateway pid ${gatewayPid})`);
  process.exit(1);
}
const ms = cycles.map((c) => c.ms).sort((a, b) => a - b);
const us = (v: number): string => `${(v * 1000).toFixed(0)} µs`;
console.log(`${cycles.length} request cycles: p50 ${us(quantile(ms, 0.5))} p90 ${us(quantile(ms, 0.9))} p99 ${us(quantile(ms, 0.99))} p99.9 ${us(quantile(ms, 0.999))}`);
const bands: Array<[number, number]> = [[0, 0.15], [0.15, 0.25], [0.25, 0.5], [0.5, 1], [1, Infinity]];
for (const [lo, hi] of bands) {
  const inBand = cycles.filter((c) => c.ms >= lo && c.ms < hi);
  if (inBand.length === 0) continue;
  const runs = inBand.map((c) => c.mainRun).sort((a, b) => a - b);
  const seen = new Map<string, number>();
  for (const c of inBand) for (const o of c.others) seen.set(o, (seen.get(o) ?? 0) + 1);
  const other = [...seen].sort((a, b) => b[1] - a[1]).map(([n, k]) => `${n} ${((100 * k) / inBand.length).toFixed(0)}%`).join(", ");
  const label = hi === Infinity ? `>= ${lo} ms` : `${lo}-${hi} ms`;
  console.log(`${label.padEnd(12)} ${String(inBand.length).padStart(6)} cycles (${((100 * inBand.length) / cycles.length).toFixed(2).padStart(5)}%): request thread ran p50 ${us(quantile(runs, 0.5)).padStart(8)}; other gateway threads ran in: ${other || "none"}`);
}
