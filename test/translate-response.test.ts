// Response translation (SPEC §12), non-streaming: goldens for message bodies (finish reasons, tool calls, usage with
// cache fields) and error bodies (400/401/429/500/529, HTML and empty bodies), plus robustness on any JSON.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { translateErrorBody, translateResponse } from "../src/translate/response.ts";
import { TranslateError } from "../src/translate/types.ts";
import type { Dialect } from "../src/translate/types.ts";
import { Gen } from "./helpers/json-gen.ts";
import { mulberry32 } from "./helpers/random.ts";

const DIR = join(import.meta.dir, "fixtures/translate/response");
const enc = new TextEncoder();

interface BodyGolden {
  client: Dialect;
  input: unknown;
  expected: Record<string, unknown>;
}
interface ErrorGolden {
  client: Dialect;
  status: number;
  body: string;
  expected: Record<string, unknown>;
}

describe("response goldens (test/fixtures/translate/response)", () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
  test("the golden set covers bodies and errors in both directions", () => {
    expect(files.filter((f) => f.startsWith("to-openai-")).length).toBeGreaterThanOrEqual(6);
    expect(files.filter((f) => f.startsWith("to-anthropic-")).length).toBeGreaterThanOrEqual(5);
    expect(files.filter((f) => f.startsWith("error-")).length).toBeGreaterThanOrEqual(12);
  });
  for (const f of files) {
    const name = f.replace(/\.json$/, "");
    if (f.startsWith("error-")) {
      test(name, () => {
        const g = JSON.parse(readFileSync(join(DIR, f), "utf8")) as ErrorGolden;
        const out = translateErrorBody(g.client, g.status, enc.encode(g.body));
        expect(JSON.parse(out)).toEqual(g.expected);
      });
    } else {
      test(name, () => {
        const g = JSON.parse(readFileSync(join(DIR, f), "utf8")) as BodyGolden;
        const out = translateResponse(g.client, g.input);
        if (g.client === "openai") {
          // `created` is the translation's clock (Anthropic messages carry no timestamp): checked, then compared without.
          const now = Math.floor(Date.now() / 1000);
          expect(typeof out.created).toBe("number");
          expect(Math.abs((out.created as number) - now)).toBeLessThanOrEqual(5);
          const { created: _created, ...rest } = out;
          expect(rest).toEqual(g.expected);
        } else expect(out).toEqual(g.expected);
      });
    }
  }
});

describe("what only code can say", () => {
  test("a body that is not an object is a TranslateError, for both clients", () => {
    for (const client of ["openai", "anthropic"] as const) {
      for (const v of [null, 3, "x", [1]]) expect(() => translateResponse(client, v)).toThrow(TranslateError);
    }
  });
  test("an unknown stop/finish reason named like a prototype member maps to the ordinary one", () => {
    const a = translateResponse("openai", { id: "msg_1", content: [], stop_reason: "constructor" });
    expect((a.choices as { finish_reason: unknown }[])[0]!.finish_reason).toBe("stop");
    const o = translateResponse("anthropic", { id: "c", choices: [{ message: { content: "x" }, finish_reason: "toString" }] });
    expect(o.stop_reason).toBe("end_turn");
  });
  test("invalid JSON tool arguments from an OpenAI-wire model reach the Anthropic client as the model's text", () => {
    const o = translateResponse("anthropic", { id: "c", choices: [{ message: { tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: '{"a":' } }] }, finish_reason: "tool_calls" }] });
    expect(o.content).toEqual([{ type: "tool_use", id: "call_1", name: "f", input: '{"a":' }]);
  });
  test("missing usage gives zeros (never NaN) both ways", () => {
    const a = translateResponse("openai", { id: "msg_1", content: [{ type: "text", text: "x" }], stop_reason: "end_turn" });
    expect(a.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } });
    const o = translateResponse("anthropic", { id: "c", choices: [] });
    expect(o.usage).toEqual({ input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    expect(o.content).toEqual([]);
  });
  test("cached_tokens above prompt_tokens never gives negative input_tokens", () => {
    const o = translateResponse("anthropic", { choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 9 } } });
    expect(o.usage).toEqual({ input_tokens: 0, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 5 });
  });
  test("thinking blocks are left out of the OpenAI message, text around them kept", () => {
    const a = translateResponse("openai", { id: "msg_1", content: [{ type: "thinking", thinking: "hmm", signature: "s" }, { type: "text", text: "answer" }], stop_reason: "end_turn" });
    expect((a.choices as { message: { content: unknown } }[])[0]!.message.content).toBe("answer");
  });
  test("error: a long HTML body is cut to a 512-character excerpt", () => {
    const out = JSON.parse(translateErrorBody("anthropic", 502, enc.encode("<p>" + "x".repeat(5000) + "</p>"))) as { error: { message: string } };
    expect(out.error.message.startsWith("upstream returned HTTP 502: <p>xxx")).toBe(true);
    expect(out.error.message.length).toBe("upstream returned HTTP 502: ".length + 512);
  });
  test("error: invalid UTF-8 and odd JSON shapes still give the client's error JSON", () => {
    for (const client of ["openai", "anthropic"] as const) {
      for (const body of [new Uint8Array([0xff, 0xfe, 0x80]), enc.encode('{"error":"quota exceeded"}'), enc.encode('{"detail":"Not Found"}'), enc.encode("[1,2]"), enc.encode('{"error":{"code":42}}')]) {
        const out = JSON.parse(translateErrorBody(client, 404, body)) as Record<string, unknown>;
        if (client === "anthropic") expect(out).toMatchObject({ type: "error", error: { type: "not_found_error" } });
        else expect(out).toMatchObject({ error: { type: "not_found_error", param: null } });
      }
    }
    expect(JSON.parse(translateErrorBody("openai", 403, enc.encode('{"error":"quota exceeded"}')))).toEqual({ error: { message: "quota exceeded", type: "permission_error", param: null, code: null } });
    expect(JSON.parse(translateErrorBody("anthropic", 404, enc.encode('{"detail":"Not Found"}')))).toEqual({ type: "error", error: { type: "not_found_error", message: "Not Found" } });
  });
});

describe("property: any JSON value as a provider body or error body never throws anything but TranslateError", () => {
  test("3000 random values each way", () => {
    const g = new Gen(mulberry32(0xbeef17));
    for (let i = 0; i < 3000; i++) {
      const v = g.root();
      for (const client of ["openai", "anthropic"] as const) {
        try {
          JSON.stringify(translateResponse(client, v));
        } catch (e) {
          if (!(e instanceof TranslateError)) throw new Error(`case ${i}: ${String(e)}`);
        }
        const err = JSON.parse(translateErrorBody(client, 400 + g.int(200), enc.encode(g.serialise(v)))) as Record<string, unknown>;
        expect(isObject(err.error)).toBe(true);
        if (client === "anthropic") expect(err.type).toBe("error");
      }
    }
  });
});

function isObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
