// The JavaScript twin of floor.c: a fixed slice of integer work with no allocation, timed N times under Bun.
// Prints: n p50 p90 p99 p99.9 max in microseconds.   Run: bun bench/load/floor.ts ITERATIONS [N]
import { quantile } from "./quantile.ts";

const iters = Number(process.argv[2] ?? 3000);
const n = Number(process.argv[3] ?? 100000);
let x = 0;
function work(): void {
  for (let i = 0; i < iters; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
}
for (let k = 0; k < n / 5; k++) work();
const d = new Float64Array(n);
for (let k = 0; k < n; k++) {
  const t = Bun.nanoseconds();
  work();
  d[k] = (Bun.nanoseconds() - t) / 1e3;
}
d.sort();
const at = (p: number): string => quantile(d, p).toFixed(1);
console.log(`${n} ${at(0.5)} ${at(0.9)} ${at(0.99)} ${at(0.999)} ${(d[n - 1] as number).toFixed(1)}${x === 0.5 ? " " : ""}`);
