// The `auto` classifier (SPEC §13): which tier a request needs, from the request body's first ≤ 64 KiB.
//
// Local, deterministic and explainable:
// - one byte-level pass over the body (no JSON.parse, no allocation per byte, O(1) extra memory: a handful of
//   counters, a 24-byte scratch for keys and small values, and tables built once per thread, on first use);
// - keywords are found by one Aho–Corasick automaton over lower-cased ASCII, built from the lists below,
//   with word boundaries folded into its alphabet (so "prove" does not fire inside "improve") and runs of spaces
//   collapsed (so "\n    at " matches a stack-trace line whatever its indentation);
// - features are counted per message and kept for the LAST user turn only: counters reset at each new message and
//   are copied when a user message closes, so the key order inside a message (role after content) does not matter;
// - the score and every rule are integer arithmetic on the SCORE_ONE scale, so the same bytes give the same tier on
//   every machine and every run.
//
// What is the user's turn: OpenAI `messages[i]` with role "user" (content a string, or parts whose `text` is scored);
// Anthropic `messages[i]` with role "user" (content a string, or blocks whose `text` is scored). A `tool_result`
// block is not the user's ask: its text is never scored, and a user message made only of tool results (an agent
// loop's) does not replace the last turn that had the user's own words. System prompts are never scored.
// JSON escapes: \n is a newline, \t \r \b \f are spaces, \" \\ \/ their character; \uXXXX is one non-ASCII character
// (so an ASCII letter written as \u0070 is not a letter to the keywords: no SDK writes ASCII letters that way).

import { SCORE_ONE, TIERS, type Tier, type TierIndex, type TierInfo } from "./auto-config.ts";

export type ClassifyDialect = "openai" | "anthropic";

/** Everything the decision uses, as plain numbers (also what `[auto.external]` receives as `features`). */
export interface Features {
  /** Bytes of the body seen (the prefix given). */
  bytes: number;
  /** The request's size for the context estimate: the declared total when known, else `bytes`. */
  totalBytes: number;
  /** Raw bytes of the last user turn's text (JSON-escaped form; ÷ 4 ≈ tokens). */
  turnBytes: number;
  /** How many user turns with text the body held. */
  userTurns: number;
  fences: number;
  code: number;
  trace: number;
  reasoning: number;
  proof: number;
  math: number;
  tech: number;
  steps: number;
  simple: number;
  greeting: number;
  questions: number;
  task: number;
  /** Request shape, 0 or 1 each (reasoningRequested: 1 reasoning_effort, 2 Anthropic thinking, 3 both). */
  tools: number;
  jsonSchema: number;
  reasoningRequested: number;
  images: number;
  /** `max_tokens` / `max_completion_tokens` (0 when absent). */
  maxTokens: number;
  /** totalBytes ÷ 4 + maxTokens. */
  contextTokens: number;
  /** 1 when the last user turn lies beyond the bytes given (the body is not complete and `messages` did not close). */
  beyondLookahead: number;
  /** 1 when the body held no user turn with text (not a chat body, or not JSON). */
  noTurn: number;
}

export interface Classification {
  readonly tier: Tier;
  readonly tierIndex: TierIndex;
  /** The text score on the SCORE_ONE scale (the boundaries' scale), 0 … SCORE_ONE. */
  readonly score: number;
  /** Short codes saying why (never prompt text). */
  readonly signals: readonly string[];
  readonly features: Features;
  /** Only with `opts.text`: the last user turn's text, at most 8 KiB of UTF-8; undefined when the turn is not whole. */
  readonly text?: string | undefined;
}

export interface ClassifyOptions {
  /** `[auto] boundaries` on the SCORE_ONE scale (AutoConfig.boundariesFixed). */
  readonly boundaries: readonly [number, number, number];
  /** `[auto] round_up_margin` on the SCORE_ONE scale (AutoConfig.marginFixed). */
  readonly margin: number;
  /** Per tier index, the capability gates' data (autoTierInfo). */
  readonly tiers: readonly [TierInfo, TierInfo, TierInfo, TierInfo];
  /** The body's declared length when `complete` is false (content-length), for the context estimate. */
  readonly totalBytes?: number | undefined;
  /** Return the last user turn's text (for `[auto.external]`). */
  readonly text?: boolean | undefined;
  /** Scoring weights; DEFAULT_WEIGHTS unless given (the evaluation's tuner passes its own). */
  readonly weights?: Weights | undefined;
}

/** At most this much of the last user turn goes to the external classifier (SPEC §13). */
export const EXTERNAL_TEXT_MAX_BYTES = 8192;

// ---------------------------------------------------------------------------------------------------------------
// Keywords. Written in lower case; matched case-insensitively on ASCII. A keyword that starts (ends) with a letter or
// digit must start (end) at a word boundary; a trailing "~" makes it a prefix ("analy~" matches analyze, analysis).
// DIGIT stands for any one digit. Spaces match any run of spaces or tabs.

const DIGIT = "\u0001";

/** Feature categories (indexes into the per-message counters). */
const CAT_FENCE = 0;
const CAT_CODE = 1;
const CAT_TRACE = 2;
const CAT_REASON = 3;
const CAT_PROOF = 4;
const CAT_MATH = 5;
const CAT_TECH = 6;
const CAT_STEP = 7;
const CAT_SIMPLE = 8;
const CAT_GREET = 9;
const CAT_QUESTION = 10;
const CAT_TASK = 11;
const N_CATS = 12;

