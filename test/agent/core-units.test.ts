// Unit pieces of the agent core: argument validation and coercion, tool-input JSON repair, the accumulator, Steering.
import { describe, expect, test } from "bun:test";
import { Accumulator, parseToolInput, repairJson } from "../../src/agent/core/accumulator.ts";
import { Steering } from "../../src/agent/core/steering.ts";
import { formatValidationErrors, runSchemaValidation } from "../../src/agent/core/tool.ts";
import type { JsonSchema } from "../../src/agent/core/types.ts";

const editSchema: JsonSchema = {
  type: "object",
  properties: {
    path: { type: "string" },
    edits: {
      type: "array",
      minItems: 1,
      items: { type: "object", properties: { oldText: { type: "string" }, newText: { type: "string" } }, required: ["oldText", "newText"], additionalProperties: false },
    },
    replace_all: { type: "boolean" },
    offset: { type: "integer", minimum: 1 },
    ratio: { type: "number", maximum: 1 },
    mode: { type: "string", enum: ["a", "b"] },
  },
  required: ["path"],
};

describe("runSchemaValidation", () => {
  test('coerces "5" → 5, "true" → true, a number to a string, and parses edits sent as a JSON string', () => {
    const args = { path: 42, offset: "5", replace_all: "true", ratio: "0.5", edits: '[{"oldText":"a","newText":"b"}]' };
    const r = runSchemaValidation(editSchema, args);
    expect(r).toEqual({ ok: true, value: { path: "42", offset: 5, replace_all: true, ratio: 0.5, edits: [{ oldText: "a", newText: "b" }] } });
    // The caller's object is not modified.
    expect(args.offset).toBe("5");
  });

  test("a valid object comes back as the same object (nothing to copy)", () => {
    const args = { path: "a", edits: [{ oldText: "x", newText: "y" }] };
    const r = runSchemaValidation(editSchema, args);
    expect(r.ok && r.value).toBe(args);
  });

  test("errors name each path: required, type, minimum, maximum, enum, minItems, additional properties", () => {
    const r = runSchemaValidation(editSchema, { offset: "zero", ratio: 2, mode: "c", edits: [{ oldText: "a", extra: 1 }] });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      "path: must have required property 'path'",
      "offset: must be integer",
      "ratio: must be <= 1",
      'mode: must be equal to one of the allowed values ("a", "b")',
      "edits/0/newText: must have required property 'newText'",
      "edits/0: must NOT have additional property 'extra'",
    ]);
    expect(runSchemaValidation(editSchema, { path: "p", edits: [], offset: 0 })).toEqual({ ok: false, errors: ["edits: must NOT have fewer than 1 items", "offset: must be >= 1"] });
  });

  test("integer rejects 1.5 and '1.5'; boolean rejects 'yes'; the root must be an object", () => {
    const s: JsonSchema = { type: "object", properties: { n: { type: "integer" }, b: { type: "boolean" } } };
    expect(runSchemaValidation(s, { n: 1.5 })).toEqual({ ok: false, errors: ["n: must be integer"] });
    expect(runSchemaValidation(s, { n: "1.5" })).toEqual({ ok: false, errors: ["n: must be integer"] });
    expect(runSchemaValidation(s, { b: "yes" })).toEqual({ ok: false, errors: ["b: must be boolean"] });
    expect(runSchemaValidation(s, [1])).toEqual({ ok: false, errors: ["root: must be object"] });
    expect(runSchemaValidation({ type: "object" }, "nope")).toEqual({ ok: false, errors: ["root: must be object"] });
  });

  test("anyOf takes the first alternative that fits, coercion included", () => {
    const s: JsonSchema = { type: "object", properties: { t: { anyOf: [{ type: "integer" }, { type: "string", enum: ["max"] }] } } };
    expect(runSchemaValidation(s, { t: "7" })).toEqual({ ok: true, value: { t: 7 } });
    expect(runSchemaValidation(s, { t: "max" })).toEqual({ ok: true, value: { t: "max" } });
    expect(runSchemaValidation(s, { t: "min" })).toEqual({ ok: false, errors: ["t: must match a schema in anyOf"] });
  });

  test("the loop's message format", () => {
    expect(formatValidationErrors("edit", ["path: must be string", "x: y"])).toBe('Validation failed for tool "edit":\n  - path: must be string\n  - x: y');
  });
});

