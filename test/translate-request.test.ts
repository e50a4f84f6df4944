// Request translation (SPEC §12) as pure functions: golden files written from the providers' documented formats,
// each TranslateError's field, a property test over random JSON values, and the openai → anthropic → openai trip.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { translateRequest } from "../src/translate/request.ts";
import { TranslateError } from "../src/translate/types.ts";
import type { Dialect, TranslateOptions } from "../src/translate/types.ts";
import { Gen } from "./helpers/json-gen.ts";
import type { Json } from "./helpers/json-gen.ts";
import { mulberry32 } from "./helpers/random.ts";

const OPTS: TranslateOptions = { model: "target-model", defaultMaxTokens: 4096 };
const DIR = join(import.meta.dir, "fixtures/translate/request");

interface Golden {
  client: Dialect;
  opts?: TranslateOptions;
  input: unknown;
  expected: Record<string, unknown>;
  dropped: string[];
  stream?: boolean;
  includeUsage?: boolean;
}

describe("request goldens (test/fixtures/translate/request)", () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
  test("the golden set covers both directions", () => {
    expect(files.filter((f) => f.startsWith("openai-")).length).toBeGreaterThanOrEqual(15);
    expect(files.filter((f) => f.startsWith("anthropic-")).length).toBeGreaterThanOrEqual(15);
  });
  for (const f of files) {
    test(f.replace(/\.json$/, ""), () => {
      const g = JSON.parse(readFileSync(join(DIR, f), "utf8")) as Golden;
      const before = JSON.stringify(g.input);
      const r = translateRequest(g.client, g.input, g.opts ?? OPTS);
      expect(r.body).toEqual(g.expected);
      expect([...r.dropped]).toEqual(g.dropped);
      expect(r.stream).toBe(g.stream ?? false);
      expect(r.includeUsage).toBe(g.includeUsage ?? false);
      expect(JSON.stringify(g.input)).toBe(before); // the client's parsed body is never mutated
    });
  }
});

function fieldOf(client: Dialect, body: unknown): string {
  try {
    translateRequest(client, body, OPTS);
  } catch (e) {
    if (e instanceof TranslateError) return e.field;
    throw e;
  }
  throw new Error("translateRequest accepted a body it should refuse");
}

const user = { role: "user", content: "hi" };

