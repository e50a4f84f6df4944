// The `auto` classifier (SPEC §13), as a pure function: each feature's effect, the floors and capability gates, the
// rounding rule, the lookahead rule, the last-user-turn rule, determinism, both dialects, and that no byte content
// crashes it or leaks into its signals.
import { describe, expect, test } from "bun:test";
import { SCORE_ONE, TIERS, type TierInfo } from "../src/routing/auto-config.ts";
import { classify, type ClassifyOptions, decide, EXTERNAL_TEXT_MAX_BYTES, extractFeatures, SIGNAL_CODES } from "../src/routing/classify.ts";
import { Gen } from "./helpers/json-gen.ts";
import { mulberry32 } from "./helpers/random.ts";

const enc = new TextEncoder();
const ALL_VISION: TierInfo = { vision: true, contextWindow: undefined };
const OPTS: ClassifyOptions = { boundaries: [1500, 3500, 7500], margin: 300, tiers: [ALL_VISION, ALL_VISION, ALL_VISION, ALL_VISION] };

function openai(text: string, extra: Record<string, unknown> = {}): Uint8Array {
  return enc.encode(JSON.stringify({ model: "auto", messages: [{ role: "user", content: text }], ...extra }));
}
function anthropic(text: string, extra: Record<string, unknown> = {}): Uint8Array {
  return enc.encode(JSON.stringify({ model: "auto", max_tokens: 1024, messages: [{ role: "user", content: [{ type: "text", text }] }], ...extra }));
}
const tierOf = (body: Uint8Array, opts: ClassifyOptions = OPTS, complete = true) => classify(body, complete, "openai", opts);

const LONG_CODE_AND_PROOF = `I need three things.
1. Implement a lock-free MPMC queue in Rust with a bounded ring buffer, generic over T, and explain the memory orderings.
2. Prove that your queue is linearizable: state the invariant, then prove it by induction over operations.
3. Write property tests and a loom model test.

\`\`\`rust
pub struct Queue<T> { buf: Box<[Slot<T>]>, head: AtomicUsize, tail: AtomicUsize }
impl<T> Queue<T> {
    pub fn push(&self, v: T) -> Result<(), T> { todo!() }
}
\`\`\`
Then analyze the worst-case contention and justify the design trade-offs against a mutex-based queue.`;

