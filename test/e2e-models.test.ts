// End to end, virtual models (SPEC §11): a real gateway between the official SDKs (maxRetries: 0) or raw fetch and
// the recording mocks, with aliases over two targets of different providers. Pins the fallback (a 5xx or a
// context-length 400 moves to the next target, any other 4xx is relayed as is), how an alias is reached (path alias,
// body alias within the first 64 KiB, passed through unchanged beyond it), the upstream request (the target's base path
// + the client's path below /v1, the model value rewritten and nothing else, an exact content-length, the target's
// pool key), BYO keys refused, the `ai.usage` fields (route, provider, requested_model, fallback_reason,
// cost_usd_micros) and the route metrics. Strategies (round_robin, weighted, latency, cost) and skipped targets:
// e2e-models-strategies.test.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, poolConfig, usageLine } from "./helpers/gateway.ts";
import { failureAnswer, MOCK_ANTHROPIC_MODEL, MOCK_DELTAS, MOCK_OPENAI_MODEL, MOCK_TEXT, MOCK_USAGE, type RecordedRequest } from "./helpers/mock-provider.ts";
import { scrape, sampleValue } from "./helpers/prometheus.ts";
import { collectChatStream } from "./helpers/sdk.ts";
import { tracked } from "./helpers/tracked.ts";
import {
  anthropicClient,
  attemptsOf,
  expectedMicros,
  modelTable,
  newTestId,
  OPENAI_BASE_PATHS,
  openaiClient,
  poolKeyOf,
  priceTable,
  seen,
  tomlStrings,
} from "./helpers/virtual-models.ts";

const t = tracked();
const signing = keygen();
const MANAGED = mint(1, signing.seed, 717n, 12n);
const BYO = "sk-byo-vm-0001";

const oai = t.newMock();
const ant = t.newMock();
/** An added Anthropic-dialect provider (x-api-key), the second target of the Anthropic aliases. */
const ANTHRO2 = "anthro2";
/** An added OpenAI-dialect provider with its own base path. */
const AZURE = "azure-vm";
const AZURE_BASE = "/openai/deployments/vm";
const CLAUDE_B_PRICE = { input: 3, output: 15 };

let gw: Gateway;
beforeAll(async () => {
  const providers = [...Object.keys(OPENAI_BASE_PATHS), AZURE];
  const authorities: Record<string, string> = { anthropic: ant.authority, [ANTHRO2]: ant.authority };
  const poolKeys: Record<string, string[]> = { anthropic: [poolKeyOf("anthropic")], [ANTHRO2]: [poolKeyOf(ANTHRO2)] };
  for (const p of providers) {
    authorities[p] = oai.authority;
    poolKeys[p] = [poolKeyOf(p)];
  }
  const one = { max_attempts: 1 };
  const tables = [
    tomlStrings("provider_dialects", { [ANTHRO2]: "anthropic", [AZURE]: "openai" }),
    tomlStrings("provider_auth_schemes", { [ANTHRO2]: "x-api-key" }),
    tomlStrings("provider_base_paths", { [AZURE]: AZURE_BASE }),
    // The first target always answers 503; with one attempt per target the first failure moves on.
    modelTable("fb", { targets: ["groq/always-503-fb", "openai/gpt-fb"], retry: one }),
    // The same with §10's 4 attempts on the first target before it moves on.
    modelTable("fb4", { targets: ["groq/always-503-fb4", "cerebras/llama-fb4"] }),
    modelTable("cl", { targets: ["anthropic/always-503-cl", `${ANTHRO2}/claude-b`], retry: one }),
    modelTable("ctx", { targets: ["groq/context-length-400-ctx", "cerebras/llama-ctx"] }),
    modelTable("clctx", { targets: ["anthropic/context-length-400-clctx", `${ANTHRO2}/claude-ctx`] }),
    modelTable("plain", { targets: ["groq/status-400-plain", "cerebras/never-plain"] }),
    ...[...providers, "anthropic", ANTHRO2].map((p) => modelTable(`bp-${p}`, { targets: [`${p}/bp-model-${p}`] })),
    priceTable(`${ANTHRO2}/claude-b`, CLAUDE_B_PRICE),
  ];
  gw = await t.launch(
    poolConfig({ authorities, poolKeys, publicKey: signing.publicKey, retry: { initial_backoff_ms: 10, max_backoff_ms: 50 } }) + "\n" + tables.join("\n\n") + "\n",
  );
});