describe("tool input JSON repair", () => {
  test('{"path":"a → {path:"a"}', () => {
    expect(parseToolInput('{"path":"a')).toEqual({ input: { path: "a" } });
  });

  test("cut points: after a comma, a colon, inside a key, inside a literal, inside nested arrays, after an escape", () => {
    expect(repairJson('{"a":1,')).toEqual({ a: 1 });
    expect(repairJson('{"a":1,"b":')).toEqual({ a: 1 });
    expect(repairJson('{"a":1,"bc')).toEqual({ a: 1 });
    expect(repairJson('{"a":tr')).toEqual({});
    expect(repairJson('{"a":[1,[2,3')).toEqual({ a: [1, [2, 3]] });
    expect(repairJson('{"a":"x\\')).toEqual({ a: "x" });
    expect(repairJson('{"a":"x\\u00')).toEqual({ a: "x" });
    expect(repairJson('{"a":{"b":"c"},"d":[{"e":"f')).toEqual({ a: { b: "c" }, d: [{ e: "f" }] });
    expect(repairJson('{"n":12')).toEqual({ n: 12 });
  });

  test("not repairable, or not an object: {} with the parser's message", () => {
    // Repair is for JSON cut short, not for garbage in the middle.
    const r = parseToolInput('{"a": 1,, }');
    expect(r.input).toEqual({});
    expect(r.error).toBeString();
    const bad = parseToolInput("hello");
    expect(bad.input).toEqual({});
    expect(bad.error).toBeString();
    expect(parseToolInput("[1,2]")).toEqual({ input: {}, error: "arguments must be a JSON object" });
    expect(parseToolInput("")).toEqual({ input: {} });
  });
});

describe("Accumulator", () => {
  test("blocks in first-seen index order, usage fields last non-null, stop defaults to end_turn, malformed marked", () => {
    const acc = new Accumulator();
    acc.push({ type: "message_start", request_id: "r" });
    acc.push({ type: "usage", input_tokens: 10, output_tokens: 1, cache_read_tokens: 2 });
    acc.push({ type: "tool_use_start", index: 3, id: "b", name: "read" });
    acc.push({ type: "text_delta", index: 0, text: "he" });
    acc.push({ type: "tool_use_start", index: 1, id: "a", name: "read" });
    acc.push({ type: "input_json_delta", index: 1, partial_json: "not json" });
    acc.push({ type: "input_json_delta", index: 3, partial_json: '{"p":' });
    acc.push({ type: "text_delta", index: 0, text: "llo" });
    acc.push({ type: "input_json_delta", index: 3, partial_json: '"x"}' });
    acc.push({ type: "usage", output_tokens: 9 });
    const { message, malformed } = acc.finish("m", 5);
    expect(message.content).toEqual([
      { type: "tool_use", id: "b", name: "read", input: { p: "x" } },
      { type: "text", text: "hello" },
      { type: "tool_use", id: "a", name: "read", input: {} },
    ]);
    expect(message.usage).toEqual({ input_tokens: 10, output_tokens: 9, cache_read_tokens: 2, cache_write_tokens: 0 });
    expect(message.stop_reason).toBe("end_turn");
    expect(message.request_id).toBe("r");
    expect([...malformed.keys()]).toEqual(["a"]);
  });
});

describe("Steering", () => {
  test("one_at_a_time drains the oldest, all drains every message; clearRunScoped keeps queued messages", () => {
    const s = new Steering();
    s.steer({ text: "a" });
    s.steer({ text: "b" });
    s.followUp({ text: "f" });
    expect(s.pendingCount()).toBe(3);
    expect(s.drainSteer()).toEqual([{ text: "a" }]);
    s.steeringMode = "all";
    s.steer({ text: "c" });
    expect(s.drainSteer()).toEqual([{ text: "b" }, { text: "c" }]);
    s.requestStop();
    s.requestModelSwitch("x", 100);
    s.requestToolSet(["read"]);
    s.clearRunScoped();
    expect(s.stopRequested).toBe(false);
    expect(s.takeModelSwitch()).toBeUndefined();
    expect(s.takeToolSet()).toBeUndefined();
    expect(s.followUpTexts()).toEqual(["f"]);
    s.clear();
    expect(s.pendingCount()).toBe(0);
  });
});

describe("import rule", () => {
  test("src/agent/core imports only its own modules: no Bun, no node:*, no gateway module", async () => {
    const root = new URL("../../src/agent/core/", import.meta.url).pathname;
    const files = [...new Bun.Glob("**/*.ts").scanSync(root)];
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const text = await Bun.file(root + f).text();
      const code = text.replace(/\/\/.*$/gm, "");
      for (const m of code.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
        const spec = m[1]!;
        expect(spec.startsWith("./") || spec.startsWith("../"), `${f} imports ${spec}`).toBe(true);
        // A relative import must stay inside src/agent/core.
        const resolved = new URL(spec, `file://${root}${f}`).pathname;
        expect(resolved.startsWith(root), `${f} imports ${spec}`).toBe(true);
      }
      expect(/\bBun\./.test(code), `${f} uses Bun`).toBe(false);
      expect(/\bprocess\./.test(code), `${f} uses process`).toBe(false);
      expect(/\brequire\(/.test(code), `${f} uses require`).toBe(false);
    }
  });
});