describe("text features", () => {
  test("a greeting is simple (both dialects)", () => {
    for (const body of [openai("hi"), anthropic("Hello! How are you today?"), openai("thanks, that's perfect")]) {
      const c = tierOf(body);
      expect(c.tier).toBe("simple");
      expect(c.signals).toContain("greeting");
    }
  });

  test("a simple lookup is simple", () => {
    const c = tierOf(openai("What is the capital of Australia?"));
    expect(c.tier).toBe("simple");
    expect(c.signals).toContain("simple");
  });

  test("a long multi-part coding and proof request is complex or reasoning", () => {
    for (const body of [openai(LONG_CODE_AND_PROOF), anthropic(LONG_CODE_AND_PROOF)]) {
      const c = tierOf(body);
      expect(["complex", "reasoning"]).toContain(c.tier);
      for (const s of ["code", "proof", "steps"]) expect(c.signals).toContain(s);
    }
  });

  test("a proof request is reasoning", () => {
    expect(tierOf(openai("Prove that the square root of 2 is irrational.")).tier).toBe("reasoning");
  });

  test("everyday code is medium, and code raises the score over the same request without it", () => {
    const c = tierOf(openai("Write a Python function that checks whether a string is a palindrome, ignoring case and punctuation."));
    expect(c.tier).toBe("medium");
    const plain = tierOf(openai("Please tell me about the thing we talked about, and the other thing as well, thank you."));
    const fenced = tierOf(openai("Please tell me about the thing we talked about:\n```\nfunction f() { return 1; }\n```\nthank you."));
    expect(fenced.score).toBeGreaterThan(plain.score);
    expect(fenced.signals).toContain("code");
    expect(fenced.features.fences).toBe(2);
  });

  test("system design with technical terms is at least complex", () => {
    const c = tierOf(
      openai("Design a URL shortener that handles 100k writes/s and 1M reads/s globally, with custom aliases, expiry and click analytics. Discuss storage, ID generation, caching, consistency trade-offs and failure modes."),
    );
    expect(c.tierIndex).toBeGreaterThanOrEqual(2);
    expect(c.signals).toContain("tech");
  });

  test("a stack trace is recognised (trace signal) and is at least medium", () => {
    const c = tierOf(openai("Why?\nTraceback (most recent call last):\n  File \"a.py\", line 3, in <module>\n    main()\nValueError: bad"));
    expect(c.signals).toContain("trace");
    expect(c.tierIndex).toBeGreaterThanOrEqual(1);
    expect(c.features.trace).toBeGreaterThanOrEqual(2);
  });

  test("maths markers (LaTeX, powers) are counted", () => {
    const f = tierOf(openai("Evaluate $\\frac{x^2 - 1}{x - 1}$ and the integral of it")).features;
    expect(f.math).toBeGreaterThanOrEqual(3);
  });

  test("multi-step structure: numbered lists (escaped newlines) and first … then count as steps", () => {
    expect(tierOf(openai("1. a\n2. b\n3. c")).features.steps).toBe(3);
    expect(tierOf(openai("First do this, then that, finally the rest")).features.steps).toBe(3);
    expect(tierOf(openai("no structure here")).features.steps).toBe(0);
  });

  test("several question marks are counted", () => {
    expect(tierOf(openai("Why? How? When?")).features.questions).toBe(3);
  });

  test("keywords match whole words, case-insensitively: 'improve' is not 'prove', 'PROVE' is", () => {
    expect(tierOf(openai("How can I improve this?")).features.proof).toBe(0);
    expect(tierOf(openai("PROVE IT")).features.proof).toBe(1);
    expect(tierOf(openai("This is history.")).features.greeting).toBe(0);
    expect(tierOf(openai("hi!")).features.greeting).toBe(1);
  });

  test("size: the last turn's bytes are measured, and a long turn scores above the same short one", () => {
    const short = tierOf(openai("Summarize the notes."));
    const long = tierOf(openai(`Summarize the notes. ${"The team met on Tuesday and agreed on next steps for the launch. ".repeat(40)}`));
    expect(long.features.turnBytes).toBeGreaterThan(2000);
    expect(long.score).toBeGreaterThan(short.score);
    expect(long.signals).toContain("long");
  });
});

describe("the last user turn", () => {
  test("only the last user turn is scored: a hard earlier turn does not make 'thanks!' hard", () => {
    const body = enc.encode(
      JSON.stringify({
        messages: [
          { role: "user", content: LONG_CODE_AND_PROOF },
          { role: "assistant", content: "Here is the queue and the proof by induction …" },
          { role: "user", content: "thanks!" },
        ],
      }),
    );
    const c = tierOf(body);
    expect(c.tier).toBe("simple");
    expect(c.features.userTurns).toBe(2);
    expect(c.features.proof).toBe(0);
  });

  test("an assistant or system message is never scored, whatever it says", () => {
    const body = enc.encode(
      JSON.stringify({
        messages: [
          { role: "system", content: "Prove theorems rigorously by induction. Analyze step by step." },
          { role: "user", content: "hello" },
          { role: "assistant", content: "Prove the lemma by contradiction: ```code```" },
        ],
      }),
    );
    const c = tierOf(body);
    expect(c.tier).toBe("simple");
    expect(c.features.proof).toBe(0);
  });

  test("role after content in a message object is handled (counters are kept per message)", () => {
    const userLast = enc.encode('{"messages":[{"content":"Prove that there are infinitely many primes.","role":"user"},{"content":"hi","role":"assistant"}]}');
    expect(tierOf(userLast).tier).toBe("reasoning");
    const assistantLast = enc.encode('{"messages":[{"content":"hi","role":"user"},{"content":"Prove that there are infinitely many primes.","role":"assistant"}]}');
    expect(tierOf(assistantLast).tier).toBe("simple");
  });

  test("an Anthropic tool_result turn is not the user's ask: its text is not scored and the earlier turn stays the last", () => {
    const body = enc.encode(
      JSON.stringify({
        max_tokens: 100,
        messages: [
          { role: "user", content: [{ type: "text", text: "hi" }] },
          { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "run", input: {} }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "Prove the theorem by induction and contradiction" }] }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "Prove the lemma, derive the closed form" }] },
        ],
      }),
    );
    const c = classify(body, true, "anthropic", OPTS);
    expect(c.features.proof).toBe(0);
    expect(c.features.userTurns).toBe(1);
    expect(c.features.greeting).toBe(1);
    expect(c.tier).toBe("simple");
  });

  test("OpenAI content parts: every text part of the turn is scored", () => {
    const body = enc.encode(JSON.stringify({ messages: [{ role: "user", content: [{ type: "text", text: "Prove" }, { type: "text", text: "the lemma" }] }] }));
    const f = tierOf(body).features;
    expect(f.proof).toBe(2);
  });

  test("both dialects give the same tier and score for the same ask", () => {
    for (const text of ["hi", LONG_CODE_AND_PROOF, "Write a polite email to my landlord about the heating.", "Design a multi-region rate limiter with consistency trade-offs."]) {
      const a = classify(openai(text), true, "openai", OPTS);
      const b = classify(anthropic(text), true, "anthropic", OPTS);
      expect(b.tier).toBe(a.tier);
      expect(b.score).toBe(a.score);
    }
  });

  test("a body with no user turn (not a chat body, or not JSON) is medium with no_turn", () => {
    for (const body of [enc.encode('{"prompt":"hello"}'), enc.encode("not json at all"), new Uint8Array(0)]) {
      const c = tierOf(body);
      expect(c.tier).toBe("medium");
      expect(c.signals).toContain("no_turn");
    }
  });
});