const MESSAGES = [{ role: "user" as const, content: "hi" }];

function rid(response: Response): string {
  return response.headers.get("x-beyond-request-id") ?? "";
}

/** The one upstream request body as JSON, minus `model` and the `stream_options` the gateway may inject. */
function bodyWithoutModel(r: RecordedRequest): Record<string, unknown> {
  const { model: _m, stream_options: _s, ...rest } = r.json as Record<string, unknown>;
  return rest;
}

/** The upstream content-length equals the bytes the mock received. */
function expectExactLength(r: RecordedRequest): void {
  expect(r.headers["content-length"]).toBe(String(r.body.length));
}

async function rawPost(path: string, body: string, o: { key?: string; id?: string; anthropic?: boolean } = {}): Promise<Response> {
  const key = o.key ?? MANAGED;
  return fetch(gw.url + path, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(o.anthropic ? { "x-api-key": key, "anthropic-version": "2023-06-01" } : { authorization: `Bearer ${key}` }),
      ...(o.id !== undefined ? { "x-test-id": o.id } : {}),
    },
    body,
  });
}

describe("fallback: the first target answers 503, the second answers, the client sees one clean answer", () => {
  test("OpenAI SDK, body alias, JSON: the mock saw groq's path then openai's, each with its model and pool key; exact content-length; usage names the route, the answering target and 5xx", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "fb", messages: MESSAGES, temperature: 0.25 }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    const reqs = attemptsOf(id, oai);
    expect(reqs.map(seen)).toEqual([
      { path: "/openai/v1/chat/completions", model: "always-503-fb", key: poolKeyOf("groq") },
      { path: "/v1/chat/completions", model: "gpt-fb", key: poolKeyOf("openai") },
    ]);
    for (const r of reqs) {
      expectExactLength(r);
      expect(bodyWithoutModel(r)).toEqual({ messages: MESSAGES, temperature: 0.25 });
    }
    const u = await usageLine(gw, rid(response));
    expect(u).toMatchObject({ route: "fb", provider: "openai", model: MOCK_OPENAI_MODEL, requested_model: "fb", fallback_reason: "5xx", status: 200 });
    expect(u["input_tokens"]).toBe(MOCK_USAGE.openaiJson.prompt_tokens);
    // openai/gpt-fb has no [prices] entry: no cost.
    expect(u["cost_usd_micros"]).toBeUndefined();
  });

  test("OpenAI SDK, body alias, stream: one clean stream (one role chunk, the mock's deltas), the second target's request, usage with 5xx", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "fb", messages: MESSAGES, stream: true }, { headers: { "x-test-id": id } })
      .withResponse();
    const { chunks, text } = await collectChatStream(data);
    expect(text).toBe(MOCK_TEXT);
    expect(chunks.filter((c) => c.choices[0]?.delta?.role === "assistant")).toHaveLength(1);
    const reqs = attemptsOf(id, oai);
    expect(reqs.map(seen)).toEqual([
      { path: "/openai/v1/chat/completions", model: "always-503-fb", key: poolKeyOf("groq") },
      { path: "/v1/chat/completions", model: "gpt-fb", key: poolKeyOf("openai") },
    ]);
    for (const r of reqs) {
      expectExactLength(r);
      expect(bodyWithoutModel(r)).toEqual({ messages: MESSAGES, stream: true });
    }
    const u = await usageLine(gw, rid(response));
    expect(u).toMatchObject({ route: "fb", provider: "openai", requested_model: "fb", fallback_reason: "5xx", stream: true, complete: true });
    expect(u["output_tokens"]).toBe(MOCK_USAGE.openaiSse.completion_tokens);
  });

  test("raw bytes: only the model value's bytes change (spacing, key order, escapes kept), content-length exact on both attempts", async () => {
    const id = newTestId();
    const sent = '{ "messages" : [ {"role":"user","content":"h\\u00e9llo \\"q\\""} ],\n  "model" :  "fb" , "n": 1, "metadata": {"model": "fb"} }';
    const r = await rawPost("/v1/chat/completions", sent, { id });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe(MOCK_TEXT);
    const reqs = attemptsOf(id, oai);
    expect(reqs.map((x) => new TextDecoder().decode(x.body))).toEqual([sent.replace('"fb" ,', '"always-503-fb" ,'), sent.replace('"fb" ,', '"gpt-fb" ,')]);
    for (const x of reqs) expectExactLength(x);
  });

  test("with 4 attempts per target: groq is tried 4 times (§10), then cerebras answers; usage attempts 5, fallback_reason 5xx", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "fb4", messages: MESSAGES }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    const reqs = attemptsOf(id, oai).map(seen);
    expect(reqs).toEqual([
      ...Array.from({ length: 4 }, () => ({ path: "/openai/v1/chat/completions", model: "always-503-fb4", key: poolKeyOf("groq") })),
      { path: "/v1/chat/completions", model: "llama-fb4", key: poolKeyOf("cerebras") },
    ]);
    const u = await usageLine(gw, rid(response));
    expect(u).toMatchObject({ route: "fb4", provider: "cerebras", fallback_reason: "5xx", attempts: 5, key_id: "cerebras#0" });
  });

  test("Anthropic SDK, body alias, JSON: anthropic 503, then the added anthro2 (x-api-key) answers; cost_usd_micros at its price", async () => {
    const id = newTestId();
    const { data, response } = await anthropicClient(gw, MANAGED)
      .messages.create({ model: "cl", max_tokens: 16, messages: MESSAGES }, { headers: { "x-test-id": id } })
      .withResponse();
    const block = data.content[0];
    expect(block?.type === "text" ? block.text : undefined).toBe(MOCK_TEXT);
    const reqs = attemptsOf(id, ant);
    expect(reqs.map(seen)).toEqual([
      { path: "/v1/messages", model: "always-503-cl", key: poolKeyOf("anthropic") },
      { path: "/v1/messages", model: "claude-b", key: poolKeyOf(ANTHRO2) },
    ]);
    // The added provider's scheme is x-api-key: no Authorization header carries its key.
    expect(reqs[1]?.headers["x-api-key"]).toBe(poolKeyOf(ANTHRO2));
    expect(reqs[1]?.headers["authorization"]).toBeUndefined();
    for (const r of reqs) {
      expectExactLength(r);
      expect(bodyWithoutModel(r)).toEqual({ max_tokens: 16, messages: MESSAGES });
    }
    const u = await usageLine(gw, rid(response));
    expect(u).toMatchObject({ route: "cl", provider: ANTHRO2, model: MOCK_ANTHROPIC_MODEL, requested_model: "cl", fallback_reason: "5xx" });
    const tokens = { input: MOCK_USAGE.anthropicJson.input_tokens, output: MOCK_USAGE.anthropicJson.output_tokens };
    expect(u["cost_usd_micros"]).toBe(expectedMicros(tokens, CLAUDE_B_PRICE));
  });

  test("Anthropic SDK, body alias, stream: exactly one message_start, the mock's deltas, usage with route cl and 5xx", async () => {
    const id = newTestId();
    const { data, response } = await anthropicClient(gw, MANAGED)
      .messages.create({ model: "cl", max_tokens: 16, messages: MESSAGES, stream: true }, { headers: { "x-test-id": id } })
      .withResponse();
    const types: string[] = [];
    let text = "";
    for await (const ev of data) {
      types.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    expect(text).toBe(MOCK_DELTAS.join(""));
    expect(types.filter((x) => x === "message_start")).toHaveLength(1);
    expect(types.at(-1)).toBe("message_stop");
    expect(attemptsOf(id, ant).map((r) => seen(r).model)).toEqual(["always-503-cl", "claude-b"]);
    const u = await usageLine(gw, rid(response));
    expect(u).toMatchObject({ route: "cl", provider: ANTHRO2, fallback_reason: "5xx", stream: true, complete: true });
    const tokens = { input: MOCK_USAGE.anthropicSse.input_tokens, output: MOCK_USAGE.anthropicSse.output_tokens };
    expect(u["cost_usd_micros"]).toBe(expectedMicros(tokens, CLAUDE_B_PRICE));
  });
});

