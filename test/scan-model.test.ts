import { test, expect, describe } from "bun:test";
import { ModelScanner, MODEL_MAX_BYTES } from "../src/metering/scan-model.ts";
import type { ModelScannerOptions } from "../src/metering/scan-model.ts";
import { injectWhole, UsageInjector } from "../src/metering/inject-usage.ts";
import { concatBytes } from "./helpers/bytes.ts";
import { mulberry32 } from "./helpers/random.ts";
import { Gen, chunked, isPlainObject, type Json } from "./helpers/json-gen.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function scanChunks(chunks: Uint8Array[], opts?: ModelScannerOptions): ModelScanner {
  const s = new ModelScanner(opts);
  for (const c of chunks) s.feed(c);
  return s;
}


function scan(text: string, opts?: ModelScannerOptions): ModelScanner {
  return scanChunks([enc.encode(text)], opts);
}

function modelOf(text: string): string | undefined {
  return scan(text).model();
}

describe("peek model scanner (reference §11.2)", () => {
  test("simple: root model is found", () => {
    expect(modelOf('{"model":"gpt-4o","messages":[]}')).toBe("gpt-4o");
  });

  test("model_last_after_huge_array: root model after a large messages array", () => {
    const msgs = Array.from({ length: 5000 }, (_, i) => ({ role: "user", content: `message ${i}`, model: "decoy" }));
    const body = JSON.stringify({ messages: msgs, temperature: 0.2, model: "gpt-4o-mini" });
    expect(modelOf(body)).toBe("gpt-4o-mini");
  });

  test("nested_model_is_ignored: model keys inside messages/tools/metadata do not count", () => {
    expect(modelOf('{"messages":[{"role":"user","model":"bad"}],"model":"good"}')).toBe("good");
    expect(modelOf('{"messages":[{"model":"bad"}],"tools":[{"function":{"model":"bad2"}}],"metadata":{"model":"bad3"}}')).toBeUndefined();
  });

  test("model_word_inside_a_string_value_is_ignored", () => {
    expect(modelOf('{"prompt":"set \\"model\\": \\"evil\\" please","model":"real"}')).toBe("real");
    expect(modelOf('{"prompt":"model","x":"\\"model\\":\\"evil\\""}')).toBeUndefined();
  });

  test("whitespace_tolerant: whitespace around colon and comma", () => {
    expect(modelOf('\n {\r\n\t"messages" : [ ] ,\n  "model"\t:\n  "gpt-4o"  \n}\n')).toBe("gpt-4o");
  });

  test("vendor_prefixed_value: slashes and dots survive", () => {
    expect(modelOf('{"model":"openrouter/meta-llama/llama-3.1-70b-instruct"}')).toBe("openrouter/meta-llama/llama-3.1-70b-instruct");
    expect(modelOf('{"model":"accounts/fireworks/models/llama-v3p1-8b-instruct"}')).toBe(
      "accounts/fireworks/models/llama-v3p1-8b-instruct",
    );
  });

  test("split_across_feeds: every two-way split of key and value finds the model", () => {
    const body = enc.encode('{"messages":[{"content":"hi \\"x\\""}],"model":"gpt-\\u0072eal","stream":true}');
    for (let k = 0; k <= body.length; k++) {
      const s = scanChunks([body.subarray(0, k), body.subarray(k)]);
      expect(s.model()).toBe("gpt-real");
      expect(s.stream).toBe(true);
    }
  });

  test("absent_is_none: no model key, non-JSON, root array", () => {
    expect(modelOf('{"messages":[]}')).toBeUndefined();
    expect(modelOf("model=gpt-4o")).toBeUndefined();
    expect(modelOf("")).toBeUndefined();
    expect(modelOf('"model"')).toBeUndefined();
    expect(modelOf('[{"model":"gpt-4o"}]')).toBeUndefined();
    expect(scan('[{"model":"gpt-4o"}]').rootIsObject).toBe(false);
  });

  test("large_skipped_value_then_model: 256 KiB string with an escaped quote, then the model", () => {
    const big = "a".repeat(128 * 1024) + '\\"model\\":\\"evil\\"' + "b".repeat(128 * 1024);
    const body = `{"messages":[{"content":"${big}"}],"model":"gpt-4o"}`;
    expect(modelOf(body)).toBe("gpt-4o");
    expect(scanChunks(chunked(enc.encode(body), 4096)).model()).toBe("gpt-4o");
  });

  test("backslash runs split across chunks decide whether a quote closes the string", () => {
    const bs = "\\";
    // p = a\ , a\" , a\\\ : even run then a closing quote, odd run escaping a quote, long even run.
    for (const body of [`{"p":"a${bs.repeat(2)}","model":"m"}`, `{"p":"a${bs.repeat(3)}"","model":"m"}`, `{"p":"a${bs.repeat(6)}","model":"m"}`]) {
      expect((JSON.parse(body) as { model: string }).model).toBe("m");
      const bytes = enc.encode(body);
      for (let k = 0; k <= bytes.length; k++) {
        expect([body, k, scanChunks([bytes.subarray(0, k), bytes.subarray(k)]).model()]).toEqual([body, k, "m"]);
      }
    }
  });

  test("nested_object_value_then_root_model", () => {
    expect(modelOf('{"metadata":{"a":{"model":"x"},"b":[{"model":"y"}]},"model":"z"}')).toBe("z");
  });

  test("escaped_quote_inside_model_value_does_not_terminate_it (decoded quote is unloggable → unknown)", () => {
    // The seed kept `\"` raw and its log sanitiser turned it into "unknown"; we decode and do the same.
    const s = scan('{"model":"gpt\\"-4o\\"","stream":true}');
    expect(s.model()).toBe("unknown");
    // Had the escaped quote ended the value, `-4o` would be misread and stream lost.
    expect(s.stream).toBe(true);
    expect(s.done).toBe(true);
  });

  test("extracts_model_from_sse_first_chunk: `data: {...}` yields its model", () => {
    const sse =
      'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06","choices":[{"delta":{"role":"assistant"}}]}\n\n' +
      'data: {"id":"chatcmpl-1","model":"other","choices":[]}\n\ndata: [DONE]\n\n';
    expect(modelOf(sse)).toBe("gpt-4o-2024-08-06");
    const s = scanChunks(chunked(enc.encode(sse), 1), { modelOnly: true });
    expect(s.model()).toBe("gpt-4o-2024-08-06");
    expect(s.done).toBe(true);
  });
});

