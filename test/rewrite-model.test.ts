import { test, expect, describe } from "bun:test";
import { ModelRewriter, rewriteModelWhole, jsonString, MODEL_VALUE_MAX_RAW, spliceModelAt } from "../src/metering/rewrite-model.ts";
import { INCLUDE_USAGE_INSERT, injectWhole } from "../src/metering/inject-usage.ts";
import { concatBytes } from "./helpers/bytes.ts";
import { mulberry32 } from "./helpers/random.ts";
import { Gen, chunked, isPlainObject, type Json } from "./helpers/json-gen.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const OPT = '"stream_options":{"include_usage":true}';
const NEW = "llama-3.3-70b";

interface Streamed {
  pieces: Uint8Array[];
  bytes: Uint8Array;
  text: string;
  replaced: boolean;
  injected: boolean;
  delta: number | undefined;
  /** The first value delta() gave after a push, or after end() when none had: once known it must never change. */
  firstDelta: number | undefined;
  /** delta() changed after it was first defined. */
  deltaMoved: boolean;
  model: string | undefined;
  stream: boolean | undefined;
}

function streamThrough(chunks: Uint8Array[], newModel: string, injectUsage: boolean): Streamed {
  const rw = new ModelRewriter(newModel, { injectUsage });
  const pieces: Uint8Array[] = [];
  let firstDelta: number | undefined;
  let deltaMoved = false;
  for (const c of chunks) {
    pieces.push(...rw.push(c));
    const d = rw.delta();
    if (firstDelta === undefined) firstDelta = d;
    else if (d !== firstDelta) deltaMoved = true;
  }
  pieces.push(...rw.end());
  if (firstDelta === undefined) firstDelta = rw.delta();
  const bytes = concatBytes(pieces);
  return {
    pieces,
    bytes,
    text: dec.decode(bytes),
    replaced: rw.replaced,
    injected: rw.injected,
    delta: rw.delta(),
    firstDelta,
    deltaMoved: deltaMoved || rw.delta() !== firstDelta,
    model: rw.scanner.model(),
    stream: rw.scanner.stream,
  };
}

/**
 * The rewrite of `body`, checked identical for the whole body at once (rewriteModelWhole), every two-way split
 * (every boundary position: inside the key, between colon and value, inside the value, inside an escape), every
 * three-way split for short bodies, and one byte per chunk; delta() agrees with the length change every time.
 */
function rewrite(body: string, newModel = NEW, injectUsage = false): { text: string; replaced: boolean; injected: boolean } {
  const bytes = enc.encode(body);
  const whole = rewriteModelWhole(bytes, newModel, { injectUsage });
  const expected = dec.decode(whole.body);
  const check = (label: string, chunks: Uint8Array[]) => {
    const got = streamThrough(chunks, newModel, injectUsage);
    expect([label, got.text, got.replaced, got.injected, got.delta, got.firstDelta, got.deltaMoved]).toEqual([
      label,
      expected,
      whole.replaced,
      whole.injected,
      whole.body.length - bytes.length,
      whole.body.length - bytes.length,
      false,
    ]);
  };
  for (let k = 0; k <= bytes.length; k++) check(`split ${k}`, [bytes.subarray(0, k), bytes.subarray(k)]);
  if (bytes.length <= 80) {
    for (let a = 1; a < bytes.length; a++) {
      for (let b = a + 1; b < bytes.length; b++) check(`split ${a},${b}`, [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]);
    }
  }
  check("1-byte chunks", chunked(bytes, 1));
  return { text: expected, replaced: whole.replaced, injected: whole.injected };
}

