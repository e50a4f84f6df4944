/**
 * Issue 4's budget, piece by piece: everything metering adds to one managed request in compare.sh's exchange (the
 * small chat completion wrk POSTs, and the canned OpenAI JSON answer of bench/load/upstream.nginx.conf), from
 * `new Meter` to the `ai.usage` line, next to each piece alone.
 * The `ai.usage` lines really are written, so the figures include the logger's work; the file re-runs itself with
 * stdout sent to /dev/null (the kernel's cost of a write depends on where stdout goes) and prints results on stderr.
 * Run: node_modules/.bin/bun bench/meter.bench.ts
 */
import { bench, do_not_optimize, run, summary } from "mitata";
import { newContext } from "../src/pipeline/context.ts";
import { injectWhole } from "../src/metering/inject-usage.ts";
import { Meter } from "../src/metering/meter.ts";
import { Metrics } from "../src/ops/metrics.ts";
import { buildProvider } from "../src/routing/providers.ts";
import { Secret } from "../src/ops/secret.ts";
import { parseJsonBody } from "../src/metering/usage.ts";

const enc = new TextEncoder();
const requestBody = enc.encode(
  '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":64}',
);
const responseBody = enc.encode(
  '{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}',
);
const responseHeaders = new Headers({ "content-type": "application/json", "content-length": String(responseBody.length) });
const provider = buildProvider({ name: "openai", authority: "127.0.0.1:18080", dialect: "openai", auth: "bearer" }, false, [new Secret("sk-pool")], (s) => new Secret(s));
const metrics = new Metrics();
const identity = { kid: 1, tenantId: 42n, vpcId: 7n, tenant: "42", vpc: "7" };

function context() {
  const ctx = newContext("POST", "/v1/chat/completions", "openai");
  ctx.provider = provider;
  ctx.forwardPath = "/v1/chat/completions";
  ctx.managed = true;
  ctx.identity = identity;
  ctx.status = 200;
  ctx.bytesIn = requestBody.length;
  return ctx;
}

if (process.env.METER_BENCH_CHILD !== "1") {
  const child = Bun.spawn([process.execPath, import.meta.path], { env: { ...process.env, METER_BENCH_CHILD: "1" }, stdout: "ignore", stderr: "inherit" });
  process.exit(await child.exited);
}

summary(() => {
  bench("whole exchange: new Meter, request scan, response parse, ai.usage line", () => {
    const m = new Meter(context(), metrics, true);
    do_not_optimize(m.wholeBody(requestBody));
    m.wholeJson(responseHeaders, responseBody);
    m.finish("complete", false);
  });
  bench("request scan alone (injectWhole)", () => do_not_optimize(injectWhole(requestBody)));
  bench("response parse alone (parseJsonBody)", () => do_not_optimize(parseJsonBody("openai", responseBody)));
  bench("context alone (newContext + fields)", () => do_not_optimize(context()));
});

await run({ print: (s: string) => process.stderr.write(`${s}\n`) });