describe("path alias: /<alias>/v1/…", () => {
  test("OpenAI SDK stream at baseURL gw/fb/v1: the body's own model is replaced; requested_model is the body's, route fb", async () => {
    const id = newTestId();
    const { data, response } = await openaiClient(gw, MANAGED, "fb")
      .chat.completions.create({ model: "whatever-the-app-says", messages: MESSAGES, stream: true }, { headers: { "x-test-id": id } })
      .withResponse();
    expect((await collectChatStream(data)).text).toBe(MOCK_TEXT);
    const reqs = attemptsOf(id, oai);
    expect(reqs.map(seen)).toEqual([
      { path: "/openai/v1/chat/completions", model: "always-503-fb", key: poolKeyOf("groq") },
      { path: "/v1/chat/completions", model: "gpt-fb", key: poolKeyOf("openai") },
    ]);
    for (const r of reqs) expectExactLength(r);
    const u = await usageLine(gw, rid(response));
    expect(u).toMatchObject({ route: "fb", provider: "openai", requested_model: "whatever-the-app-says", fallback_reason: "5xx", stream: true });
  });

  test("Anthropic SDK stream at baseURL gw/cl: /cl/v1/messages reaches anthro2 at /v1/messages", async () => {
    const id = newTestId();
    const stream = await anthropicClient(gw, MANAGED, "cl").messages.create(
      { model: "claude-anything", max_tokens: 16, messages: MESSAGES, stream: true },
      { headers: { "x-test-id": id } },
    );
    let text = "";
    for await (const ev of stream) if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    expect(text).toBe(MOCK_TEXT);
    expect(attemptsOf(id, ant).map(seen)).toEqual([
      { path: "/v1/messages", model: "always-503-cl", key: poolKeyOf("anthropic") },
      { path: "/v1/messages", model: "claude-b", key: poolKeyOf(ANTHRO2) },
    ]);
  });

  test("each built-in base path (and [provider_base_paths] for an added provider): target path = base path + the rest, query kept", async () => {
    const cases: Array<[string, string]> = [...Object.entries(OPENAI_BASE_PATHS), [AZURE, AZURE_BASE]];
    for (const [provider, base] of cases) {
      const id = newTestId();
      const r = await rawPost(`/bp-${provider}/v1/chat/completions?trace=1&x=%2F`, JSON.stringify({ model: "m", messages: MESSAGES }), { id });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      expect(attemptsOf(id, oai).map(seen)).toEqual([{ path: `${base}/chat/completions?trace=1&x=%2F`, model: `bp-model-${provider}`, key: poolKeyOf(provider) }]);
    }
    for (const provider of ["anthropic", ANTHRO2]) {
      const id = newTestId();
      const r = await rawPost(`/bp-${provider}/v1/messages`, JSON.stringify({ model: "m", max_tokens: 8, messages: MESSAGES }), { id, anthropic: true });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      expect(attemptsOf(id, ant).map(seen)).toEqual([{ path: "/v1/messages", model: `bp-model-${provider}`, key: poolKeyOf(provider) }]);
    }
  });
});