describe("rewriteModelWhole and ModelRewriter: what is replaced", () => {
  test("the root model value is replaced and nothing else changes", () => {
    const body = '{"model":"smart","messages":[{"role":"user","content":"hi"}],"temperature":0.2}';
    const r = rewrite(body);
    expect(r.text).toBe(`{"model":"${NEW}","messages":[{"role":"user","content":"hi"}],"temperature":0.2}`);
    expect(r.replaced).toBe(true);
  });

  test("whitespace around the colon and the value is kept as it was", () => {
    expect(rewrite('{ "messages" : [] ,\n  "model"\t:\n  "smart"  \n}\n').text).toBe(`{ "messages" : [] ,\n  "model"\t:\n  "${NEW}"  \n}\n`);
  });

  test("escapes in the old value and in the key: the whole raw value goes, quotes included", () => {
    expect(rewrite('{"mod\\u0065l":"sm\\u0061rt\\/x","n":1}').text).toBe(`{"mod\\u0065l":"${NEW}","n":1}`);
    expect(rewrite('{"model":"a\\"b\\\\","n":1}').text).toBe(`{"model":"${NEW}","n":1}`);
  });

  test("nested model keys (messages, tools, metadata) and the word model inside strings are never touched", () => {
    const body =
      '{"messages":[{"role":"user","model":"decoy","content":"\\"model\\":\\"evil\\""}],"tools":[{"function":{"model":"t"}}],' +
      '"metadata":{"model":"m"},"model":"smart"}';
    expect(rewrite(body).text).toBe(body.replace('"model":"smart"', `"model":"${NEW}"`));
    const noRoot = '{"messages":[{"model":"decoy"}],"metadata":{"model":"m"},"prompt":"model"}';
    expect(rewrite(noRoot)).toEqual({ text: noRoot, replaced: false, injected: false });
  });

  test("only the first root model member is rewritten (no second key is ever added)", () => {
    expect(rewrite('{"model":"a","model":"b"}').text).toBe(`{"model":"${NEW}","model":"b"}`);
  });

  test("a root model that is not a string is left alone (number, null, object, array, boolean), and so is a later one", () => {
    for (const v of ["42", "null", '{"id":"smart"}', '["smart"]', "true", "-1.5e3"]) {
      const body = `{"model":${v},"stream":false,"model":"x"}`;
      expect([v, rewrite(body)]).toEqual([v, { text: body, replaced: false, injected: false }]);
    }
  });

  test("no root model: the body is unchanged; a non-object root is unchanged", () => {
    for (const body of ['{"messages":[]}', "{}", '[{"model":"smart"}]', '"model"', "42", 'data: {"model":"smart"}', "", " "]) {
      expect([body, rewrite(body)]).toEqual([body, { text: body, replaced: false, injected: false }]);
    }
  });

  test("a value over 1,536 raw bytes is not a plausible model: unchanged; exactly 1,536 is replaced", () => {
    const at = `{"model":"${"m".repeat(MODEL_VALUE_MAX_RAW)}","n":1}`;
    expect(rewrite(at).text).toBe(`{"model":"${NEW}","n":1}`);
    const over = `{"model":"${"m".repeat(MODEL_VALUE_MAX_RAW + 1)}","n":1}`;
    expect(rewrite(over)).toEqual({ text: over, replaced: false, injected: false });
    // The cap is on raw bytes: 257 escapes of 6 bytes decode to 257 bytes but are 1,542 raw.
    const escaped = `{"model":"${"\\u0061".repeat(257)}"}`;
    expect(rewrite(escaped)).toEqual({ text: escaped, replaced: false, injected: false });
    const escapedAtCap = `{"model":"${"\\u0061".repeat(256)}"}`;
    expect(rewrite(escapedAtCap).text).toBe(`{"model":"${NEW}"}`);
  });

  test("a body that ends inside the model value is forwarded unchanged", () => {
    for (const body of ['{"model":"sma', '{"model":"', '{"model":"sm\\u00']) {
      expect([body, rewrite(body)]).toEqual([body, { text: body, replaced: false, injected: false }]);
    }
  });

  test("the new model is written as a JSON string: quotes, backslashes, controls escaped; unicode as UTF-8", () => {
    for (const m of ['we"ird\\', "tab\there", "é中😀", "a\u2028b", "", "groq/llama-3.3-70b-versatile", "lone\ud83d"]) {
      const r = rewrite('{"model":"smart","n":1}', m);
      expect([m, JSON.parse(r.text)]).toEqual([m, { model: m, n: 1 }]);
    }
    expect(dec.decode(jsonString('a"b\\c\n'))).toBe('"a\\"b\\\\c\\n"');
    expect(Array.from(jsonString("é"))).toEqual([0x22, 0xc3, 0xa9, 0x22]);
  });

  test("the meter's view is the ORIGINAL model, decoded, and the stream flag", () => {
    const bytes = enc.encode('{"model":"sm\\u0061rt","stream":true}');
    const whole = rewriteModelWhole(bytes, NEW, { injectUsage: false });
    expect([whole.model, whole.stream]).toEqual(["smart", true]);
    const got = streamThrough(chunked(bytes, 3), NEW, true);
    expect([got.model, got.stream]).toEqual(["smart", true]);
  });
});

