import { test, expect, describe } from "bun:test";
import { UsageInjector, injectWhole, INCLUDE_USAGE_MEMBER, INCLUDE_USAGE_INSERT } from "../src/metering/inject-usage.ts";
import { concatBytes } from "./helpers/bytes.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const OPT = '"stream_options":{"include_usage":true}';


/** Runs the streaming injector over `chunks`, returning the forwarded text and whether it injected. */
function stream(chunks: Uint8Array[]): { text: string; injected: boolean } {
  const inj = new UsageInjector();
  const out: Uint8Array[] = [];
  for (const c of chunks) out.push(...inj.push(c));
  out.push(...inj.end());
  return { text: dec.decode(concatBytes(out)), injected: inj.injected };
}

/**
 * The rewrite of `body`, checked to be identical for the whole body at once (injectWhole),
 * for every two-way split, and for one byte per chunk.
 */
function rewrite(body: string): string {
  const bytes = enc.encode(body);
  const whole = injectWhole(bytes);
  const expected = dec.decode(whole.body);
  const splits = bytes.length > 4096 ? [0, 1, bytes.length >> 1, bytes.length - 1, bytes.length] : Array.from({ length: bytes.length + 1 }, (_, k) => k);
  for (const k of splits) {
    const got = stream([bytes.subarray(0, k), bytes.subarray(k)]);
    expect([k, got.text, got.injected]).toEqual([k, expected, whole.injected]);
  }
  const perByte: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i++) perByte.push(bytes.subarray(i, i + 1));
  const got = stream(perByte);
  expect([got.text, got.injected]).toEqual([expected, whole.injected]);
  return expected;
}

describe("peek injection planner (reference §11.2, inserted before the root's closing brace)", () => {
  test("injects_when_streaming_and_absent: exact output", () => {
    expect(rewrite('{"model":"gpt-4o","stream":true,"messages":[]}')).toBe(`{"model":"gpt-4o","stream":true,"messages":[],${OPT}}`);
  });

  test("stream_can_be_the_only_or_last_key", () => {
    expect(rewrite('{"stream":true}')).toBe(`{"stream":true,${OPT}}`);
    expect(rewrite('{"model":"m","stream":true}')).toBe(`{"model":"m","stream":true,${OPT}}`);
  });

  test("skips_when_options_already_present, in either order", () => {
    for (const body of [
      '{"stream_options":{"include_usage":false},"stream":true}',
      '{"stream":true,"stream_options":{"include_usage":false}}',
      '{"stream":true,"stream_options":null}',
      '{"stream":true,"stream\\u005foptions":{}}', // escaped key is still stream_options to the provider
    ]) {
      expect(rewrite(body)).toBe(body);
    }
  });

  test("skips_when_not_streaming: false, absent, string, null", () => {
    for (const body of ['{"stream":false}', '{"model":"m"}', '{"stream":"true"}', '{"stream":null}', '{"stream":1}', "{}"]) {
      expect(rewrite(body)).toBe(body);
    }
  });

  test("ignores_nested_or_in_string_stream", () => {
    for (const body of [
      '{"messages":[{"role":"user","stream":true}]}',
      '{"metadata":{"stream":true}}',
      '{"prompt":"\\"stream\\":true"}',
      '{"prompt":"x","a":["stream",true]}',
    ]) {
      expect(rewrite(body)).toBe(body);
    }
  });

  test("injects_with_large_content_before_stream", () => {
    const content = "x".repeat(64 * 1024) + '\\"stream_options\\":1';
    const body = `{"messages":[{"role":"user","content":"${content}"}],"stream":true}`;
    expect(rewrite(body)).toBe(body.slice(0, -1) + `,${OPT}}`);
  });

  test("skips_word_stream_inside_large_value", () => {
    const body = `{"messages":[{"role":"user","content":"${"y".repeat(32 * 1024)}\\"stream\\": true${"z".repeat(32 * 1024)}"}]}`;
    expect(rewrite(body)).toBe(body);
  });

  test("stream_options_after_large_content_suppresses", () => {
    const body = `{"stream":true,"messages":[{"content":"${"w".repeat(64 * 1024)}"}],"stream_options":{"include_usage":false}}`;
    expect(rewrite(body)).toBe(body);
  });

  test("tolerates_whitespace_and_non_objects", () => {
    expect(rewrite('{  "stream" : true }')).toBe(`{  "stream" : true ,${OPT}}`);
    expect(rewrite('\r\n\t{\n"stream"\n:\ntrue\n}\n')).toBe(`\r\n\t{\n"stream"\n:\ntrue\n,${OPT}}\n`);
    for (const body of ['[{"stream":true}]', '"stream"', "true", 'data: {"stream":true}', "stream=true", "", " "]) {
      expect(rewrite(body)).toBe(body);
    }
  });
});