const KEYWORDS: ReadonlyArray<readonly [number, readonly string[]]> = [
  [CAT_FENCE, ["```"]],
  [
    CAT_CODE,
    [
      "def ", "class ", "function", "func ", "fn ", "import ", "return ", "const ", "let ", "var ", "=>", "();", "){", ") {", "#include",
      "public ", "private ", "static ", "void ", "self.", "this.", "console.", "print(", "println", "printf", "async ", "await ",
      "struct ", "impl ", "select ", "where ", "join ", "lambda", "regex", "regular expression", "sql", "query", "script", "bash",
      "python", "javascript", "typescript", "java", "golang", "rust", "c++", "node", "react", "css", "html", "dockerfile", "docker",
      "kubernetes", "json", "yaml", "api", "endpoint", "unit test~", "pytest", "jest", "compile~", "refactor~", "implement~",
      "code", "program", "variable", "loop", "array", "string", "git ", "npm ", "pip ", "cli", "parser", "component",
    ],
  ],
  [
    CAT_TRACE,
    [
      "traceback", "exception", "error:", "error[", "panic:", "\n at ", "segmentation", "sigsegv", "stack trace", "goroutine",
      "nil pointer", "null pointer", "cannot read propert~", "is not a function", "undefined is not", "exit code", "oom", "core dumped",
      "line " + DIGIT, ".java:", ".py\"", ".go:", ".rs:", ".js:", ".ts:", "-->", "crash~", "memory leak", "leak~", "intermittent~",
      "race condition", "deadlock", "flaky", "under load", "in production", "regression", "p99", "p95", "latency",
    ],
  ],
  [
    CAT_REASON,
    [
      "step by step", "think step~", "think through", "think carefully", "reason it through", "reason about", "why does it work",
      "why it works", "puzzle", "riddle", "rational", "strategy", "expected number", "optimal", "optimality", "analy~", "argue",
      "generaliz~", "generalis~", "explain precisely", "explain each step", "edge cases", "justify", "bound the error",
      "where is the missing",
    ],
  ],
  [
    CAT_PROOF,
    [
      "prove", "proof", "proves", "derive", "derivation", "rigorous~", "formally", "theorem", "lemma", "induction", "contradiction",
      "invariant", "correctness", "counterexample", "if and only if", "iff", "exchange argument", "undecidab~", "pigeonhole",
      "show that", "pumping lemma", "decidab~", "np-hard", "np-complete", "p = np", "infinitely many", "closed form", "recurrence",
    ],
  ],
  [
    CAT_MATH,
    [
      "integral", "integrate", "derivative", "differentiab~", "equation", "matrix", "matrices", "eigen~", "probability", "polynomial",
      "modulo", "prime", "primes", "lim", "sqrt", "\\frac", "\\sum", "\\int", "\\lim", "$$", "^2", "^3", "^n", "x^", "log n",
      "o(n", "ω(", "θ(", "divisible", "irrational", "integers", "integer solution~", "factorial", "permutation~", "combinator~",
      "binomial", "variance", "converge~", "diverge~", "reciprocal~", "approximation", "continuous", "uncountable", "countable",
      "bipartite", "graph", "vertices", "edges", "recurrence",
    ],
  ],
  [
    CAT_TECH,
    [
      "architecture", "distributed", "scalab~", "scale", "scaling", "throughput", "consisten~", "partition~", "replica~", "shard~",
      "multi-tenant", "tenant~", "microservice~", "monolith", "event sourcing", "crdt", "consensus", "raft", "paxos", "failover",
      "fault toleran~", "idempoten~", "concurren~", "thread-safe", "thread safe", "race", "lock", "cache", "caching", "queue",
      "kafka", "redis", "postgres", "mysql", "database", "schema", "index", "migration", "migrate", "zero-downtime", "downtime",
      "cutover", "rollback", "backfill", "trade-off~", "tradeoff~", "trade offs", "pros and cons", "compare", "design", "designs",
      "system design", "failure mode~", "edge case~", "risk~", "mitigation~", "security", "encryption", "ci", "operator", "reconcile",
      "dependency injection", "backoff", "retries", "rate limiter", "worker", "workers", "deploy~", "observability", "protocol",
      "sync", "offline", "conflict resolution", "real-time", "p99", "sla", "residency", "multi-region", "regions", "global~",
    ],
  ],
  [
    CAT_STEP,
    [
      "first", "then", "finally", "next,", "after that", "step " + DIGIT, "\n" + DIGIT + ".", "\n" + DIGIT + ")", "\n- ", "\n* ",
      "also", "additionally", "and then", "include", "including", "cover", "discuss", "explain how", "walk me through",
    ],
  ],
  [
    CAT_SIMPLE,
    [
      "what is", "what's", "whats", "who is", "who was", "who wrote", "when did", "when was", "where is", "define", "definition",
      "translate", "how do you say", "meaning of", "what does", "capital of", "how many", "convert", "synonym", "fun fact", "joke",
      "recommend", "is it", "spell", "what year", "shortcut", "rhyme", "name ideas", "one sentence", "in one sentence", "quick",
      "grammar", "fix the grammar", "favorite", "favourite", "suggest",
    ],
  ],
  [CAT_GREET, ["hi", "hello", "hey", "thanks", "thank you", "thx", "good morning", "good evening", "good night", "how are you", "bye", "lol", "great, ", "perfect", "ok", "okay"]],
  [CAT_QUESTION, ["?"]],
  [
    CAT_TASK,
    [
      "write", "draft", "rewrite", "compose", "create", "generate", "explain", "summarize", "summarise", "summary", "tl;dr", "list",
      "outline", "plan", "review", "describe", "give me", "make", "proofread", "format", "extract", "classify", "transcribe", "build",
      "help me", "how do i", "how can i", "how to", "fix", "improve", "reply", "respond", "show me", "turn it into", "go through",
      "find", "add", "convert this", "translate this", "translate the", "translate these", "compare",
    ],
  ],
];

