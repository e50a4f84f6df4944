// The seven built-in tools, built for one workspace, and the --tools / --exclude-tools / --no-tools filter.

import type { Tool } from "../core/tool.ts";
import { bashTool } from "./bash.ts";
import { editTool } from "./edit.ts";
import { findTool } from "./find.ts";
import { grepTool } from "./grep.ts";
import { lsTool } from "./ls.ts";
import { readTool } from "./read.ts";
import { writeTool } from "./write.ts";
import type { Workspace } from "./workspace.ts";

export { killAllToolProcesses } from "./bash.ts";
export { scrubbedEnv, Workspace, type WorkspaceOptions } from "./workspace.ts";

export const TOOL_NAMES = ["read", "write", "edit", "bash", "ls", "grep", "find"] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

export interface ToolsConfig {
  workspace: Workspace;
  /** bash's default timeout in seconds (`--bash-timeout`; default 1800). */
  bashTimeoutSecs?: number;
  /** Where bash spills full outputs (default os.tmpdir(), which honours $TMPDIR). */
  tmpDir?: string;
  /** The environment bash commands start from, before the keys are scrubbed (default process.env). */
  env?: Record<string, string | undefined>;
}

export function defaultTools(cfg: ToolsConfig): Tool[] {
  const ws = cfg.workspace;
  return [
    readTool(ws),
    writeTool(ws),
    editTool(ws),
    bashTool(ws, { timeoutSecs: cfg.bashTimeoutSecs, tmpDir: cfg.tmpDir, env: cfg.env }),
    lsTool(ws),
    grepTool(ws),
    findTool(ws),
  ];
}

export interface ToolFilter {
  /** `--tools a,b`: only these. */
  tools?: readonly string[];
  /** `--exclude-tools a,b`: all but these. */
  exclude?: readonly string[];
  /** `--no-tools`: none. */
  none?: boolean;
}

/** The tools the flags leave, in their original order. An unknown name is an Error naming it and the known ones
 * (the CLI's usage error), not silently ignored. */
export function filterTools(tools: readonly Tool[], f: ToolFilter): Tool[] {
  if (f.none) return [];
  const known = new Set(tools.map((t) => t.name));
  for (const name of [...(f.tools ?? []), ...(f.exclude ?? [])]) {
    if (!known.has(name)) throw new Error(`unknown tool: ${name} (known: ${[...known].join(", ")})`);
  }
  const only = f.tools && f.tools.length > 0 ? new Set(f.tools) : undefined;
  const drop = new Set(f.exclude ?? []);
  return tools.filter((t) => (only === undefined || only.has(t.name)) && !drop.has(t.name));
}