describe("floors from the request's shape", () => {
  test("reasoning_effort → reasoning, even for a greeting; reasoning_effort none or null does not", () => {
    const c = tierOf(openai("hi", { reasoning_effort: "low" }));
    expect(c.tier).toBe("reasoning");
    expect(c.signals).toContain("reasoning_effort");
    expect(tierOf(openai("hi", { reasoning_effort: "none" })).tier).toBe("simple");
    expect(tierOf(openai("hi", { reasoning_effort: null })).tier).toBe("simple");
  });

  test("Anthropic thinking → reasoning; thinking disabled does not", () => {
    const c = classify(anthropic("hi", { thinking: { type: "enabled", budget_tokens: 2048 } }), true, "anthropic", OPTS);
    expect(c.tier).toBe("reasoning");
    expect(c.signals).toContain("thinking");
    expect(classify(anthropic("hi", { thinking: { type: "disabled" } }), true, "anthropic", OPTS).tier).toBe("simple");
  });

  test("tools → at least medium (a greeting with tools is medium; a hard request keeps its higher tier)", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    const c = tierOf(openai("hi", { tools }));
    expect(c.tier).toBe("medium");
    expect(c.signals).toContain("tools");
    expect(tierOf(openai("Prove that there are infinitely many primes.", { tools })).tier).toBe("reasoning");
    const a = classify(anthropic("hi", { tools: [{ name: "f", input_schema: { type: "object" } }] }), true, "anthropic", OPTS);
    expect(a.tier).toBe("medium");
  });

  test("an empty tools array sets no floor; tool_choice required (or Anthropic any) does", () => {
    expect(tierOf(openai("hi", { tools: [] })).tier).toBe("simple");
    expect(tierOf(openai("hi", { tool_choice: "required" })).tier).toBe("medium");
    expect(classify(anthropic("hi", { tool_choice: { type: "any" } }), true, "anthropic", OPTS).tier).toBe("medium");
    expect(tierOf(openai("hi", { tool_choice: "auto" })).tier).toBe("simple");
  });

  test("a JSON-schema response_format → at least medium; json_object does not", () => {
    const c = tierOf(openai("hi", { response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } } }));
    expect(c.tier).toBe("medium");
    expect(c.signals).toContain("json_schema");
    expect(tierOf(openai("hi", { response_format: { type: "json_object" } })).tier).toBe("simple");
  });
});

