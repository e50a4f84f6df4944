// End to end, managed keys (SPEC §4, §8): a real gateway process between the official SDKs (or plain
// fetch) and a recording mock provider. Pins the key swap (the provider sees only the pool key, never a
// trace of the bai_ key), every 401 path (nothing reaches the provider), 503 without a pool key, env over
// file, BYO untouched beside managed traffic, and that no gateway output ever carries a secret.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign as nodeSign } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { b64urlEncode, keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, startGateway } from "./helpers/gateway.ts";
import { MOCK_TEXT, type MockProvider, type RecordedRequest, startMockProvider } from "./helpers/mock-provider.ts";
import { expectGatewayError, type Reply, toReply } from "./helpers/replies.ts";
import { collectChatStream } from "./helpers/sdk.ts";

const OPENAI_POOL = "sk-pool-secret";
const ANTHROPIC_POOL = "sk-anthropic-pool";
const FILE_POOL = "sk-file-pool-should-lose";
const ENV_POOL = "sk-env-pool-wins";
const NOSIG_POOL = "sk-nosig-openai-pool";
const NOPOOL_GW_OPENAI_POOL = "sk-nopool-gw-openai-pool";
const POOL_SECRETS = [OPENAI_POOL, ANTHROPIC_POOL, FILE_POOL, ENV_POOL, NOSIG_POOL, NOPOOL_GW_OPENAI_POOL];

const U64_MAX = 18446744073709551615n;

// Two trusted signing keys (kid 1, kid 2) so a token can be relabelled from one trusted kid to another.
const keyA = keygen();
const keyB = keygen();
const pubA = Buffer.from(keyA.publicKey).toString("base64");
const pubB = Buffer.from(keyB.publicKey).toString("base64");
// kid 3: generated and signed by node:crypto only (an independent Ed25519 implementation).
const nodePair = generateKeyPairSync("ed25519");
const pubNode = nodePair.publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64");

const SEED_SECRETS = [keyA.seed, keyB.seed].flatMap((s) => [b64urlEncode(s), Buffer.from(s).toString("base64")]);

// RFC 8410 PKCS#8 wrapper for a raw 32-byte Ed25519 seed, so node:crypto can sign arbitrary messages
// with the same key the gateway trusts (needed to build wrong-length payloads with valid signatures).
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
function nodeKeyFromSeed(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
}
const nodeKeyA = nodeKeyFromSeed(keyA.seed);

/** A `bai_v1` token over an arbitrary payload, properly signed by node:crypto. */
function signedToken(kid: number, payload: Uint8Array, key: KeyObject): string {
  const signed = `bai_v1.${kid}.${Buffer.from(payload).toString("base64url")}`;
  return `${signed}.${nodeSign(null, Buffer.from(signed), key).toString("base64url")}`;
}

function payloadOf(tenant: bigint, vpc: bigint): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(tenant, 0);
  b.writeBigUInt64LE(vpc, 8);
  return b;
}

function parts(token: string): [string, string, string, string] {
  const p = token.split(".");
  if (p.length !== 4) throw new Error(`expected 4 segments in ${token}`);
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

/** Replaces one character of `s` at `i` with a different base64url character. */
function flipChar(s: string, i: number): string {
  const c = s[i]!;
  const repl = c === "A" ? "B" : "A";
  return s.slice(0, i) + repl + s.slice(i + 1);
}

const MANAGED = mint(1, keyA.seed, 42n, 7n);
const MANAGED_B = mint(2, keyB.seed, 43n, 8n);

const OPENAI_CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const ANTHROPIC_MSG = JSON.stringify({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });

let openaiMock: MockProvider;
let anthropicMock: MockProvider;
/** Every gateway this file starts, so the final test can inspect all of their output. */
const started: Gateway[] = [];
let gw: Gateway; // signing kids 1, 2, 3; pool keys for openai and anthropic; groq routed but without a pool key

async function launch(config: string, env?: Record<string, string>): Promise<Gateway> {
  const g = await startGateway({ config, env });
  started.push(g);
  return g;
}

function mockCount(): number {
  return openaiMock.requests.length + anthropicMock.requests.length;
}

/** Asserts no header name or value the provider received carries any part of a managed key. */
function expectNoManagedTrace(r: RecordedRequest): void {
  for (const [name, value] of Object.entries(r.headers)) {
    expect(name).not.toContain("bai_");
    expect(value).not.toContain("bai_");
  }
}

async function post(base: string, path: string, headers: Record<string, string>, body: string): Promise<Reply> {
  return toReply(await fetch(base + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body }));
}