describe("streaming behaviour", () => {
  test("bytes before the root close are forwarded as soon as they are pushed", () => {
    const inj = new UsageInjector();
    const head = enc.encode('{"model":"gpt-4o","stream":true,"messages":[{"content":"hel');
    const out = inj.push(head);
    expect(out).toEqual([head]);
    expect(out[0]).toBe(head); // the same chunk, not a copy
    expect(inj.push(new Uint8Array(0))).toEqual([]);
    const rest = inj.push(enc.encode('lo"}]}\n'));
    expect(dec.decode(concatBytes(rest))).toBe(`lo"}],${OPT}}\n`);
    expect(inj.injected).toBe(true);
    expect(inj.end()).toEqual([]);
    expect(inj.scanner.model()).toBe("gpt-4o");
    expect(inj.scanner.stream).toBe(true);
  });

  test("bytes after the root close pass through unchanged", () => {
    const inj = new UsageInjector();
    const parts = [enc.encode('{"stream":true}'), enc.encode("  \n"), enc.encode("\n")];
    const out = parts.flatMap((p) => inj.push(p));
    expect(dec.decode(concatBytes(out))).toBe(`{"stream":true,${OPT}}  \n\n`);
  });

  test("the injected bytes are a fresh buffer, never the shared constant", () => {
    const inj = new UsageInjector();
    const out = inj.push(enc.encode('{"stream":true}'));
    for (const o of out) {
      expect(o.buffer === INCLUDE_USAGE_INSERT.buffer).toBe(false);
      o.fill(0);
    }
    expect(dec.decode(INCLUDE_USAGE_INSERT)).toBe("," + OPT);
  });

  test("a body that never closes its root object is forwarded unchanged", () => {
    const body = '{"stream":true,"messages":[';
    expect(stream([enc.encode(body)])).toEqual({ text: body, injected: false });
  });

  test("duplicate root stream keys are left alone (providers may read either one)", () => {
    for (const body of ['{"stream":true,"stream":true}', '{"stream":false,"stream":true}', '{"stream":true,"stream":false}']) {
      expect(rewrite(body)).toBe(body);
    }
  });

  test("an escaped stream key counts as stream", () => {
    const body = '{"str\\u0065am":true}';
    expect(rewrite(body)).toBe(`{"str\\u0065am":true,${OPT}}`);
  });

  test("the injected body parses to the original object plus stream_options", () => {
    const original = { model: "gpt-4o", messages: [{ role: "user", content: 'say "hi" \\ ok', model: "decoy", stream: false }], stream: true, n: 1 };
    const out = rewrite(JSON.stringify(original, null, 2));
    expect(JSON.parse(out)).toEqual({ ...original, stream_options: { include_usage: true } });
  });
});

describe("injectWhole", () => {
  test("returns the rewritten body with model and stream from the same pass", () => {
    const r = injectWhole(enc.encode('{"model":"gpt-\\u0072eal","stream":true}'));
    expect(dec.decode(r.body)).toBe(`{"model":"gpt-\\u0072eal","stream":true,${OPT}}`);
    expect(r.injected).toBe(true);
    expect(r.model).toBe("gpt-real");
    expect(r.stream).toBe(true);
  });

  test("returns the very same body when not injecting", () => {
    const body = enc.encode('{"model":"gpt-4o","stream":false}');
    const r = injectWhole(body);
    expect(r.body).toBe(body);
    expect(r).toMatchObject({ injected: false, model: "gpt-4o", stream: false });
  });

  test("INCLUDE_USAGE_MEMBER is the member text", () => {
    expect(dec.decode(INCLUDE_USAGE_MEMBER)).toBe(OPT);
  });
});
