// Phase 4 (rewrite) costs: rewriteRequestHead / rewriteResponseHead on the header sets real SDKs send and real
// providers answer with. Run: node_modules/.bin/bun bench/rewrite.bench.ts
// Both functions edit their Headers in place, so each iteration needs a fresh object: mitata's computed parameters
// build it outside the timed region. As a cross-check that the computed parameter really excluded the build, the
// last group times build + rewrite and build alone; their difference is printed at the end and should be close to
// the computed-parameter figure.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { BUILT_IN_PROVIDERS, buildProvider, type Provider } from "../src/routing/providers.ts";
import { rewriteRequestHead, rewriteResponseHead } from "../src/pipeline/rewrite.ts";
import { Secret } from "../src/ops/secret.ts";
import type { HeaderFields } from "../src/transport/transport.ts";

const wrap = (s: string): Secret => new Secret(s);
function provider(name: string): Provider {
  const row = BUILT_IN_PROVIDERS.find((r) => r.name === name);
  if (row === undefined) throw new Error(`no built-in provider ${name}`);
  return buildProvider(row, true, [new Secret("sk-pool-0123456789abcdefghijklmnopqrstuvwxyz")], wrap);
}
const openai = provider("openai");
const anthropic = provider("anthropic");

const MANAGED = "bai_v1.1.KgAAAAAAAAAHAAAAAAAAAA.ZmFrZS1zaWduYXR1cmUtZmFrZS1zaWduYXR1cmUtZmFrZS1zaWduYXR1cmUtZmFrZS1zaWduYXR1cmUtZmFrZS1zaWduYXR1cmU";
const BYO = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOp";

type Pairs = ReadonlyArray<readonly [string, string]>;

// What the OpenAI Node SDK (v5, stainless) sends through a keep-alive agent, as Bun's server exposes it.
const openaiSdkRequest = (auth: string): Pairs => [
  ["host", "127.0.0.1:8080"],
  ["connection", "keep-alive"],
  ["accept", "application/json"],
  ["content-type", "application/json"],
  ["user-agent", "OpenAI/JS 5.10.1"],
  ["x-stainless-lang", "js"],
  ["x-stainless-package-version", "5.10.1"],
  ["x-stainless-os", "Linux"],
  ["x-stainless-arch", "x64"],
  ["x-stainless-runtime", "node"],
  ["x-stainless-runtime-version", "v22.11.0"],
  ["x-stainless-retry-count", "0"],
  ["x-stainless-timeout", "600"],
  ["authorization", `Bearer ${auth}`],
  ["accept-encoding", "gzip, deflate"],
  ["content-length", "183"],
];

const anthropicSdkRequest: Pairs = [
  ["host", "127.0.0.1:8080"],
  ["connection", "keep-alive"],
  ["accept", "application/json"],
  ["anthropic-version", "2023-06-01"],
  ["content-type", "application/json"],
  ["user-agent", "Anthropic/JS 0.57.0"],
  ["x-api-key", MANAGED],
  ["x-stainless-lang", "js"],
  ["x-stainless-package-version", "0.57.0"],
  ["x-stainless-os", "Linux"],
  ["x-stainless-arch", "x64"],
  ["x-stainless-runtime", "node"],
  ["x-stainless-runtime-version", "v22.11.0"],
  ["x-stainless-retry-count", "0"],
  ["x-stainless-timeout", "600"],
  ["accept-encoding", "gzip, deflate"],
  ["content-length", "212"],
];

// A client that names an extra hop-by-hop header in `connection` and sends a gateway-internal header: the slow path of strip().
const hostileRequest: Pairs = [
  ["host", "127.0.0.1:8080"],
  ["connection", "keep-alive, x-trace-hop"],
  ["keep-alive", "timeout=5"],
  ["x-trace-hop", "1"],
  ["proxy-authorization", "Basic Zm9vOmJhcg=="],
  ["x-beyond-tenant", "spoofed"],
  ["te", "trailers"],
  ["content-type", "application/json"],
  ["authorization", `Bearer ${MANAGED}`],
  ["content-length", "97"],
];

