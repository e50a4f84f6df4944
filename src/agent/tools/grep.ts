// grep (reference §B.8): native, no ripgrep. A JavaScript RegExp over the files walk.ts lists (gitignore honoured,
// hidden files included), in sorted path order, skipping binaries and files over 10 MiB; output `rel:N: text` for
// matches and `rel-N- text` for context lines, each line clipped to 500 characters.

import { realpathSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { ToolError, type Tool } from "../core/tool.ts";
import { optBool, optInt, optStr, str } from "./args.ts";
import { withNotices } from "./ls.ts";
import { DEFAULT_MAX_BYTES, formatSize, GREP_MAX_LINE_LENGTH, truncateHead } from "./truncate.ts";
import { walk, type WalkEntry } from "./walk.ts";
import type { Workspace } from "./workspace.ts";

export const GREP_DEFAULT_LIMIT = 100;
export const GREP_MAX_CONTEXT = 10;
export const GREP_MAX_FILE_BYTES = 10 * 1024 * 1024;
const BINARY_SNIFF = 8192;

/** A `glob` argument as a filter: matched against the relative path, or the basename when it has no `/`; a
 * leading `!` excludes. */
export function globFilter(glob: string | undefined): ((rel: string) => boolean) | undefined {
  if (glob === undefined || glob === "") return undefined;
  const negate = glob.startsWith("!");
  const pattern = negate ? glob.slice(1) : glob;
  checkGlob(pattern);
  const g = new Bun.Glob(pattern);
  const onBase = !pattern.includes("/");
  return (rel) => g.match(onBase ? basename(rel) : rel) !== negate;
}

/** Bun.Glob accepts anything; refuse the shapes that can only be mistakes, so the model hears about them. */
export function checkGlob(pattern: string): void {
  let brackets = 0;
  let braces = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") i++;
    else if (c === "[" && brackets === 0) brackets = 1;
    else if (c === "]" && brackets > 0) brackets = 0;
    else if (c === "{" && brackets === 0) braces++;
    else if (c === "}" && brackets === 0) braces--;
    if (braces < 0) throw new ToolError(`Invalid glob: unmatched } in ${pattern}`);
  }
  if (brackets > 0) throw new ToolError(`Invalid glob: unclosed [ in ${pattern}`);
  if (braces > 0) throw new ToolError(`Invalid glob: unclosed { in ${pattern}`);
}

function clip(line: string, state: { clipped: boolean }): string {
  if (line.length <= GREP_MAX_LINE_LENGTH) return line;
  state.clipped = true;
  return line.slice(0, GREP_MAX_LINE_LENGTH) + "... [truncated]";
}

