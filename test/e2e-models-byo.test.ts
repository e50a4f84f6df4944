// End to end, virtual models and BYO keys (SPEC §11): a BYO key naming an alias gets 400 in every way it can name
// one (path, a whole body, a streamed body whose model comes within its first 64 KiB), and nothing reaches a
// provider; a BYO streamed body naming an ordinary model still streams through untouched.
import { beforeAll, expect, test } from "bun:test";
import { keygen } from "../src/controls/keys.ts";
import { type Gateway, poolConfig } from "./helpers/gateway.ts";
import { tracked } from "./helpers/tracked.ts";

const t = tracked();
const k = keygen();
const mock = t.newMock();
let gw: Gateway;
const BYO = "Bearer sk-byo-models";

beforeAll(async () => {
  gw = await t.launch(
    poolConfig({ authorities: { groq: mock.authority, openai: mock.authority }, poolKeys: { groq: ["sk-groq-byo"], openai: ["sk-openai-byo"] }, publicKey: k.publicKey }) +
      `\n[models.smart]\ntargets = ["groq/llama-a", "openai/gpt-b"]\n`,
  );
});

function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += 8192) c.enqueue(bytes.subarray(i, i + 8192));
      c.close();
    },
  });
}

async function expect400(r: Response): Promise<void> {
  expect(r.status).toBe(400);
  const b = (await r.json()) as { error: { message: string; type: string } };
  expect(b.error).toMatchObject({ message: "virtual models need a managed key", type: "invalid_request_error" });
  expect(r.headers.get("x-beyond-request-id")).not.toBeNull();
}

test("a BYO key naming an alias by path, in a whole body and in a streamed body (within 64 KiB) gets 400 and nothing is forwarded", async () => {
  mock.reset();
  const headers = { authorization: BYO, "content-type": "application/json" };
  await expect400(await fetch(`${gw.url}/smart/v1/chat/completions`, { method: "POST", headers, body: '{"model":"x","messages":[]}' }));
  await expect400(await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers, body: '{"model":"smart","messages":[]}' }));
  const big = JSON.stringify({ model: "smart", messages: [{ role: "user", content: "q".repeat(100 * 1024) }] });
  await expect400(await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers, body: chunked(big), duplex: "half" } as RequestInit));
  expect(mock.requests.length).toBe(0);
});

test("a BYO streamed body naming an ordinary model streams through with the caller's key and every byte", async () => {
  mock.reset();
  const sent = JSON.stringify({ model: "gpt-plain", messages: [{ role: "user", content: "w".repeat(100 * 1024) }] });
  const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: BYO, "content-type": "application/json" }, body: chunked(sent), duplex: "half" } as RequestInit);
  expect(r.status).toBe(200);
  await r.arrayBuffer();
  expect(mock.requests.length).toBe(1);
  const rec = mock.requests[0]!;
  expect(rec.headers["authorization"]).toBe(BYO);
  expect(new TextDecoder().decode(rec.body)).toBe(sent);
});