/** The token sent on an OpenAI route (Bearer) and an Anthropic route (x-api-key): both 401, neither forwarded. */
async function expectRejected(g: Gateway, token: string, message = "invalid API key"): Promise<void> {
  const before = mockCount();
  const o = await post(g.url, "/v1/chat/completions", { authorization: `Bearer ${token}` }, OPENAI_CHAT);
  expectGatewayError(o, "openai", 401, "authentication_error", message);
  const a = await post(g.url, "/v1/messages", { "x-api-key": token, "anthropic-version": "2023-06-01" }, ANTHROPIC_MSG);
  expectGatewayError(a, "anthropic", 401, "authentication_error", message);
  expect(mockCount()).toBe(before);
}

beforeAll(async () => {
  openaiMock = startMockProvider();
  anthropicMock = startMockProvider();
  gw = await launch(
    baseConfig({
      authorities: { openai: openaiMock.authority, anthropic: anthropicMock.authority, groq: openaiMock.authority },
      tables: [
        "[pool_keys]",
        `openai = "${OPENAI_POOL}"`,
        `anthropic = "${ANTHROPIC_POOL}"`,
        "",
        "[signing_keys]",
        `1 = "${pubA}"`,
        `2 = "${pubB}"`,
        `3 = "${pubNode}"`,
      ].join("\n"),
    }),
  );
});

afterAll(async () => {
  await Promise.all(started.map((g) => g.stop()));
  await openaiMock?.stop();
  await anthropicMock?.stop();
});