describe("each chunk boundary position (fixed cases)", () => {
  const body = '{"messages":[],"mod\\u0065l" : "sm\\u0061rt","stream":false}';
  const want = `{"messages":[],"mod\\u0065l" : "${NEW}","stream":false}`;
  const cut = (...at: number[]): Uint8Array[] => {
    const b = enc.encode(body);
    const out: Uint8Array[] = [];
    let from = 0;
    for (const k of at) {
      out.push(b.subarray(from, k));
      from = k;
    }
    out.push(b.subarray(from));
    return out;
  };
  const check = (label: string, at: number[]) => {
    const got = streamThrough(cut(...at), NEW, false);
    expect([label, got.text, got.replaced, got.delta]).toEqual([label, want, true, want.length - body.length]);
  };

  test("inside the key, inside the key's \\u escape", () => {
    check("inside key", [body.indexOf("mod") + 2]);
    check("inside key escape", [body.indexOf("\\u0065") + 3]);
    check("key's closing quote alone", [body.indexOf('l"') + 1, body.indexOf('l"') + 2]);
  });

  test("between the colon and the value, and right before the opening quote", () => {
    check("after colon", [body.indexOf(":") + 1]);
    check("before opening quote", [body.indexOf(': "') + 2]);
    check("after opening quote", [body.indexOf(': "') + 3]);
  });

  test("inside the value, inside the value's \\u00xx escape, right before the closing quote", () => {
    check("inside value", [body.indexOf("sm\\") + 1]);
    for (let k = 1; k <= 5; k++) check(`inside escape +${k}`, [body.indexOf("\\u0061") + k]);
    check("before closing quote", [body.indexOf('rt"') + 2]);
    check("value over three chunks", [body.indexOf("sm\\") + 1, body.indexOf("\\u0061") + 4]);
  });

  test("every two- and three-way split, escapes and injection included, gives the one-chunk answer", () => {
    const r = rewrite('{"mod\\u0065l":"s\\u00e9\\"x","stream":true}', NEW, true);
    expect(r.text).toBe(`{"mod\\u0065l":"${NEW}","stream":true,${OPT}}`);
    expect(r).toMatchObject({ replaced: true, injected: true });
  });
});

describe("include_usage in the same pass (inject-usage's rule)", () => {
  test("injected only for stream true with no stream_options, before the root's closing brace", () => {
    expect(rewrite('{"model":"smart","stream":true}', NEW, true).text).toBe(`{"model":"${NEW}","stream":true,${OPT}}`);
    expect(rewrite('{"stream":true,"messages":[],"model":"smart"}  \n', NEW, true).text).toBe(`{"stream":true,"messages":[],"model":"${NEW}",${OPT}}  \n`);
    for (const body of [
      '{"model":"smart","stream":false}',
      '{"model":"smart"}',
      '{"model":"smart","stream":true,"stream_options":{"include_usage":false}}',
      '{"stream_options":null,"model":"smart","stream":true}',
      '{"model":"smart","stream":true,"stream":true}',
      '{"model":"smart","stream":"true"}',
    ]) {
      const r = rewrite(body, NEW, true);
      expect([body, r.text, r.injected]).toEqual([body, body.replace('"smart"', `"${NEW}"`), false]);
    }
  });

  test("injection happens without a model, and with a model left alone", () => {
    expect(rewrite('{"stream":true}', NEW, true)).toEqual({ text: `{"stream":true,${OPT}}`, replaced: false, injected: true });
    expect(rewrite('{"model":null,"stream":true}', NEW, true)).toEqual({ text: `{"model":null,"stream":true,${OPT}}`, replaced: false, injected: true });
  });

  test("without injectUsage an eligible body gets no stream_options", () => {
    expect(rewrite('{"model":"smart","stream":true}', NEW, false).text).toBe(`{"model":"${NEW}","stream":true}`);
  });
});

