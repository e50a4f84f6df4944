// End-to-end with the official SDKs pointed at the gateway, the way users deploy it: only the base URL changes.
// A recording fetch captures what each SDK actually sent, so the tests compare it with what the provider got
// (BYO: every header and the body untouched) instead of assuming one SDK version's header choices.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { baseConfig, startGateway, type Gateway } from "./helpers/gateway.ts";
import {
  MOCK_ANTHROPIC_MODEL,
  MOCK_DELTAS,
  MOCK_OPENAI_MODEL,
  MOCK_TEXT,
  MOCK_USAGE,
  sha256Hex,
  startMockProvider,
  type MockProvider,
  type RecordedRequest,
} from "./helpers/mock-provider.ts";
import { collectChatStream } from "./helpers/sdk.ts";

const OPENAI_KEY = "sk-proj-byo-openai-sdk-0123456789";
const ANTHROPIC_KEY = "sk-ant-api03-byo-anthropic-sdk-0123456789";

let mock: MockProvider;
let gw: Gateway;

interface Sent {
  url: string;
  method: string;
  headers: Headers;
  body: string | undefined;
}
let sent: Sent[] = [];

/** Delegates to fetch, recording the request as the SDK built it. */
async function recordingFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  sent.push({
    url,
    method: init?.method ?? "GET",
    headers: new Headers(init?.headers),
    body: typeof init?.body === "string" ? init.body : undefined,
  });
  return fetch(input, init);
}

function lastSent(): Sent {
  const s = sent[sent.length - 1];
  if (!s) throw new Error("the SDK sent nothing");
  return s;
}

/** Every header the SDK set arrives upstream with the same value, and the body is byte-identical. */
function expectForwardedUntouched(s: Sent, seen: RecordedRequest): void {
  s.headers.forEach((value, name) => {
    // host and connection describe the hop, not the request; the SDKs do not set them anyway.
    if (name === "host" || name === "connection") return;
    expect([name, seen.headers[name]]).toEqual([name, value]);
  });
  if (s.body !== undefined) expect(seen.bodySha256).toBe(sha256Hex(new TextEncoder().encode(s.body)));
}

beforeAll(async () => {
  mock = startMockProvider();
  gw = await startGateway({ config: baseConfig({ authorities: { openai: mock.authority, anthropic: mock.authority } }) });
});

afterAll(async () => {
  await gw?.stop();
  await mock?.stop();
});

beforeEach(() => {
  mock.reset();
  sent = [];
});

