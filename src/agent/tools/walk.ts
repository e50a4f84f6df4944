// The file list grep and find work from (reference §B.8 walk.ts). Inside a git work tree it is what
// `git ls-files --cached --others --exclude-standard` lists (nested .gitignore, info/exclude and the global excludes
// all honoured, as git itself sees them); elsewhere a built-in walker applies the .gitignore files it meets. `.git/`
// is always skipped, hidden files are included (rg/fd `--hidden`), and the result is sorted by path.

import { lstatSync, readdirSync, readFileSync, type Dirent } from "node:fs";
import { join } from "node:path";
import { scrubbedEnv } from "./workspace.ts";

export interface WalkEntry {
  /** Path relative to the walk root, `/`-separated, no trailing slash. */
  rel: string;
  dir: boolean;
  /** A symbolic link (not followed by the walk; readers check where it points). */
  link: boolean;
}

export interface WalkOptions {
  /** Keep an entry? (default: all). Entries refused here do not count toward maxResults. */
  filter?: (e: WalkEntry) => boolean;
  /** The workspace root: without git, the .gitignore files between it and the walk root apply too (default: only
   * those from the walk root down). */
  ignoreRoot?: string;
  /** Include directories (default true). */
  dirs?: boolean;
  maxResults?: number;
  maxVisited?: number;
}

export interface WalkResult {
  entries: WalkEntry[];
  /** Set when a cap stopped the walk early. */
  notice?: string;
}

export const WALK_MAX_RESULTS = 10_000;
export const WALK_MAX_VISITED = 200_000;

export async function walk(root: string, opts: WalkOptions = {}): Promise<WalkResult> {
  const git = await gitList(root);
  const state: WalkState = {
    out: [],
    visited: 0,
    maxResults: opts.maxResults ?? WALK_MAX_RESULTS,
    maxVisited: opts.maxVisited ?? WALK_MAX_VISITED,
    filter: opts.filter,
    dirs: opts.dirs ?? true,
    stopped: undefined,
  };
  if (git !== undefined) fromGit(root, git, state);
  else walkDir(root, "", ancestorLevels(root, opts.ignoreRoot), state);
  state.out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const notice =
    state.stopped === "results"
      ? `[Stopped after ${state.maxResults} results; narrow the path or the pattern]`
      : state.stopped === "visited"
        ? `[Stopped after visiting ${state.maxVisited} entries; narrow the path]`
        : undefined;
  return { entries: state.out, notice };
}

interface WalkState {
  out: WalkEntry[];
  visited: number;
  maxResults: number;
  maxVisited: number;
  filter: ((e: WalkEntry) => boolean) | undefined;
  dirs: boolean;
  stopped: "results" | "visited" | undefined;
}

/** Counts the entry as visited and keeps it if the filter does; false once a cap is hit (stop walking). */
function offer(e: WalkEntry, s: WalkState): boolean {
  if (++s.visited > s.maxVisited) {
    s.stopped = "visited";
    return false;
  }
  if (e.dir && !s.dirs) return true;
  if (s.filter && !s.filter(e)) return true;
  if (s.out.length >= s.maxResults) {
    s.stopped = "results";
    return false;
  }
  s.out.push(e);
  return true;
}

/** NUL-separated paths relative to `root` when `root` is inside a git work tree, else undefined. */
async function gitList(root: string): Promise<string[] | undefined> {
  try {
    // Async spawns: tools of one batch run side by side, and a sync spawn would stall the others.
    // The workspace's own .git/config must not run anything with the agent's environment: `core.fsmonitor` names a
    // command git runs on ls-files, so it is switched off, and the key is scrubbed from git's environment anyway
    // (Bun.spawn without `env` passes the environment the process started with, key included).
    const env = scrubbedEnv(process.env);
    const probe = Bun.spawn(["git", "-c", "core.fsmonitor=false", "-C", root, "rev-parse", "--is-inside-work-tree"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "ignore",
      env,
    });
    const inside = (await new Response(probe.stdout).text()).trim();
    if ((await probe.exited) !== 0 || inside !== "true") return undefined;
    const proc = Bun.spawn(["git", "-c", "core.fsmonitor=false", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "ignore",
      env,
    });
    const text = await new Response(proc.stdout).text();
    if ((await proc.exited) !== 0) return undefined;
    return text.split("\0").filter((p) => p !== "");
  } catch {
    return undefined; // no git on PATH
  }
}

