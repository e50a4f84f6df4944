/**
 * Response-side metering costs: the tap's cost per SSE event (a typical ~200-byte OpenAI content
 * chunk, with and without stripping the injected usage members), the same through gzip, the
 * end-of-body parse of a 1 KiB JSON response, and the cut-tail usage recovery on a 64 KiB tail.
 * Run: node_modules/.bin/bun bench/tap-response.bench.ts
 */
import { bench, do_not_optimize, run, summary } from "mitata";
import * as zlib from "node:zlib";
import { ResponseTap } from "../src/metering/tap-response.ts";
import { usageFromTail } from "../src/metering/usage.ts";

const enc = new TextEncoder();

const head =
  'data: {"id":"chatcmpl-AbC123xyz","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" streaming"},"logprobs":null,"finish_reason":null}]';
const plainEvent = enc.encode(`${head}}\n\n`);
const nullUsageEvent = enc.encode(`${head},"usage":null}\n\n`);

const sseTap = (stripUsageChunk: boolean): ResponseTap => {
  const t = new ResponseTap({ dialect: "openai", sse: true, stripUsageChunk });
  t.push(nullUsageEvent); // the model is now known: steady state from here on
  return t;
};

const plainTap = sseTap(false);
const clientUsageTap = sseTap(false);
const stripTap = sseTap(true);

// An event split over two pushes: the first part is held (copied) until the rest arrives.
const splitA = plainEvent.subarray(0, 120);
const splitB = plainEvent.subarray(120);
const splitTap = sseTap(false);

// A gzip stream flushed after every event, as a compressing server does for SSE: one push per
// event's compressed bytes.
const GZ_EVENTS = 5_000;
const gzChunks: Uint8Array[] = [];
{
  const gz = zlib.createGzip();
  let pending: Uint8Array[] = [];
  gz.on("data", (d: Uint8Array) => pending.push(d));
  for (let i = 0; i < GZ_EVENTS; i++) {
    gz.write(nullUsageEvent);
    await new Promise<void>((r) => gz.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
    gzChunks.push(Buffer.concat(pending));
    pending = [];
  }
}
let gzTap = new ResponseTap({ dialect: "openai", sse: true, stripUsageChunk: false, encoding: "gzip" });
let gzNext = 0;

const json1k = enc.encode(
  JSON.stringify({
    id: "chatcmpl-AbC123xyz",
    object: "chat.completion",
    created: 1730000000,
    model: "gpt-4o-mini-2024-07-18",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "Rate limits guard the gate; tokens stream like autumn rain; the meter counts all. ".repeat(7), refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: {
      prompt_tokens: 1200,
      completion_tokens: 48,
      total_tokens: 1248,
      prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    system_fingerprint: "fp_0ba0d124f1",
  }),
);

const tail64k = enc.encode(
  '"' +
    "lorem ipsum dolor sit amet ".repeat(2420) +
    '"}],"usage":{"prompt_tokens":1200,"completion_tokens":48,"total_tokens":1248,"prompt_tokens_details":{"cached_tokens":1024}},"system_fingerprint":"fp_1"}',
);

// Warm every path up first so the first benchmark is not the one paying for JIT tiering.
for (let i = 0; i < 20_000; i++) {
  plainTap.push(plainEvent);
  clientUsageTap.push(nullUsageEvent);
  stripTap.push(nullUsageEvent);
  splitTap.push(splitA);
  splitTap.push(splitB);
}

console.log(`SSE event: ${plainEvent.length} bytes (${nullUsageEvent.length} with "usage":null); JSON body: ${json1k.length} bytes; tail: ${tail64k.length} bytes`);

summary(() => {
  bench("SSE event, stripUsageChunk false (no usage members)", () => {
    do_not_optimize(plainTap.push(plainEvent));
  });
  bench('SSE event, stripUsageChunk false (client include_usage, "usage":null kept)', () => {
    do_not_optimize(clientUsageTap.push(nullUsageEvent));
  });
  bench('SSE event, stripUsageChunk true ("usage":null cut, new chunk)', () => {
    do_not_optimize(stripTap.push(nullUsageEvent));
  });
  bench("SSE event split over two pushes, stripUsageChunk false", () => {
    splitTap.push(splitA);
    do_not_optimize(splitTap.push(splitB));
  });
  bench("SSE event through gzip (incremental inflate + scan)", () => {
    if (gzNext === gzChunks.length) {
      gzTap.end();
      gzTap = new ResponseTap({ dialect: "openai", sse: true, stripUsageChunk: false, encoding: "gzip" });
      gzNext = 0;
    }
    do_not_optimize(gzTap.push(gzChunks[gzNext++]!));
  });
});

summary(() => {
  bench("JSON 1 KiB: new tap, push, end(), usage()", () => {
    const t = new ResponseTap({ dialect: "openai", sse: false, stripUsageChunk: false });
    t.push(json1k);
    t.end();
    do_not_optimize(t.usage());
  });
  bench("usageFromTail on a 64 KiB cut-off tail", () => {
    do_not_optimize(usageFromTail("openai", tail64k));
  });
});

await run();