describe("openai SDK (baseURL = gateway/v1, BYO key)", () => {
  const client = (): OpenAI => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: OPENAI_KEY, maxRetries: 0, fetch: recordingFetch });

  test("chat.completions.create returns the provider's answer; the key arrives untouched in Authorization", async () => {
    const res = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    expect(res.id).toBe("chatcmpl-mock");
    expect(res.model).toBe(MOCK_OPENAI_MODEL);
    expect(res.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(res.usage?.prompt_tokens).toBe(MOCK_USAGE.openaiJson.prompt_tokens);
    const seen = mock.last();
    expect(seen.method).toBe("POST");
    expect(seen.path).toBe("/v1/chat/completions");
    expect(seen.headers["authorization"]).toBe(`Bearer ${OPENAI_KEY}`);
    expectForwardedUntouched(lastSent(), seen);
  });

  test("chat.completions.create with stream: true yields every chunk, and the BYO body is not rewritten", async () => {
    const stream = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    const { chunks, text } = await collectChatStream(stream);
    const sawUsage = chunks.some((c) => c.usage);
    const finish = chunks.findLast((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason ?? null;
    expect(text).toBe(MOCK_TEXT);
    expect(finish).toBe("stop");
    expect(chunks.length).toBe(MOCK_DELTAS.length + 2);
    expect(sawUsage).toBe(false);
    const seen = mock.last();
    expect(seen.path).toBe("/v1/chat/completions");
    expect((seen.json as Record<string, unknown>)["stream"]).toBe(true);
    expect((seen.json as Record<string, unknown>)["stream_options"]).toBeUndefined();
    expectForwardedUntouched(lastSent(), seen);
  });

  test("streaming with stream_options.include_usage delivers the provider's usage chunk", async () => {
    const stream = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const { chunks, text } = await collectChatStream(stream);
    const usage = chunks.findLast((c) => c.usage)?.usage;
    expect(text).toBe(MOCK_TEXT);
    expect(usage?.prompt_tokens).toBe(MOCK_USAGE.openaiSse.prompt_tokens);
    expect(usage?.completion_tokens).toBe(MOCK_USAGE.openaiSse.completion_tokens);
  });

  test("responses.create (non-streaming and streaming) returns the provider's answer", async () => {
    const c = client();
    const res = await c.responses.create({ model: "gpt-4o-mini", input: "hi" });
    expect(res.output_text).toBe(MOCK_TEXT);
    expect(res.usage?.input_tokens).toBe(MOCK_USAGE.responses.input_tokens);
    expect(mock.last().path).toBe("/v1/responses");
    const stream = await c.responses.create({ model: "gpt-4o-mini", input: "hi", stream: true });
    let text = "";
    let completed = false;
    for await (const ev of stream) {
      if (ev.type === "response.output_text.delta") text += ev.delta;
      if (ev.type === "response.completed") completed = true;
    }
    expect(text).toBe(MOCK_TEXT);
    expect(completed).toBe(true);
  });

  test("embeddings.create and models.list pass through", async () => {
    const c = client();
    const emb = await c.embeddings.create({ model: "text-embedding-3-small", input: "hello" });
    expect(emb.data[0]?.embedding.length).toBe(4);
    expect(mock.last().path).toBe("/v1/embeddings");
    const ids: string[] = [];
    for await (const m of c.models.list()) ids.push(m.id);
    expect(ids).toEqual(["gpt-4o", "gpt-4o-mini"]);
    expect(mock.last().method).toBe("GET");
    expect(mock.last().path).toBe("/v1/models");
    expectForwardedUntouched(lastSent(), mock.last());
  });

  test("a provider 429 surfaces as the SDK's RateLimitError", async () => {
    const err = await client()
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }, { headers: { "x-mock-mode": "status:429" } })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).status).toBe(429);
    expect(mock.requests.length).toBe(1);
  });

  test("the gateway's own 404 is an SDK NotFoundError carrying 'unknown provider'", async () => {
    const c = new OpenAI({ baseURL: `${gw.url}/nosuchprovider/v1`, apiKey: OPENAI_KEY, maxRetries: 0 });
    const err = await c.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(String((err as Error).message)).toContain("unknown provider");
    expect(mock.requests.length).toBe(0);
  });
});