describe("capability gates", () => {
  const imageBody = (text: string) =>
    enc.encode(JSON.stringify({ messages: [{ role: "user", content: [{ type: "text", text }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }] }));
  const noVision: TierInfo = { vision: false, contextWindow: undefined };

  test("an image goes up to the first tier whose target has vision", () => {
    const opts: ClassifyOptions = { ...OPTS, tiers: [noVision, noVision, ALL_VISION, ALL_VISION] };
    const c = tierOf(imageBody("hi"), opts);
    expect(c.tier).toBe("complex");
    expect(c.signals).toContain("img");
    expect(c.features.images).toBe(1);
    // An Anthropic image block counts the same.
    const a = enc.encode(JSON.stringify({ max_tokens: 10, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }, { type: "text", text: "hi" }] }] }));
    expect(classify(a, true, "anthropic", opts).tier).toBe("complex");
  });

  test("an image never goes down: a vision tier below is not used; with no vision tier at or above the tier stays (img_no_vision)", () => {
    const opts: ClassifyOptions = { ...OPTS, tiers: [ALL_VISION, noVision, noVision, noVision] };
    const c = tierOf(imageBody("Design a distributed multi-region rate limiter, with consistency trade-offs and failover."), opts);
    expect(c.tierIndex).toBeGreaterThanOrEqual(1);
    expect(c.signals).toContain("img_no_vision");
  });

  test("an estimated context over a tier's window goes to a bigger tier (bytes ÷ 4 + max_tokens)", () => {
    const opts: ClassifyOptions = { ...OPTS, tiers: [{ vision: true, contextWindow: 1000 }, { vision: true, contextWindow: 8000 }, ALL_VISION, ALL_VISION] };
    const small = tierOf(openai("hi", { max_tokens: 100 }), opts);
    expect(small.tier).toBe("simple");
    const c = tierOf(openai("hi", { max_tokens: 5000 }), opts);
    expect(c.features.maxTokens).toBe(5000);
    expect(c.features.contextTokens).toBeGreaterThan(5000);
    expect(c.tier).toBe("medium");
    expect(c.signals).toContain("ctx>simple");
    // Past medium's window too: complex (unknown window = assumed to fit).
    expect(tierOf(openai("hi", { max_completion_tokens: 9000 }), opts).tier).toBe("complex");
  });

  test("the declared length counts when the body is not complete", () => {
    const opts: ClassifyOptions = { ...OPTS, tiers: [{ vision: true, contextWindow: 1000 }, ALL_VISION, ALL_VISION, ALL_VISION], totalBytes: 1_000_000 };
    const c = classify(openai("hi"), false, "openai", opts);
    expect(c.features.totalBytes).toBe(1_000_000);
    expect(c.tier).toBe("medium");
  });

  test("no tier holds the context: the largest window at or above, never down (ctx>all)", () => {
    const opts: ClassifyOptions = {
      ...OPTS,
      tiers: [{ vision: true, contextWindow: 100 }, { vision: true, contextWindow: 300 }, { vision: true, contextWindow: 200 }, { vision: true, contextWindow: 250 }],
    };
    const c = tierOf(openai("hi", { max_tokens: 100000 }), opts);
    expect(c.tier).toBe("medium");
    expect(c.signals).toContain("ctx>all");
  });
});

describe("the rounding rule and the boundaries", () => {
  // A body whose score is known, then boundaries placed around it.
  const body = openai("Write a polite email to my landlord asking to fix the heating, which has been broken for a week.");
  const s = tierOf(body).score;

  test("the score is an integer on the boundaries' scale", () => {
    expect(Number.isInteger(s)).toBe(true);
    expect(s).toBeGreaterThan(300);
    expect(s).toBeLessThan(SCORE_ONE - 1000);
  });

  test("exactly at a boundary: the higher tier, no round_up", () => {
    const c = tierOf(body, { ...OPTS, boundaries: [s, s + 500, s + 1000], margin: 300 });
    expect(c.tier).toBe("medium");
    expect(c.signals).not.toContain("round_up");
  });

  test("within the margin below a boundary: rounded up, round_up signalled", () => {
    const c = tierOf(body, { ...OPTS, boundaries: [s + 300, s + 800, s + 1300], margin: 300 });
    expect(c.tier).toBe("medium");
    expect(c.signals).toContain("round_up");
    const c2 = tierOf(body, { ...OPTS, boundaries: [s - 1000, s + 1, s + 1300], margin: 300 });
    expect(c2.tier).toBe("complex");
    expect(c2.signals).toContain("round_up");
  });

  test("one step past the margin: the lower tier", () => {
    const c = tierOf(body, { ...OPTS, boundaries: [s + 301, s + 800, s + 1300], margin: 300 });
    expect(c.tier).toBe("simple");
    expect(c.signals).not.toContain("round_up");
  });

  test("a zero margin never rounds up", () => {
    const c = tierOf(body, { ...OPTS, boundaries: [s + 1, s + 800, s + 1300], margin: 0 });
    expect(c.tier).toBe("simple");
  });
});

