// The system prompt (reference §B.9): the seed's base text, one line per enabled tool, the workspace and the date, then
// the project's AGENTS.md and CLAUDE.md (each at most 32 KiB) under "# Project Context". `--system-prompt` replaces
// the base text (`@file` reads it from a file); `--append-system-prompt` adds text at the end.

import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export const BASE_SYSTEM_PROMPT =
  "You are the Beyond coding agent. You operate inside a real working directory with tools: read, write, edit, bash, ls, grep, find. Use them to accomplish the user's task directly — inspect before you change, make minimal edits, and verify your work. Be concise.";

export const CONTEXT_FILES = ["AGENTS.md", "CLAUDE.md"] as const;
export const CONTEXT_FILE_MAX_BYTES = 32 * 1024;

export interface SystemPromptOptions {
  root: string;
  /** The enabled tools, in the order the prompt lists them. */
  tools: ReadonlyArray<{ name: string; description: string }>;
  /** Replaces the base text. */
  base?: string;
  append?: string;
  /** Leave out AGENTS.md / CLAUDE.md. */
  noContextFiles?: boolean;
  now?: Date;
}

/** A context file's text, cut at 32 KiB on a character boundary (with a note), or undefined when absent. */
function readContextFile(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return undefined;
    const bytes = readFileSync(path);
    if (bytes.byteLength <= CONTEXT_FILE_MAX_BYTES) return bytes.toString("utf8");
    // TextDecoder drops a character cut at the end instead of inventing one.
    const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(0, CONTEXT_FILE_MAX_BYTES)).replace(/\uFFFD$/, "");
    return `${text}\n[truncated at 32.0KB]`;
  } catch {
    return undefined;
  }
}

/** The first line of a tool's description, for the one-line listing. */
function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return (i < 0 ? s : s.slice(0, i)).trim();
}

export function buildSystemPrompt(o: SystemPromptOptions): string {
  const parts: string[] = [o.base ?? BASE_SYSTEM_PROMPT, ""];
  if (o.tools.length > 0) {
    parts.push("Available tools:");
    for (const t of o.tools) parts.push(`- ${t.name}: ${firstLine(t.description)}`);
    parts.push("");
  }
  const now = o.now ?? new Date();
  parts.push(`Current working directory: ${o.root}`, `Current date: ${now.toISOString().slice(0, 10)}`);
  if (o.noContextFiles !== true) {
    const found: string[] = [];
    for (const name of CONTEXT_FILES) {
      const text = readContextFile(join(o.root, name));
      if (text !== undefined) found.push(`## ${name}\n\n${text.trimEnd()}`);
    }
    if (found.length > 0) parts.push("", "# Project Context", "", found.join("\n\n"));
  }
  if (o.append !== undefined && o.append !== "") parts.push("", o.append);
  return parts.join("\n");
}

/** `--system-prompt` value: `@path` reads the file (relative to `cwd`), anything else is the text itself. */
export function resolvePromptArg(value: string, cwd: string): string {
  if (!value.startsWith("@")) return value;
  const path = value.slice(1);
  return readFileSync(path.startsWith("/") ? path : join(cwd, path), "utf8");
}