// An OpenAI streaming answer head (Cloudflare in front), as fetch exposes it.
const openaiSseResponse: Pairs = [
  ["date", "Tue, 12 Nov 2024 10:00:00 GMT"],
  ["content-type", "text/event-stream; charset=utf-8"],
  ["transfer-encoding", "chunked"],
  ["connection", "keep-alive"],
  ["access-control-expose-headers", "X-Request-ID"],
  ["openai-organization", "user-abc123"],
  ["openai-processing-ms", "213"],
  ["openai-project", "proj_AbCdEf123"],
  ["openai-version", "2020-10-01"],
  ["x-envoy-upstream-service-time", "215"],
  ["x-ratelimit-limit-requests", "10000"],
  ["x-ratelimit-limit-tokens", "30000000"],
  ["x-ratelimit-remaining-requests", "9999"],
  ["x-ratelimit-remaining-tokens", "29999980"],
  ["x-ratelimit-reset-requests", "6ms"],
  ["x-ratelimit-reset-tokens", "0s"],
  ["x-request-id", "req_0123456789abcdef0123456789abcdef"],
  ["strict-transport-security", "max-age=31536000; includeSubDomains; preload"],
  ["cf-cache-status", "DYNAMIC"],
  ["set-cookie", "__cf_bm=abc.def-1731405600-1.0.1.1-xyz; path=/; expires=Tue, 12-Nov-24 10:30:00 GMT; domain=.api.openai.com; HttpOnly; Secure; SameSite=None"],
  ["set-cookie", "_cfuvid=abcdef0123456789-1731405600000-0.0.1.1-604800000; path=/; domain=.api.openai.com; HttpOnly; Secure; SameSite=None"],
  ["x-content-type-options", "nosniff"],
  ["server", "cloudflare"],
  ["cf-ray", "8e1a2b3c4d5e6f70-SJC"],
  ["alt-svc", 'h3=":443"; ma=86400'],
];

const anthropicSseResponse: Pairs = [
  ["date", "Tue, 12 Nov 2024 10:00:00 GMT"],
  ["content-type", "text/event-stream; charset=utf-8"],
  ["transfer-encoding", "chunked"],
  ["connection", "keep-alive"],
  ["cache-control", "no-cache"],
  ["anthropic-ratelimit-requests-limit", "4000"],
  ["anthropic-ratelimit-requests-remaining", "3999"],
  ["anthropic-ratelimit-requests-reset", "2024-11-12T10:00:01Z"],
  ["anthropic-ratelimit-input-tokens-limit", "400000"],
  ["anthropic-ratelimit-input-tokens-remaining", "399000"],
  ["anthropic-ratelimit-input-tokens-reset", "2024-11-12T10:00:01Z"],
  ["anthropic-ratelimit-output-tokens-limit", "80000"],
  ["anthropic-ratelimit-output-tokens-remaining", "80000"],
  ["anthropic-ratelimit-output-tokens-reset", "2024-11-12T10:00:00Z"],
  ["request-id", "req_011CSomethingLong0123456789"],
  ["anthropic-organization-id", "0a1b2c3d-4e5f-6789-abcd-ef0123456789"],
  ["via", "1.1 google"],
  ["cf-cache-status", "DYNAMIC"],
  ["x-robots-tag", "none"],
  ["server", "cloudflare"],
  ["cf-ray", "8e1a2b3c4d5e6f71-SJC"],
];

const REQUEST_ID = "9f3c2a1b4d5e6f70-1a2b";
const build = (pairs: Pairs): Headers => new Headers(pairs as Array<[string, string]>);
/** A request head as phase 2 hands it to the rewrite: read once from the client's Headers into plain fields. */
const fields = (pairs: Pairs): HeaderFields => build(pairs).toJSON() as HeaderFields;

const requestCases = [
  { name: "OpenAI SDK head (16), managed: key swap", pairs: openaiSdkRequest(MANAGED), provider: openai, managed: true, bodyChanged: false },
  { name: "OpenAI SDK head (16), managed, body changed (usage injection)", pairs: openaiSdkRequest(MANAGED), provider: openai, managed: true, bodyChanged: true },
  { name: "OpenAI SDK head (16), BYO: passthrough", pairs: openaiSdkRequest(BYO), provider: openai, managed: false, bodyChanged: false },
  { name: "Anthropic SDK head (17), managed: x-api-key swap", pairs: anthropicSdkRequest, provider: anthropic, managed: true, bodyChanged: false },
  { name: "hostile head (10): connection-listed, proxy-*, x-beyond-*", pairs: hostileRequest, provider: openai, managed: true, bodyChanged: false },
] as const;

