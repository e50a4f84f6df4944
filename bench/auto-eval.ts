/**
 * How well the `auto` classifier routes the labelled set in bench/auto-eval/set.jsonl (built by
 * bench/auto-eval/build.ts), with the `[auto]` example and the `[prices]` of config.example.toml (uncommented here,
 * exactly as an operator would).
 *
 * Run: ./node_modules/.bin/bun bench/auto-eval.ts            figures for train, holdout and all
 *      ./node_modules/.bin/bun bench/auto-eval.ts --rows     also one line per request (id, label, chosen, score, signals)
 *      ./node_modules/.bin/bun bench/auto-eval.ts --tune     search weights and boundaries on TRAIN ONLY and print the best
 *
 * Figures: exact-tier accuracy; under-routing (the tier chosen is below the label: the costly mistake); over-routing
 * (above the label); cost relative to sending every request to the top tier. Cost model: input tokens = body bytes ÷ 4
 * (rounded up), output tokens = a fixed 500 per request, priced at the tier's [prices] input and output (USD per million
 * tokens); the same token counts for every tier, so the ratio measures the routing alone.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/ops/config.ts";
import { autoTierInfo, SCORE_ONE, TIERS, type Tier } from "../src/routing/auto-config.ts";
import { type ClassifyOptions, decide, DEFAULT_WEIGHTS, extractFeatures, type Features, type Weights } from "../src/routing/classify.ts";

const ROOT = join(import.meta.dir, "..");
const OUTPUT_TOKENS = 500;

interface Row {
  id: string;
  label: Tier;
  split: "train" | "holdout";
  category: string;
  dialect: "openai" | "anthropic";
  body: unknown;
}

// The example config, uncommented (the same substitution test/config-models.test.ts pins).
const exampleText = readFileSync(join(ROOT, "config.example.toml"), "utf8").replace(
  /^# (\[(?:models|prices|auto)[^ ]*\]|(?:targets|strategy|weights|max_attempts|input|output|cache_read|cache_write|context_window|vision|tiers|mode|boundaries|round_up_margin|url|timeout_ms) = )/gm,
  "$1",
);
const cfg = loadConfig({
  configPath: "config.example.toml",
  fileText: exampleText,
  env: { AI_POOL_KEY_GROQ: "x", AI_POOL_KEY_CEREBRAS: "x", AI_POOL_KEY_OPENAI: "x", AI_POOL_KEY_ANTHROPIC: "x" },
});
const auto = cfg.auto;
if (auto === undefined) throw new Error("config.example.toml has no [auto] example");
const tierInfo = autoTierInfo(auto, cfg.models, cfg.prices);
const tierPrice = auto.resolved.map((t) => {
  const p = cfg.prices.get(t);
  if (p === undefined) throw new Error(`the [auto] example's tier ${t} has no [prices] entry`);
  return p;
});

const enc = new TextEncoder();
const rows: Row[] = readFileSync(join(import.meta.dir, "auto-eval", "set.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as Row);
const items = rows.map((r) => {
  const bytes = enc.encode(JSON.stringify(r.body));
  return { row: r, bytes, label: TIERS.indexOf(r.label), features: extractFeatures(bytes, true) as Features, inTokens: Math.ceil(bytes.length / 4) };
});

function cost(tier: number, inTokens: number): number {
  const p = tierPrice[tier]!;
  return (inTokens * p.input + OUTPUT_TOKENS * p.output) / 1e6;
}

interface Figures {
  n: number;
  accuracy: number;
  under: number;
  over: number;
  costRatio: number;
}

function evaluate(subset: typeof items, opts: ClassifyOptions): Figures & { chosen: number[] } {
  let exact = 0;
  let under = 0;
  let over = 0;
  let spent = 0;
  let top = 0;
  const chosen: number[] = [];
  for (const it of subset) {
    const t = decide(it.features, opts).tierIndex;
    chosen.push(t);
    if (t === it.label) exact++;
    else if (t < it.label) under++;
    else over++;
    spent += cost(t, it.inTokens);
    top += cost(3, it.inTokens);
  }
  const n = subset.length;
  return { n, accuracy: exact / n, under: under / n, over: over / n, costRatio: spent / top, chosen };
}

const baseOpts: ClassifyOptions = { boundaries: auto.boundariesFixed, margin: auto.marginFixed, tiers: tierInfo };
const train = items.filter((i) => i.row.split === "train");
const holdout = items.filter((i) => i.row.split === "holdout");
const pct = (x: number) => `${(x * 100).toFixed(1)} %`.padStart(7);

function report(opts: ClassifyOptions): void {
  console.log(`[auto] example: tiers ${auto!.resolved.join(" | ")}; boundaries [${auto!.boundaries.join(", ")}], round_up_margin ${auto!.round_up_margin}`);
  console.log(`cost model: input = body bytes / 4, output = ${OUTPUT_TOKENS} tokens, priced per tier from config.example.toml [prices]\n`);
  console.log("split      n   exact  under   over   cost vs always-top");
  for (const [name, subset] of [
    ["train", train],
    ["holdout", holdout],
    ["all", items],
  ] as const) {
    const f = evaluate(subset, opts);
    console.log(`${name.padEnd(8)} ${String(f.n).padStart(3)} ${pct(f.accuracy)}${pct(f.under)}${pct(f.over)}  ${pct(f.costRatio)}`);
  }
  // Confusion matrix over all: rows = label, columns = chosen.
  const all = evaluate(items, opts);
  console.log("\nall: label (rows) × chosen (columns)");
  console.log("           " + TIERS.map((t) => t.padStart(10)).join(""));
  for (let l = 0; l < 4; l++) {
    const cells = [0, 0, 0, 0];
    items.forEach((it, k) => {
      if (it.label === l) cells[all.chosen[k]!]!++;
    });
    console.log(TIERS[l]!.padEnd(11) + cells.map((c) => String(c).padStart(10)).join(""));
  }
  // --rows shows the training rows only (tuning looks at these); --rows=all shows the held-out ones too.
  const rowsArg = process.argv.find((a) => a.startsWith("--rows"));
  if (rowsArg !== undefined) {
    console.log("");
    items.forEach((it, k) => {
      if (rowsArg !== "--rows=all" && it.row.split !== "train") return;
      const d = decide(it.features, opts);
      const mark = all.chosen[k] === it.label ? " " : all.chosen[k]! < it.label ? "<" : ">";
      console.log(`${mark} ${it.row.id.padEnd(22)} ${it.row.split.padEnd(7)} label ${it.row.label.padEnd(9)} chosen ${TIERS[d.tierIndex].padEnd(9)} score ${String(d.score).padStart(5)} ${d.signals.join(",")}`);
    });
  }
}

/**
 * Coordinate search on TRAIN only: each weight and boundary in turn over a small grid, keeping a change when the
 * objective improves. Objective: exact accuracy − 2 × under-routing (under-routing is the costly mistake), with the
 * cost ratio held at or below 50 %.
 */