describe("context-length 400 moves to the next target; any other 400 is relayed", () => {
  test("OpenAI SDK JSON and stream: groq's context_length_exceeded (tried once, never retried), cerebras answers; fallback_reason context_length", async () => {
    for (const stream of [false, true]) {
      const id = newTestId();
      const client = openaiClient(gw, MANAGED);
      const headers = { "x-test-id": id };
      let response: Response;
      if (stream) {
        const res = await client.chat.completions.create({ model: "ctx", messages: MESSAGES, stream: true }, { headers }).withResponse();
        expect((await collectChatStream(res.data)).text).toBe(MOCK_TEXT);
        response = res.response;
      } else {
        const res = await client.chat.completions.create({ model: "ctx", messages: MESSAGES }, { headers }).withResponse();
        expect(res.data.choices[0]?.message.content).toBe(MOCK_TEXT);
        response = res.response;
      }
      expect(attemptsOf(id, oai).map(seen)).toEqual([
        { path: "/openai/v1/chat/completions", model: "context-length-400-ctx", key: poolKeyOf("groq") },
        { path: "/v1/chat/completions", model: "llama-ctx", key: poolKeyOf("cerebras") },
      ]);
      const u = await usageLine(gw, rid(response));
      expect(u).toMatchObject({ route: "ctx", provider: "cerebras", fallback_reason: "context_length", status: 200 });
    }
  });

  test("Anthropic SDK: \"prompt is too long\" from anthropic moves to anthro2", async () => {
    const id = newTestId();
    const { data, response } = await anthropicClient(gw, MANAGED)
      .messages.create({ model: "clctx", max_tokens: 16, messages: MESSAGES }, { headers: { "x-test-id": id } })
      .withResponse();
    expect(data.content[0]?.type).toBe("text");
    expect(attemptsOf(id, ant).map((r) => seen(r).model)).toEqual(["context-length-400-clctx", "claude-ctx"]);
    expect(await usageLine(gw, rid(response))).toMatchObject({ route: "clctx", provider: ANTHRO2, fallback_reason: "context_length" });
  });

  test("a plain 400 is relayed byte for byte, the next target never asked (raw fetch and the OpenAI SDK)", async () => {
    const id = newTestId();
    const r = await rawPost("/v1/chat/completions", JSON.stringify({ model: "plain", messages: MESSAGES }), { id });
    expect(r.status).toBe(400);
    expect(await r.text()).toBe(failureAnswer("openai", 400).body);
    expect(attemptsOf(id, oai).map((x) => seen(x).model)).toEqual(["status-400-plain"]);
    const u = await usageLine(gw, rid(r));
    expect(u).toMatchObject({ route: "plain", provider: "groq", status: 400 });
    expect(u["fallback_reason"]).toBeUndefined();

    const id2 = newTestId();
    const err = await openaiClient(gw, MANAGED)
      .chat.completions.create({ model: "plain", messages: MESSAGES, stream: true }, { headers: { "x-test-id": id2 } })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(attemptsOf(id2, oai).map((x) => seen(x).model)).toEqual(["status-400-plain"]);
  });
});

