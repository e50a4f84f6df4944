// read, write and edit on real files (reference §B.8, §C.2 #1 and #1b): every result, notice and error text;
// atomic writes that keep the mode; edit's argument shapes, exact then fuzzy matching, several matches, overlaps,
// no change, CRLF and BOM kept, the mtime guard and the diff.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Tool } from "../../src/agent/core/tool.ts";
import { applyEdits, fuzzyNormalize } from "../../src/agent/tools/edit.ts";
import { defaultTools } from "../../src/agent/tools/index.ts";
import { Workspace } from "../../src/agent/tools/workspace.ts";
import { makeTempDir } from "../helpers/gateway.ts";

const never = new AbortController().signal;

function setup() {
  const root = makeTempDir();
  const ws = new Workspace(root);
  const tools = Object.fromEntries(defaultTools({ workspace: ws, tmpDir: makeTempDir() }).map((t) => [t.name, t])) as Record<string, Tool>;
  const call = async (name: string, args: Record<string, unknown>) => {
    try {
      const out = await tools[name]!.execute(args, never, () => {});
      return { ok: true as const, text: out.text, out };
    } catch (e) {
      return { ok: false as const, text: (e as Error).message };
    }
  };
  const put = (rel: string, content: string | Uint8Array) => writeFileSync(join(ws.root, rel), content);
  const get = (rel: string) => readFileSync(join(ws.root, rel), "utf8");
  return { root: ws.root, ws, tools, call, put, get };
}