function tune(): void {
  let w: Record<string, number> = { ...DEFAULT_WEIGHTS };
  let b = [...auto!.boundariesFixed] as [number, number, number];
  const objective = (ww: Record<string, number>, bb: [number, number, number]): number => {
    if (!(bb[0] < bb[1] && bb[1] < bb[2])) return -Infinity;
    const f = evaluate(train, { ...baseOpts, boundaries: bb, weights: ww as unknown as Weights });
    if (f.costRatio > 0.5) return -Infinity;
    return f.accuracy - 2 * f.under;
  };
  let best = objective(w, b);
  const grid = [0, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60];
  for (let round = 0; round < 4; round++) {
    let changed = false;
    for (const k of Object.keys(w)) {
      const values = k === "reasonOverride" ? [0, 1, 2, 3, 4, 5, 6] : grid;
      for (const v of values) {
        const cand = { ...w, [k]: v };
        const o = objective(cand, b);
        if (o > best) {
          best = o;
          w = cand;
          changed = true;
        }
      }
    }
    for (let i = 0; i < 3; i++) {
      for (let v = 0; v <= SCORE_ONE; v += 250) {
        const cand = [...b] as [number, number, number];
        cand[i] = v;
        const o = objective(w, cand);
        if (o > best) {
          best = o;
          b = cand;
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  const f = evaluate(train, { ...baseOpts, boundaries: b, weights: w as unknown as Weights });
  console.log("tuned on train:", JSON.stringify(w), "boundaries", b.map((x) => x / SCORE_ONE));
  console.log(`train: exact ${pct(f.accuracy)} under ${pct(f.under)} over ${pct(f.over)} cost ${pct(f.costRatio)}`);
}

if (process.argv.includes("--tune")) tune();
else report(baseOpts);