describe("the lookahead", () => {
  test("a body cut before its messages close (not complete) is complex, whatever the prefix says", () => {
    const whole = openai(`hi ${"x ".repeat(5000)}`);
    const c = classify(whole.subarray(0, 200), false, "openai", OPTS);
    expect(c.tier).toBe("complex");
    expect(c.signals).toContain("lookahead");
    expect(c.features.beyondLookahead).toBe(1);
  });

  test("a prefix whose messages closed is scored normally (a big tools array after it does not matter)", () => {
    const body = enc.encode(JSON.stringify({ messages: [{ role: "user", content: "hi" }], tools: [{ type: "function", function: { name: "f", description: "d".repeat(5000) } }] }));
    const c = classify(body.subarray(0, 1000), false, "openai", OPTS);
    expect(c.signals).not.toContain("lookahead");
    expect(c.tier).toBe("medium"); // the tools floor
  });

  test("the same bytes given as complete are scored, not treated as past the lookahead", () => {
    expect(classify(openai("hi"), true, "openai", OPTS).tier).toBe("simple");
  });

  test("reasoning_effort before the messages still lifts a cut body to reasoning", () => {
    const body = enc.encode(`{"reasoning_effort":"high","messages":[{"role":"user","content":"${"a ".repeat(1000)}`);
    expect(classify(body, false, "openai", OPTS).tier).toBe("reasoning");
  });
});

describe("the text for [auto.external]", () => {
  test("only when asked: the last user turn's text, parts joined, tool results left out", () => {
    expect(classify(openai("hello there"), true, "openai", OPTS).text).toBeUndefined();
    const withText = { ...OPTS, text: true };
    expect(classify(openai("hello \"there\"\n"), true, "openai", withText).text).toBe('hello "there"\n');
    const parts = enc.encode(JSON.stringify({ messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "image_url", image_url: { url: "x" } }, { type: "text", text: "b" }] }] }));
    expect(classify(parts, true, "openai", withText).text).toBe("a\nb");
    const agent = enc.encode(
      JSON.stringify({
        max_tokens: 1,
        messages: [
          { role: "user", content: "fix the bug" },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "secret tool output" }] },
        ],
      }),
    );
    expect(classify(agent, true, "anthropic", withText).text).toBe("fix the bug");
  });

  test("at most 8 KiB of UTF-8, cut at a character boundary", () => {
    const t = classify(openai("é".repeat(5000)), true, "openai", { ...OPTS, text: true }).text as string;
    expect(enc.encode(t).length).toBeLessThanOrEqual(EXTERNAL_TEXT_MAX_BYTES);
    expect(enc.encode(t).length).toBeGreaterThan(EXTERNAL_TEXT_MAX_BYTES - 2);
    expect(t).toBe("é".repeat(4096));
  });

  test("undefined when the turn is past the lookahead", () => {
    expect(classify(openai("hello").subarray(0, 30), false, "openai", { ...OPTS, text: true }).text).toBeUndefined();
  });
});