describe("model decoding", () => {
  test("JSON escapes in the model value are decoded", () => {
    expect(modelOf('{"model":"gpt-\\u0072eal"}')).toBe("gpt-real");
    expect(modelOf('{"model":"a\\/b"}')).toBe("a/b");
    expect(modelOf('{"model":"\\u00e9t\\u00C9-\\u4e2d"}')).toBe("étÉ-中");
  });

  test("surrogate pair escapes decode to one astral character", () => {
    expect(modelOf('{"model":"m-\\ud83d\\ude00"}')).toBe("m-😀");
  });

  test("raw UTF-8 in the model value is kept", () => {
    expect(modelOf('{"model":"modèle-😀"}')).toBe("modèle-😀");
  });

  test("lone surrogate escapes make the model unknown", () => {
    expect(modelOf('{"model":"a\\ud83d"}')).toBe("unknown");
    expect(modelOf('{"model":"a\\ude00b"}')).toBe("unknown");
    expect(modelOf('{"model":"a\\ud83db"}')).toBe("unknown");
  });

  test("invalid UTF-8 bytes in the model value make it unknown", () => {
    const s = new ModelScanner();
    s.feed(enc.encode('{"model":"a'));
    s.feed(new Uint8Array([0xc3, 0x28, 0xff]));
    s.feed(enc.encode('"}'));
    expect(s.model()).toBe("unknown");
  });

  test("control characters, DEL, quote or backslash after decoding make the model unknown", () => {
    for (const v of ["a\\nb", "a\\tb", "\\u0000", "x\\u001f", "x\\u007f", "x\u007f", "a\\\\b", "a\\\"b", "a\\u0022b", "a\\u005cb"]) {
      expect([v, modelOf(`{"model":"${v}"}`)]).toEqual([v, "unknown"]);
    }
  });

  test("model over 256 bytes is unknown; exactly 256 bytes is kept", () => {
    expect(modelOf(`{"model":"${"m".repeat(MODEL_MAX_BYTES)}"}`)).toBe("m".repeat(256));
    expect(modelOf(`{"model":"${"m".repeat(MODEL_MAX_BYTES + 1)}"}`)).toBe("unknown");
    // The cap is on decoded UTF-8 bytes: 128 × "é" is 256 bytes, one more char is over.
    expect(modelOf(`{"model":"${"\\u00e9".repeat(128)}"}`)).toBe("é".repeat(128));
    expect(modelOf(`{"model":"${"é".repeat(128)}x"}`)).toBe("unknown");
  });

  test("an oversized model value still lets stream be found after it", () => {
    const s = scan(`{"model":"${"m".repeat(100_000)}","stream":true}`);
    expect(s.model()).toBe("unknown");
    expect(s.stream).toBe(true);
  });

  test("non-string model values are unknown", () => {
    for (const v of ["42", "-1.5e3", "null", "true", "false", '{"id":"gpt-4o"}', '["gpt-4o"]']) {
      expect([v, modelOf(`{"model":${v},"stream":false}`)]).toEqual([v, "unknown"]);
    }
  });

  test("an escaped key spelling of model counts as model (agrees with JSON.parse)", () => {
    const body = '{"mod\\u0065l":"gpt-4o"}';
    expect((JSON.parse(body) as { model: string }).model).toBe("gpt-4o");
    expect(modelOf(body)).toBe("gpt-4o");
  });

  test("near-miss keys do not count as model", () => {
    expect(modelOf('{"models":"a","mode":"b","Model":"c","model ":"d"," model":"e"}')).toBeUndefined();
  });

  test("first root model key wins over a later duplicate", () => {
    expect(modelOf('{"model":"first","model":"second"}')).toBe("first");
    expect(modelOf('{"model":null,"model":"second"}')).toBe("unknown");
  });

  test("scans in a row each report their own model: the last model's string is reused only for identical bytes", () => {
    // Same length, differing in the first, middle or last byte; then back to an earlier one; then escapes that
    // decode to the same bytes; then the same invalid bytes twice.
    const seq = ["gpt-4o-mini", "gpt-4o-mini", "xpt-4o-mini", "gpt-4x-mini", "gpt-4o-minx", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini"];
    for (const m of seq) expect(modelOf(`{"model":"${m}"}`)).toBe(m);
    expect(modelOf('{"model":"gpt\\u002d4o"}')).toBe("gpt-4o");
    expect(modelOf('{"model":"gpt-4o"}')).toBe("gpt-4o");
    const bad = concatBytes([enc.encode('{"model":"g'), new Uint8Array([0xff, 0xfe]), enc.encode('"}')]);
    expect(scanChunks([bad]).model()).toBe("unknown");
    expect(scanChunks([bad]).model()).toBe("unknown");
    expect(modelOf('{"model":"g\u00ff\u00fe"}')).toBe("g\u00ff\u00fe");
    // A model split across feeds is captured the same way.
    expect(scanChunks(chunked(enc.encode('{"model":"gpt-4o-minz"}'), 1)).model()).toBe("gpt-4o-minz");
  });

  test("a body that ends inside the model value reports unknown", () => {
    expect(modelOf('{"model":"gpt-4')).toBe("unknown");
  });
});

describe("stream flag and lifecycle", () => {
  test("stream literal true/false is reported; strings, null and absence are undefined", () => {
    expect(scan('{"stream":true}').stream).toBe(true);
    expect(scan('{"stream" :\n false }').stream).toBe(false);
    expect(scan('{"stream":"true"}').stream).toBeUndefined();
    expect(scan('{"stream":null}').stream).toBeUndefined();
    expect(scan('{"stream":1}').stream).toBeUndefined();
    expect(scan('{"stream":truex}').stream).toBeUndefined();
    expect(scan('{"stream":tRUE}').stream).toBeUndefined();
    expect(scan('{"stream":tru}').stream).toBeUndefined();
    expect(scan('{"model":"m"}').stream).toBeUndefined();
  });

  test("nested stream keys are ignored", () => {
    expect(scan('{"messages":[{"stream":true}],"metadata":{"stream":false}}').stream).toBeUndefined();
  });

  test("stream literal split one byte per chunk is still read", () => {
    const s = scanChunks(chunked(enc.encode('{"stream":  true  ,"model":"x"}'), 1));
    expect(s.stream).toBe(true);
    expect(s.model()).toBe("x");
  });

  test("one byte per chunk gives the same answer as one chunk", () => {
    const body = enc.encode('{"messages":[{"role":"user","content":"\\u00e9 \\"model\\":1 \\\\"}],"mod\\u0065l":"gpt-\\ud83d\\ude00","stream":false}');
    const s = scanChunks(chunked(body, 1));
    expect(s.model()).toBe("gpt-😀");
    expect(s.stream).toBe(false);
  });

  test("done once model and stream are known, and later bytes are ignored", () => {
    const s = new ModelScanner();
    s.feed(enc.encode('{"model":"a"'));
    expect(s.done).toBe(false);
    s.feed(enc.encode(',"stream":true,'));
    expect(s.done).toBe(true);
    s.feed(enc.encode('"stream_options":{},"model":"b"}'));
    expect(s.model()).toBe("a");
    expect(s.hasStreamOptions).toBe(false);
  });

  test("without untilRootEnd a body lacking stream is never done", () => {
    const s = scan('{"model":"a","messages":[]}');
    expect(s.model()).toBe("a");
    expect(s.done).toBe(false);
  });

  test("untilRootEnd keeps tracking to the root close and sees a late stream_options", () => {
    const s = new ModelScanner({ untilRootEnd: true });
    const body = enc.encode('{"model":"a","stream":true,"stream_options":{"include_usage":false}}  ');
    const at = s.feedFindRootEnd(body);
    expect(at).toBe(body.lastIndexOf(0x7d));
    expect(s.hasStreamOptions).toBe(true);
    expect(s.rootClosed).toBe(true);
    expect(s.done).toBe(true);
  });

  test("untilRootEnd is strict about the root: SSE prefix or array means not an object", () => {
    for (const body of ['data: {"model":"a"}', '[{"model":"a"}]', 'x{"model":"a"}']) {
      const s = scan(body, { untilRootEnd: true });
      expect([body, s.rootIsObject, s.model(), s.done]).toEqual([body, false, undefined, true]);
    }
    expect(scan(' \n{"model":"a"}', { untilRootEnd: true }).rootIsObject).toBe(true);
  });

  test("rootIsObject reflects the root", () => {
    expect(scan('{"a":1}').rootIsObject).toBe(true);
    expect(scan("[1,2]").rootIsObject).toBe(false);
    expect(scan("42").rootIsObject).toBe(false);
  });
});

describe("memory", () => {
  test("retained state is the same after 1 MiB and after 50 MiB of body", () => {
    const s = new ModelScanner({ untilRootEnd: true });
    const filler = new Uint8Array(64 * 1024).fill(0x61); // one huge string's content
    for (let i = 0; i < filler.length; i += 97) filler[i] = 0x5c; // `\a`-style escape pairs...
    for (let i = 1; i < filler.length; i += 97) filler[i] = 0x6e; // ...as `\n`
    s.feed(enc.encode('{"model":"gpt-4o","messages":[{"role":"user","content":"'));
    let fed = 0;
    let at1MiB = -1;
    while (fed < 50 * 1024 * 1024) {
      s.feed(filler);
      fed += filler.length;
      if (fed === 1024 * 1024) at1MiB = s.retainedBytes();
    }
    s.feed(enc.encode('"}],"stream":true}'));
    expect(at1MiB).toBe(MODEL_MAX_BYTES);
    expect(s.retainedBytes()).toBe(at1MiB);
    expect(s.model()).toBe("gpt-4o");
    expect(s.stream).toBe(true);
    expect(s.rootClosed).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Property test: random JSON documents, random serialisation, random chunkings.
// Reproduce a failure with PROPERTY_SEED=<seed printed in the failure message>.

function expectedModel(doc: Json): string | undefined {
  if (!isPlainObject(doc) || !Object.hasOwn(doc, "model")) return undefined;
  const m = doc.model;
  if (typeof m !== "string") return "unknown";
  if (!m.isWellFormed() || enc.encode(m).length > MODEL_MAX_BYTES || /[\u0000-\u001f\u007f"\\]/.test(m)) return "unknown";
  return m;
}

function expectedStream(doc: Json): boolean | undefined {
  if (!isPlainObject(doc)) return undefined;
  const s = doc.stream;
  return typeof s === "boolean" ? s : undefined;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

test("property: scanner agrees with JSON.parse and injector output is right, over 2500 random documents and chunkings; a reset scanner and injectWhole (shared scanner) agree too", () => {
  const base = Number(process.env.PROPERTY_SEED ?? 0x5eed) >>> 0;
  // One scanner reset before every document: whatever the previous document left in it must not leak into the next.
  const reused = new ModelScanner();
  const DOCS = process.env.PROPERTY_SEED ? 1 : 2500;
  let checked = 0;
  let injectedCount = 0;
  let modelStrings = 0;
  for (let d = 0; d < DOCS; d++) {
    const seed = (base + d) >>> 0;
    const g = new Gen(mulberry32(seed));
    const doc = g.root();
    const text = g.ws() + g.serialise(doc) + g.ws();
    const bytes = enc.encode(text);
    // The generator must itself produce what it claims (guards the test, not the scanner).
    expect(JSON.parse(text)).toEqual(doc);
    const wantModel = expectedModel(doc);
    const wantStream = expectedStream(doc);
    const wantInject = isPlainObject(doc) && doc.stream === true && !Object.hasOwn(doc, "stream_options");
    if (wantModel !== undefined && wantModel !== "unknown") modelStrings++;
    for (const [ci, chunks] of g.chunkings(bytes).entries()) {
      const where = `seed=${seed} (PROPERTY_SEED=${seed}) chunking=${ci} body=${JSON.stringify(text.slice(0, 400))}`;
      const lax = scanChunks(chunks);
      reused.reset();
      for (const c of chunks) reused.feed(c);
      const whole = injectWhole(bytes);
      const inj = new UsageInjector();
      const out: Uint8Array[] = [];
      for (const c of chunks) out.push(...inj.push(c));
      out.push(...inj.end());
      const outBytes = concatBytes(out);
      const got = {
        laxModel: lax.model(),
        laxStream: lax.stream,
        strictModel: inj.scanner.model(),
        strictStream: inj.scanner.stream,
        injected: inj.injected,
        reusedModel: reused.model(),
        reusedStream: reused.stream,
        wholeModel: whole.model,
        wholeStream: whole.stream,
        wholeInjected: whole.injected,
      };
      const want = {
        laxModel: wantModel,
        laxStream: wantStream,
        strictModel: wantModel,
        strictStream: wantStream,
        injected: wantInject,
        reusedModel: wantModel,
        reusedStream: wantStream,
        wholeModel: wantModel,
        wholeStream: wantStream,
        wholeInjected: wantInject,
      };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`mismatch ${where}\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`);
      if (!bytesEqual(whole.body, outBytes)) throw new Error(`injectWhole and the streaming injector wrote different bodies ${where}`);
      if (wantInject) {
        const parsed: unknown = JSON.parse(dec.decode(outBytes));
        const expected = { ...(doc as { [k: string]: Json }), stream_options: { include_usage: true } };
        try {
          expect(parsed).toEqual(expected);
        } catch (e) {
          throw new Error(`injected body wrong ${where}\n${String(e)}`);
        }
        injectedCount++;
      } else if (!bytesEqual(outBytes, bytes)) {
        throw new Error(`non-injected body changed ${where}`);
      }
      checked++;
    }
  }
  expect(checked).toBe(DOCS * 3);
  // The generator must exercise both outcomes, or the property proves little.
  if (DOCS > 1) {
    expect(injectedCount).toBeGreaterThan(DOCS / 4);
    expect(modelStrings).toBeGreaterThan(DOCS / 8);
  }
});

describe("modelDecided", () => {
  test("false while the root model value is still arriving, true once it is whole or is not a string", () => {
    const enc = new TextEncoder();
    const s = new ModelScanner();
    s.feed(enc.encode('{"messages":[{"model":"nested"}],"model":"f'));
    expect(s.modelDecided).toBe(false);
    expect(s.model()).toBe("unknown");
    s.feed(enc.encode('b","n":1}'));
    expect(s.modelDecided).toBe(true);
    expect(s.model()).toBe("fb");
    const n = new ModelScanner();
    n.feed(enc.encode('{"model":42,'));
    expect(n.modelDecided).toBe(true);
  });
});