// ---------------------------------------------------------------------------------------------------------------
// The automaton's alphabet: 64 classes. Letters fold case; digits share one class; space, tab and CR are one
// class whose runs collapse; \n is its own class (list items and stack-trace lines start after it); bytes ≥ 0x80
// and unlisted punctuation share OTHER. Letters, digits and "_" are word characters. B (the word boundary) is
// fed between a word character and a non-word one, at build time only: the run-time table folds it in.

const C_SPACE = 0;
const C_NL = 1;
const C_DIGIT = 2;
const C_OTHER = 3;
const C_A = 4; // a … z = 4 … 29
const C_UNDERSCORE = 30;
const PUNCT = "`$\\^=()[]{};:<>/*#.,?!'\"-+|&@%~";
const C_B = 63;
const NC = 64;

/** byte → class. */
const CLS = new Uint8Array(256).fill(C_OTHER);
/** class → 0 non-word, 1 word, 2 space. */
const WORDNESS = new Uint8Array(NC);
(() => {
  CLS[0x20] = CLS[0x09] = CLS[0x0d] = CLS[0x0c] = C_SPACE;
  CLS[0x0a] = C_NL;
  for (let c = 0x30; c <= 0x39; c++) CLS[c] = C_DIGIT;
  for (let c = 0; c < 26; c++) CLS[0x61 + c] = CLS[0x41 + c] = C_A + c;
  CLS[0x5f] = C_UNDERSCORE;
  for (let k = 0; k < PUNCT.length; k++) CLS[PUNCT.charCodeAt(k)] = 31 + k;
  for (let c = C_DIGIT; c <= C_UNDERSCORE; c++) WORDNESS[c] = 1;
  WORDNESS[C_OTHER] = 0;
  WORDNESS[C_SPACE] = 2;
})();

/** A keyword as the symbol sequence the automaton sees (boundaries inserted, space runs collapsed). */
function symbols(spec: string): number[] {
  const prefix = spec.endsWith("~") && spec.length > 1;
  const text = prefix ? spec.slice(0, -1) : spec;
  const out: number[] = [];
  let prevW = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    const cls = ch === DIGIT ? C_DIGIT : code < 0x80 ? (CLS[code] as number) : C_OTHER;
    const w = WORDNESS[cls] as number;
    if (w === 2 && prevW === 2) continue;
    if ((w === 1) !== (prevW === 1)) out.push(C_B);
    out.push(cls);
    prevW = w;
  }
  if (!prefix && prevW === 1) out.push(C_B);
  return out;
}

/**
 * The run-time table. An entry is indexed by (combined state << 6 | class); a combined state is automaton state × 3
 * + the wordness of the last class (so boundaries and space runs need no branch); the entry holds the next combined
 * state in its low 16 bits and, in its high bits, an output id (0: the transition completes no keyword). Output id k
 * lists the categories of the keywords completed, OUT_LIST[OUT_START[k] … OUT_START[k + 1]). END_OUT[combined] is the
 * output id of the closing boundary fed at the end of a string.
 */
interface Automaton {
  readonly T: Uint16Array;
  readonly OUT_ID: Uint16Array;
  readonly OUT_START: Uint16Array;
  readonly OUT_LIST: Uint8Array;
  readonly END_OUT: Uint16Array;
  readonly START: number;
}

/**
 * Built on first use (tens of ms, once per thread), not at import: a gateway without `[auto]` never pays it. The
 * pipeline calls warmClassifier() at boot when `[auto]` is configured, so no request waits for it.
 */
let automaton: Automaton | undefined;

export function warmClassifier(): void {
  automaton ??= buildAutomaton();
}

