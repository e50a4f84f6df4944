// Where dialect translation plugs into the pipeline (src/translate/exchange.ts, src/pipeline/route.ts): which client
// endpoints translate and to what, what dialect an alias path's client speaks, the response head of a translated
// answer, and the 400 messages a body the translator cannot take gets. The translations themselves are pinned by
// test/translate-request.test.ts, test/translate-response.test.ts and test/translate-stream.test.ts.
import { describe, expect, test } from "bun:test";
import { Router } from "../src/pipeline/route.ts";
import { BUILT_IN_PROVIDERS, buildProvider } from "../src/routing/providers.ts";
import { Secret } from "../src/ops/secret.ts";
import { prepareTranslation, targetBody, translatedHead, translatedRest } from "../src/translate/exchange.ts";

const enc = new TextEncoder();

describe("translatedRest: only chat completions and messages POSTs translate", () => {
  test("an OpenAI client's /chat/completions goes to /messages, the query kept", () => {
    expect(translatedRest("openai", "POST", "/chat/completions")).toBe("/messages");
    expect(translatedRest("openai", "POST", "/chat/completions?x=1")).toBe("/messages?x=1");
  });
  test("an Anthropic client's /messages goes to /chat/completions, the query kept", () => {
    expect(translatedRest("anthropic", "POST", "/messages")).toBe("/chat/completions");
    expect(translatedRest("anthropic", "POST", "/messages?beta=true")).toBe("/chat/completions?beta=true");
  });
  test("every other endpoint, method or dialect pairing does not translate", () => {
    for (const [d, m, r] of [
      ["openai", "GET", "/chat/completions"],
      ["openai", "POST", "/embeddings"],
      ["openai", "POST", "/messages"],
      ["openai", "POST", "/chat/completions/x"],
      ["anthropic", "POST", "/messages/count_tokens"],
      ["anthropic", "POST", "/chat/completions"],
      ["anthropic", "GET", "/models"],
    ] as const) {
      expect(translatedRest(d, m, r)).toBeUndefined();
    }
  });
});

describe("an alias path's client dialect comes from its endpoint", () => {
  const wrap = (s: string) => new Secret(s);
  const byName = new Map(BUILT_IN_PROVIDERS.map((r) => [r.name, buildProvider(r, true, [new Secret("k")], wrap)]));
  const router = new Router(byName.values(), new Map([["smart", byName.get("openai")!], ["claude", byName.get("anthropic")!]]));
  test("below /messages: Anthropic, whatever the first target speaks", () => {
    expect(router.route("/smart/v1/messages")?.dialect).toBe("anthropic");
    expect(router.route("/smart/v1/messages?beta=true")?.dialect).toBe("anthropic");
    expect(router.route("/smart/v1/messages/count_tokens")?.dialect).toBe("anthropic");
  });
  test("/chat/completions: OpenAI, whatever the first target speaks", () => {
    expect(router.route("/claude/v1/chat/completions")?.dialect).toBe("openai");
  });
  test("anything else: the first target's dialect", () => {
    expect(router.route("/claude/v1/models")?.dialect).toBe("anthropic");
    expect(router.route("/smart/v1/embeddings")?.dialect).toBe("openai");
    expect(router.route("/smart/v1/messagesx")?.dialect).toBe("openai");
  });
  test("bare /v1 and provider paths carry no client dialect of their own (their provider's applies)", () => {
    expect(router.route("/v1/chat/completions")?.dialect).toBeUndefined();
    expect(router.route("/anthropic/v1/messages")?.dialect).toBeUndefined();
  });
});

describe("prepareTranslation: the 400's message", () => {
  test("a body that is not JSON", () => {
    const p = prepareTranslation("openai", enc.encode('{"model":"x",'), 4096);
    expect(p).toEqual({ ok: false, message: "the request body is not valid JSON" });
  });
  test("an empty body is not JSON either", () => {
    expect(prepareTranslation("anthropic", new Uint8Array(0), 4096).ok).toBe(false);
  });
  test("an unknown content part names its field", () => {
    const body = { model: "x", messages: [{ role: "user", content: [{ type: "hologram", data: "?" }] }] };
    const p = prepareTranslation("openai", enc.encode(JSON.stringify(body)), 4096);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.message).toStartWith("messages[0].content[0]");
  });
  test("a good body: translated once, the client's model kept for the usage line, each target's model set by targetBody", () => {
    const body = { model: "smart", messages: [{ role: "user", content: "hi" }] };
    const p = prepareTranslation("openai", enc.encode(JSON.stringify(body)), 4096);
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.clientModel).toBe("smart");
    const a = JSON.parse(new TextDecoder().decode(targetBody(p.request, "claude-a")));
    const b = JSON.parse(new TextDecoder().decode(targetBody(p.request, "claude-b")));
    expect(a.model).toBe("claude-a");
    expect(b.model).toBe("claude-b");
    expect(a.max_tokens).toBe(4096);
    expect(a.messages).toEqual(b.messages);
  });
});

describe("translatedHead", () => {
  test("the provider's framing and encoding go, the content type is the client's, dropped params are named", () => {
    const h = new Headers({ "content-length": "123", "content-encoding": "gzip", "content-type": "application/json", "x-request-id": "req_1" });
    translatedHead(h, true, ["seed", "logprobs"]);
    expect(h.get("content-length")).toBeNull();
    expect(h.get("content-encoding")).toBeNull();
    expect(h.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(h.get("x-beyond-dropped-params")).toBe("seed,logprobs");
    expect(h.get("x-request-id")).toBe("req_1");
  });
  test("nothing dropped: no x-beyond-dropped-params header", () => {
    const h = new Headers({ "content-type": "text/event-stream" });
    translatedHead(h, false, []);
    expect(h.get("content-type")).toBe("application/json");
    expect(h.has("x-beyond-dropped-params")).toBe(false);
  });
});
