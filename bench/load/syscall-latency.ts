// Reads `perf trace -e write,read` output (stdin) of a one-connection client and times each request from the
// client's own system calls: from the start of a write that sent a request to the end of the next read that returned
// bytes. Checks a client's reported percentiles against what its own syscalls say.
// Usage: perf trace -p PID -e write,read 2>&1 | bun bench/load/syscall-latency.ts
import { quantile } from "./quantile.ts";

const text = await new Response(Bun.stdin.stream()).text();
const lat: number[] = [];
let writeAt: number | undefined;
for (const line of text.split("\n")) {
  // "     0.041 ( 0.003 ms): wrk/27283 write(fd: 4, …) = 436"
  const m = /^\s*([\d.]+) \(\s*([\d.]+) ms\): \S+ (write|read)\(.*\)\s+= (-?\d+)/.exec(line);
  if (m === null) continue;
  const t = Number(m[1]);
  const took = Number(m[2]);
  if (Number(m[4]) <= 0) continue;
  if (m[3] === "write") writeAt = t;
  else if (writeAt !== undefined) {
    lat.push(t + took - writeAt);
    writeAt = undefined;
  }
}
if (lat.length === 0) {
  console.log("no write/read pairs in the trace");
  process.exit(1);
}
lat.sort((a, b) => a - b);
const at = (p: number): string => `${(quantile(lat, p) * 1000).toFixed(0)} µs`;
console.log(`the client's own syscalls, ${lat.length} requests: p50 ${at(0.5)} p90 ${at(0.9)} p99 ${at(0.99)} p99.9 ${at(0.999)}`);
