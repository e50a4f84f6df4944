// Workspace confinement (reference §B.7; neither pi nor the seed has it). Every path a tool touches goes through
// Workspace.resolve: the result is canonical (symlinks resolved, dangling ones too) and, unless the workspace was
// opened with allowOutside, inside the root. Bash cannot be confined; it only gets the root as its cwd and an
// environment without the agent's keys (scrubbedEnv).

import { lstatSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { ToolError } from "../core/tool.ts";

export interface WorkspaceOptions {
  /** `--allow-outside-workspace`: paths are still canonicalised but never refused. */
  allowOutside?: boolean;
  /** Where `~` expands to (default: HOME, else os.homedir()). */
  home?: string;
}

// U+00A0, U+1680, U+2000–U+200A, U+202F, U+205F, U+3000: spaces a model sometimes emits inside a file name.
const UNICODE_SPACES = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g;
// Linux's own limit on symlinks followed while resolving one path.
const MAX_LINK_HOPS = 40;

export class Workspace {
  /** realpath of the cwd the workspace was opened on. */
  readonly root: string;
  readonly allowOutside: boolean;
  private readonly home: string;

  constructor(cwd: string, opts: WorkspaceOptions = {}) {
    this.root = realpathSync(resolvePath(cwd));
    this.allowOutside = opts.allowOutside ?? false;
    this.home = opts.home ?? process.env.HOME ?? homedir();
  }

  /** The canonical absolute path `path` names. Throws ToolError `Path outside workspace: …` when it leaves the root. */
  resolve(path: string): string {
    const expanded = this.expand(path);
    const canonical = canonicalize(expanded, 0);
    if (!this.allowOutside && !this.contains(canonical)) {
      throw new ToolError(`Path outside workspace: ${path} (workspace: ${this.root})`);
    }
    return canonical;
  }

  /** True when the canonical path `abs` is the root or below it. */
  contains(abs: string): boolean {
    return abs === this.root || abs.startsWith(this.root === "/" ? "/" : this.root + "/");
  }

  /** The path as the model wrote it, cleaned the way resolve cleans it (for messages). */
  displayPath(path: string): string {
    return cleanPath(path);
  }

  /** A directory to list or search (ls, find): its canonical path and its name for messages. Throws ToolError
   * `Path not found: P` or `Not a directory: P`. */
  directory(path: string): { abs: string; shown: string } {
    const abs = this.resolve(path);
    const shown = cleanPath(path);
    let isDir: boolean;
    try {
      isDir = statSync(abs).isDirectory();
    } catch {
      throw new ToolError(`Path not found: ${shown}`);
    }
    if (!isDir) throw new ToolError(`Not a directory: ${shown}`);
    return { abs, shown };
  }

  private expand(path: string): string {
    const p = cleanPath(path);
    if (p === "~") return this.home;
    if (p.startsWith("~/")) return join(this.home, p.slice(2));
    return isAbsolute(p) ? resolvePath(p) : resolvePath(this.root, p);
  }
}

function cleanPath(path: string): string {
  const p = path.startsWith("@") ? path.slice(1) : path;
  return p.replace(UNICODE_SPACES, " ");
}

/** realpath of the longest existing prefix, the rest appended; a dangling symlink on the way is followed by hand so
 * that a link pointing out of the workspace to a file that does not exist yet is still seen as pointing out. */
function canonicalize(abs: string, hops: number): string {
  try {
    return realpathSync(abs);
  } catch {
    // fall through: some component does not exist (or is a dangling link)
  }
  const parent = dirname(abs);
  if (parent === abs) return abs;
  const base = basename(abs);
  const canonicalParent = canonicalize(parent, hops);
  const candidate = join(canonicalParent, base);
  let isLink = false;
  try {
    isLink = lstatSync(candidate).isSymbolicLink();
  } catch {
    return candidate; // does not exist: the rest of the path is plain names
  }
  if (!isLink || hops >= MAX_LINK_HOPS) return candidate;
  const target = readlinkSync(candidate);
  return canonicalize(resolvePath(canonicalParent, target), hops + 1);
}

const SCRUBBED = new Set(["AI_AGENT_KEY", "AI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"]);

/** `env` without the agent's key, the direct-mode key, the providers' keys and the gateway's pool keys: what a
 * command the model runs gets, so that it cannot read a key (reference §B.7). */
export function scrubbedEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || SCRUBBED.has(k) || k.startsWith("AI_POOL_KEY_")) continue;
    out[k] = v;
  }
  return out;
}
