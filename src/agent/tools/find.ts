// find (reference §B.8): native, no fd. A glob over the files and directories walk.ts lists (gitignore honoured,
// hidden files included): a pattern without `/` matches the basename at any depth, one with `/` the path relative
// to the search root. Sorted; directories end with `/`.

import { basename } from "node:path";
import type { Tool } from "../core/tool.ts";
import { optInt, optStr, str } from "./args.ts";
import { checkGlob } from "./grep.ts";
import { withNotices } from "./ls.ts";
import { DEFAULT_MAX_BYTES, formatSize, truncateHead } from "./truncate.ts";
import { walk, WALK_MAX_RESULTS } from "./walk.ts";
import type { Workspace } from "./workspace.ts";

export const FIND_DEFAULT_LIMIT = 1000;

/** The matcher for a find pattern: basename when it has no `/`; else the relative path, `**\/`-prefixed unless it
 * starts with `**\/` or `/` (a leading `/` anchors at the search root). */
export function findMatcher(pattern: string): (rel: string) => boolean {
  checkGlob(pattern);
  if (!pattern.includes("/")) {
    const g = new Bun.Glob(pattern);
    return (rel) => g.match(basename(rel));
  }
  let p = pattern;
  if (p.startsWith("/")) p = p.slice(1);
  else if (!p.startsWith("**/")) p = `**/${p}`;
  if (p.endsWith("/")) p = p.slice(0, -1); // `dir/` names the directory; entries are matched without the slash
  const g = new Bun.Glob(p);
  return (rel) => g.match(rel);
}

export function findTool(ws: Workspace): Tool {
  return {
    name: "find",
    description:
      "Find files and directories by glob pattern (e.g. `*.ts`, `src/**/*.test.ts`, `README*`). A pattern without " +
      "`/` matches the name at any depth; one with `/` matches the path relative to path. Honours .gitignore, " +
      "includes hidden files; sorted; directories end with `/`. " +
      `At most limit results (default ${FIND_DEFAULT_LIMIT}).`,
    parameters: {
      type: "object",
      properties: {
        pattern: { type: "string", description: "Glob pattern: *, **, ?, [abc], {a,b}" },
        path: { type: "string", description: "Directory to search (default .)" },
        limit: { type: "integer", minimum: 1, description: `Maximum number of results (default ${FIND_DEFAULT_LIMIT})` },
      },
      required: ["pattern"],
    },
    async execute(args) {
      const pattern = str(args, "pattern");
      const path = optStr(args, "path") ?? ".";
      const limit = Math.min(optInt(args, "limit", 1) ?? FIND_DEFAULT_LIMIT, WALK_MAX_RESULTS);
      const match = findMatcher(pattern);
      const { abs, shown } = ws.directory(path);
      // One more than the limit, so "limit reached" is only said when there is more.
      const w = await walk(abs, { filter: (e) => match(e.rel), maxResults: limit + 1, ignoreRoot: ws.root });
      const notices: string[] = [];
      let entries = w.entries;
      if (entries.length > limit) {
        entries = entries.slice(0, limit);
        notices.push(`${limit} results limit reached. Use limit=${limit * 2} for more, or refine pattern`);
      } else if (w.notice) notices.push(w.notice.slice(1, -1));
      if (entries.length === 0) return { text: withNotices("No files found matching pattern", notices) };
      const t = truncateHead(entries.map((e) => (e.dir ? `${e.rel}/` : e.rel)).join("\n"), {
        maxLines: Number.MAX_SAFE_INTEGER,
        maxBytes: DEFAULT_MAX_BYTES,
      });
      if (t.truncated) notices.push(`${formatSize(DEFAULT_MAX_BYTES)} limit reached`);
      return { text: withNotices(t.content, notices) };
    },
  };
}