describe("delta()", () => {
  test("known once the old value has been seen to its end (no injection): negative when the body shrinks", () => {
    const rw = new ModelRewriter("o3", { injectUsage: false });
    expect(rw.push(enc.encode('{"model":"gpt-4o-mi')).length).toBe(1); // the head before the value
    expect(rw.delta()).toBeUndefined();
    rw.push(enc.encode('ni","messages":['));
    expect(rw.delta()).toBe(4 - 13);
  });

  test("with injection it waits for the rule: known at once when stream is false, at the root's close when true", () => {
    const a = new ModelRewriter(NEW, { injectUsage: true });
    a.push(enc.encode('{"model":"smart","stream":false,"messages":['));
    expect(a.delta()).toBe(NEW.length - 5);
    const b = new ModelRewriter(NEW, { injectUsage: true });
    b.push(enc.encode('{"model":"smart","stream":true,"messages":['));
    expect(b.delta()).toBeUndefined();
    b.push(enc.encode("]}"));
    expect(b.delta()).toBe(NEW.length - 5 + INCLUDE_USAGE_INSERT.length);
  });

  test("no model: undefined until the root closes (a model may still come), then 0", () => {
    const rw = new ModelRewriter(NEW, { injectUsage: false });
    rw.push(enc.encode('{"messages":[{"model":"x"}]'));
    expect(rw.delta()).toBeUndefined();
    rw.push(enc.encode("}"));
    expect(rw.delta()).toBe(0);
  });

  test("a body that ends inside the value: 0 after end()", () => {
    const rw = new ModelRewriter(NEW, { injectUsage: false });
    rw.push(enc.encode('{"model":"sma'));
    expect(rw.delta()).toBeUndefined();
    expect(dec.decode(concatBytes(rw.end()))).toBe('"sma');
    expect(rw.delta()).toBe(0);
  });
});

describe("streaming: held bytes and copies", () => {
  test("a value inside one chunk is cut out with views of that chunk; only the new value is a fresh buffer", () => {
    const chunk = enc.encode('{"model":"smart","messages":[{"role":"user","content":"hello"}]}');
    const rw = new ModelRewriter(NEW, { injectUsage: false });
    const out = rw.push(chunk);
    expect(out.map((p) => dec.decode(p))).toEqual(['{"model":', `"${NEW}"`, ',"messages":[{"role":"user","content":"hello"}]}']);
    expect(out[0]!.buffer).toBe(chunk.buffer);
    expect(out[2]!.buffer).toBe(chunk.buffer);
    expect(out[1]!.buffer === chunk.buffer).toBe(false);
    expect(rw.end()).toEqual([]);
  });

  test("chunks before and after the model value are forwarded as the same objects; only the value is held", () => {
    const head = enc.encode('{"messages":[{"role":"user","content":"' + "x".repeat(1000) + '"}],"model":"sm');
    const tail = enc.encode('art","stream":false,"temperature":0.5}');
    const more = enc.encode("\n");
    const rw = new ModelRewriter(NEW, { injectUsage: false });
    const a = rw.push(head);
    expect(a.length).toBe(1);
    expect(a[0]!.buffer).toBe(head.buffer);
    expect(a[0]!.length).toBe(head.length - 3); // `"sm` held
    const b = rw.push(tail);
    expect(b.map((p) => dec.decode(p))).toEqual([`"${NEW}"`, ',"stream":false,"temperature":0.5}']);
    expect(b[1]!.buffer).toBe(tail.buffer);
    const c = rw.push(more);
    expect(c[0]).toBe(more); // the scanner is done: pass-through at no cost
  });

  test("a value over the cap across chunks is released as it was, and the rest passes through", () => {
    const value = '"' + "v".repeat(MODEL_VALUE_MAX_RAW + 10) + '"';
    const body = enc.encode(`{"model":${value},"n":1}`);
    const got = streamThrough(chunked(body, 100), NEW, false);
    expect(got.text).toBe(dec.decode(body));
    expect(got.replaced).toBe(false);
    expect(got.delta).toBe(0);
    // Copied bytes: at most what was held, bounded by the cap.
    const copied = got.pieces.filter((p) => p.buffer !== body.buffer).reduce((n, p) => n + p.length, 0);
    expect(copied).toBeLessThanOrEqual(MODEL_VALUE_MAX_RAW + 1);
  });

  test("the new value is a fresh buffer per rewriter (a consumer that detaches it cannot affect another request)", () => {
    const body = enc.encode('{"model":"smart"}');
    const a = new ModelRewriter(NEW, { injectUsage: false }).push(body);
    a[1]!.fill(0x41);
    const b = new ModelRewriter(NEW, { injectUsage: false }).push(body);
    expect(dec.decode(concatBytes(b))).toBe(`{"model":"${NEW}"}`);
    expect(dec.decode(rewriteModelWhole(body, NEW, { injectUsage: false }).body)).toBe(`{"model":"${NEW}"}`);
  });

  test("rewriteModelWhole returns the very same body when nothing changes", () => {
    const body = enc.encode('{"model":7,"stream":true}');
    expect(rewriteModelWhole(body, NEW, { injectUsage: false }).body).toBe(body);
    const absent = enc.encode('{"messages":[]}');
    expect(rewriteModelWhole(absent, NEW, { injectUsage: true }).body).toBe(absent);
  });
});