function fromGit(root: string, paths: string[], s: WalkState): void {
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>(); // --cached and --others can both list a path during a merge
  for (const rel of paths) {
    if (rel === ".git" || rel.startsWith(".git/") || rel.includes("/.git/")) continue;
    if (seenFiles.has(rel)) continue;
    seenFiles.add(rel);
    // Parent directories first, each once.
    for (let i = rel.indexOf("/"); i !== -1; i = rel.indexOf("/", i + 1)) {
      const d = rel.slice(0, i);
      if (seenDirs.has(d)) continue;
      seenDirs.add(d);
      if (!offer({ rel: d, dir: true, link: false }, s)) return;
    }
    let st;
    try {
      st = lstatSync(join(root, rel));
    } catch {
      continue; // tracked but deleted from the work tree
    }
    // A submodule is listed as one path: it is a directory we do not enter.
    const e: WalkEntry = { rel, dir: st.isDirectory(), link: st.isSymbolicLink() };
    if (e.dir) {
      if (seenDirs.has(rel)) continue;
      seenDirs.add(rel);
    }
    if (!offer(e, s)) return;
  }
}

/** One .gitignore rule, compiled. */
interface Rule {
  negate: boolean;
  dirOnly: boolean;
  /** Matched against the path relative to the .gitignore's directory (pattern had a slash) or the basename. */
  anchored: boolean;
  glob: InstanceType<typeof Bun.Glob>;
}

interface IgnoreLevel {
  /** Directory of the .gitignore, relative to the walk root ("" for the root or a directory above it). */
  base: string;
  /** For a .gitignore above the walk root: the walk root's path relative to it, with a trailing "/". */
  prefix: string;
  rules: Rule[];
}

/** Parses .gitignore text: `#` comments, `!` negation, leading `/` and inner `/` anchor, trailing `/` for
 * directories only, `*`, `**`, `?`, `[…]` via Bun.Glob; `\#`, `\!` and `\ ` escapes. */
export function parseGitignore(text: string): Rule[] {
  const rules: Rule[] = [];
  for (let line of text.split("\n")) {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    // Trailing spaces are ignored unless escaped.
    while (line.endsWith(" ") && !line.endsWith("\\ ")) line = line.slice(0, -1);
    if (line === "" || line.startsWith("#")) continue;
    let negate = false;
    if (line.startsWith("!")) {
      negate = true;
      line = line.slice(1);
    } else if (line.startsWith("\\!") || line.startsWith("\\#")) line = line.slice(1);
    let dirOnly = false;
    if (line.endsWith("/")) {
      dirOnly = true;
      line = line.slice(0, -1);
    }
    if (line === "") continue;
    const anchored = line.includes("/");
    if (line.startsWith("/")) line = line.slice(1);
    line = line.replace(/\\ /g, " ");
    rules.push({ negate, dirOnly, anchored, glob: new Bun.Glob(line) });
  }
  return rules;
}

/** Whether `rel` (relative to the walk root) is ignored: the last matching rule decides, deeper files win. */
function ignored(rel: string, name: string, dir: boolean, levels: IgnoreLevel[]): boolean {
  let result = false;
  for (const level of levels) {
    const sub = level.prefix + (level.base === "" ? rel : rel.slice(level.base.length + 1));
    for (const r of level.rules) {
      if (r.dirOnly && !dir) continue;
      if (r.glob.match(r.anchored ? sub : name)) result = !r.negate;
    }
  }
  return result;
}

/** The .gitignore files of the directories from `top` down to `root`'s parent, as levels whose patterns see paths
 * from their own directory. */
function ancestorLevels(root: string, top: string | undefined): IgnoreLevel[] {
  if (top === undefined || root === top || !root.startsWith(top === "/" ? "/" : top + "/")) return [];
  const parts = root.slice(top.length).split("/").filter((p) => p !== "");
  const levels: IgnoreLevel[] = [];
  let dir = top;
  for (let i = 0; i < parts.length; i++) {
    try {
      const rules = parseGitignore(readFileSync(join(dir, ".gitignore"), "utf8"));
      if (rules.length > 0) levels.push({ base: "", prefix: parts.slice(i).join("/") + "/", rules });
    } catch {
      // none here
    }
    dir = join(dir, parts[i]!);
  }
  return levels;
}

/** Depth-first in sorted order, so that a cap keeps the smallest paths. Symlinked directories are not entered. */
function walkDir(abs: string, rel: string, levels: IgnoreLevel[], s: WalkState): boolean {
  let dirents: Dirent[];
  try {
    dirents = readdirSync(abs, { withFileTypes: true });
  } catch {
    return true; // unreadable directory: skipped
  }
  let here = levels;
  if (dirents.some((d) => d.name === ".gitignore" && !d.isDirectory())) {
    try {
      const rules = parseGitignore(readFileSync(join(abs, ".gitignore"), "utf8"));
      if (rules.length > 0) here = [...levels, { base: rel, prefix: "", rules }];
    } catch {
      // unreadable .gitignore: ignore it
    }
  }
  dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const d of dirents) {
    if (d.name === ".git") continue;
    const childRel = rel === "" ? d.name : `${rel}/${d.name}`;
    const isDir = d.isDirectory();
    if (ignored(childRel, d.name, isDir, here)) continue;
    if (!offer({ rel: childRel, dir: isDir, link: d.isSymbolicLink() }, s)) return false;
    if (isDir && !walkDir(join(abs, d.name), childRel, here, s)) return false;
  }
  return true;
}
