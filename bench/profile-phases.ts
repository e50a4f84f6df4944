// Reads a .cpuprofile (Bun's --cpu-prof, as bench/profile.sh writes it) and says where the request thread's samples
// went, by pipeline phase: each sample goes to the innermost frame from src/ on its stack, and native calls made from
// our code (socket writes, Response, Headers, JSON.parse...) count under the phase that made them. Samples with no
// src/ frame at all are the runtime's own work (Bun's HTTP server, the event loop) or a dependency's.
// Counts are samples, not the profile's time deltas: under load the sampler itself is starved now and then, and
// one late sample then carries a whole second.
// Run: node_modules/.bin/bun bench/profile-phases.ts profile/gateway.cpuprofile
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
}

/** src/ module (by file name, whatever its folder) → pipeline phase (ARCHITECTURE.md's table); anything unlisted is its own row. */
const PHASE: Record<string, string> = {
  "route.ts": "1 route",
  "authenticate.ts": "2 authenticate",
  "keys.ts": "2 authenticate",
  "admit.ts": "3 admit",
  "ratelimit.ts": "3 admit",
  "denyset.ts": "3 admit",
  "breaker.ts": "3 admit",
  "rewrite.ts": "4 rewrite",
  "key-pool.ts": "4 rewrite",
  "forward.ts": "5 forward",
  "commit.ts": "5 forward",
  "retry-policy.ts": "5 forward",
  "transport.ts": "5 forward",
  "transport-pool.ts": "5 forward",
  "meter.ts": "6 meter",
  "scan-model.ts": "6 meter",
  "inject-usage.ts": "6 meter",
  "tap-response.ts": "6 meter",
  "usage.ts": "6 meter",
  "access-log.ts": "7 log",
  "log.ts": "7 log",
  "pipeline.ts": "pipeline (sequencing, context, metrics)",
  "context.ts": "pipeline (sequencing, context, metrics)",
  "metrics.ts": "pipeline (sequencing, context, metrics)",
  "errors.ts": "pipeline (sequencing, context, metrics)",
};

const path = process.argv[2];
if (path === undefined) {
  console.error("usage: bun bench/profile-phases.ts FILE.cpuprofile");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(path, "utf8")) as Profile;
const byId = new Map<number, Node>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}

const isOurs = (n: Node): boolean => n.callFrame.url.includes("/src/") && !n.callFrame.url.includes("/node_modules/");
const isNative = (n: Node): boolean => n.callFrame.url === "" || n.callFrame.url === "[native code]";
const IDLE = new Set(["(root)", "(program)", "(idle)"]);

interface Row {
  js: number;
  native: Map<string, number>;
}
const rows = new Map<string, Row>();
function row(name: string): Row {
  let r = rows.get(name);
  if (r === undefined) rows.set(name, (r = { js: 0, native: new Map() }));
  return r;
}

let total = 0;
for (const id of profile.samples) {
  const leaf = byId.get(id);
  if (leaf === undefined || IDLE.has(leaf.callFrame.functionName)) continue;
  total++;
  // Innermost src/ frame on the stack, and whether the leaf itself is native code under it.
  let owner: Node | undefined;
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    if (n !== undefined && isOurs(n)) {
      owner = n;
      break;
    }
  }
  if (owner === undefined) {
    const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(leaf.callFrame.url);
    const r = row(dep !== null ? `dependency ${dep[1]}` : "runtime (no src/ frame: Bun's server, event loop)");
    const name = leaf.callFrame.functionName || "(anonymous)";
    r.native.set(name, (r.native.get(name) ?? 0) + 1);
    continue;
  }
  const module = basename(owner.callFrame.url);
  const r = row(PHASE[module] ?? module);
  if (owner === leaf || !isNative(leaf)) r.js++;
  else {
    const name = leaf.callFrame.functionName || "(anonymous)";
    r.native.set(name, (r.native.get(name) ?? 0) + 1);
  }
}

const pct = (n: number): string => `${((100 * n) / total).toFixed(1)}%`;
console.log(`${total} samples on the request thread (idle excluded)`);
console.log(`${"where".padEnd(52)} ${"all".padStart(7)} ${"JS".padStart(7)}  native calls made from there (top 4)`);
const sorted = [...rows.entries()].map(([k, r]) => ({ k, r, all: r.js + [...r.native.values()].reduce((a, b) => a + b, 0) })).sort((a, b) => b.all - a.all);
for (const { k, r, all } of sorted) {
  const top = [...r.native.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([n, c]) => `${n} ${pct(c)}`)
    .join(", ");
  console.log(`${k.padEnd(52)} ${pct(all).padStart(7)} ${pct(r.js).padStart(7)}  ${top}`);
}
