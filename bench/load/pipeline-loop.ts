// One side of bench/pipeline-ab.sh: the real handler of the checkout at argv[2], driven in-process (bench/load/
// inprocess.ts of that checkout: stub transport, log hand-off) by one managed request after another. Prints the best
// of 7 batches of N requests, in µs per request: the least disturbed batch, since on a shared machine every other
// batch only adds the neighbours' noise. SDK=1: the OpenAI SDK's 16 headers instead of wrk's four.
// Usage: bun bench/load/pipeline-loop.ts CHECKOUT   env: N=60000 SDK=
export {};
const root = process.argv[2] ?? ".";
const mod = (await import(`${root}/bench/load/inprocess.ts`)) as {
  handlerFor(extraToml: string): (req: Request) => Promise<Response>;
  request(model?: string, sdk?: boolean): Request;
};
const sdk = process.env["SDK"] === "1";
const n = Number(process.env["N"] ?? 60000);
const handle = mod.handlerFor("");
const once = async (): Promise<void> => {
  const res = await handle(mod.request("gpt-4o-mini", sdk));
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  await res.arrayBuffer();
};
for (let i = 0; i < 5000; i++) await once();
let best = Infinity;
for (let k = 0; k < 7; k++) {
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < n; i++) await once();
  best = Math.min(best, (Bun.nanoseconds() - t0) / n / 1000);
}
console.log(best.toFixed(2));
