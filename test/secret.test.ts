import { describe, expect, test } from "bun:test";
import { format, inspect } from "node:util";
import { Secret } from "../src/ops/secret.ts";

const PLAIN = "sk-live-0123456789abcdef";

describe("Secret", () => {
  test("expose returns the plaintext", () => {
    expect(new Secret(PLAIN).expose()).toBe(PLAIN);
  });

  test("toString, String() and concatenation print ***", () => {
    const s = new Secret(PLAIN);
    expect(s.toString()).toBe("***");
    expect(String(s)).toBe("***");
    expect("key=" + s).toBe("key=***");
  });

  test("template literal prints ***", () => {
    expect(`Bearer ${new Secret(PLAIN)}`).toBe("Bearer ***");
  });

  test("JSON.stringify prints *** alone and nested in objects and arrays", () => {
    const s = new Secret(PLAIN);
    expect(JSON.stringify(s)).toBe('"***"');
    const dumped = JSON.stringify({ pool_keys: { openai: s }, list: [s] });
    expect(dumped).toBe('{"pool_keys":{"openai":"***"},"list":["***"]}');
    expect(dumped).not.toContain(PLAIN);
  });

  test("Bun.inspect prints Secret(***) and never the value", () => {
    const s = new Secret(PLAIN);
    expect(Bun.inspect(s)).toBe("Secret(***)");
    const nested = Bun.inspect({ a: { b: [s] } }, { depth: 10 });
    expect(nested).toContain("Secret(***)");
    expect(nested).not.toContain(PLAIN);
  });

  test("util.inspect and console-style formatting print Secret(***) and never the value", () => {
    const s = new Secret(PLAIN);
    expect(inspect(s)).toBe("Secret(***)");
    const deep = inspect({ cfg: { k: s } }, { depth: Infinity, showHidden: true });
    expect(deep).toContain("Secret(***)");
    expect(deep).not.toContain(PLAIN);
    for (const spec of ["%s", "%o", "%O", "%j"]) {
      expect(format(spec, { k: s })).not.toContain(PLAIN);
    }
  });

  test("the plaintext is not an enumerable or spreadable property", () => {
    const s = new Secret(PLAIN);
    expect(Object.keys(s)).toEqual([]);
    expect(JSON.stringify({ ...s })).toBe("{}");
    expect(Object.getOwnPropertyNames(s)).toEqual([]);
  });
});
