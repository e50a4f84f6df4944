// ls (reference §B.8): one directory's entries, dotfiles included, directories marked with `/` (following
// symlinks), sorted case-insensitively, at most `limit` entries and 50KB.

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ToolError, type Tool } from "../core/tool.ts";
import { optInt, optStr } from "./args.ts";
import { DEFAULT_MAX_BYTES, formatSize, truncateHead } from "./truncate.ts";
import type { Workspace } from "./workspace.ts";

export const LS_DEFAULT_LIMIT = 500;
export const LS_HARD_CAP = 10_000;

/** pi's order: case-insensitive, then case-sensitive to break ties (so the order is total and stable). */
export function compareNames(a: string, b: string): number {
  const c = a.toLowerCase().localeCompare(b.toLowerCase());
  if (c !== 0) return c;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Bracketed notices after one blank line. */
export function withNotices(text: string, notices: string[]): string {
  return notices.length === 0 ? text : `${text}\n\n${notices.map((n) => `[${n}]`).join("\n")}`;
}

export function lsTool(ws: Workspace): Tool {
  return {
    name: "ls",
    description:
      "List a directory's entries (dotfiles included), sorted case-insensitively; directories end with `/`. " +
      `At most limit entries (default ${LS_DEFAULT_LIMIT}) and 50KB.`,
    parameters: {
      type: "object",
      properties: {
        path: { type: "string", description: "Directory, relative to the workspace root or absolute (default .)" },
        limit: { type: "integer", minimum: 1, description: `Maximum number of entries (default ${LS_DEFAULT_LIMIT})` },
      },
    },
    async execute(args) {
      const path = optStr(args, "path") ?? ".";
      const limit = Math.min(optInt(args, "limit", 1) ?? LS_DEFAULT_LIMIT, LS_HARD_CAP);
      const { abs, shown } = ws.directory(path);
      let names: string[];
      try {
        names = readdirSync(abs);
      } catch (e) {
        throw new ToolError(`Cannot list ${shown}: ${(e as { code?: string }).code ?? String(e)}`);
      }
      names.sort(compareNames);
      const lines: string[] = [];
      let more = false;
      for (const name of names) {
        let dir: boolean;
        try {
          dir = statSync(join(abs, name)).isDirectory(); // follows symlinks: a link to a directory is marked
        } catch {
          continue; // dangling link, or vanished since readdir
        }
        if (lines.length >= limit) {
          more = true;
          break;
        }
        lines.push(dir ? `${name}/` : name);
      }
      if (lines.length === 0) return { text: "(empty directory)" };
      const notices: string[] = [];
      if (more) notices.push(`${limit} entries limit reached. Use limit=${limit * 2} for more`);
      const t = truncateHead(lines.join("\n"), { maxLines: Number.MAX_SAFE_INTEGER, maxBytes: DEFAULT_MAX_BYTES });
      if (t.truncated) notices.push(`${formatSize(DEFAULT_MAX_BYTES)} limit reached`);
      return { text: withNotices(t.content, notices) };
    },
  };
}