// ---------------------------------------------------------------------------------------------
// Property test against JSON.parse, with an independent oracle for where the root model value lies.
// Reproduce a failure with PROPERTY_SEED=<seed printed in the failure message>.

const WS = new Set([0x20, 0x0a, 0x0d, 0x09]);

function skipWs(b: Uint8Array, i: number): number {
  while (i < b.length && WS.has(b[i]!)) i++;
  return i;
}

/** b[i] is a quote: the index after the string's closing quote. */
function skipString(b: Uint8Array, i: number): number {
  i++;
  for (;;) {
    const c = b[i]!;
    if (c === 0x5c) i += 2;
    else if (c === 0x22) return i + 1;
    else i++;
  }
}

function skipValue(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c === 0x22) return skipString(b, i);
  if (c === 0x7b || c === 0x5b) {
    const end = c === 0x7b ? 0x7d : 0x5d;
    i = skipWs(b, i + 1);
    if (b[i] === end) return i + 1;
    for (;;) {
      if (c === 0x7b) {
        i = skipWs(b, skipString(b, i));
        i = skipWs(b, i + 1); // the colon
      }
      i = skipWs(b, skipValue(b, i));
      if (b[i] === end) return i + 1;
      i = skipWs(b, i + 1); // the comma
    }
  }
  while (i < b.length && !WS.has(b[i]!) && b[i] !== 0x2c && b[i] !== 0x7d && b[i] !== 0x5d) i++;
  return i;
}

/** Where the first root "model" member's value lies (start, end exclusive) and the root's closing brace, walking the JSON plainly. */
function oracle(b: Uint8Array): { value: [number, number] | undefined; rootClose: number } {
  let i = skipWs(b, 0);
  if (b[i] !== 0x7b) return { value: undefined, rootClose: -1 };
  let value: [number, number] | undefined;
  i = skipWs(b, i + 1);
  if (b[i] === 0x7d) return { value, rootClose: i };
  for (;;) {
    const k0 = i;
    i = skipString(b, i);
    const key = JSON.parse(dec.decode(b.subarray(k0, i))) as string;
    i = skipWs(b, skipWs(b, i) + 1);
    const v0 = i;
    i = skipValue(b, i);
    if (key === "model" && value === undefined) value = [v0, i];
    i = skipWs(b, i);
    if (b[i] === 0x7d) return { value, rootClose: i };
    i = skipWs(b, i + 1);
  }
}