describe("bad OpenAI bodies: TranslateError names the field", () => {
  const cases: [string, unknown, string][] = [
    ["body is not an object", [1, 2], ""],
    ["body is null", null, ""],
    ["messages missing", { model: "m" }, "messages"],
    ["messages not an array", { messages: "hi" }, "messages"],
    ["message not an object", { messages: [user, 3] }, "messages[1]"],
    ["unknown role", { messages: [{ role: "function", content: "x" }] }, "messages[0].role"],
    ["unknown content part type", { messages: [user, { role: "assistant", content: "a" }, { role: "user", content: [{ type: "text", text: "a" }, { type: "input_audio", input_audio: {} }] }] }, "messages[2].content[1].type"],
    ["image in a tool message", { messages: [{ role: "tool", tool_call_id: "c", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }] }, "messages[0].content[0].type"],
    ["non-base64 data URL", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png,abc" } }] }] }, "messages[0].content[0].image_url.url"],
    ["ftp image URL", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "ftp://x/y.png" } }] }] }, "messages[0].content[0].image_url.url"],
    ["tool message without tool_call_id", { messages: [{ role: "tool", content: "x" }] }, "messages[0].tool_call_id"],
    ["arguments not JSON", { messages: [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{bad" } }] }] }, "messages[0].tool_calls[0].function.arguments"],
    ["arguments not an object", { messages: [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "[1]" } }] }] }, "messages[0].tool_calls[0].function.arguments"],
    ["tool call without id", { messages: [{ role: "assistant", tool_calls: [{ type: "function", function: { name: "f", arguments: "{}" } }] }] }, "messages[0].tool_calls[0].id"],
    ["system part not text", { messages: [{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x" } }] }] }, "messages[0].content[0].type"],
    ["n > 1", { n: 2, messages: [user] }, "n"],
    ["max_tokens not a positive integer", { max_tokens: 0, messages: [user] }, "max_tokens"],
    ["temperature a string", { temperature: "hot", messages: [user] }, "temperature"],
    ["stop with a number", { stop: ["a", 1], messages: [user] }, "stop[1]"],
    ["tool of another type", { tools: [{ type: "custom", custom: {} }], messages: [user] }, "tools[0].type"],
    ["tool_choice unknown", { tool_choice: "maybe", messages: [user] }, "tool_choice"],
    ["user not a string", { user: 5, messages: [user] }, "user"],
    ["deprecated function_call", { messages: [{ role: "assistant", content: "x", function_call: { name: "f", arguments: "{}" } }] }, "messages[0].function_call"],
  ];
  for (const [name, body, field] of cases) test(`${name} → ${JSON.stringify(field)}`, () => expect(fieldOf("openai", body)).toBe(field));
});

describe("bad Anthropic bodies: TranslateError names the field", () => {
  const cases: [string, unknown, string][] = [
    ["body is a string", "hi", ""],
    ["messages missing", { max_tokens: 5 }, "messages"],
    ["system role in messages", { messages: [{ role: "system", content: "x" }] }, "messages[0].role"],
    ["unknown content block type", { messages: [user, { role: "assistant", content: "a" }, { role: "user", content: [{ type: "document", source: {} }] }] }, "messages[2].content[0].type"],
    ["image with a file source", { messages: [{ role: "user", content: [{ type: "image", source: { type: "file", file_id: "f" } }] }] }, "messages[0].content[0].source.type"],
    ["image in a tool result", { messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: [{ type: "image", source: {} }] }] }] }, "messages[0].content[0].content[0].type"],
    ["tool_result without tool_use_id", { messages: [{ role: "user", content: [{ type: "tool_result", content: "x" }] }] }, "messages[0].content[0].tool_use_id"],
    ["image in an assistant turn", { messages: [{ role: "assistant", content: [{ type: "image", source: { type: "url", url: "https://x" } }] }] }, "messages[0].content[0].type"],
    ["system block not text", { system: [{ type: "image" }], messages: [user] }, "system[0].type"],
    ["server tool", { tools: [{ type: "web_search_20250305", name: "web_search" }], messages: [user] }, "tools[0].type"],
    ["tool without input_schema", { tools: [{ name: "f" }], messages: [user] }, "tools[0].input_schema"],
    ["tool_choice unknown type", { tool_choice: { type: "maybe" }, messages: [user] }, "tool_choice.type"],
    ["metadata.user_id not a string", { metadata: { user_id: 5 }, messages: [user] }, "metadata.user_id"],
    ["stop_sequences a number", { stop_sequences: 5, messages: [user] }, "stop_sequences"],
  ];
  for (const [name, body, field] of cases) test(`${name} → ${JSON.stringify(field)}`, () => expect(fieldOf("anthropic", body)).toBe(field));
});

describe("what only code can say", () => {
  test("parallel_tool_calls false with tool_choice none adds no disable_parallel_tool_use (Anthropic's none takes none)", () => {
    const r = translateRequest("openai", { messages: [user], tool_choice: "none", parallel_tool_calls: false }, OPTS);
    expect(r.body.tool_choice).toEqual({ type: "none" });
  });
  test("disable_parallel_tool_use without tools sends no parallel_tool_calls (OpenAI refuses it without tools)", () => {
    const r = translateRequest("anthropic", { messages: [user], tool_choice: { type: "auto", disable_parallel_tool_use: true } }, OPTS);
    expect(r.body.parallel_tool_calls).toBeUndefined();
    expect(r.body.tool_choice).toBe("auto");
  });
  test("include_usage without stream is not reported as includeUsage", () => {
    const r = translateRequest("openai", { messages: [user], stream_options: { include_usage: true } }, OPTS);
    expect(r.includeUsage).toBe(false);
    expect(r.stream).toBe(false);
  });
  test("an unknown stream_options key is dropped by its dotted path", () => {
    const r = translateRequest("openai", { messages: [user], stream: true, stream_options: { include_usage: false, xyz: 1 } }, OPTS);
    expect([...r.dropped]).toEqual(["stream_options.xyz"]);
    expect(r.includeUsage).toBe(false);
  });
  test("dropped names are unique and in first-seen order", () => {
    const r = translateRequest("openai", { zeta: 1, messages: [{ role: "user", content: "a", name: "x" }, { role: "user", content: "b", name: "y" }], alpha: 2 }, OPTS);
    expect([...r.dropped]).toEqual(["zeta", "alpha", "messages.name"]);
  });
});

