// The real request handler driven in-process, for the in-process benches (pipeline.bench.ts, gc-position.ts): the same
// objects a serving thread builds (createHandler over buildGateway) with a stub transport that answers every send with
// the mock's canned chat completion, whole, as the pool transport does for a small answer. The log lines are built as
// in the gateway and handed, batch by batch, to `logBatches.onBatch` (a no-op unless a bench sets one: the worker-mode
// hand-off) instead of stdout, so their cost is measured and the write syscalls are not.
import { keygen, mint } from "../../src/controls/keys.ts";
import { DenySet } from "../../src/controls/denyset.ts";
import { loadConfig } from "../../src/ops/config.ts";
import { log } from "../../src/ops/log.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import { createHandler } from "../../src/pipeline/pipeline.ts";
import { buildGateway, buildProviders } from "../../src/server.ts";
import type { Transport, UpstreamRequest, UpstreamResponse } from "../../src/transport/transport.ts";
import { OPENAI_SDK_HEADERS } from "./sdk-headers.ts";

export const logBatches = { onBatch: (_batch: Uint8Array): void => {} };
log.toMain((batch) => logBatches.onBatch(batch));
const enc = new TextEncoder();
const ANSWER = enc.encode(
  '{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}',
);
const BODY = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":64}';

/** Answers every send at once with the canned completion, held whole (as PoolTransport does for a small answer). */
class StubTransport implements Transport {
  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const b = req.body;
    if (b !== null && b !== undefined && !(b instanceof Uint8Array)) await new Response(b as ReadableStream).arrayBuffer();
    return {
      status: 200,
      statusText: "OK",
      headers: new Headers({ "content-type": "application/json", "content-length": String(ANSWER.byteLength), "x-request-id": "req_1" }),
      body: null,
      whole: ANSWER,
      // As PoolTransport does: the head it parsed holds no hop-by-hop header.
      hopByHopStripped: true,
    };
  }
  close(): void {}
}

const signing = keygen();
const token = mint(1, signing.seed, 42n, 7n);

export function handlerFor(extraToml: string): (req: Request) => Promise<Response> {
  const fileText = `listen = "127.0.0.1:0"\nmetrics_listen = "127.0.0.1:0"\nupstream_tls = false\nnats_url = ""\nrate_limit_rps = 0\nworkers = 1\n${extraToml}\n[provider_authorities]\nopenai = "127.0.0.1:9"\n[pool_keys]\nopenai = "sk-pool"\n[signing_keys]\n1 = "${Buffer.from(signing.publicKey).toString("base64")}"\n`;
  const cfg = loadConfig({ configPath: "/virtual/bench.toml", fileText, env: {} });
  const gw = buildGateway(cfg, buildProviders(cfg), new DenySet(), new Metrics());
  gw.transport = new StubTransport();
  const handle = createHandler(gw);
  const server = { timeout(): void {}, requestIP(): null { return null; } } as unknown as Parameters<typeof handle>[1];
  return (req) => handle(req, server);
}

/** A managed chat completion request; `sdk`: with the OpenAI SDK's headers (16 in all) instead of wrk's four. */
export function request(model = "gpt-4o-mini", sdk = false): Request {
  const base = { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": String(BODY.length - 11 + model.length) };
  return new Request("http://127.0.0.1:8080/v1/chat/completions", {
    method: "POST",
    headers: sdk ? { ...OPENAI_SDK_HEADERS, ...base } : { ...base, "user-agent": "wrk" },
    body: model === "gpt-4o-mini" ? BODY : BODY.replace('"gpt-4o-mini"', `"${model}"`),
  });
}