test("property: over 600 random bodies × random chunkings × injection on and off, the output parses to the input with only the root model replaced, matches an independent oracle byte for byte, delta() is the length change, and copies stay bounded", () => {
  const base = Number(process.env.PROPERTY_SEED ?? 0xbeef) >>> 0;
  const DOCS = process.env.PROPERTY_SEED ? 1 : 600;
  const models = ["llama-3.3-70b", "groq/llama-3.3-70b-versatile", "", 'q"uo\\te', "é中😀", "a\u2028b\n", "x".repeat(200)];
  let replacedCount = 0;
  let injectedCount = 0;
  let unchangedStrings = 0;
  let runs = 0;
  for (let d = 0; d < DOCS; d++) {
    const seed = (base + d) >>> 0;
    const g = new Gen(mulberry32(seed));
    const doc = g.root();
    const text = g.ws() + g.serialise(doc) + g.ws();
    const bytes = enc.encode(text);
    expect(JSON.parse(text)).toEqual(doc); // the generator says what it makes
    const newModel = g.pick(models);
    const { value, rootClose } = oracle(bytes);
    const wantReplace = value !== undefined && bytes[value[0]] === 0x22 && value[1] - value[0] - 2 <= MODEL_VALUE_MAX_RAW;
    if (isPlainObject(doc) && typeof doc.model === "string" && !wantReplace) unchangedStrings++;
    // A plausible model (each UTF-16 unit written as at most one 6-byte escape within the cap) must be replaced whatever its escapes.
    if (isPlainObject(doc) && typeof doc.model === "string" && doc.model.length * 6 <= MODEL_VALUE_MAX_RAW) expect([seed, wantReplace]).toEqual([seed, true]);
    const newBytes = jsonString(newModel);
    for (const injectUsage of [false, true]) {
      const wantInject = injectUsage && isPlainObject(doc) && doc.stream === true && !Object.hasOwn(doc, "stream_options");
      // The expected bytes, built from the oracle's offsets.
      const parts: Uint8Array[] = [];
      let from = 0;
      if (wantReplace) {
        parts.push(bytes.subarray(0, value![0]), newBytes);
        from = value![1];
      }
      if (wantInject) {
        parts.push(bytes.subarray(from, rootClose), INCLUDE_USAGE_INSERT);
        from = rootClose;
      }
      parts.push(bytes.subarray(from));
      const want = concatBytes(parts);
      const wantParsed: Json = isPlainObject(doc)
        ? { ...doc, ...(wantReplace ? { model: newModel } : {}), ...(wantInject ? { stream_options: { include_usage: true } } : {}) }
        : doc;
      const copyBound =
        (wantReplace ? newBytes.length + (value![1] - value![0]) : MODEL_VALUE_MAX_RAW + 1) + (wantInject ? INCLUDE_USAGE_INSERT.length + bytes.length - rootClose : 0);

      const whole = rewriteModelWhole(bytes, newModel, { injectUsage });
      for (const [ci, chunks] of g.chunkings(bytes).entries()) {
        const where = `seed=${seed} (PROPERTY_SEED=${seed}) injectUsage=${injectUsage} chunking=${ci} new=${JSON.stringify(newModel)} body=${JSON.stringify(text.slice(0, 300))}`;
        const got = streamThrough(chunks, newModel, injectUsage);
        try {
          expect(dec.decode(got.bytes)).toBe(dec.decode(want));
          expect(got.bytes).toEqual(want);
          expect(whole.body).toEqual(want);
          expect(JSON.parse(dec.decode(got.bytes))).toEqual(wantParsed);
          expect([got.replaced, got.injected, whole.replaced, whole.injected]).toEqual([wantReplace, wantInject, wantReplace, wantInject]);
          expect([got.delta, got.firstDelta, got.deltaMoved]).toEqual([want.length - bytes.length, want.length - bytes.length, false]);
          expect([got.model, got.stream]).toEqual([whole.model, whole.stream]);
          const copied = got.pieces.filter((p) => p.buffer !== bytes.buffer).reduce((n, p) => n + p.length, 0);
          expect(copied).toBeLessThanOrEqual(copyBound);
        } catch (e) {
          throw new Error(`rewrite wrong ${where}\n${String(e)}`);
        }
        if (got.replaced) replacedCount++;
        if (got.injected) injectedCount++;
        runs++;
      }
    }
  }
  expect(runs).toBe(DOCS * 2 * 3);
  // The generator must exercise each outcome, or the property proves little.
  if (DOCS > 1) {
    expect(replacedCount).toBeGreaterThan(runs / 4);
    expect(injectedCount).toBeGreaterThan(runs / 20);
    expect(unchangedStrings).toBeGreaterThan(10);
  }
});

test("property: spliceModelAt over the meter's one pass (injectWhole) gives rewriteModelWhole's bytes, over 600 random bodies and models; the same body comes back when the model is unchanged", () => {
  const base = Number(process.env.PROPERTY_SEED ?? 0x5911ce) >>> 0;
  const models = ["llama-3.3-70b", "groq/llama-3.3-70b-versatile", "", 'q"uo\\te', "é中😀", "x".repeat(200)];
  let replaced = 0;
  for (let d = 0; d < 600; d++) {
    const g = new Gen(mulberry32((base + d) >>> 0));
    const doc = g.root();
    const bytes = enc.encode(g.ws() + g.serialise(doc) + g.ws());
    const newModel = g.pick(models);
    const pass = injectWhole(bytes);
    const spliced = spliceModelAt(pass.body, pass.modelOpen, pass.modelClose, newModel);
    const want = rewriteModelWhole(bytes, newModel, { injectUsage: true });
    expect([d, Buffer.from(spliced).toString("latin1")]).toEqual([d, Buffer.from(want.body).toString("latin1")]);
    if (want.replaced) replaced++;
  }
  expect(replaced).toBeGreaterThan(100);
  const same = enc.encode('{"model":"gpt-4o-mini","messages":[]}');
  const pass = injectWhole(same);
  expect(spliceModelAt(pass.body, pass.modelOpen, pass.modelClose, "gpt-4o-mini")).toBe(pass.body);
});
