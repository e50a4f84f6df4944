// End to end, virtual models and the upstream content-length (SPEC §11 "exact whenever the client sent one"): a body
// over 64 KiB streams to each target with the exact length of that target's rewrite, include_usage included (the
// gateway reads ahead, within the replay copy's bound, until the include_usage decision is known); a chunked upload
// stays chunked. Every byte arrives, and the fallback target gets its own exact length.
import { beforeAll, expect, test } from "bun:test";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, poolConfig } from "./helpers/gateway.ts";
import { keyOf } from "./helpers/mock-provider.ts";
import { tracked } from "./helpers/tracked.ts";

const t = tracked();
const k = keygen();
const TOKEN = mint(1, k.seed, 3n, 4n);
const mock = t.newMock();
let gw: Gateway;

beforeAll(async () => {
  gw = await t.launch(
    poolConfig({ authorities: { groq: mock.authority, openai: mock.authority }, poolKeys: { groq: ["sk-groq-len"], openai: ["sk-openai-len"] }, publicKey: k.publicKey }) +
      `\n[models.smart]\ntargets = ["groq/always-503-len", "openai/gpt-len"]\n\n[models.smart.retry]\nmax_attempts = 1\n`,
  );
});

test("a 150 KiB streaming chat body with include_usage to add: each target gets its exact content-length and the injected stream_options", async () => {
  mock.reset();
  const sent = JSON.stringify({ model: "smart", messages: [{ role: "user", content: "p".repeat(150 * 1024) }], stream: true });
  const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: sent });
  expect(r.status).toBe(200);
  await r.text();
  expect(mock.requests.map((q) => keyOf(q))).toEqual(["sk-groq-len", "sk-openai-len"]);
  for (const q of mock.requests) {
    expect(q.headers["transfer-encoding"]).toBeUndefined();
    expect(Number(q.headers["content-length"])).toBe(q.body.length);
    const json = q.json as { model: string; stream_options?: unknown; messages: unknown };
    expect(json.stream_options).toEqual({ include_usage: true });
    expect(json.messages).toEqual((JSON.parse(sent) as { messages: unknown }).messages);
  }
  expect((mock.requests[1]?.json as { model: string }).model).toBe("gpt-len");
});

test("a chunked upload (no content-length) through an alias goes chunked, every byte rewritten as the target's", async () => {
  mock.reset();
  const sent = JSON.stringify({ model: "smart", messages: [{ role: "user", content: "c".repeat(100 * 1024) }] });
  const bytes = new TextEncoder().encode(sent);
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += 8192) c.enqueue(bytes.subarray(i, i + 8192));
      c.close();
    },
  });
  const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body, duplex: "half" } as RequestInit);
  expect(r.status).toBe(200);
  await r.text();
  const last = mock.requests[mock.requests.length - 1]!;
  expect(last.headers["content-length"]).toBeUndefined();
  expect(new TextDecoder().decode(last.body)).toBe(sent.replace('"model":"smart"', '"model":"gpt-len"'));
});