describe("body alias and the 64 KiB lookahead", () => {
  test("model after 30 KiB of messages (within 64 KiB): routed through the alias", async () => {
    const id = newTestId();
    const sent = JSON.stringify({ messages: [{ role: "user", content: "y".repeat(30 * 1024) }], model: "fb" });
    const r = await rawPost("/v1/chat/completions", sent, { id });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const reqs = attemptsOf(id, oai);
    expect(reqs.map((x) => seen(x).model)).toEqual(["always-503-fb", "gpt-fb"]);
    expect(new TextDecoder().decode(reqs[1]?.body)).toBe(sent.replace('"model":"fb"', '"model":"gpt-fb"'));
    for (const x of reqs) expectExactLength(x);
  });

  test("a 200 KiB body with model and stream first (streamed through, not held whole): routed, rewritten, content-length exact on both attempts", async () => {
    const id = newTestId();
    // `stream` before the long messages, so whether include_usage goes in is known early (the gateway sends chunked
    // while that is still open, a choice of the implementation; SPEC §11 asks for an exact length "whenever").
    const sent = JSON.stringify({ model: "fb", stream: false, messages: [{ role: "user", content: "w".repeat(200 * 1024) }] });
    const r = await rawPost("/v1/chat/completions", sent, { id });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const reqs = attemptsOf(id, oai);
    expect(reqs.map((x) => seen(x).model)).toEqual(["always-503-fb", "gpt-fb"]);
    expect(new TextDecoder().decode(reqs[1]?.body)).toBe(sent.replace('"model":"fb"', '"model":"gpt-fb"'));
    for (const x of reqs) expectExactLength(x);
  });

  test("a chunked upload without content-length, the model after 8 KiB with its value split across two pieces: routed, the target gets the rewritten bytes", async () => {
    const id = newTestId();
    const sent = JSON.stringify({ messages: [{ role: "user", content: "v".repeat(8 * 1024) }], model: "fb", n: 1 });
    const bytes = new TextEncoder().encode(sent);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        // Split inside the model value, so the alias is only whole across two pieces.
        const cut = sent.indexOf('"fb"') + 2;
        c.enqueue(bytes.subarray(0, cut));
        c.enqueue(bytes.subarray(cut));
        c.close();
      },
    });
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json", "x-test-id": id },
      body,
    });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const reqs = attemptsOf(id, oai);
    expect(reqs.map((x) => seen(x).model)).toEqual(["always-503-fb", "gpt-fb"]);
    expect(new TextDecoder().decode(reqs[1]?.body)).toBe(sent.replace('"model":"fb"', '"model":"gpt-fb"'));
  });

  // 70 KiB: just past the lookahead, where a gateway that scans whole read chunks (not exactly 64 KiB) would still see
  // the alias, depending on how the body happened to arrive; 256 KiB: far past it.
  for (const kib of [70, 256]) {
    test(`model after ${kib} KiB of messages (beyond 64 KiB): forwarded unchanged to the path's provider, with the alias as its model`, async () => {
      const id = newTestId();
      const sent = JSON.stringify({ messages: [{ role: "user", content: "z".repeat(kib * 1024) }], model: "fb" });
      const r = await rawPost("/v1/chat/completions", sent, { id });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      const reqs = attemptsOf(id, oai);
      expect(reqs.map(seen)).toEqual([{ path: "/v1/chat/completions", model: "fb", key: poolKeyOf("openai") }]);
      expect(new TextDecoder().decode(reqs[0]?.body)).toBe(sent);
      const u = await usageLine(gw, rid(r));
      expect(u).toMatchObject({ provider: "openai", requested_model: "fb" });
      expect(u["route"]).toBeUndefined();
      expect(u["fallback_reason"]).toBeUndefined();
    });
  }
});

