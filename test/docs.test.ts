// The repository's documentation stands alone and its commands run as written from a fresh clone: no document or
// benchmark points outside the repository, every relative link (and #anchor) resolves, README's shell commands never
// call a bare `bun` (npm ci does not put it on PATH), and the systemd unit's install steps are the README's.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { REPO_ROOT } from "./helpers/gateway.ts";

const read = (rel: string): string => readFileSync(join(REPO_ROOT, rel), "utf8");
const DOCS = ["README.md", "ARCHITECTURE.md", ...readdirSync(join(REPO_ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lower case, punctuation other than `-` and `_` dropped, spaces to `-`. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const line of markdown.split("\n")) {
    const m = /^#{1,6} +(.+?) *$/.exec(line);
    if (m === null) continue;
    out.add(
      (m[1] as string)
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, "")
        .replace(/ /g, "-"),
    );
  }
  return out;
}

/** The fenced ```sh blocks of a markdown file, as lines. */
function shellLines(markdown: string): string[] {
  const out: string[] = [];
  let inSh = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(line);
      continue;
    }
    if (inSh) out.push(line);
  }
  return out;
}

describe("documentation", () => {
  test("no document, benchmark or package field points outside the repository", () => {
    const files = [...DOCS, "package.json", ...readdirSync(join(REPO_ROOT, "bench")).filter((f) => /\.(ts|sh|mjs|lua|conf)$/.test(f)).map((f) => `bench/${f}`)];
    for (const dir of ["bench/load"]) for (const f of readdirSync(join(REPO_ROOT, dir))) files.push(`${dir}/${f}`);
    for (const f of files) {
      const text = read(f);
      expect({ file: f, outside: /\.\.\/shared|\bSPEC\b/.exec(text)?.[0] }).toEqual({ file: f, outside: undefined });
    }
  });

  test("every relative link and anchor in the docs resolves", () => {
    for (const doc of DOCS) {
      const text = read(doc);
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const [path, anchor] = target.split("#") as [string, string | undefined];
        const file = path === "" ? join(REPO_ROOT, doc) : resolve(dirname(join(REPO_ROOT, doc)), path);
        expect({ doc, target, exists: existsSync(file) }).toEqual({ doc, target, exists: true });
        if (anchor !== undefined && file.endsWith(".md")) {
          expect({ doc, target, anchor: anchors(readFileSync(file, "utf8")).has(anchor) }).toEqual({ doc, target, anchor: true });
        }
      }
    }
  });

  test("README's shell commands never call a bare bun (not on PATH after npm ci)", () => {
    const lines = shellLines(read("README.md"));
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect({ line, bareBun: /(^|[;&|(]\s*|\s)bun\s/.test(line.replace(/npx bun\s/g, "")) }).toEqual({ line, bareBun: false });
  });

  test("the systemd unit's install steps are README's, file for file", () => {
    const readme = shellLines(read("README.md"))
      .filter((l) => /^sudo (install|useradd|systemctl)/.test(l))
      .map((l) => l.replace(/^sudo /, "").replace(/ && sudo /g, " && ").replace(/\s+#.*$/, "").trim());
    const unit = read("deploy/beyond-ai.service")
      .split("\n")
      .filter((l) => /^#\s+(install|useradd|systemctl)/.test(l))
      .map((l) => l.replace(/^#\s+/, "").replace(/\s+#.*$/, "").trim());
    expect(readme.length).toBeGreaterThanOrEqual(6);
    expect(unit).toEqual(readme);
    expect(unit.some((l) => l.includes("config.example.toml /etc/beyond-ai/config.toml"))).toBe(true);
  });
});
