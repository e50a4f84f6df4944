// ls, grep and find on real trees (reference §B.8): order, limits and their notices, .gitignore both inside a git
// work tree (git ls-files) and without git (the built-in walker), hidden files included, .git skipped, binaries
// skipped; and the tool set: defaultTools' schemas and descriptions, filterTools.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Tool } from "../../src/agent/core/tool.ts";
import { defaultTools, filterTools, TOOL_NAMES } from "../../src/agent/tools/index.ts";
import { parseGitignore, walk } from "../../src/agent/tools/walk.ts";
import { Workspace } from "../../src/agent/tools/workspace.ts";
import { makeTempDir } from "../helpers/gateway.ts";

const never = new AbortController().signal;

function setup(files: Record<string, string | Uint8Array> = {}) {
  const root = makeTempDir();
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(root, rel, ".."), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  const ws = new Workspace(root);
  const tools = Object.fromEntries(defaultTools({ workspace: ws, tmpDir: makeTempDir() }).map((t) => [t.name, t])) as Record<string, Tool>;
  const call = async (name: string, args: Record<string, unknown>) => {
    try {
      return { ok: true, text: (await tools[name]!.execute(args, never, () => {})).text };
    } catch (e) {
      return { ok: false, text: (e as Error).message };
    }
  };
  return { root: ws.root, call };
}

function gitInit(root: string): void {
  const r = Bun.spawnSync(["git", "init", "-q", root], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git init failed: ${r.stderr.toString()}`);
}

// The same tree, ignored the same way, is tried with git and without: both must give the same listing.
const TREE = {
  ".gitignore": "*.log\nbuild/\n/top-only.txt\n!keep.log\nsub/**/gen-*\n",
  ".hidden/h.txt": "needle hidden\n",
  "a.txt": "needle a\n",
  "B.txt": "no\n",
  "app.log": "needle in a log\n",
  "keep.log": "needle kept\n",
  "build/out.txt": "needle built\n",
  "top-only.txt": "needle top\n",
  "sub/top-only.txt": "needle nested top-only\n",
  "sub/deep/gen-1.txt": "needle generated\n",
  "sub/deep/real.txt": "needle real\n",
  "sub/.gitignore": "local.txt\n",
  "sub/local.txt": "needle local\n",
  "bin.dat": new Uint8Array([0x6e, 0x65, 0x65, 0x64, 0x6c, 0x65, 0, 1, 2]),
};
const EXPECTED_FILES = [".gitignore", ".hidden/h.txt", "B.txt", "a.txt", "bin.dat", "keep.log", "sub/.gitignore", "sub/deep/real.txt", "sub/top-only.txt"];

describe("walk and .gitignore", () => {
  test("without git: the built-in walker applies nested .gitignore files (negation, anchors, dir-only, **)", async () => {
    const { root } = setup(TREE);
    mkdirSync(join(root, ".git")); // a stray .git folder (not a repository) is still skipped
    writeFileSync(join(root, ".git", "config"), "x");
    const w = await walk(root, { dirs: false });
    expect(w.entries.map((e) => e.rel)).toEqual(EXPECTED_FILES);
    expect(w.notice).toBeUndefined();
  });

  test("inside a git work tree: git ls-files gives the same list, untracked files included", async () => {
    const { root } = setup(TREE);
    gitInit(root);
    const w = await walk(root, { dirs: false });
    expect(w.entries.map((e) => e.rel)).toEqual(EXPECTED_FILES);
    // What only git knows is honoured too: .git/info/exclude.
    writeFileSync(join(root, ".git", "info", "exclude"), "B.txt\n");
    expect((await walk(root, { dirs: false })).entries.map((e) => e.rel)).toEqual(EXPECTED_FILES.filter((f) => f !== "B.txt"));
    // A subdirectory of the work tree lists relative to itself.
    expect((await walk(join(root, "sub"), { dirs: false })).entries.map((e) => e.rel)).toEqual([".gitignore", "deep/real.txt", "top-only.txt"]);
  });

  test("the workspace's git config runs nothing: a core.fsmonitor command is not run by grep or find, and git gets no key", async () => {
    const { root, call } = setup({ "a.txt": "needle\n" });
    gitInit(root);
    const marker = join(makeTempDir(), "fsmonitor-ran");
    const hook = join(makeTempDir(), "fsmonitor.sh");
    writeFileSync(hook, `#!/bin/sh\nenv > ${marker}\n`, { mode: 0o755 });
    Bun.spawnSync(["git", "-C", root, "config", "core.fsmonitor", hook]);
    const saved = process.env.AI_AGENT_KEY;
    process.env.AI_AGENT_KEY = "bai_v1.fsmonitor-test-secret";
    try {
      expect((await call("grep", { pattern: "needle" })).text).toBe("a.txt:1: needle");
      expect((await call("find", { pattern: "*.txt" })).text).toBe("a.txt");
    } finally {
      if (saved === undefined) delete process.env.AI_AGENT_KEY;
      else process.env.AI_AGENT_KEY = saved;
    }
    expect(existsSync(marker)).toBe(false);
  });

  test("without git, the workspace's .gitignore files above a searched subdirectory apply too", async () => {
    const { root, call } = setup(TREE);
    // Root rules: `*.log` (unanchored) and `sub/**/gen-*` (anchored at the root) both reach into sub/.
    writeFileSync(join(root, "sub", "deep", "x.log"), "needle log\n");
    expect((await call("find", { pattern: "*", path: "sub" })).text).toBe(".gitignore\ndeep/\ndeep/real.txt\ntop-only.txt");
    expect((await call("grep", { pattern: "needle", path: "sub/deep" })).text).toBe("real.txt:1: needle real");
  });

  test("directories are derived and listed once, sorted with the files", async () => {
    const { root } = setup({ "x/y/z.txt": "", "x/w.txt": "" });
    expect((await walk(root)).entries.map((e) => (e.dir ? `${e.rel}/` : e.rel))).toEqual(["x/", "x/w.txt", "x/y/", "x/y/z.txt"]);
    gitInit(root);
    expect((await walk(root)).entries.map((e) => (e.dir ? `${e.rel}/` : e.rel))).toEqual(["x/", "x/w.txt", "x/y/", "x/y/z.txt"]);
  });

  test("the result cap stops the walk with a notice", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 30; i++) files[`f${String(i).padStart(2, "0")}.txt`] = "";
    const { root } = setup(files);
    const w = await walk(root, { maxResults: 10 });
    expect(w.entries.length).toBe(10);
    expect(w.notice).toBe("[Stopped after 10 results; narrow the path or the pattern]");
  });

  test("parseGitignore: comments, blanks, escapes, trailing spaces", () => {
    const rules = parseGitignore("# c\n\n\\#hash\n\\!bang\nspace\\ \ntrail   \n/anchored\nd/\n");
    expect(rules.map((r) => [r.negate, r.dirOnly, r.anchored])).toEqual([
      [false, false, false],
      [false, false, false],
      [false, false, false],
      [false, false, false],
      [false, false, true],
      [false, true, false],
    ]);
    expect(rules[0]!.glob.match("#hash")).toBe(true);
    expect(rules[1]!.glob.match("!bang")).toBe(true);
    expect(rules[2]!.glob.match("space ")).toBe(true);
    expect(rules[3]!.glob.match("trail")).toBe(true);
  });
});