describe("anthropic SDK (baseURL = gateway root, BYO key)", () => {
  const PARAMS = { model: "claude-opus-4-8", max_tokens: 64, messages: [{ role: "user" as const, content: "hi" }] };

  const variants: Array<[string, () => Anthropic, "authorization" | "x-api-key", string]> = [
    [
      "apiKey",
      () => new Anthropic({ baseURL: gw.url, apiKey: ANTHROPIC_KEY, maxRetries: 0, fetch: recordingFetch }),
      // @anthropic-ai/sdk 1.x sends apiKey as `Authorization: Bearer` (0.x sent x-api-key); either must pass.
      "authorization",
      `Bearer ${ANTHROPIC_KEY}`,
    ],
    [
      "authToken",
      () => new Anthropic({ baseURL: gw.url, authToken: ANTHROPIC_KEY, maxRetries: 0, fetch: recordingFetch }),
      "authorization",
      `Bearer ${ANTHROPIC_KEY}`,
    ],
    [
      "x-api-key header (apiKey moved to X-Api-Key, Authorization omitted)",
      () =>
        new Anthropic({
          baseURL: gw.url,
          apiKey: ANTHROPIC_KEY,
          defaultHeaders: { "X-Api-Key": ANTHROPIC_KEY, Authorization: null },
          maxRetries: 0,
          fetch: recordingFetch,
        }),
      "x-api-key",
      ANTHROPIC_KEY,
    ],
  ];

  /** The key arrives in the header the SDK put it in, unchanged, and no other auth header appears. */
  function expectKeyUntouched(seen: RecordedRequest, header: "authorization" | "x-api-key", value: string): void {
    const s = lastSent();
    expect(s.headers.get(header)).toBe(value);
    expect(seen.headers[header]).toBe(value);
    const other = header === "authorization" ? "x-api-key" : "authorization";
    expect(seen.headers[other]).toBe(s.headers.get(other) ?? undefined);
    expect(seen.headers["anthropic-version"]).toBe(s.headers.get("anthropic-version") ?? "missing on the SDK side");
    expectForwardedUntouched(s, seen);
  }

  test.each(variants)("%s: messages.create returns the provider's answer", async (_name, make, header, value) => {
    const msg = await make().messages.create(PARAMS);
    expect(msg.id).toBe("msg_mock");
    expect(msg.model).toBe(MOCK_ANTHROPIC_MODEL);
    const block = msg.content[0];
    expect(block?.type).toBe("text");
    expect(block?.type === "text" ? block.text : "").toBe(MOCK_TEXT);
    expect(msg.usage.input_tokens).toBe(MOCK_USAGE.anthropicJson.input_tokens);
    expect(msg.usage.output_tokens).toBe(MOCK_USAGE.anthropicJson.output_tokens);
    const seen = mock.last();
    expect(seen.method).toBe("POST");
    expect(seen.path).toBe("/v1/messages");
    expectKeyUntouched(seen, header, value);
  });

  test.each(variants)("%s: messages.stream emits the text and the final message", async (_name, make, header, value) => {
    const stream = make().messages.stream(PARAMS);
    const deltas: string[] = [];
    stream.on("text", (t) => deltas.push(t));
    const final = await stream.finalMessage();
    expect(deltas).toEqual([...MOCK_DELTAS]);
    const block = final.content[0];
    expect(block?.type === "text" ? block.text : "").toBe(MOCK_TEXT);
    expect(final.stop_reason).toBe("end_turn");
    expect(final.usage.input_tokens).toBe(MOCK_USAGE.anthropicSse.input_tokens);
    expect(final.usage.output_tokens).toBe(MOCK_USAGE.anthropicSse.output_tokens);
    const seen = mock.last();
    expect(seen.path).toBe("/v1/messages");
    expect((seen.json as Record<string, unknown>)["stream"]).toBe(true);
    expectKeyUntouched(seen, header, value);
  });

  test.each(variants)("%s: messages.create with stream: true yields the events in Anthropic order", async (_name, make, header, value) => {
    const stream = await make().messages.create({ ...PARAMS, stream: true });
    const types: string[] = [];
    let text = "";
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    expect(text).toBe(MOCK_TEXT);
    expect(types).toEqual([
      "message_start",
      "content_block_start",
      ...MOCK_DELTAS.map(() => "content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expectKeyUntouched(mock.last(), header, value);
  });

  test("messages.countTokens passes through", async () => {
    const c = new Anthropic({ baseURL: gw.url, apiKey: ANTHROPIC_KEY, maxRetries: 0, fetch: recordingFetch });
    const r = await c.messages.countTokens({ model: "claude-opus-4-8", messages: [{ role: "user", content: "hi" }] });
    expect(r.input_tokens).toBe(MOCK_USAGE.anthropicJson.input_tokens);
    expect(mock.last().path).toBe("/v1/messages/count_tokens");
    expectForwardedUntouched(lastSent(), mock.last());
  });

  test("a provider 529/overloaded error reaches the SDK with its status", async () => {
    const c = new Anthropic({ baseURL: gw.url, apiKey: ANTHROPIC_KEY, maxRetries: 0 });
    const err = await c.messages.create(PARAMS, { headers: { "x-mock-mode": "status:529" } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect(mock.requests.length).toBe(1);
  });

  test("the gateway's own 404 is an SDK NotFoundError carrying 'unknown provider'", async () => {
    const c = new Anthropic({ baseURL: `${gw.url}/nosuchprovider`, apiKey: ANTHROPIC_KEY, maxRetries: 0 });
    const err = await c.messages.create(PARAMS).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Anthropic.NotFoundError);
    expect(String((err as Error).message)).toContain("unknown provider");
    expect(mock.requests.length).toBe(0);
  });
});