describe("determinism and robustness", () => {
  test("the same bytes always give the same result (score, tier, signals, features)", () => {
    const bodies = [openai(LONG_CODE_AND_PROOF), anthropic("hi"), openai("Design a cache", { tools: [{ type: "function", function: { name: "f" } }] })];
    for (const b of bodies) {
      const first = JSON.stringify(tierOf(b));
      for (let k = 0; k < 20; k++) expect(JSON.stringify(tierOf(b))).toBe(first);
    }
  });

  test("decide() on extracted features gives what classify() gives", () => {
    const b = openai(LONG_CODE_AND_PROOF);
    const f = extractFeatures(b, true);
    expect(decide(f, OPTS).tierIndex).toBe(tierOf(b).tierIndex);
  });

  const SEED = 0x5eed18;
  test(`random bytes and random JSON, whole and cut, never throw; the result is always well-formed (seed ${SEED})`, () => {
    const r = mulberry32(SEED);
    const g = new Gen(r);
    const codes = new Set(SIGNAL_CODES);
    const check = (bytes: Uint8Array, complete: boolean) => {
      const c = classify(bytes, complete, r() < 0.5 ? "openai" : "anthropic", { ...OPTS, text: r() < 0.3, totalBytes: r() < 0.5 ? bytes.length * 2 : undefined });
      expect(TIERS).toContain(c.tier);
      expect(TIERS[c.tierIndex]).toBe(c.tier);
      expect(Number.isInteger(c.score)).toBe(true);
      expect(c.score).toBeGreaterThanOrEqual(0);
      expect(c.score).toBeLessThanOrEqual(SCORE_ONE);
      for (const s of c.signals) expect(codes.has(s)).toBe(true);
      for (const v of Object.values(c.features)) expect(Number.isFinite(v)).toBe(true);
    };
    for (let k = 0; k < 400; k++) {
      const random = new Uint8Array(1 + Math.floor(r() * 512));
      for (let j = 0; j < random.length; j++) random[j] = Math.floor(r() * 256);
      check(random, r() < 0.5);
      // Random JSON (with random escapes), and chat-shaped JSON with random content, whole and cut anywhere.
      const doc = enc.encode(g.serialise(g.root()));
      check(doc, true);
      check(doc.subarray(0, Math.floor(r() * doc.length)), false);
      const chat = enc.encode(
        g.serialise({
          messages: [
            { role: g.pick(["user", "assistant", "system"]), content: g.str(30) },
            { role: "user", content: g.chance(0.5) ? g.str(40) : [{ type: "text", text: g.str(20) }, { type: g.pick(["image_url", "image", "tool_result"]), content: g.str(5) }] },
          ],
          ...(g.chance(0.3) ? { tools: [g.value(2)] } : {}),
          ...(g.chance(0.3) ? { max_tokens: g.int(100000) } : {}),
        }),
      );
      check(chat, true);
      check(chat.subarray(0, Math.floor(r() * chat.length)), false);
    }
  });

  test("signals are fixed codes and never carry prompt text", () => {
    const secret = "zebra-quartz-7781";
    const c = classify(openai(`${secret} prove ${secret} \`\`\`${secret}\`\`\` hi?`, { tools: [{ type: "function", function: { name: secret } }] }), true, "openai", OPTS);
    expect(JSON.stringify(c.signals)).not.toContain("zebra");
    expect(JSON.stringify(c.features)).not.toContain("zebra");
    for (const s of c.signals) expect(SIGNAL_CODES).toContain(s);
  });

  test("deep nesting and unbalanced brackets do not throw", () => {
    for (const text of ["[".repeat(10000), "]".repeat(100) + '{"messages":[{"role":"user","content":"hi"}]}', "{".repeat(50) + '"a":"b"' + "}".repeat(60), '{"messages":[{"role":"user","content":"\\', '"\\u12']) {
      const c = tierOf(enc.encode(text), OPTS, false);
      expect(TIERS).toContain(c.tier);
    }
    // A valid chat body after garbage closers is still found.
    expect(tierOf(enc.encode(']]]{"messages":[{"role":"user","content":"hi"}]}')).tier).toBe("simple");
  });
});

describe("the evaluation set (bench/auto-eval/set.jsonl)", () => {
  test("at least 200 labelled chat requests of both dialects, every fifth held out, every body parseable and scored", async () => {
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const lines = readFileSync(join(import.meta.dir, "..", "bench", "auto-eval", "set.jsonl"), "utf8").split("\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThanOrEqual(200);
    const ids = new Set<string>();
    lines.forEach((line, i) => {
      const row = JSON.parse(line) as { id: string; label: string; split: string; dialect: string; body: unknown };
      expect(TIERS).toContain(row.label as never);
      expect(row.split).toBe(i % 5 === 4 ? "holdout" : "train");
      expect(["openai", "anthropic"]).toContain(row.dialect);
      expect(ids.has(row.id)).toBe(false);
      ids.add(row.id);
      const c = classify(enc.encode(JSON.stringify(row.body)), true, row.dialect as "openai", OPTS);
      expect(c.signals).not.toContain("no_turn");
    });
    for (const t of TIERS) expect(lines.filter((l) => l.includes(`"label":"${t}"`)).length).toBeGreaterThanOrEqual(30);
  });
});