describe("ls", () => {
  test("dotfiles included, directories marked, sorted case-insensitively with case breaking ties", async () => {
    const { call, root } = setup({ "b.txt": "", "B.txt": "", "a.txt": "", ".env": "", "Zed/x": "", "c/d": "" });
    expect(await call("ls", {})).toEqual({ ok: true, text: [".env", "a.txt", "B.txt", "b.txt", "c/", "Zed/"].join("\n") });
    expect(await call("ls", { path: root + "/c" })).toEqual({ ok: true, text: "d" });
  });

  test("a symlink to a directory is marked; a dangling link is skipped", async () => {
    const { call, root } = setup({ "real/f": "" });
    const { symlinkSync } = await import("node:fs");
    symlinkSync("real", join(root, "link"));
    symlinkSync("nowhere", join(root, "dangling"));
    expect(await call("ls", {})).toEqual({ ok: true, text: "link/\nreal/" });
  });

  test("limit: '[L entries limit reached. Use limit=2L for more]'", async () => {
    const { call } = setup({ a: "", b: "", c: "", d: "" });
    expect(await call("ls", { limit: 3 })).toEqual({ ok: true, text: "a\nb\nc\n\n[3 entries limit reached. Use limit=6 for more]" });
    expect(await call("ls", { limit: 4 })).toEqual({ ok: true, text: "a\nb\nc\nd" });
  });

  test("50KB cap: '[50.0KB limit reached]'", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`${String(i).padStart(3, "0")}${"n".repeat(200)}`] = "";
    const { call } = setup(files);
    const r = await call("ls", {});
    expect(r.text).toEndWith("\n\n[50.0KB limit reached]");
    expect(r.text.split("\n\n")[0]!.split("\n").length).toBe(Math.floor(51_201 / 204));
  });

  test("errors and the empty directory", async () => {
    const { call, root } = setup({ "f.txt": "x" });
    mkdirSync(join(root, "empty"));
    expect(await call("ls", { path: "nope" })).toEqual({ ok: false, text: "Path not found: nope" });
    expect(await call("ls", { path: "f.txt" })).toEqual({ ok: false, text: "Not a directory: f.txt" });
    expect(await call("ls", { path: "empty" })).toEqual({ ok: true, text: "(empty directory)" });
  });
});