const numbered = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${String(from + i).padStart(6)}\t${from + i}`).join("\n");

describe("read", () => {
  test("lines come back numbered `%6d\\t` and CRLF loses its CR", async () => {
    const { call, put } = setup();
    put("a.txt", "hello\nworld\n");
    expect(await call("read", { path: "a.txt" })).toMatchObject({ ok: true, text: "     1\thello\n     2\tworld" });
    put("c.txt", "one\r\ntwo\r\n");
    expect(await call("read", { path: "c.txt" })).toMatchObject({ ok: true, text: "     1\tone\n     2\ttwo" });
  });

  test("offset and limit page; a user limit with more left says how many more", async () => {
    const { call, put } = setup();
    put("n.txt", Array.from({ length: 10 }, (_, i) => `${i + 1}`).join("\n") + "\n");
    expect((await call("read", { path: "n.txt", offset: 4, limit: 3 })).text).toBe(
      `${numbered(4, 6)}\n\n[4 more lines in file. Use offset=7 to continue.]`,
    );
    expect((await call("read", { path: "n.txt", offset: 9 })).text).toBe(numbered(9, 10));
    expect((await call("read", { path: "n.txt", offset: 8, limit: 3 })).text).toBe(numbered(8, 10));
  });

  test("at most 2000 lines: '[Showing lines A-B of N. Use offset=B+1 to continue.]'", async () => {
    const { call, put } = setup();
    put("big.txt", Array.from({ length: 2500 }, (_, i) => `${i + 1}`).join("\n"));
    expect((await call("read", { path: "big.txt" })).text).toBe(
      `${numbered(1, 2000)}\n\n[Showing lines 1-2000 of 2500. Use offset=2001 to continue.]`,
    );
    expect((await call("read", { path: "big.txt", offset: 2001 })).text).toBe(numbered(2001, 2500));
    // A limit above the cap is capped, and the notice is the cap's.
    expect((await call("read", { path: "big.txt", limit: 2400 })).text).toEndWith("[Showing lines 1-2000 of 2500. Use offset=2001 to continue.]");
  });

  test("at most 50KB: the notice says '(50.0KB limit)'", async () => {
    const { call, put } = setup();
    put("wide.txt", Array.from({ length: 100 }, () => "w".repeat(1000)).join("\n"));
    const r = await call("read", { path: "wide.txt" });
    // Each numbered line is 1007 bytes plus its newline: 50 fit in 51,200.
    expect(r.text).toEndWith("\n\n[Showing lines 1-50 of 100 (50.0KB limit). Use offset=51 to continue.]");
    expect(r.text.split("\n\n")[0]!.split("\n").length).toBe(50);
  });

  test("a line over 4000 bytes is clipped on a character boundary with '… [line truncated]'", async () => {
    const { call, put } = setup();
    put("long.txt", "a" + "€".repeat(2000) + "\nnext\n"); // 6001 bytes; 4000 falls inside a €
    const r = await call("read", { path: "long.txt" });
    expect(r.text).toBe(`     1\ta${"€".repeat(1333)}… [line truncated]\n     2\tnext`);
  });

  test("a large file is read in one pass: far offsets, line counts and chunk boundaries are exact", async () => {
    const { call, put } = setup();
    // ~2.4 MB of lines with multi-byte characters, so stream chunks end inside lines and inside characters; no
    // final newline, so the last line is an open one.
    const n = 200_000;
    put("big.txt", Array.from({ length: n }, (_, i) => `é${i + 1}€`).join("\n"));
    expect((await call("read", { path: "big.txt", offset: 150_000, limit: 2 })).text).toBe(
      `150000\té150000€\n150001\té150001€\n\n[${n - 150_001} more lines in file. Use offset=150002 to continue.]`,
    );
    expect((await call("read", { path: "big.txt", offset: n })).text).toBe(`200000\té200000€`);
    expect(await call("read", { path: "big.txt", offset: n + 1 })).toEqual({ ok: false, text: `Offset ${n + 1} is beyond end of file (${n} lines total)` });
    const first = await call("read", { path: "big.txt", limit: 1 });
    expect(first.text).toBe(`     1\té1€\n\n[${n - 1} more lines in file. Use offset=2 to continue.]`);
  });

  test("a single line of megabytes comes back clipped, and the lines after it still count", async () => {
    const { call, put } = setup();
    put("one.txt", "€".repeat(1_000_000) + "\nend");
    expect((await call("read", { path: "one.txt" })).text).toBe(`     1\t${"€".repeat(1333)}… [line truncated]\n     2\tend`);
  });

  test("errors: missing file, offset past the end, binary; an empty file says (empty file)", async () => {
    const { call, put } = setup();
    expect(await call("read", { path: "nope.txt" })).toEqual({ ok: false, text: "File not found: nope.txt" });
    put("three.txt", "a\nb\nc\n");
    expect(await call("read", { path: "three.txt", offset: 4 })).toEqual({ ok: false, text: "Offset 4 is beyond end of file (3 lines total)" });
    put("bin.dat", new Uint8Array([1, 2, 0, 3, 4]));
    expect(await call("read", { path: "bin.dat" })).toEqual({ ok: false, text: "Binary file: bin.dat (5 bytes)" });
    put("empty.txt", "");
    expect(await call("read", { path: "empty.txt" })).toMatchObject({ ok: true, text: "(empty file)" });
  });

  test("a FIFO is refused rather than read (it would block)", async () => {
    const { call, root, put } = setup();
    expect(Bun.spawnSync(["mkfifo", join(root, "pipe")]).exitCode).toBe(0);
    expect(await call("read", { path: "pipe" })).toEqual({ ok: false, text: "Not a regular file: pipe" });
    expect(await call("edit", { path: "pipe", oldText: "a", newText: "b" })).toEqual({ ok: false, text: "Not a regular file: pipe" });
    put("a.txt", "needle\n");
    expect(await call("grep", { pattern: "needle" })).toMatchObject({ ok: true, text: "a.txt:1: needle" });
  });

  test("images are sniffed by magic bytes and come back as base64 image blocks", async () => {
    const { call, put } = setup();
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
    put("pic.dat", png); // the name does not matter, the bytes do
    const r = await call("read", { path: "pic.dat" });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.text).toBe("Read image file [image/png]");
    expect(r.out.images).toEqual([{ type: "base64", media_type: "image/png", data: Buffer.from(png).toString("base64") }]);
    put("j.jpg", new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1]));
    put("g.gif", enc("GIF89a...."));
    put("w.webp", enc("RIFF\0\0\0\0WEBPVP8 "));
    expect((await call("read", { path: "j.jpg" })).text).toBe("Read image file [image/jpeg]");
    expect((await call("read", { path: "g.gif" })).text).toBe("Read image file [image/gif]");
    expect((await call("read", { path: "w.webp" })).text).toBe("Read image file [image/webp]");
  });

  test("an image over 4.5MB of base64 is an error naming its size", async () => {
    const { call, put } = setup();
    const big = new Uint8Array(3_600_000);
    big.set([0x89, 0x50, 0x4e, 0x47]);
    put("big.png", big); // base64: 4,800,000 bytes
    expect(await call("read", { path: "big.png" })).toEqual({ ok: false, text: "Image too large (4.6MB base64; limit 4.5MB)" });
  });
});

function enc(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

describe("write", () => {
  test("creates parents and reports the UTF-8 byte count", async () => {
    const { call, get } = setup();
    expect(await call("write", { path: "deep/er/f.txt", content: "héllo €" })).toMatchObject({
      ok: true,
      text: "Successfully wrote 10 bytes to deep/er/f.txt",
    });
    expect(get("deep/er/f.txt")).toBe("héllo €");
  });

  test("overwrites atomically, keeps the file's mode and leaves no temp file", async () => {
    const { call, put, get, root } = setup();
    put("run.sh", "old");
    chmodSync(join(root, "run.sh"), 0o750);
    expect((await call("write", { path: "run.sh", content: "new" })).ok).toBe(true);
    expect(get("run.sh")).toBe("new");
    expect(statSync(join(root, "run.sh")).mode & 0o777).toBe(0o750);
    expect(readdirSync(root)).toEqual(["run.sh"]);
  });

  test("writes through a final symlink inside the workspace: the link stays, its target changes", async () => {
    const { call, put, get, root } = setup();
    put("target.txt", "old");
    symlinkSync("target.txt", join(root, "link.txt"));
    expect((await call("write", { path: "link.txt", content: "new" })).ok).toBe(true);
    expect(get("target.txt")).toBe("new");
    expect(statSync(join(root, "link.txt")).isFile()).toBe(true);
    expect(readdirSync(root).sort()).toEqual(["link.txt", "target.txt"]);
  });

  test("writing onto a directory is an error", async () => {
    const { call, root } = setup();
    mkdirSync(join(root, "d"));
    expect(await call("write", { path: "d", content: "x" })).toEqual({ ok: false, text: "Not a file: d (a directory)" });
  });

  test("writeTarget is the canonical path, undefined when refused", () => {
    const { tools, root } = setup();
    expect(tools.write!.writeTarget!({ path: "./x/../f.txt", content: "" })).toBe(join(root, "f.txt"));
    expect(tools.write!.writeTarget!({ path: "../f.txt", content: "" })).toBeUndefined();
    expect(tools.edit!.writeTarget!({ path: "f.txt" })).toBe(join(root, "f.txt"));
  });
});

describe("edit", () => {
  test("replaces a unique text, answers 'Successfully replaced 1 block(s) in P.' with a 4-line-context diff", async () => {
    const { call, put, get } = setup();
    put("a.txt", "l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\n");
    const r = await call("edit", { path: "a.txt", edits: [{ oldText: "l6", newText: "six" }] });
    expect(r).toMatchObject({ ok: true, text: "Successfully replaced 1 block(s) in a.txt." });
    expect(get("a.txt")).toBe("l1\nl2\nl3\nl4\nl5\nsix\nl7\nl8\nl9\nl10\n");
    if (!r.ok) return;
    expect((r.out.details as { diff: string }).diff).toBe(
      ["--- a/a.txt", "+++ b/a.txt", "@@ -2,9 +2,9 @@", " l2", " l3", " l4", " l5", "-l6", "+six", " l7", " l8", " l9", " l10"].join("\n"),
    );
  });

  test("every argument shape: edits, edits as a JSON string, oldText/newText, old_string/new_string", async () => {
    const { call, put, get } = setup();
    put("s.txt", "alpha beta gamma delta");
    expect((await call("edit", { path: "s.txt", edits: [{ oldText: "alpha", newText: "A" }] })).ok).toBe(true);
    expect((await call("edit", { path: "s.txt", edits: JSON.stringify([{ oldText: "beta", newText: "B" }]) })).ok).toBe(true);
    expect((await call("edit", { path: "s.txt", oldText: "gamma", newText: "G" })).ok).toBe(true);
    expect((await call("edit", { path: "s.txt", old_string: "delta", new_string: "D" })).ok).toBe(true);
    expect(get("s.txt")).toBe("A B G D");
    put("t.txt", "one two");
    expect((await call("edit", { path: "t.txt", edits: [{ old_string: "one", new_string: "1" }, { oldText: "two", newText: "2" }] })).text).toBe(
      "Successfully replaced 2 block(s) in t.txt.",
    );
    expect(get("t.txt")).toBe("1 2");
  });

  test("several edits are matched against the original and applied together", async () => {
    const { call, put, get } = setup();
    put("m.txt", "a = 1\nb = 2\nc = 3\n");
    // The second edit's old text exists only in the original (the first edit would have removed it).
    const r = await call("edit", { path: "m.txt", edits: [{ oldText: "a = 1", newText: "b = 2x" }, { oldText: "c = 3", newText: "c = 30" }] });
    expect(r.text).toBe("Successfully replaced 2 block(s) in m.txt.");
    expect(get("m.txt")).toBe("b = 2x\nb = 2\nc = 30\n");
  });

  test("no match, several matches, overlap, empty oldText and no change: exact texts, file unchanged", async () => {
    const { call, put, get } = setup();
    put("a.txt", "hello\nworld\n");
    const cases: [Record<string, unknown>, string][] = [
      [{ edits: [{ oldText: "zzz", newText: "x" }] }, "Could not find the exact text in a.txt (edit 1). The old text must match exactly including all whitespace and newlines."],
      [{ edits: [{ oldText: "l", newText: "L" }] }, "Found 3 occurrences of the text in a.txt (edit 1). The text must be unique. Please provide more context to make it unique."],
      [{ edits: [{ oldText: "hello", newText: "hi" }, { oldText: "nope", newText: "x" }] }, "Could not find the exact text in a.txt (edit 2). The old text must match exactly including all whitespace and newlines."],
      [{ edits: [{ oldText: "hello\nwo", newText: "x" }, { oldText: "world", newText: "y" }] }, "Edits 1 and 2 overlap in a.txt. Merge them into one edit."],
      [{ edits: [{ oldText: "", newText: "x" }] }, "oldText must not be empty"],
      [{ edits: [{ oldText: "hello", newText: "hello" }] }, "No changes made to a.txt."],
    ];
    for (const [args, text] of cases) expect(await call("edit", { path: "a.txt", ...args })).toEqual({ ok: false, text });
    expect(get("a.txt")).toBe("hello\nworld\n");
    expect(await call("edit", { path: "missing.txt", oldText: "a", newText: "b" })).toEqual({ ok: false, text: "File not found: missing.txt" });
  });

  test("replace_all replaces every occurrence of a single edit", async () => {
    const { call, put, get } = setup();
    put("r.txt", "x.x.x");
    expect((await call("edit", { path: "r.txt", oldText: "x", newText: "y", replace_all: true })).text).toBe("Successfully replaced 3 block(s) in r.txt.");
    expect(get("r.txt")).toBe("y.y.y");
    expect(await call("edit", { path: "r.txt", edits: [{ oldText: "y", newText: "z" }, { oldText: ".", newText: "," }], replace_all: true })).toEqual({
      ok: false,
      text: "Invalid arguments: replace_all applies to a single edit only",
    });
  });

  test("fuzzy: smart quotes, dashes, special spaces and trailing whitespace match; only the matched range changes", async () => {
    const { call, put, get } = setup();
    put("q.txt", "keep   \nsay \u201Chi\u201D \u2014 it\u2019s\u00A0fine   \nkeep\u2019s tail   \n");
    const r = await call("edit", { path: "q.txt", oldText: "say \"hi\" - it's fine", newText: "said hello" });
    expect(r.text).toBe("Successfully replaced 1 block(s) in q.txt.");
    // Lines outside the match keep their smart quote and trailing spaces (pi would have normalised the whole file).
    expect(get("q.txt")).toBe("keep   \nsaid hello\nkeep\u2019s tail   \n");
  });

  test("fuzzy normalisation: NFKC, quotes, dashes, spaces, trailing whitespace per line", () => {
    expect(fuzzyNormalize("\uFB01le \u2018a\u2019 \u201Cb\u201D \u2013\u2212 x\u3000y  \nz\t")).toBe("file 'a' \"b\" -- x y\nz");
    expect(applyEdits("caf\u00E9 \u201Cq\u201D\n", [{ oldText: "caf\u00E9 \"q\"", newText: "ok" }], false, "p").result).toBe("ok\n");
  });

  test("a consistently CRLF file keeps CRLF; a BOM is kept", async () => {
    const { call, put, root } = setup();
    put("w.txt", "\uFEFFone\r\ntwo\r\nthree\r\n");
    const r = await call("edit", { path: "w.txt", oldText: "two\nthree", newText: "2\n3" });
    expect(r.text).toBe("Successfully replaced 1 block(s) in w.txt.");
    expect(readFileSync(join(root, "w.txt"), "utf8")).toBe("\uFEFFone\r\n2\r\n3\r\n");
  });

  test("a file that is not UTF-8 is refused", async () => {
    const { call, put } = setup();
    put("latin1.txt", new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    expect(await call("edit", { path: "latin1.txt", oldText: "caf", newText: "x" })).toEqual({ ok: false, text: "latin1.txt is not valid UTF-8" });
  });

  test("mtime guard: a file changed on disk after edit read it is not overwritten", async () => {
    const { tools, put, get, root } = setup();
    put("g.txt", "alpha\n");
    const path = join(root, "g.txt");
    // execute stats the file synchronously, then reads it asynchronously: a write made right after the call lands
    // between the guard's first stat and the rename, as a concurrent writer's would.
    const pending = tools.edit!.execute({ path: "g.txt", oldText: "alpha", newText: "beta" }, never, () => {});
    writeFileSync(path, "alpha (changed elsewhere)\n");
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    await expect(pending).rejects.toThrow("g.txt was modified on disk after it was read; re-read the file and retry");
    expect(get("g.txt")).toBe("alpha (changed elsewhere)\n");
    expect(readdirSync(root)).toEqual(["g.txt"]); // no temp file left
    // Unchanged since the read, the same edit goes through.
    expect((await tools.edit!.execute({ path: "g.txt", oldText: "alpha", newText: "beta" }, never, () => {})).text).toBe(
      "Successfully replaced 1 block(s) in g.txt.",
    );
  });
});