function buildAutomaton(): Automaton {
  // Trie; each node's output is the list of categories of the keywords ending there.
  const next: number[][] = [new Array<number>(NC).fill(-1)];
  const out: number[][] = [[]];
  const add = (seq: number[], cat: number): void => {
    let s = 0;
    for (const c of seq) {
      let t = (next[s] as number[])[c] as number;
      if (t < 0) {
        t = next.length;
        next.push(new Array<number>(NC).fill(-1));
        out.push([]);
        (next[s] as number[])[c] = t;
      }
      s = t;
    }
    (out[s] as number[]).push(cat);
  };
  for (const [cat, words] of KEYWORDS) for (const w of words) add(symbols(w), cat);
  // Aho–Corasick: failure links turned into a full transition function, outputs merged along them (BFS order).
  const S = next.length;
  const delta = new Int32Array(S * NC);
  const fail = new Int32Array(S);
  const queue: number[] = [];
  for (let c = 0; c < NC; c++) {
    const t = (next[0] as number[])[c] as number;
    if (t >= 0) {
      delta[c] = t;
      fail[t] = 0;
      queue.push(t);
    } else delta[c] = 0;
  }
  for (let q = 0; q < queue.length; q++) {
    const u = queue[q] as number;
    if (u !== 0) out[u] = [...(out[u] as number[]), ...(out[fail[u] as number] as number[])];
    for (let c = 0; c < NC; c++) {
      const t = (next[u] as number[])[c] as number;
      if (t >= 0) {
        fail[t] = u === 0 ? 0 : (delta[(fail[u] as number) * NC + c] as number);
        delta[u * NC + c] = t;
        queue.push(t);
      } else delta[u * NC + c] = u === 0 ? 0 : (delta[(fail[u] as number) * NC + c] as number);
    }
  }
  // Output lists, interned.
  const ids = new Map<string, number>([["", 0]]);
  const lists: number[][] = [[]];
  const idOf = (cats: number[]): number => {
    const key = cats.join(",");
    let id = ids.get(key);
    if (id === undefined) {
      id = lists.length;
      lists.push(cats);
      ids.set(key, id);
    }
    return id;
  };
  // Combined states and the folded table. A transition that completes keywords goes to an "output copy" of its
  // destination (same row, OUT_ID set), so the table holds only next states (16 bits) and the hot loop reads one
  // small OUT_ID entry to learn whether anything matched.
  const base = S * 3;
  const raw = new Int32Array(base * NC);
  const rawOut = new Int32Array(base * NC);
  const endOut: number[] = new Array<number>(base).fill(0);
  for (let s = 0; s < S; s++) {
    for (let w = 0; w < 3; w++) {
      const from = s * 3 + w;
      for (let c = 0; c < NC; c++) {
        if (c === C_B) continue;
        const wc = WORDNESS[c] as number;
        if (wc === 2 && w === 2) {
          raw[from * NC + c] = from; // a run of spaces is one space
          continue;
        }
        let s1 = s;
        let o: number[] = [];
        if ((wc === 1) !== (w === 1)) {
          s1 = delta[s * NC + C_B] as number;
          o = out[s1] as number[];
        }
        const s2 = delta[s1 * NC + c] as number;
        raw[from * NC + c] = s2 * 3 + wc;
        const o2 = out[s2] as number[];
        // Most transitions complete nothing: skip the interning for them (boot time).
        if (o.length !== 0 || o2.length !== 0) rawOut[from * NC + c] = idOf(o.length === 0 ? o2 : [...o, ...o2]);
      }
      const ob = w === 1 ? (out[delta[s * NC + C_B] as number] as number[]) : [];
      endOut[from] = ob.length === 0 ? 0 : idOf(ob);
    }
  }
  const copies = new Map<number, number>(); // (dest × 65536 + output id) → copy's combined id
  const copyOf: number[] = []; // copy index → the base state it copies
  const copyOut: number[] = [];
  for (let k = 0; k < base * NC; k++) {
    const id = rawOut[k] as number;
    if (id === 0) continue;
    const key = (raw[k] as number) * 65536 + id;
    let cid = copies.get(key);
    if (cid === undefined) {
      cid = base + copyOf.length;
      copyOf.push(raw[k] as number);
      copyOut.push(id);
      copies.set(key, cid);
    }
    raw[k] = cid;
  }
  const combined = base + copyOf.length;
  if (combined > 0xffff) throw new Error("classify: keyword automaton too large");
  const T = new Uint16Array(combined * NC);
  for (let k = 0; k < base * NC; k++) T[k] = raw[k] as number;
  const OUT_ID = new Uint16Array(combined);
  const END_OUT = new Uint16Array(combined);
  for (let k = 0; k < base; k++) END_OUT[k] = endOut[k] as number;
  copyOf.forEach((d, j) => {
    const cid = base + j;
    T.copyWithin(cid * NC, d * NC, d * NC + NC);
    OUT_ID[cid] = copyOut[j] as number;
    END_OUT[cid] = END_OUT[d] as number;
  });
  if (lists.length > 0x7fff) throw new Error("classify: too many keyword outputs");
  const OUT_START = new Uint16Array(lists.length + 1);
  const flat: number[] = [];
  lists.forEach((l, k) => {
    OUT_START[k] = flat.length;
    flat.push(...l);
  });
  OUT_START[lists.length] = flat.length;
  // A string starts as if after a newline: "1. …" on its first line is a list item.
  const START = T[(0 << 6) | C_NL] as number;
  return { T, OUT_ID, OUT_START, OUT_LIST: Uint8Array.from(flat), END_OUT, START };
}

// ---------------------------------------------------------------------------------------------------------------
// Keys and small values the scan recognises.

const K_OTHER = 0;
const K_MESSAGES = 1;
const K_ROLE = 2;
const K_CONTENT = 3;
const K_TEXT = 4;
const K_TYPE = 5;
const K_TOOLS = 6;
const K_FUNCTIONS = 7;
const K_TOOL_CHOICE = 8;
const K_RESPONSE_FORMAT = 9;
const K_OUTPUT_FORMAT = 10;
const K_REASONING_EFFORT = 11;
const K_THINKING = 12;
const K_MAX_TOKENS = 13;

const KEY_WORDS: ReadonlyArray<readonly [string, number]> = [
  ["messages", K_MESSAGES],
  ["role", K_ROLE],
  ["content", K_CONTENT],
  ["text", K_TEXT],
  ["type", K_TYPE],
  ["tools", K_TOOLS],
  ["functions", K_FUNCTIONS],
  ["tool_choice", K_TOOL_CHOICE],
  ["response_format", K_RESPONSE_FORMAT],
  ["output_format", K_OUTPUT_FORMAT],
  ["reasoning_effort", K_REASONING_EFFORT],
  ["thinking", K_THINKING],
  ["max_tokens", K_MAX_TOKENS],
  ["max_completion_tokens", K_MAX_TOKENS],
];

const V_OTHER = 0;
const V_USER = 1;
const V_IMAGE = 2;
const V_REQUIRED = 3;
const V_JSON_SCHEMA = 4;
const V_DISABLED = 5;
const V_NONE = 6;

const VALUE_WORDS: ReadonlyArray<readonly [string, number]> = [
  ["user", V_USER],
  ["image", V_IMAGE],
  ["image_url", V_IMAGE],
  ["input_image", V_IMAGE],
  ["required", V_REQUIRED],
  ["any", V_REQUIRED],
  ["tool", V_REQUIRED],
  ["function", V_REQUIRED],
  ["json_schema", V_JSON_SCHEMA],
  ["disabled", V_DISABLED],
  ["none", V_NONE],
];

const CAP_MAX = 24;
/** Scratch for a key or a small value (module-level: classify is synchronous and never re-entered). */
const cap = new Uint8Array(CAP_MAX);
const enc = new TextEncoder();
const KEY_BYTES = KEY_WORDS.map(([w, id]) => [enc.encode(w), id] as const);
const VALUE_BYTES = VALUE_WORDS.map(([w, id]) => [enc.encode(w), id] as const);