describe("grep", () => {
  test("honours .gitignore, includes hidden files, skips binaries, in sorted path order (with and without git)", async () => {
    const expected = [".hidden/h.txt:1: needle hidden", "a.txt:1: needle a", "keep.log:1: needle kept", "sub/deep/real.txt:1: needle real", "sub/top-only.txt:1: needle nested top-only"].join("\n");
    const plain = setup(TREE);
    expect(await plain.call("grep", { pattern: "needle" })).toEqual({ ok: true, text: expected });
    const repo = setup(TREE);
    gitInit(repo.root);
    expect(await repo.call("grep", { pattern: "needle" })).toEqual({ ok: true, text: expected });
  });

  test("regex, ignoreCase, literal, glob (basename, path, negated) and a file as the path", async () => {
    const { call } = setup({ "src/x.ts": "const A = 1;\nconst b = a+b;\n", "src/y.js": "const A = 2;\n", "doc.md": "a+b\n" });
    expect((await call("grep", { pattern: "^const [A-Z]" })).text).toBe("src/x.ts:1: const A = 1;\nsrc/y.js:1: const A = 2;");
    expect((await call("grep", { pattern: "const a", ignoreCase: true, glob: "*.ts" })).text).toBe("src/x.ts:1: const A = 1;");
    expect((await call("grep", { pattern: "a+b", literal: true })).text).toBe("doc.md:1: a+b\nsrc/x.ts:2: const b = a+b;");
    expect((await call("grep", { pattern: "const", glob: "!*.ts" })).text).toBe("src/y.js:1: const A = 2;");
    expect((await call("grep", { pattern: "const", glob: "src/*.ts" })).text).toBe("src/x.ts:1: const A = 1;\nsrc/x.ts:2: const b = a+b;");
    expect((await call("grep", { pattern: "A", path: "src/y.js" })).text).toBe("y.js:1: const A = 2;");
    expect((await call("grep", { pattern: "A", path: "src" })).text).toBe("x.ts:1: const A = 1;\ny.js:1: const A = 2;");
  });

  test("context lines print as rel-N- and are not repeated between close matches", async () => {
    const { call } = setup({ "c.txt": "1\n2\nhit3\n4\nhit5\n6\n7\n8\n" });
    expect((await call("grep", { pattern: "hit", context: 1 })).text).toBe(
      ["c.txt-2- 2", "c.txt:3: hit3", "c.txt-4- 4", "c.txt:5: hit5", "c.txt-6- 6"].join("\n"),
    );
  });

  test("limit: stops at L matching lines and says so only when there are more", async () => {
    const { call } = setup({ "a.txt": "x\nx\nx\n", "b.txt": "x\n" });
    expect((await call("grep", { pattern: "x", limit: 3 })).text).toBe(
      "a.txt:1: x\na.txt:2: x\na.txt:3: x\n\n[3 matches limit reached. Use limit=6 for more, or refine pattern]",
    );
    expect((await call("grep", { pattern: "x", limit: 4 })).text).toBe("a.txt:1: x\na.txt:2: x\na.txt:3: x\nb.txt:1: x");
  });

  test("lines over 500 characters are clipped with '... [truncated]' and a notice", async () => {
    const { call } = setup({ "w.txt": "x" + "y".repeat(700) + "\n" });
    expect((await call("grep", { pattern: "x" })).text).toBe(
      `w.txt:1: x${"y".repeat(499)}... [truncated]\n\n[Some lines truncated to 500 chars. Use read tool to see full lines]`,
    );
  });

  test("output over 50KB is cut: '[50.0KB limit reached]'", async () => {
    const { call } = setup({ "many.txt": Array.from({ length: 200 }, () => "m".repeat(400)).join("\n") });
    const r = await call("grep", { pattern: "m", limit: 200 });
    expect(r.text).toEndWith("\n\n[50.0KB limit reached]");
  });

  test("errors: invalid regex, missing path; nothing found says No matches found", async () => {
    const { call } = setup({ "a.txt": "x\n" });
    const bad = await call("grep", { pattern: "(" });
    expect(bad.ok).toBe(false);
    expect(bad.text).toStartWith("Invalid regex: ");
    expect(await call("grep", { pattern: "x", path: "nope" })).toEqual({ ok: false, text: "Path not found: nope" });
    expect(await call("grep", { pattern: "zzz" })).toEqual({ ok: true, text: "No matches found" });
    expect(await call("grep", { pattern: "x", glob: "[ab" })).toEqual({ ok: false, text: "Invalid glob: unclosed [ in [ab" });
  });
});

