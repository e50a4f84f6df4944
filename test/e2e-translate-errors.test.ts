// End to end, dialect translation's failures (SPEC §12): provider 4xx/5xx reach the client in its own dialect's error
// shape with the provider's status (official SDKs throw their own error classes; raw fetch sees the exact shape), and
// what the gateway refuses before sending anything: malformed JSON (400), a content part/block type the translator does
// not know (400 naming the field path), a body over `max_translate_bytes` (413, declared or chunked), an endpoint a
// target of the other dialect cannot serve (400), odd JSON values (400, never a crash). Every refusal is in the client's
// dialect, carries x-beyond-request-id, gets its ai.access line, and reaches no provider. The gateway here has
// `max_translate_bytes = 4096`.
import { beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { Gateway } from "./helpers/gateway.ts";
import { failureAnswer, MOCK_TEXT, type MockProvider } from "./helpers/mock-provider.ts";
import { type Dialect, toReply } from "./helpers/replies.ts";
import { tracked } from "./helpers/tracked.ts";
import { anthropicSdk, type Json, openaiSdk, rawPost, rid, startTranslateRig } from "./helpers/translate.ts";
import { attemptsOf, newTestId, poolKeyOf, seen } from "./helpers/virtual-models.ts";

const t = tracked();
let gw: Gateway;
let oai: MockProvider;
let ant: MockProvider;
const MAX_TRANSLATE = 4096;
beforeAll(async () => {
  ({ gw, oai, ant } = await startTranslateRig(t, `max_translate_bytes = ${MAX_TRANSLATE}`));
});

const HI = [{ role: "user" as const, content: "hi" }];

/** The provider's own error message for a status, in the provider's dialect (what the mock answers). */
function providerMessage(dialect: Dialect, status: 400 | 429 | 500): string {
  const body = JSON.parse(failureAnswer(dialect, status).body) as { error: { message: string } };
  return body.error.message;
}

/** A reply in the client's error shape: OpenAI `{error: {message, type, …}}` (no top-level type), Anthropic
 * `{type: "error", error: {type, message}}`. Returns the inner error. */
function clientError(json: unknown, dialect: Dialect): { type: string; message: string } {
  const j = json as Json;
  const e = j["error"] as Json | undefined;
  expect(e).toBeDefined();
  if (dialect === "anthropic") expect(j["type"]).toBe("error");
  else expect(j["type"]).toBeUndefined();
  expect(typeof e?.["type"]).toBe("string");
  expect(typeof e?.["message"]).toBe("string");
  return { type: String(e?.["type"]), message: String(e?.["message"]) };
}

/** A gateway refusal in `dialect`: status, request id, JSON, the dialect's shape; returns the inner error. */
async function refusal(r: Response, dialect: Dialect, status: number): Promise<{ type: string; message: string }> {
  const reply = await toReply(r);
  expect(reply.status).toBe(status);
  expect(reply.headers.get("x-beyond-request-id")).toBeTruthy();
  expect(reply.headers.get("content-type") ?? "").toContain("application/json");
  const e = clientError(reply.json, dialect);
  expect(e.type).toBe("invalid_request_error");
  // One access line for the refusal, with its status.
  expect((await gw.accessLog(rid(r)))["status"]).toBe(status);
  return e;
}

/** The provider never saw the request. */
function expectNothingForwarded(id: string): void {
  expect(attemptsOf(id, oai, ant)).toHaveLength(0);
}

describe("provider errors arrive in the client's dialect with the provider's status", () => {
  // A 429 cools the pool key for its model, so each 429 request has an alias (and model) of its own: raw, SDK JSON,
  // SDK stream.
  const cases: Array<[400 | 429 | 500, string, string, string]> = [
    [400, "-1", "-1", "-1"],
    [429, "-429", "-429j", "-429s"],
    [500, "-1", "-1", "-1"],
  ];

  for (const [status, rawSuffix, jsonSuffix, streamSuffix] of cases) {
    test(`${status} from the Anthropic target → OpenAI error shape (raw fetch: the provider's message kept; SDK JSON and stream: its ${status} error class)`, async () => {
      const id = newTestId();
      const r = await rawPost(gw, "/v1/chat/completions", JSON.stringify({ model: `claude${rawSuffix}`, messages: HI }), { id, headers: { "x-mock-reply": `error-${status}` } });
      expect(r.status).toBe(status);
      expect(rid(r)).not.toBe("");
      const e = clientError(await r.json(), "openai");
      expect(e.message).toBe(providerMessage("anthropic", status));
      expect(attemptsOf(id, ant).map((x) => seen(x).path)).toEqual(["/v1/messages"]);

      const cls = status === 400 ? OpenAI.BadRequestError : status === 429 ? OpenAI.RateLimitError : OpenAI.InternalServerError;
      const headers = { "x-mock-reply": `error-${status}` };
      const ids = [newTestId(), newTestId()];
      const jsonErr = await openaiSdk(gw)
        .chat.completions.create({ model: `claude${jsonSuffix}`, messages: HI }, { headers: { ...headers, "x-test-id": ids[0] as string } })
        .then(() => undefined, (x: unknown) => x);
      expect(jsonErr).toBeInstanceOf(cls);
      expect((jsonErr as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
      const streamErr = await openaiSdk(gw)
        .chat.completions.create({ model: `claude${streamSuffix}`, messages: HI, stream: true }, { headers: { ...headers, "x-test-id": ids[1] as string } })
        .then(() => undefined, (x: unknown) => x);
      expect(streamErr).toBeInstanceOf(cls);
      expect((streamErr as InstanceType<typeof OpenAI.APIError>).message).toContain(providerMessage("anthropic", status));
      for (const i of ids) expect(attemptsOf(i, ant)).toHaveLength(1);
    });

    test(`${status} from the OpenAI target → Anthropic error shape (raw fetch: the provider's message kept; SDK JSON and stream: its ${status} error class)`, async () => {
      const id = newTestId();
      const r = await rawPost(gw, "/v1/messages", JSON.stringify({ model: `gpt${rawSuffix}`, max_tokens: 8, messages: HI }), {
        id,
        anthropic: true,
        headers: { "x-mock-reply": `error-${status}` },
      });
      expect(r.status).toBe(status);
      expect(rid(r)).not.toBe("");
      const e = clientError(await r.json(), "anthropic");
      expect(e.message).toBe(providerMessage("openai", status));
      expect(e.type).toBe(status === 400 ? "invalid_request_error" : status === 429 ? "rate_limit_error" : "api_error");
      expect(attemptsOf(id, oai).map((x) => seen(x).path)).toEqual(["/v1/chat/completions"]);

      const cls = status === 400 ? Anthropic.BadRequestError : status === 429 ? Anthropic.RateLimitError : Anthropic.InternalServerError;
      const headers = { "x-mock-reply": `error-${status}` };
      const jsonErr = await anthropicSdk(gw)
        .messages.create({ model: `gpt${jsonSuffix}`, max_tokens: 8, messages: HI }, { headers })
        .then(() => undefined, (x: unknown) => x);
      expect(jsonErr).toBeInstanceOf(cls);
      const streamErr = await anthropicSdk(gw)
        .messages.create({ model: `gpt${streamSuffix}`, max_tokens: 8, messages: HI, stream: true }, { headers })
        .then(() => undefined, (x: unknown) => x);
      expect(streamErr).toBeInstanceOf(cls);
      expect((streamErr as InstanceType<typeof Anthropic.APIError>).status).toBe(status);
    });
  }
});

describe("bad input is refused in the client's dialect before anything is sent", () => {
  test("malformed JSON: 400 in OpenAI shape (path alias and body alias) and in Anthropic shape; nothing forwarded", async () => {
    const cases: Array<[string, string, Dialect]> = [
      ["/claude/v1/chat/completions", '{"model":"x","messages":[{"role":"user","content":"hi"}', "openai"],
      ["/v1/chat/completions", '{"model":"claude","messages":[{"role":"user","content":"hi"},]}', "openai"],
      ["/gpt/v1/messages", '{"model":"x","max_tokens":8,"messages":[{"role":"user" "content":"hi"}]}', "anthropic"],
      ["/v1/messages", '{"model":"gpt","max_tokens":8,"messages":[', "anthropic"],
    ];
    for (const [path, body, dialect] of cases) {
      const id = newTestId();
      const r = await rawPost(gw, path, body, { id, anthropic: dialect === "anthropic" });
      const e = await refusal(r, dialect, 400);
      expect(e.message).toMatch(/json/i);
      expectNothingForwarded(id);
    }
  });

  test("an unknown content part type (OpenAI client): 400 whose message names messages[0].content[1].type; nothing forwarded", async () => {
    const id = newTestId();
    const body = { model: "claude", messages: [{ role: "user", content: [{ type: "text", text: "look" }, { type: "video_url", video_url: { url: "https://example.com/v.mp4" } }] }] };
    const r = await rawPost(gw, "/v1/chat/completions", JSON.stringify(body), { id });
    const e = await refusal(r, "openai", 400);
    expect(e.message).toContain("messages[0].content[1].type");
    expectNothingForwarded(id);

    const err = await openaiSdk(gw)
      .chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .then(() => undefined, (x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  });

  test("an unknown content block type (Anthropic client): 400 whose message names messages[1].content[0].type; nothing forwarded", async () => {
    const id = newTestId();
    const body = {
      model: "gpt",
      max_tokens: 8,
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: [{ type: "hologram", data: "x" }] },
        { role: "user", content: "again" },
      ],
    };
    const r = await rawPost(gw, "/v1/messages", JSON.stringify(body), { id, anthropic: true });
    const e = await refusal(r, "anthropic", 400);
    expect(e.message).toContain("messages[1].content[0].type");
    expectNothingForwarded(id);

    const err = await anthropicSdk(gw)
      .messages.create(body as unknown as Anthropic.MessageCreateParamsNonStreaming)
      .then(() => undefined, (x: unknown) => x);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
  });

  test("valid JSON the translator cannot read (not an object, messages missing or not a list, a part without its text): 400 in dialect, never a 5xx or a crash", async () => {
    const odd = ["[]", "null", '"text"', "42", '{"model":"claude"}', '{"model":"claude","messages":"hi"}', '{"model":"claude","messages":[{"role":"user","content":[{"type":"text"}]}]}', '{"model":"claude","messages":[7]}'];
    for (const body of odd) {
      const id = newTestId();
      const r = await rawPost(gw, "/claude/v1/chat/completions", body, { id });
      await refusal(r, "openai", 400);
      expectNothingForwarded(id);
    }
    for (const body of ["[]", '{"model":"gpt","max_tokens":8}', '{"model":"gpt","max_tokens":8,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"teleport"}}]}]}']) {
      const id = newTestId();
      const r = await rawPost(gw, "/gpt/v1/messages", body, { id, anthropic: true });
      await refusal(r, "anthropic", 400);
      expectNothingForwarded(id);
    }
    expect(gw.proc.exitCode).toBeNull();
  });

  test(`a body over max_translate_bytes (${MAX_TRANSLATE}): 413 in each dialect, declared or chunked; one just under passes`, async () => {
    const big = (n: number) => "x".repeat(n);
    const id1 = newTestId();
    const r1 = await rawPost(gw, "/v1/chat/completions", JSON.stringify({ model: "claude", messages: [{ role: "user", content: big(MAX_TRANSLATE) }] }), { id: id1 });
    expect((await refusal(r1, "openai", 413)).message).toMatch(/too large/i);
    expectNothingForwarded(id1);

    const id2 = newTestId();
    const r2 = await rawPost(gw, "/gpt/v1/messages", JSON.stringify({ model: "x", max_tokens: 8, messages: [{ role: "user", content: big(MAX_TRANSLATE) }] }), { id: id2, anthropic: true });
    expect((await refusal(r2, "anthropic", 413)).message).toMatch(/too large/i);
    expectNothingForwarded(id2);

    // Chunked (no content-length): the limit holds while the body is read.
    const id3 = newTestId();
    const bytes = new TextEncoder().encode(JSON.stringify({ model: "x", messages: [{ role: "user", content: big(3 * MAX_TRANSLATE) }] }));
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let off = 0; off < bytes.length; off += 1000) c.enqueue(bytes.subarray(off, off + 1000));
        c.close();
      },
    });
    const r3 = await rawPost(gw, "/claude/v1/chat/completions", chunked, { id: id3 });
    expect((await refusal(r3, "openai", 413)).message).toMatch(/too large/i);
    expectNothingForwarded(id3);

    const id4 = newTestId();
    const r4 = await rawPost(gw, "/v1/chat/completions", JSON.stringify({ model: "claude", messages: [{ role: "user", content: big(MAX_TRANSLATE - 200) }] }), { id: id4 });
    expect(r4.status).toBe(200);
    expect(((await r4.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(attemptsOf(id4, ant)).toHaveLength(1);
  });

  test("an endpoint a target of the other dialect cannot serve: 400 (count_tokens on an OpenAI target, embeddings by body alias on an Anthropic one); on a mixed alias the same-dialect target serves it", async () => {
    const id1 = newTestId();
    const r1 = await rawPost(gw, "/gpt/v1/messages/count_tokens", JSON.stringify({ model: "x", messages: HI }), { id: id1, anthropic: true });
    await refusal(r1, "anthropic", 400);
    expectNothingForwarded(id1);

    const id2 = newTestId();
    // Body alias on the bare OpenAI path (the path says which SDK calls; an alias path other than chat/completions or
    // messages speaks its first target's dialect and is forwarded as in SPEC §11).
    const r2 = await rawPost(gw, "/v1/embeddings", JSON.stringify({ model: "claude", input: "hi" }), { id: id2 });
    await refusal(r2, "openai", 400);
    expectNothingForwarded(id2);

    const id3 = newTestId();
    const r3 = await rawPost(gw, "/v1/embeddings", JSON.stringify({ model: "mixed", input: "hi" }), { id: id3 });
    expect(r3.status).toBe(200);
    await r3.arrayBuffer();
    expect(attemptsOf(id3, oai, ant).map(seen)).toEqual([{ path: "/v1/embeddings", model: "gpt-mix", key: poolKeyOf("openai") }]);
  });

  test("after every refusal above the gateway still translates: a normal request in each direction answers 200", async () => {
    const a = await openaiSdk(gw).chat.completions.create({ model: "claude", messages: HI });
    expect(a.choices[0]?.message.content).toBe(MOCK_TEXT);
    const b = await anthropicSdk(gw).messages.create({ model: "gpt", max_tokens: 8, messages: HI });
    expect(b.content).toEqual([expect.objectContaining({ type: "text", text: MOCK_TEXT })]);
    expect(gw.proc.exitCode).toBeNull();
  });
});