function lookup(len: number, table: ReadonlyArray<readonly [Uint8Array, number]>): number {
  outer: for (const [w, id] of table) {
    if (w.length !== len) continue;
    for (let k = 0; k < len; k++) if (w[k] !== cap[k]) continue outer;
    return id;
  }
  return 0;
}

/** What a captured value string means, by where it stood. */
const CAP_NONE = 0;
const CAP_ROLE = 1;
const CAP_PART_TYPE = 2;
const CAP_EFFORT = 3;
const CAP_TOOL_CHOICE = 4;
const CAP_FORMAT_TYPE = 5;
const CAP_THINKING_TYPE = 6;

/** Per-message counters and the last user turn's (module-level scratch, reset per call). */
const msg = new Int32Array(N_CATS);
const last = new Int32Array(N_CATS);

/** The features of one body: the single pass. */
export function extractFeatures(body: Uint8Array, complete: boolean, totalBytes?: number, want?: { start: number; end: number; whole: boolean }): Features {
  const { T, OUT_ID, OUT_START, OUT_LIST, END_OUT, START } = (automaton ??= buildAutomaton());
  const n = body.length;
  msg.fill(0);
  last.fill(0);
  let depth = 0;
  let arrBits = 0; // bit d: the container at depth d is an array (d < 31)
  let expectKey = false;
  let lastKey = K_OTHER;
  let rootKey = K_OTHER;
  let msgKey = K_OTHER;
  let partKey = K_OTHER;
  let messagesClosed = false;
  let msgRole = 0; // 0 unknown, 1 user, 2 other
  let msgText = false;
  let msgBytes = 0;
  let msgStart = -1;
  let msgEnd = -1;
  let lastBytes = 0;
  let lastStart = -1;
  let lastEnd = -1;
  let userTurns = 0;
  let tools = 0;
  let toolsForced = 0;
  let jsonSchema = 0;
  let effort = 0;
  let thinkingSeen = false;
  let thinkingOff = false;
  let images = 0;
  let maxTokens = 0;

  let i = 0;
  while (i < n) {
    const b = body[i] as number;
    i++;
    if (b === 0x22) {
      // A string: a key, a value to capture, text to score, or one to skip.
      const isObj = depth < 31 ? ((arrBits >>> depth) & 1) === 0 : true;
      if (isObj && expectKey) {
        let len = 0;
        let bad = false;
        while (i < n) {
          let c = body[i] as number;
          i++;
          if (c === 0x22) break;
          if (c === 0x5c) {
            c = i < n ? (body[i] as number) : 0;
            i++;
            if (c === 0x75) bad = true; // \u escapes in a key: not one of ours
          }
          if (len < CAP_MAX) cap[len] = c;
          len++;
        }
        const id = bad || len > CAP_MAX ? K_OTHER : lookup(len, KEY_BYTES);
        lastKey = id;
        if (depth === 1) {
          rootKey = id;
          if (id === K_MAX_TOKENS) maxTokens = 0;
        } else if (depth === 3) msgKey = id;
        else if (depth === 5) partKey = id;
        continue;
      }
      const inMsgs = rootKey === K_MESSAGES && depth >= 3;
      const scored =
        inMsgs &&
        msgRole !== 2 &&
        isObj &&
        ((depth === 3 && lastKey === K_CONTENT) || (depth === 5 && lastKey === K_TEXT && msgKey === K_CONTENT && ((arrBits >>> 4) & 1) === 1));
      if (scored) {
        if (depth === 3) msgStart = i - 1;
        const from = i;
        let comb = START;
        while (i < n) {
          let c = body[i] as number;
          i++;
          if (c === 0x22) break;
          let cls: number;
          if (c === 0x5c) {
            c = i < n ? (body[i] as number) : 0x20;
            i++;
            if (c === 0x6e) cls = C_NL;
            else if (c === 0x75) {
              i += 4; // \uXXXX: a non-ASCII character (or an escaped control): OTHER
              cls = C_OTHER;
            } else if (c === 0x74 || c === 0x72 || c === 0x62 || c === 0x66) cls = C_SPACE;
            else cls = CLS[c] as number;
          } else cls = CLS[c] as number;
          comb = T[(comb << 6) | cls] as number;
          const id = OUT_ID[comb] as number;
          if (id !== 0) {
            for (let j = OUT_START[id] as number, e = OUT_START[id + 1] as number; j < e; j++) {
              const k = OUT_LIST[j] as number;
              msg[k] = (msg[k] as number) + 1;
            }
          }
        }
        const id = END_OUT[comb] as number;
        for (let j = OUT_START[id] as number, e = OUT_START[id + 1] as number; j < e; j++) {
          const k = OUT_LIST[j] as number;
          msg[k] = (msg[k] as number) + 1;
        }
        msgBytes += Math.min(i, n) - from;
        msgText = true;
        if (depth === 3) msgEnd = Math.min(i, n);
        continue;
      }
      let ctx = CAP_NONE;
      if (isObj) {
        if (inMsgs) ctx = depth === 3 && lastKey === K_ROLE ? CAP_ROLE : depth >= 4 && lastKey === K_TYPE ? CAP_PART_TYPE : CAP_NONE;
        else if (depth === 1) ctx = lastKey === K_REASONING_EFFORT ? CAP_EFFORT : lastKey === K_TOOL_CHOICE ? CAP_TOOL_CHOICE : CAP_NONE;
        else if (depth === 2 && lastKey === K_TYPE) {
          ctx = rootKey === K_TOOL_CHOICE ? CAP_TOOL_CHOICE : rootKey === K_RESPONSE_FORMAT || rootKey === K_OUTPUT_FORMAT ? CAP_FORMAT_TYPE : rootKey === K_THINKING ? CAP_THINKING_TYPE : CAP_NONE;
        }
      }
      if (ctx === CAP_NONE) {
        while (i < n) {
          const c = body[i] as number;
          i++;
          if (c === 0x5c) i++;
          else if (c === 0x22) break;
        }
        if (inMsgs && depth === 3 && lastKey === K_CONTENT) {
          // A content string skipped because the role is known not to be user: still the message's content range.
          msgStart = -1;
        }
        continue;
      }
      let len = 0;
      while (i < n) {
        let c = body[i] as number;
        i++;
        if (c === 0x22) break;
        if (c === 0x5c) {
          c = i < n ? (body[i] as number) : 0;
          i++;
        }
        if (len < CAP_MAX) cap[len] = c;
        len++;
      }
      const v = len > CAP_MAX ? V_OTHER : lookup(len, VALUE_BYTES);
      switch (ctx) {
        case CAP_ROLE:
          msgRole = v === V_USER ? 1 : 2;
          break;
        case CAP_PART_TYPE:
          if (v === V_IMAGE) images = 1;
          break;
        case CAP_EFFORT:
          effort = v === V_NONE ? 0 : 1;
          break;
        case CAP_TOOL_CHOICE:
          if (v === V_REQUIRED) toolsForced = 1;
          break;
        case CAP_FORMAT_TYPE:
          if (v === V_JSON_SCHEMA) jsonSchema = 1;
          break;
        case CAP_THINKING_TYPE:
          if (v === V_DISABLED) thinkingOff = true;
          break;
      }
      continue;
    }
    switch (b) {
      case 0x7b: // {
        depth++;
        if (depth < 31) arrBits &= ~(1 << depth);
        expectKey = true;
        if (depth === 3 && ((arrBits >>> 2) & 1) === 1) {
          if (rootKey === K_MESSAGES) {
            msg.fill(0);
            msgRole = 0;
            msgText = false;
            msgBytes = 0;
            msgStart = -1;
            msgEnd = -1;
            msgKey = K_OTHER;
          } else if (rootKey === K_TOOLS || rootKey === K_FUNCTIONS) tools = 1;
        } else if (depth === 2 && rootKey === K_THINKING) thinkingSeen = true;
        else if (depth === 5) partKey = K_OTHER;
        break;
      case 0x7d: // }
        if (depth === 3 && rootKey === K_MESSAGES && ((arrBits >>> 2) & 1) === 1) {
          if (msgRole === 1 && msgText) {
            last.set(msg);
            lastBytes = msgBytes;
            lastStart = msgStart;
            lastEnd = msgEnd;
            userTurns++;
          }
        }
        if (depth > 0) depth--;
        expectKey = false;
        break;
      case 0x5b: // [
        depth++;
        if (depth < 31) arrBits |= 1 << depth;
        expectKey = false;
        if (depth === 4 && rootKey === K_MESSAGES && msgKey === K_CONTENT) msgStart = i - 1;
        break;
      case 0x5d: // ]
        if (depth === 2 && rootKey === K_MESSAGES) messagesClosed = true;
        else if (depth === 4 && rootKey === K_MESSAGES && msgKey === K_CONTENT && msgStart >= 0) msgEnd = i;
        if (depth > 0) depth--;
        expectKey = false;
        break;
      case 0x2c: // ,
        expectKey = depth < 31 ? ((arrBits >>> depth) & 1) === 0 : true;
        break;
      case 0x3a: // :
        expectKey = false;
        break;
      default:
        // A digit of max_tokens / max_completion_tokens (capped: a huge number is as good as a billion).
        if (b >= 0x30 && b <= 0x39 && depth === 1 && lastKey === K_MAX_TOKENS && !expectKey && maxTokens < 1_000_000_000) maxTokens = maxTokens * 10 + (b - 0x30);
    }
  }

  const total = !complete && totalBytes !== undefined && totalBytes > n ? totalBytes : n;
  const beyond = !complete && !messagesClosed ? 1 : 0;
  if (want !== undefined) {
    want.start = lastStart;
    want.end = lastEnd;
    want.whole = beyond === 0 && lastStart >= 0 && lastEnd > lastStart;
  }
  return {
    bytes: n,
    totalBytes: total,
    turnBytes: lastBytes,
    userTurns,
    fences: last[CAT_FENCE] as number,
    code: last[CAT_CODE] as number,
    trace: last[CAT_TRACE] as number,
    reasoning: last[CAT_REASON] as number,
    proof: last[CAT_PROOF] as number,
    math: last[CAT_MATH] as number,
    tech: last[CAT_TECH] as number,
    steps: last[CAT_STEP] as number,
    simple: last[CAT_SIMPLE] as number,
    greeting: last[CAT_GREET] as number,
    questions: last[CAT_QUESTION] as number,
    task: last[CAT_TASK] as number,
    tools: tools | toolsForced,
    jsonSchema,
    reasoningRequested: effort | (thinkingSeen && !thinkingOff ? 2 : 0),
    images,
    maxTokens,
    contextTokens: Math.floor(total / 4) + maxTokens,
    beyondLookahead: beyond,
    noTurn: userTurns === 0 && beyond === 0 ? 1 : 0,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The decision.

/**
 * Integer weights of the text score. Each feature is first mapped to a level in [-SCORE_ONE, SCORE_ONE]; the score is
 * (base × SCORE_ONE + Σ weight × level) ÷ 100, clamped to [0, SCORE_ONE]. `reasonOverride`: a turn whose
 * 2 × proof markers + reasoning markers + maths markers reach it, with a score past the first boundary, goes to
 * `reasoning` (LiteLLM's "two reasoning markers" rule, its threshold tuned; 0 turns it off).
 */
export interface Weights {
  readonly base: number;
  readonly size: number;
  readonly code: number;
  readonly trace: number;
  readonly reasoning: number;
  readonly proof: number;
  readonly math: number;
  readonly tech: number;
  readonly steps: number;
  readonly questions: number;
  readonly task: number;
  readonly simple: number;
  readonly greeting: number;
  readonly reasonOverride: number;
}

/**
 * The weights in use: LiteLLM's starting weights (research §3.7, spread over our finer features) tuned by
 * `bun bench/auto-eval.ts --tune` on the training split of bench/auto-eval/set.jsonl only (coordinate search over
 * weights and boundaries, objective: exact accuracy − 2 × under-routing, cost ≤ 50 % of always-top). The held-out
 * fifth is reported, never searched. Trace markers ended at 0: traces already carry code and technical terms.
 */
export const DEFAULT_WEIGHTS: Weights = {
  base: 20,
  size: 15,
  code: 10,
  trace: 0,
  reasoning: 40,
  proof: 60,
  math: 50,
  tech: 25,
  steps: 3,
  questions: 2,
  task: 0,
  simple: 2,
  greeting: 25,
  reasonOverride: 1,
};

const S = SCORE_ONE;
const ONE_THIRD = Math.trunc(S / 3);
const TWO_THIRDS = Math.trunc((2 * S) / 3);

/** Level of a count: 0 → 0, 1 → half, ≥ 2 → full. */
function level2(n: number): number {
  return n === 0 ? 0 : n === 1 ? S >> 1 : S;
}

/** The text score of a turn's features, on the SCORE_ONE scale, clamped to [0, SCORE_ONE]. Integer only. */
export function textScore(f: Features, w: Weights = DEFAULT_WEIGHTS): number {
  const tokens = f.turnBytes >> 2;
  const size = tokens < 8 ? -S : tokens < 24 ? -(S >> 1) : tokens < 120 ? 0 : tokens < 300 ? S >> 1 : S;
  const code = f.fences > 0 || f.code >= 3 ? S : f.code === 2 ? TWO_THIRDS : f.code === 1 ? ONE_THIRD : 0;
  const tech = f.tech >= 4 ? S : f.tech * (S >> 2);
  const steps = f.steps >= 3 ? S : f.steps === 2 ? S >> 1 : 0;
  const questions = f.questions >= 3 ? S : f.questions === 2 ? S >> 1 : 0;
  const sum =
    w.base * S +
    w.size * size +
    w.code * code +
    w.trace * level2(f.trace) +
    w.reasoning * level2(f.reasoning) +
    w.proof * level2(f.proof) +
    w.math * level2(f.math) +
    w.tech * tech +
    w.steps * steps +
    w.questions * questions +
    w.task * level2(f.task) -
    (f.simple > 0 ? w.simple * S : 0) -
    (f.greeting > 0 ? w.greeting * S : 0);
  const score = Math.trunc(sum / 100);
  return score < 0 ? 0 : score > S ? S : score;
}

export const SIG = {
  short: "short",
  long: "long",
  code: "code",
  trace: "trace",
  reasoning: "reasoning",
  proof: "proof",
  task: "task",
  math: "math",
  tech: "tech",
  steps: "steps",
  questions: "questions",
  simple: "simple",
  greeting: "greeting",
  tools: "tools",
  jsonSchema: "json_schema",
  reasoningRequested: "reasoning_effort",
  thinking: "thinking",
  reasoningMarkers: "reasoning_markers",
  img: "img",
  imgNoVision: "img_no_vision",
  ctx: ["ctx>simple", "ctx>medium", "ctx>complex", "ctx>reasoning"],
  ctxAll: "ctx>all",
  roundUp: "round_up",
  lookahead: "lookahead",
  noTurn: "no_turn",
  // Where the decision came from, when not the built-in classifier alone (set by src/routing/auto.ts).
  override: "override",
  external: "external",
  externalTimeout: "external_timeout",
  externalError: "external_error",
} as const;

/** Every signal code the classifier can emit (fixed strings: a signal never carries request content). */
export const SIGNAL_CODES: readonly string[] = Object.freeze(Object.values(SIG).flat());

/** The tier for a set of features: the text score against the boundaries, then the floors and capability gates. */
export function decide(f: Features, opts: ClassifyOptions): { tierIndex: TierIndex; score: number; signals: string[] } {
  const w = opts.weights ?? DEFAULT_WEIGHTS;
  const signals: string[] = [];
  const score = textScore(f, w);
  let t = 0;
  if (f.beyondLookahead === 1) {
    // The last user turn is past the bytes read: refuse to guess from a prefix.
    t = 2;
    signals.push(SIG.lookahead);
  } else if (f.noTurn === 1) {
    t = 1;
    signals.push(SIG.noTurn);
  } else {
    const [b0, b1, b2] = opts.boundaries;
    const m = opts.margin;
    const plain = score >= b2 ? 3 : score >= b1 ? 2 : score >= b0 ? 1 : 0;
    // Within the margin below a boundary, round up ("round up when torn").
    t = score >= b2 - m ? 3 : score >= b1 - m ? 2 : score >= b0 - m ? 1 : 0;
    if (t !== plain) signals.push(SIG.roundUp);
    const tokens = f.turnBytes >> 2;
    if (tokens < 8) signals.push(SIG.short);
    else if (tokens >= 300) signals.push(SIG.long);
    if (f.fences > 0 || f.code > 0) signals.push(SIG.code);
    if (f.trace > 0) signals.push(SIG.trace);
    if (f.reasoning > 0) signals.push(SIG.reasoning);
    if (f.math > 0) signals.push(SIG.math);
    if (f.tech > 0) signals.push(SIG.tech);
    if (f.steps >= 2) signals.push(SIG.steps);
    if (f.questions >= 2) signals.push(SIG.questions);
    if (f.simple > 0) signals.push(SIG.simple);
    if (f.greeting > 0) signals.push(SIG.greeting);
    if (f.proof > 0) signals.push(SIG.proof);
    if (f.task > 0) signals.push(SIG.task);
    if (t < 3 && w.reasonOverride > 0 && f.proof * 2 + f.reasoning + f.math >= w.reasonOverride && score >= b0 - m) {
      t = 3;
      signals.push(SIG.reasoningMarkers);
    }
  }
  // Floors from the request's shape.
  if ((f.tools === 1 || f.jsonSchema === 1) && t < 1) t = 1;
  if (f.tools === 1) signals.push(SIG.tools);
  if (f.jsonSchema === 1) signals.push(SIG.jsonSchema);
  if (f.reasoningRequested !== 0) {
    t = 3;
    if ((f.reasoningRequested & 1) !== 0) signals.push(SIG.reasoningRequested);
    if ((f.reasoningRequested & 2) !== 0) signals.push(SIG.thinking);
  }
  t = applyGates(t, f, opts.tiers, signals);
  return { tierIndex: t as TierIndex, score, signals };
}

/**
 * The capability gates (SPEC §13): images go only to a `vision` tier, an estimated context only to a tier whose
 * window holds it; both move the tier up, never down. Applied to the built-in decision and to an `[auto.external]`
 * answer alike (a cheaper tier the external service picked must still be able to take the request). Appends the
 * signals it applies to `signals`.
 */
export function applyGates(tier: number, f: Features, tiers: readonly [TierInfo, TierInfo, TierInfo, TierInfo], signals: string[]): TierIndex {
  let t = tier;
  if (f.images === 1) {
    signals.push(SIG.img);
    let v = t;
    while (v < 3 && !(tiers[v] as TierInfo).vision) v++;
    if ((tiers[v] as TierInfo).vision) t = v;
    else signals.push(SIG.imgNoVision); // no vision tier at or above: keep the tier (the provider answers)
  }
  const fits = (k: number): boolean => {
    const cw = (tiers[k] as TierInfo).contextWindow;
    return cw === undefined || f.contextTokens <= cw;
  };
  if (!fits(t)) {
    // Up to the first tier that holds the estimated context (and still takes the images, when this one did).
    const from = t;
    const needVision = f.images === 1 && (tiers[t] as TierInfo).vision;
    const ok = (k: number): boolean => !needVision || (tiers[k] as TierInfo).vision;
    let found = -1;
    for (let k = t + 1; k < 4; k++) {
      if (fits(k) && ok(k)) {
        found = k;
        break;
      }
    }
    if (found >= 0) {
      signals.push(SIG.ctx[from] as string);
      t = found;
    } else {
      // No tier holds it: the largest known window at or above (ties: the lowest), never down; the provider answers.
      let best = t;
      for (let k = t + 1; k < 4; k++) if (ok(k) && ((tiers[k] as TierInfo).contextWindow ?? 0) > ((tiers[best] as TierInfo).contextWindow ?? 0)) best = k;
      signals.push(SIG.ctxAll);
      t = best;
    }
  }
  return t as TierIndex;
}

const dec = new TextDecoder();

/**
 * Classify a request: `body` is its first ≤ 64 KiB, `complete` whether that is the whole body. Deterministic: the
 * same bytes and options always give the same result. Never throws on any bytes.
 */
export function classify(body: Uint8Array, complete: boolean, dialect: ClassifyDialect, opts: ClassifyOptions): Classification {
  void dialect; // both dialects share the shapes the scan reads (messages[].role / content / text)
  const want = opts.text === true ? { start: -1, end: -1, whole: false } : undefined;
  const features = extractFeatures(body, complete, opts.totalBytes, want);
  const d = decide(features, opts);
  const out: { tier: Tier; tierIndex: TierIndex; score: number; signals: readonly string[]; features: Features; text?: string | undefined } = {
    tier: TIERS[d.tierIndex],
    tierIndex: d.tierIndex,
    score: d.score,
    signals: d.signals,
    features,
  };
  if (want !== undefined) out.text = want.whole ? turnText(body.subarray(want.start, want.end)) : undefined;
  return out;
}

/**
 * The last user turn's text from its content value's bytes (a JSON string, or an array of parts/blocks whose
 * `text` members are joined by newlines; tool results left out), cut to EXTERNAL_TEXT_MAX_BYTES of UTF-8 at a
 * character boundary. Parses only that value, and only when `[auto.external]` asks.
 */
function turnText(value: Uint8Array): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(dec.decode(value));
  } catch {
    return undefined;
  }
  let text = "";
  if (typeof parsed === "string") text = parsed;
  else if (Array.isArray(parsed)) {
    const parts: string[] = [];
    for (const p of parsed) if (typeof p === "object" && p !== null && typeof (p as { text?: unknown }).text === "string") parts.push((p as { text: string }).text);
    text = parts.join("\n");
  } else return undefined;
  const bytes = enc.encode(text);
  if (bytes.length <= EXTERNAL_TEXT_MAX_BYTES) return text;
  let end = EXTERNAL_TEXT_MAX_BYTES;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--; // do not split a UTF-8 sequence
  return dec.decode(bytes.subarray(0, end));
}

/** The options `classify` needs, built once at boot from `[auto]` and the tiers' capabilities. */
export function classifyOptions(auto: { boundariesFixed: readonly [number, number, number]; marginFixed: number }, tiers: readonly [TierInfo, TierInfo, TierInfo, TierInfo], extra?: { text?: boolean }): ClassifyOptions {
  return { boundaries: auto.boundariesFixed, margin: auto.marginFixed, tiers, text: extra?.text };
}