describe("official SDKs with a managed key", () => {
  test("openai SDK non-streaming: provider gets the pool key and no trace of the bai_v1 key", async () => {
    const client = new OpenAI({ apiKey: MANAGED, baseURL: `${gw.url}/v1`, organization: null, project: null, maxRetries: 0 });
    const before = openaiMock.requests.length;
    const completion = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(openaiMock.requests.length).toBe(before + 1);
    const r = openaiMock.last();
    expect(r.path).toBe("/v1/chat/completions");
    expect(r.headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    expect(r.headers["x-api-key"]).toBeUndefined();
    expectNoManagedTrace(r);
  });

  test("openai SDK streaming: the stream arrives whole and the provider gets only the pool key", async () => {
    const client = new OpenAI({ apiKey: MANAGED, baseURL: `${gw.url}/v1`, organization: null, project: null, maxRetries: 0 });
    const before = openaiMock.requests.length;
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true });
    const { chunks, text } = await collectChatStream(stream);
    expect(chunks.length).toBeGreaterThan(1);
    expect(text).toBe(MOCK_TEXT);
    expect(openaiMock.requests.length).toBe(before + 1);
    const r = openaiMock.last();
    expect(r.headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    expectNoManagedTrace(r);
  });

  /** An Anthropic client whose outgoing request headers are recorded (to compare with what the provider got). */
  function recordingAnthropic(opts: ConstructorParameters<typeof Anthropic>[0]): { client: Anthropic; sent: Headers[] } {
    const sent: Headers[] = [];
    const client = new Anthropic({
      ...opts,
      baseURL: gw.url,
      maxRetries: 0,
      fetch: (input, init) => {
        sent.push(new Headers(init?.headers));
        return fetch(input, init);
      },
    });
    return { client, sent };
  }

  async function anthropicCallIsSwapped(client: Anthropic, sent: Headers[]): Promise<Headers> {
    const before = anthropicMock.requests.length;
    const msg = await client.messages.create({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
    const block = msg.content[0];
    expect(block?.type === "text" ? block.text : undefined).toBe(MOCK_TEXT);
    expect(anthropicMock.requests.length).toBe(before + 1);
    const out = sent.at(-1);
    if (out === undefined) throw new Error("the SDK sent nothing through the recording fetch");
    const r = anthropicMock.last();
    expect(r.path).toBe("/v1/messages");
    expect(r.headers["x-api-key"]).toBe(ANTHROPIC_POOL);
    expect(r.headers["authorization"]).toBeUndefined();
    const sdkVersion = out.get("anthropic-version");
    expect(sdkVersion).toBeTruthy();
    expect(r.headers["anthropic-version"]).toBe(sdkVersion!);
    expectNoManagedTrace(r);
    return out;
  }

  test("anthropic SDK with apiKey: provider gets the pool x-api-key, no authorization, anthropic-version as the SDK sent it", async () => {
    const { client, sent } = recordingAnthropic({ apiKey: MANAGED });
    const out = await anthropicCallIsSwapped(client, sent);
    // This SDK version sends `apiKey` as `Authorization: Bearer`; either way the managed key left the SDK.
    expect([out.get("x-api-key"), out.get("authorization")]).toContainEqual(expect.stringContaining(MANAGED));
  });

  test("anthropic SDK with the managed key in X-Api-Key: provider gets the pool x-api-key and no authorization", async () => {
    const { client, sent } = recordingAnthropic({ apiKey: MANAGED, defaultHeaders: { "X-Api-Key": MANAGED, Authorization: null } });
    const out = await anthropicCallIsSwapped(client, sent);
    expect(out.get("x-api-key")).toBe(MANAGED);
    expect(out.get("authorization")).toBeNull();
  });

  test("anthropic SDK with authToken (Authorization: Bearer), streaming: provider gets the pool x-api-key and no authorization", async () => {
    const { client, sent } = recordingAnthropic({ authToken: MANAGED_B });
    const before = anthropicMock.requests.length;
    const stream = await client.messages.create({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }], stream: true });
    let text = "";
    for await (const ev of stream) {
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    expect(text).toBe(MOCK_TEXT);
    expect(anthropicMock.requests.length).toBe(before + 1);
    expect(sent.at(-1)?.get("authorization")).toBe(`Bearer ${MANAGED_B}`);
    expect(sent.at(-1)?.get("x-api-key")).toBeNull();
    const r = anthropicMock.last();
    expect(r.headers["x-api-key"]).toBe(ANTHROPIC_POOL);
    expect(r.headers["authorization"]).toBeUndefined();
    expect(r.headers["anthropic-version"]).toBe(sent.at(-1)?.get("anthropic-version") ?? "missing on the SDK side");
    expectNoManagedTrace(r);
  });
});

describe("managed key in other headers", () => {
  test("managed key in x-api-key on an OpenAI route: upstream gets Bearer pool key and no x-api-key", async () => {
    const reply = await post(gw.url, "/openai/v1/chat/completions", { "x-api-key": MANAGED }, OPENAI_CHAT);
    expect(reply.status).toBe(200);
    const r = openaiMock.last();
    expect(r.headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    expect(r.headers["x-api-key"]).toBeUndefined();
    expectNoManagedTrace(r);
  });

  test("managed key in Azure-style api-key header: accepted, api-key removed upstream, Bearer pool key set", async () => {
    const reply = await post(gw.url, "/v1/chat/completions", { "api-key": MANAGED }, OPENAI_CHAT);
    expect(reply.status).toBe(200);
    expect((reply.json as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe(MOCK_TEXT);
    const r = openaiMock.last();
    expect(r.headers["api-key"]).toBeUndefined();
    expect(r.headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    expectNoManagedTrace(r);
  });

  test("a key minted by node:crypto's Ed25519 (independent implementation) is accepted", async () => {
    const token = signedToken(3, payloadOf(42n, 7n), nodePair.privateKey);
    const before = openaiMock.requests.length;
    const reply = await post(gw.url, "/v1/chat/completions", { authorization: `Bearer ${token}` }, OPENAI_CHAT);
    expect(reply.status).toBe(200);
    expect(openaiMock.requests.length).toBe(before + 1);
    expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
  });

  test("tenant and vpc 18446744073709551615 (u64 max) managed key is accepted", async () => {
    const token = mint(1, keyA.seed, U64_MAX, U64_MAX);
    const reply = await post(gw.url, "/v1/chat/completions", { authorization: `Bearer ${token}` }, OPENAI_CHAT);
    expect(reply.status).toBe(200);
    expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
  });

  test("BYO request right after a managed one reaches upstream with the caller's own key, untouched", async () => {
    const m = await post(gw.url, "/v1/chat/completions", { authorization: `Bearer ${MANAGED}` }, OPENAI_CHAT);
    expect(m.status).toBe(200);
    expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);

    const o = await post(gw.url, "/v1/chat/completions", { authorization: "Bearer sk-user-own-openai", "openai-organization": "org-user" }, OPENAI_CHAT);
    expect(o.status).toBe(200);
    const ro = openaiMock.last();
    expect(ro.headers["authorization"]).toBe("Bearer sk-user-own-openai");
    expect(ro.headers["openai-organization"]).toBe("org-user");

    const a = await post(gw.url, "/v1/messages", { "x-api-key": "sk-ant-user-own", "anthropic-version": "2023-01-01" }, ANTHROPIC_MSG);
    expect(a.status).toBe(200);
    const ra = anthropicMock.last();
    expect(ra.headers["x-api-key"]).toBe("sk-ant-user-own");
    expect(ra.headers["authorization"]).toBeUndefined();
    expect(ra.headers["anthropic-version"]).toBe("2023-01-01");
  });
});

describe("bad managed keys get 401 invalid API key and are never forwarded", () => {
  const [pfx, kid, payload, sig] = parts(MANAGED);

  test("control: a properly signed 16-byte payload built by the test's own signer is accepted", async () => {
    const token = signedToken(1, payloadOf(42n, 7n), nodeKeyA);
    expect(token).toBe(MANAGED); // RFC 8032 signatures are deterministic
    const reply = await post(gw.url, "/v1/chat/completions", { authorization: `Bearer ${token}` }, OPENAI_CHAT);
    expect(reply.status).toBe(200);
  });

  test("tampered payload (another tenant's payload under the original signature)", async () => {
    const other = Buffer.from(payloadOf(43n, 7n)).toString("base64url");
    expect(other).not.toBe(payload);
    await expectRejected(gw, `${pfx}.${kid}.${other}.${sig}`);
  });

  test("tampered payload (one character changed)", async () => {
    await expectRejected(gw, `${pfx}.${kid}.${flipChar(payload, 0)}.${sig}`);
  });

  test("tampered signature", async () => {
    await expectRejected(gw, `${pfx}.${kid}.${payload}.${flipChar(sig, 10)}`);
  });

  test("kid relabelled under another trusted kid", async () => {
    await expectRejected(gw, `${pfx}.2.${payload}.${sig}`);
    const [, , pB, sB] = parts(MANAGED_B);
    await expectRejected(gw, `${pfx}.1.${pB}.${sB}`);
  });

  test("unknown kid", async () => {
    await expectRejected(gw, mint(99, keyA.seed, 42n, 7n));
  });

  test("bai_v2 prefix", async () => {
    await expectRejected(gw, `bai_v2.${kid}.${payload}.${sig}`);
  });

  test("wrong segment count (3 and 5 segments)", async () => {
    await expectRejected(gw, `${pfx}.${kid}.${payload}`);
    await expectRejected(gw, `${MANAGED}.extra`);
    await expectRejected(gw, `${pfx}.${kid}.${payload}${sig}`);
  });

  test("payload of 15 bytes, properly signed", async () => {
    await expectRejected(gw, signedToken(1, payloadOf(42n, 7n).subarray(0, 15), nodeKeyA));
  });

  test("payload of 17 bytes, properly signed", async () => {
    const p17 = new Uint8Array(17);
    p17.set(payloadOf(42n, 7n), 0);
    await expectRejected(gw, signedToken(1, p17, nodeKeyA));
  });

  test("non-base64url characters in payload or signature", async () => {
    await expectRejected(gw, `${pfx}.${kid}.+${payload.slice(1)}.${sig}`);
    await expectRejected(gw, `${pfx}.${kid}.${payload.slice(0, -1)}/.${sig}`);
    await expectRejected(gw, `${pfx}.${kid}.${payload}==.${sig}`);
    await expectRejected(gw, `${pfx}.${kid}.${payload}.${sig.slice(0, 20)}*${sig.slice(21)}`);
  });

  test("bai_ alone", async () => {
    await expectRejected(gw, "bai_");
  });

  test("no key at all: 401 missing API key in each dialect, nothing forwarded", async () => {
    const before = mockCount();
    const o = await post(gw.url, "/v1/chat/completions", {}, OPENAI_CHAT);
    expectGatewayError(o, "openai", 401, "authentication_error", "missing API key");
    const a = await post(gw.url, "/v1/messages", { "anthropic-version": "2023-06-01" }, ANTHROPIC_MSG);
    expectGatewayError(a, "anthropic", 401, "authentication_error", "missing API key");
    // A forwarded request would have been recorded before the gateway answered; a short pause also
    // catches any stray background forwarding.
    await Bun.sleep(50);
    expect(mockCount()).toBe(before);
  });
});

describe("without [signing_keys]", () => {
  test("every bai_ key gets 401 and BYO still works", async () => {
    const g = await launch(
      baseConfig({
        authorities: { openai: openaiMock.authority, anthropic: anthropicMock.authority },
        tables: `[pool_keys]\nopenai = "${NOSIG_POOL}"`,
      }),
    );
    await expectRejected(g, MANAGED);
    await expectRejected(g, MANAGED_B);
    await expectRejected(g, signedToken(3, payloadOf(1n, 1n), nodePair.privateKey));

    const before = openaiMock.requests.length;
    const byo = await post(g.url, "/v1/chat/completions", { authorization: "Bearer sk-byo-nosig" }, OPENAI_CHAT);
    expect(byo.status).toBe(200);
    expect(openaiMock.requests.length).toBe(before + 1);
    expect(openaiMock.last().headers["authorization"]).toBe("Bearer sk-byo-nosig");
  });
});

describe("pool keys", () => {
  test("managed request to a provider with no pool key: 503 no provider key available, nothing forwarded; BYO to it still works", async () => {
    const g = await launch(
      baseConfig({
        authorities: { openai: openaiMock.authority, anthropic: anthropicMock.authority },
        tables: `[pool_keys]\nopenai = "${NOPOOL_GW_OPENAI_POOL}"\n\n[signing_keys]\n1 = "${pubA}"`,
      }),
    );
    const before = mockCount();
    const a = await post(g.url, "/v1/messages", { "x-api-key": MANAGED, "anthropic-version": "2023-06-01" }, ANTHROPIC_MSG);
    expectGatewayError(a, "anthropic", 503, "api_error", "no provider key available");
    expect(mockCount()).toBe(before);

    const antBefore = anthropicMock.requests.length;
    const byo = await post(g.url, "/v1/messages", { "x-api-key": "sk-ant-byo-503", "anthropic-version": "2023-06-01" }, ANTHROPIC_MSG);
    expect(byo.status).toBe(200);
    expect(anthropicMock.requests.length).toBe(antBefore + 1);
    expect(anthropicMock.last().headers["x-api-key"]).toBe("sk-ant-byo-503");

    // The same gateway's openai pool key still serves managed traffic.
    const o = await post(g.url, "/v1/chat/completions", { authorization: `Bearer ${MANAGED}` }, OPENAI_CHAT);
    expect(o.status).toBe(200);
    expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${NOPOOL_GW_OPENAI_POOL}`);
  });

  test("managed request to an OpenAI-dialect provider without a pool key gets 503 in OpenAI shape", async () => {
    const before = mockCount();
    const r = await post(gw.url, "/groq/openai/v1/chat/completions", { authorization: `Bearer ${MANAGED}` }, OPENAI_CHAT);
    expectGatewayError(r, "openai", 503, "api_error", "no provider key available");
    expect(mockCount()).toBe(before);
  });

  test("env AI_POOL_KEY_OPENAI wins over the file, and AI_SIGNING_KEY_1 works with no file signing key", async () => {
    const g = await launch(
      baseConfig({
        authorities: { openai: openaiMock.authority },
        tables: `[pool_keys]\nopenai = "${FILE_POOL}"`,
      }),
      { AI_POOL_KEY_OPENAI: ENV_POOL, AI_SIGNING_KEY_1: pubA },
    );
    const before = openaiMock.requests.length;
    const r = await post(g.url, "/v1/chat/completions", { authorization: `Bearer ${MANAGED}` }, OPENAI_CHAT);
    expect(r.status).toBe(200);
    expect(openaiMock.requests.length).toBe(before + 1);
    expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${ENV_POOL}`);
    // Only kid 1 came from the environment: kid 2 is not trusted here.
    await expectRejected(g, MANAGED_B);
  });
});

// Last in the file on purpose: it stops every gateway so their logs are complete, then reads them all.
test("no gateway output in this file ever contains a pool key, a private seed or a managed key", async () => {
  expect(started.length).toBeGreaterThanOrEqual(4);
  await Promise.all(started.map((g) => g.stop()));
  await Bun.sleep(50); // let the pipes drain after exit
  let total = 0;
  for (const g of started) {
    const all = g.stdout() + g.stderr();
    total += all.length;
    // The gateways did log (access lines, warnings), so an empty capture cannot pass this vacuously.
    expect(g.stdout()).toContain('"listening"');
    for (const s of [...POOL_SECRETS, ...SEED_SECRETS]) expect(all).not.toContain(s);
    for (const t of [MANAGED, MANAGED_B]) expect(all).not.toContain(parts(t)[3]);
  }
  expect(total).toBeGreaterThan(0);
});