describe("round trip openai → anthropic → openai keeps the mapped fields", () => {
  test("messages, tools, tool calls with ids, sampling, stop, user, max tokens", () => {
    const original = {
      model: "fast",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Weather?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] },
        { role: "assistant", content: "Checking.", tool_calls: [{ id: "call_1", type: "function", function: { name: "w", arguments: '{"city":"Paris"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: "18C" },
        { role: "user", content: "Thanks" },
      ],
      tools: [{ type: "function", function: { name: "w", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
      tool_choice: { type: "function", function: { name: "w" } },
      parallel_tool_calls: false,
      max_tokens: 77,
      stop: ["END"],
      temperature: 0.3,
      top_p: 0.5,
      user: "u1",
      stream: true,
    };
    const there = translateRequest("openai", original, OPTS);
    const back = translateRequest("anthropic", there.body, { model: "fast", defaultMaxTokens: 4096 });
    expect(there.dropped).toEqual([]);
    expect(back.dropped).toEqual([]);
    const { stream_options, ...rest } = back.body;
    expect(stream_options).toEqual({ include_usage: true });
    expect(rest).toEqual({
      model: "fast",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Weather?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] },
        { role: "assistant", content: "Checking.", tool_calls: [{ id: "call_1", type: "function", function: { name: "w", arguments: '{"city":"Paris"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: "18C" },
        { role: "user", content: "Thanks" },
      ],
      tools: original.tools,
      tool_choice: original.tool_choice,
      parallel_tool_calls: false,
      max_tokens: 77,
      stop: ["END"],
      temperature: 0.3,
      top_p: 0.5,
      user: "u1",
      stream: true,
    });
  });
});

describe("property: any JSON value gives a translation or a TranslateError, nothing else", () => {
  function mutate(g: Gen, v: Json, depth: number): Json {
    // Replace a random subtree with a random value, so near-valid bodies reach the deep paths.
    if (depth > 6 || g.chance(0.15)) return g.value(3);
    if (Array.isArray(v)) return v.map((x) => mutate(g, x, depth + 1));
    if (v !== null && typeof v === "object") {
      const o: { [k: string]: Json } = {};
      for (const k in v) o[k] = mutate(g, v[k]!, depth + 1);
      return o;
    }
    return v;
  }
  const goldens = readdirSync(DIR).map((f) => JSON.parse(readFileSync(join(DIR, f), "utf8")) as { input: Json });
  for (const client of ["openai", "anthropic"] as const) {
    test(`${client}: 4000 random and mutated bodies`, () => {
      const seed = 0x5eed17 + (client === "openai" ? 0 : 1);
      const g = new Gen(mulberry32(seed));
      let translated = 0;
      for (let i = 0; i < 4000; i++) {
        const body = i % 2 === 0 ? g.root() : mutate(g, g.pick(goldens).input, 0);
        try {
          const r = translateRequest(client, body, OPTS);
          translated++;
          JSON.stringify(r.body); // always serialisable
          expect(new Set(r.dropped).size).toBe(r.dropped.length);
        } catch (e) {
          if (!(e instanceof TranslateError)) throw new Error(`seed ${seed} case ${i}: ${String(e)} on ${JSON.stringify(body)}`);
          expect(typeof e.field).toBe("string");
        }
      }
      expect(translated).toBeGreaterThan(0);
    });
  }
});

describe("keys named like Object.prototype members are ordinary unknown fields", () => {
  test("__proto__, constructor and toString at the top level are dropped and named, not called", () => {
    const body = JSON.parse('{"__proto__":{"x":1},"constructor":1,"toString":"s","messages":[{"role":"user","content":"hi"}]}') as unknown;
    for (const client of ["openai", "anthropic"] as const) {
      const r = translateRequest(client, body, OPTS);
      expect([...r.dropped]).toEqual(["__proto__", "constructor", "toString"]);
    }
  });
});

describe("message keys a role does not use are named", () => {
  test("tool_calls on a user message and tool_call_id on an assistant message are dropped, not ignored silently", () => {
    const r = translateRequest("openai", { messages: [{ role: "user", content: "a", tool_calls: [] }, { role: "assistant", content: "b", tool_call_id: "x" }] }, OPTS);
    expect([...r.dropped]).toEqual(["messages.tool_calls", "messages.tool_call_id"]);
  });
});