export function grepTool(ws: Workspace): Tool {
  return {
    name: "grep",
    description:
      "Search file contents for a pattern. The pattern is a JavaScript RegExp (ECMAScript syntax: `\\d`, `\\b`, " +
      "`(?:…)`, lookahead and lookbehind work; inline flags such as `(?i)` do not, use ignoreCase), matched against " +
      "each line on its own. Searches the files under " +
      "path (default the workspace root), honouring .gitignore, including hidden files, skipping binaries. " +
      "Output: `path:line: text` for matches, `path-line- text` for context lines; sorted by path; at most limit " +
      `matches (default ${GREP_DEFAULT_LIMIT}).`,
    parameters: {
      type: "object",
      properties: {
        pattern: { type: "string", description: "JavaScript regular expression (or a literal string with literal: true)" },
        path: { type: "string", description: "Directory or file to search (default .)" },
        glob: { type: "string", description: "Only files matching this glob, e.g. *.ts or src/**/*.ts; a leading ! excludes" },
        ignoreCase: { type: "boolean", description: "Case-insensitive search (default false)" },
        literal: { type: "boolean", description: "Treat pattern as a literal string (default false)" },
        context: { type: "integer", minimum: 0, maximum: GREP_MAX_CONTEXT, description: "Lines of context around each match (default 0)" },
        limit: { type: "integer", minimum: 1, description: `Maximum number of matching lines (default ${GREP_DEFAULT_LIMIT})` },
      },
      required: ["pattern"],
    },
    async execute(args) {
      const pattern = str(args, "pattern");
      const path = optStr(args, "path") ?? ".";
      const glob = optStr(args, "glob");
      const ignoreCase = optBool(args, "ignoreCase") ?? false;
      const literal = optBool(args, "literal") ?? false;
      const context = optInt(args, "context", 0, GREP_MAX_CONTEXT) ?? 0;
      const limit = optInt(args, "limit", 1) ?? GREP_DEFAULT_LIMIT;
      let re: RegExp;
      try {
        re = new RegExp(literal ? escapeRegExp(pattern) : pattern, ignoreCase ? "i" : "");
      } catch (e) {
        throw new ToolError(`Invalid regex: ${(e as Error).message}`);
      }
      const abs = ws.resolve(path);
      const shown = ws.displayPath(path);
      let isDir: boolean;
      try {
        isDir = statSync(abs).isDirectory();
      } catch {
        throw new ToolError(`Path not found: ${shown}`);
      }
      const filter = globFilter(glob);
      let files: { abs: string; rel: string }[];
      let walkNotice: string | undefined;
      if (isDir) {
        const w = await walk(abs, {
          dirs: false,
          ignoreRoot: ws.root,
          filter: (e: WalkEntry) => (filter === undefined || filter(e.rel)) && linkInside(ws, e, abs),
        });
        files = w.entries.map((e) => ({ abs: join(abs, e.rel), rel: e.rel }));
        walkNotice = w.notice;
      } else {
        files = [{ abs, rel: basename(abs) }];
      }

      const out: string[] = [];
      const clipState = { clipped: false };
      let matches = 0;
      let limitReached = false;
      for (const f of files) {
        if (limitReached) break;
        let bytes: Uint8Array;
        try {
          const st = statSync(f.abs);
          if (!st.isFile() || st.size > GREP_MAX_FILE_BYTES) continue; // a FIFO would block; a device never ends
          bytes = await Bun.file(f.abs).bytes();
        } catch {
          continue; // vanished or unreadable
        }
        if (bytes.subarray(0, BINARY_SNIFF).includes(0)) continue;
        const lines = new TextDecoder().decode(bytes).split("\n");
        if (lines[lines.length - 1] === "") lines.pop();
        let printedUpTo = -1; // index of the last line already printed in this file
        for (let i = 0; i < lines.length; i++) {
          const line = stripCR(lines[i]!);
          if (!re.test(line)) continue;
          if (matches === limit) {
            limitReached = true;
            break;
          }
          matches++;
          const from = Math.max(printedUpTo + 1, i - context);
          for (let k = from; k < i; k++) out.push(`${f.rel}-${k + 1}- ${clip(stripCR(lines[k]!), clipState)}`);
          out.push(`${f.rel}:${i + 1}: ${clip(line, clipState)}`);
          printedUpTo = i;
          // After-context: up to `context` lines, stopping at the next match (it prints itself).
          for (let k = i + 1; k <= Math.min(lines.length - 1, i + context); k++) {
            const next = stripCR(lines[k]!);
            if (re.test(next)) break;
            out.push(`${f.rel}-${k + 1}- ${clip(next, clipState)}`);
            printedUpTo = k;
          }
        }
      }
      if (matches === 0) return { text: walkNotice ? withNotices("No matches found", [walkNotice.slice(1, -1)]) : "No matches found" };
      const notices: string[] = [];
      if (limitReached) notices.push(`${limit} matches limit reached. Use limit=${limit * 2} for more, or refine pattern`);
      const t = truncateHead(out.join("\n"), { maxLines: Number.MAX_SAFE_INTEGER, maxBytes: DEFAULT_MAX_BYTES });
      if (t.truncated) notices.push(`${formatSize(DEFAULT_MAX_BYTES)} limit reached`);
      if (clipState.clipped) notices.push(`Some lines truncated to ${GREP_MAX_LINE_LENGTH} chars. Use read tool to see full lines`);
      if (walkNotice) notices.push(walkNotice.slice(1, -1));
      return { text: withNotices(t.content, notices) };
    },
  };
}

/** A walked symlink is searched only when it points inside the workspace (the walk itself never follows links). */
function linkInside(ws: Workspace, e: WalkEntry, dir: string): boolean {
  if (!e.link || ws.allowOutside) return true;
  try {
    return ws.contains(realpathSync(join(dir, e.rel)));
  } catch {
    return false; // dangling
  }
}

/** The pattern as a literal (RegExp.escape, spelled out for runtimes without it). */
export function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|\/-]/g, "\\$&");
}

function stripCR(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}