describe("BYO keys cannot use virtual models: 400 invalid_request_error, nothing forwarded", () => {
  const MSG = "virtual models need a managed key";

  test("OpenAI dialect: body alias and path alias, raw fetch and the SDK", async () => {
    const id = newTestId();
    for (const path of ["/v1/chat/completions", "/fb/v1/chat/completions"]) {
      const r = await rawPost(path, JSON.stringify({ model: "fb", messages: MESSAGES }), { key: BYO, id });
      expect(r.status).toBe(400);
      expect(r.headers.get("x-beyond-request-id")).toBeTruthy();
      const j = (await r.json()) as { error: { type: string; message: string } };
      expect(j.error.type).toBe("invalid_request_error");
      expect(j.error.message).toContain(MSG);
      expect((await gw.accessLog(rid(r)))["status"]).toBe(400);
    }
    for (const alias of [undefined, "fb"]) {
      const err = await openaiClient(gw, BYO, alias)
        .chat.completions.create({ model: "fb", messages: MESSAGES, stream: true }, { headers: { "x-test-id": id } })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(String((err as Error).message)).toContain(MSG);
    }
    expect(attemptsOf(id, oai, ant)).toEqual([]);
  });

  test("Anthropic dialect: the Anthropic SDK with a BYO x-api-key naming an alias (body and path) gets an Anthropic-shaped 400", async () => {
    const id = newTestId();
    for (const alias of [undefined, "cl"]) {
      const err = await anthropicClient(gw, BYO, alias)
        .messages.create({ model: "cl", max_tokens: 16, messages: MESSAGES }, { headers: { "x-test-id": id } })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      expect((err as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
      expect(String((err as Error).message)).toContain(MSG);
    }
    expect(attemptsOf(id, oai, ant)).toEqual([]);
  });
});

describe("route metrics", () => {
  test("ai_route_requests_total{route,target} counts the answering target; ai_fallbacks_total{route,reason} the reason", async () => {
    const before = (await scrape(gw.metricsUrl)).exp;
    for (const model of ["fb", "fb", "ctx"]) {
      const r = await rawPost("/v1/chat/completions", JSON.stringify({ model, messages: MESSAGES }), { id: newTestId() });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
    const after = (await scrape(gw.metricsUrl)).exp;
    const delta = (name: string, labels: Record<string, string>): number => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    expect(delta("ai_route_requests_total", { route: "fb", target: "openai/gpt-fb" })).toBe(2);
    expect(delta("ai_route_requests_total", { route: "fb", target: "groq/always-503-fb" })).toBe(0);
    expect(delta("ai_route_requests_total", { route: "ctx", target: "cerebras/llama-ctx" })).toBe(1);
    expect(delta("ai_fallbacks_total", { route: "fb", reason: "5xx" })).toBe(2);
    expect(delta("ai_fallbacks_total", { route: "ctx", reason: "context_length" })).toBe(1);
  });
});
