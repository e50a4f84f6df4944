// The agent tools' own costs (src/agent/tools): truncation, the bash output accumulator, edit matching (exact and
// fuzzy) and the native grep/find over a generated tree, without git and inside a git work tree.
// Run: node_modules/.bin/bun bench/agent-tools.bench.ts
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { applyEdits } from "../src/agent/tools/edit.ts";
import { defaultTools } from "../src/agent/tools/index.ts";
import { OutputAccumulator } from "../src/agent/tools/output-accumulator.ts";
import { truncateHead, truncateTail } from "../src/agent/tools/truncate.ts";
import { Workspace } from "../src/agent/tools/workspace.ts";

const tmp = mkdtempSync(join(tmpdir(), "bai-bench-tools-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

// 2,000 source-like files of 60 lines in 40 directories, a .gitignore dropping a tenth of them.
function makeTree(root: string): void {
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(root, `pkg${d}`, "src"), { recursive: true });
    for (let f = 0; f < 50; f++) {
      const lines = Array.from({ length: 60 }, (_, i) => `export function f${d}_${f}_${i}(x: number): number { return x * ${i}; }`);
      if (f === 7) lines[30] = "// NEEDLE: the one line grep looks for";
      writeFileSync(join(root, `pkg${d}`, "src", `m${f}.ts`), lines.join("\n") + "\n");
    }
  }
  writeFileSync(join(root, ".gitignore"), "m4*.ts\n");
}
const plainRoot = join(tmp, "plain");
const gitRoot = join(tmp, "git");
mkdirSync(plainRoot);
mkdirSync(gitRoot);
makeTree(plainRoot);
makeTree(gitRoot);
if (Bun.spawnSync(["git", "init", "-q", gitRoot]).exitCode !== 0) throw new Error("git init failed");

const never = new AbortController().signal;
const toolsOf = (root: string) => Object.fromEntries(defaultTools({ workspace: new Workspace(root), tmpDir: tmp }).map((t) => [t.name, t]));
const plain = toolsOf(plainRoot);
const git = toolsOf(gitRoot);

// Sanity: both walks see the same 1,800 files and find the 40 needles.
for (const tools of [plain, git]) {
  const found = (await tools.grep!.execute({ pattern: "NEEDLE", limit: 1000 }, never, () => {})).text.split("\n").length;
  if (found !== 40) throw new Error(`grep found ${found} needles, expected 40`);
}

const seq = Array.from({ length: 20_000 }, (_, i) => String(i + 1)).join("\n") + "\n"; // 108,894 bytes
const chunk = new TextEncoder().encode("x".repeat(79) + "\n").slice(); // one 80-byte line
const chunk64k = new TextEncoder().encode(("y".repeat(79) + "\n").repeat(819)); // 65,520 bytes
const file1m = Array.from({ length: 16_000 }, (_, i) => `  line ${i}: some “quoted” text — with a dash   `).join("\n");

summary(() => {
  group("truncation (20,000 lines, 106 KB)", () => {
    bench("truncateHead", () => do_not_optimize(truncateHead(seq)));
    bench("truncateTail", () => do_not_optimize(truncateTail(seq)));
  });
  group("OutputAccumulator", () => {
    bench("push 1,000 × 80-byte lines + snapshot", () => {
      const acc = new OutputAccumulator({ tmpDir: tmp });
      for (let i = 0; i < 1000; i++) acc.push(chunk);
      do_not_optimize(acc.snapshot());
    });
    bench("push 16 × 64 KB (spills) + snapshot", () => {
      const acc = new OutputAccumulator({ tmpDir: tmp });
      for (let i = 0; i < 16; i++) acc.push(chunk64k);
      do_not_optimize(acc.snapshot());
      acc.close();
    });
  });
  group("edit matching on a 780 KB file", () => {
    bench("exact", () => do_not_optimize(applyEdits(file1m, [{ oldText: "line 8000: some", newText: "L" }], false, "f")));
    bench("fuzzy (smart quotes and dash typed plain)", () =>
      do_not_optimize(applyEdits(file1m, [{ oldText: 'line 8000: some "quoted" text - with a dash', newText: "L" }], false, "f")),
    );
  });
  group("grep / find over 2,000 files", () => {
    bench("grep NEEDLE, no git (built-in .gitignore walker)", async () => do_not_optimize(await plain.grep!.execute({ pattern: "NEEDLE" }, never, () => {})));
    bench("grep NEEDLE, git ls-files", async () => do_not_optimize(await git.grep!.execute({ pattern: "NEEDLE" }, never, () => {})));
    bench("find m7.ts, no git", async () => do_not_optimize(await plain.find!.execute({ pattern: "m7.ts" }, never, () => {})));
    bench("find m7.ts, git ls-files", async () => do_not_optimize(await git.find!.execute({ pattern: "m7.ts" }, never, () => {})));
  });
});

await run();