describe("find", () => {
  test("a pattern without / matches names at any depth, files and directories, sorted, dirs with /", async () => {
    const { call } = setup({ "src/test/a.test.ts": "", "src/b.ts": "", "test/c.ts": "", "README.md": "" });
    expect((await call("find", { pattern: "*.ts" })).text).toBe("src/b.ts\nsrc/test/a.test.ts\ntest/c.ts");
    expect((await call("find", { pattern: "test" })).text).toBe("src/test/\ntest/");
  });

  test("a pattern with / matches the relative path (with **/ added); a leading / anchors at the search root", async () => {
    const { call } = setup({ "src/test/a.ts": "", "test/c.ts": "", "lib/test/d.ts": "" });
    expect((await call("find", { pattern: "test/*.ts" })).text).toBe("lib/test/d.ts\nsrc/test/a.ts\ntest/c.ts");
    expect((await call("find", { pattern: "/test/*.ts" })).text).toBe("test/c.ts");
    expect((await call("find", { pattern: "*.ts", path: "src" })).text).toBe("test/a.ts");
  });

  test("honours .gitignore and includes hidden files (with and without git)", async () => {
    const expected = [".gitignore", ".hidden/h.txt", "B.txt", "a.txt", "sub/.gitignore", "sub/deep/real.txt", "sub/top-only.txt"].join("\n");
    const plain = setup(TREE);
    expect((await plain.call("find", { pattern: "*.txt" })).text).toBe(expected.replace(".gitignore\n", "").replace("sub/.gitignore\n", ""));
    const repo = setup(TREE);
    gitInit(repo.root);
    expect((await repo.call("find", { pattern: ".*" })).text).toBe(".gitignore\n.hidden/\nsub/.gitignore");
  });

  test("limit: '[L results limit reached. Use limit=2L for more, or refine pattern]' only when there are more", async () => {
    const { call } = setup({ a1: "", a2: "", a3: "" });
    expect((await call("find", { pattern: "a*", limit: 2 })).text).toBe("a1\na2\n\n[2 results limit reached. Use limit=4 for more, or refine pattern]");
    expect((await call("find", { pattern: "a*", limit: 3 })).text).toBe("a1\na2\na3");
  });

  test("nothing found, a bad glob, a missing path, a file as the path", async () => {
    const { call } = setup({ "a.txt": "" });
    expect(await call("find", { pattern: "*.zip" })).toEqual({ ok: true, text: "No files found matching pattern" });
    expect(await call("find", { pattern: "{a,b" })).toEqual({ ok: false, text: "Invalid glob: unclosed { in {a,b" });
    expect(await call("find", { pattern: "*", path: "nope" })).toEqual({ ok: false, text: "Path not found: nope" });
    expect(await call("find", { pattern: "*", path: "a.txt" })).toEqual({ ok: false, text: "Not a directory: a.txt" });
  });
});

describe("the tool set", () => {
  test("defaultTools: the seven tools, each an object schema and a description", () => {
    const tools = defaultTools({ workspace: new Workspace(makeTempDir()) });
    expect(tools.map((t) => t.name)).toEqual([...TOOL_NAMES]);
    for (const t of tools) {
      expect(t.parameters.type).toBe("object");
      expect(t.description.length).toBeGreaterThan(40);
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(byName.grep!.description).toContain("JavaScript RegExp");
    expect(byName.bash!.description).toContain("not confined");
    expect(byName.bash!.exclusive).toBe(true);
    expect(tools.filter((t) => t.exclusive).map((t) => t.name)).toEqual(["bash"]);
    expect(tools.filter((t) => t.writeTarget).map((t) => t.name)).toEqual(["write", "edit"]);
  });

  test("the bash timeout option is the default timeout the description states", () => {
    const tools = defaultTools({ workspace: new Workspace(makeTempDir()), bashTimeoutSecs: 42 });
    expect(tools.find((t) => t.name === "bash")!.description).toContain("(default 42)");
  });

  test("filterTools: --tools keeps, --exclude-tools drops, --no-tools empties, unknown names are an error", () => {
    const tools = defaultTools({ workspace: new Workspace(makeTempDir()) });
    expect(filterTools(tools, {}).map((t) => t.name)).toEqual([...TOOL_NAMES]);
    expect(filterTools(tools, { tools: ["grep", "read"] }).map((t) => t.name)).toEqual(["read", "grep"]);
    expect(filterTools(tools, { exclude: ["bash", "write", "edit"] }).map((t) => t.name)).toEqual(["read", "ls", "grep", "find"]);
    expect(filterTools(tools, { none: true })).toEqual([]);
    expect(() => filterTools(tools, { tools: ["rm"] })).toThrow("unknown tool: rm (known: read, write, edit, bash, ls, grep, find)");
  });
});