const responseCases = [
  { name: "OpenAI SSE answer head (25, 2 set-cookie)", pairs: openaiSseResponse },
  { name: "Anthropic SSE answer head (21)", pairs: anthropicSseResponse },
] as const;

// Sanity: the rewrite did its job on these sets, so the bench times the real work.
{
  const h = rewriteRequestHead(fields(openaiSdkRequest(MANAGED)), openai, { managed: true, key: openai.keys[0], bodyChanged: true, forceIdentity: true });
  if (h["authorization"] !== openai.keys[0]?.auth.expose() || h["host"] !== "api.openai.com" || "connection" in h || "content-length" in h) {
    throw new Error("OpenAI managed request head not rewritten as expected");
  }
  const a = rewriteRequestHead(fields(anthropicSdkRequest), anthropic, { managed: true, key: anthropic.keys[0], bodyChanged: false });
  if (a["x-api-key"] !== anthropic.keys[0]?.auth.expose() || a["host"] !== "api.anthropic.com") throw new Error("Anthropic managed head not rewritten");
  const x = rewriteRequestHead(fields(hostileRequest), openai, { managed: true, key: openai.keys[0], bodyChanged: false });
  for (const gone of ["connection", "keep-alive", "x-trace-hop", "proxy-authorization", "x-beyond-tenant", "te"]) {
    if (gone in x) throw new Error(`hostile head kept ${gone}`);
  }
  const r = rewriteResponseHead(build(openaiSseResponse), REQUEST_ID);
  if (r.has("transfer-encoding") || r.has("connection") || r.get("x-beyond-request-id") !== REQUEST_ID || r.getSetCookie().length !== 2) {
    throw new Error("response head not rewritten as expected");
  }
}

summary(() => {
  group("rewriteRequestHead (fresh fields per iteration, read from a Headers outside the timing)", () => {
    for (const c of requestCases) {
      const opts = { managed: c.managed, key: c.managed ? c.provider.keys[0] : undefined, bodyChanged: c.bodyChanged, forceIdentity: c.bodyChanged };
      bench(c.name, function* () {
        yield {
          [0]: () => fields(c.pairs),
          bench: (h: HeaderFields) => do_not_optimize(rewriteRequestHead(h, c.provider, opts)),
        };
      });
    }
  });
});

summary(() => {
  group("rewriteResponseHead (fresh Headers per iteration, built outside the timing)", () => {
    for (const c of responseCases) {
      bench(c.name, function* () {
        yield {
          [0]: () => build(c.pairs),
          bench: (h: Headers) => do_not_optimize(rewriteResponseHead(h, REQUEST_ID)),
        };
      });
    }
  });
});

const CROSS_BUILD = "cross-check: build and read OpenAI SDK head alone";
const CROSS_BOTH = "cross-check: build + rewriteRequestHead (managed)";
const CROSS_PARAM = requestCases[0].name;
group("cross-check (build cost included)", () => {
  const c = requestCases[0];
  const opts = { managed: true, key: c.provider.keys[0], bodyChanged: false, forceIdentity: false };
  bench(CROSS_BUILD, () => do_not_optimize(fields(c.pairs)));
  bench(CROSS_BOTH, () => do_not_optimize(rewriteRequestHead(fields(c.pairs), c.provider, opts)));
});

const result = await run();

const avg = (alias: string): number | undefined => result.benchmarks.find((b) => b.alias === alias)?.runs[0]?.stats?.avg;
const [b, both, param] = [avg(CROSS_BUILD), avg(CROSS_BOTH), avg(CROSS_PARAM)];
if (b !== undefined && both !== undefined && param !== undefined) {
  console.log(
    `\ncross-check, OpenAI managed head: build+rewrite ${both.toFixed(0)} ns - build ${b.toFixed(0)} ns = ${(both - b).toFixed(0)} ns; ` +
      `computed-parameter figure ${param.toFixed(0)} ns`,
  );
}
