/**
 * Which requests make the pipeline's own tail: the real handler in-process (bench/load/inprocess.ts, a stub transport,
 * no sockets), 100,000 managed requests one after another, each timed. A request is marked when a garbage collection
 * ran during it (the JS heap shrank across it: bun:jsc heapSize()) and when a log batch was handed off during it. The
 * report splits the requests by their distance from the last collection and by the log hand-off, with each group's
 * p50/p90 and its share of the requests at or above the overall p99: the groups that hold most of that share are where
 * the tail comes from. Run: ./node_modules/.bin/bun bench/gc-position.ts [N]
 */
import { heapSize } from "bun:jsc";
import { handlerFor, logBatches, request } from "./load/inprocess.ts";
import { quantile } from "./load/quantile.ts";

const N = Number(process.argv[2] ?? 100_000);
let flushed = false;
logBatches.onBatch = () => {
  flushed = true;
};
const h = handlerFor("");
async function once(): Promise<void> {
  const res = await h(request());
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  await res.arrayBuffer();
}
for (let i = 0; i < 20_000; i++) await once();

const dur = new Float64Array(N);
/** Requests since the last collection: 0 for the request a collection ran in. */
const sinceGc = new Int32Array(N);
const logged = new Uint8Array(N);
let last = heapSize();
let since = 1e9;
let collections = 0;
flushed = false;
for (let i = 0; i < N; i++) {
  const t0 = Bun.nanoseconds();
  await once();
  dur[i] = (Bun.nanoseconds() - t0) / 1e3;
  const hs = heapSize();
  if (hs < last) {
    since = 0;
    collections++;
  } else since++;
  last = hs;
  sinceGc[i] = since;
  if (flushed) logged[i] = 1;
  flushed = false;
}

const sorted = Float64Array.from(dur).sort();
const at = (a: Float64Array | number[], p: number): string => quantile(a, p).toFixed(1);
const p99 = quantile(sorted, 0.99);
const slowTotal = sorted.length - Math.floor(N * 0.99);
console.log(`${N} requests, ${collections} collections: p50 ${at(sorted, 0.5)} p90 ${at(sorted, 0.9)} p99 ${at(sorted, 0.99)} p99.9 ${at(sorted, 0.999)} µs`);
const groups: Array<[string, (i: number) => boolean]> = [
  ["a collection ran in it", (i) => sinceGc[i] === 0],
  ["first after a collection", (i) => sinceGc[i] === 1],
  ["2nd-10th after one", (i) => (sinceGc[i] as number) >= 2 && (sinceGc[i] as number) <= 10],
  ["a log batch handed off", (i) => (sinceGc[i] as number) > 10 && logged[i] === 1],
  ["none of these", (i) => (sinceGc[i] as number) > 10 && logged[i] === 0],
];
for (const [name, test] of groups) {
  const v: number[] = [];
  let slow = 0;
  for (let i = 0; i < N; i++) {
    if (!test(i)) continue;
    v.push(dur[i] as number);
    if ((dur[i] as number) >= p99) slow++;
  }
  v.sort((a, b) => a - b);
  const line = v.length === 0 ? "" : `p50 ${at(v, 0.5).padStart(7)} p90 ${at(v, 0.9).padStart(7)} µs`;
  console.log(`${name.padEnd(26)} ${String(v.length).padStart(7)} requests  ${line.padEnd(32)} ${((100 * slow) / slowTotal).toFixed(1).padStart(5)}% of the requests >= p99`);
}
