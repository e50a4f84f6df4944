// write (reference §B.8): mkdir -p the parent, then an atomic replace (temp file `.<name>.tmp.<rand>` opened with
// wx, the old file's mode kept, rename over), so a reader never sees half a file and a crash never leaves one. The
// path is canonical (Workspace.resolve), so writing "through" a final symlink replaces the file it points to and
// keeps the link.

import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ToolError, type Tool } from "../core/tool.ts";
import { str } from "./args.ts";
import type { Workspace } from "./workspace.ts";

/** Replaces `abs` with `data` atomically. `beforeRename` runs after the data is on disk, right before the rename
 * (edit's mtime guard); a throw there removes the temp file and leaves the target untouched. */
export function writeAtomic(abs: string, data: Uint8Array | string, beforeRename?: () => void): void {
  let mode: number | undefined;
  try {
    const st = statSync(abs);
    if (st.isDirectory()) throw new ToolError(`Not a file: ${abs} (a directory)`);
    mode = st.mode & 0o7777;
  } catch (e) {
    if (e instanceof ToolError) throw e;
    // does not exist yet: the default mode (0666 less the umask)
  }
  const dir = dirname(abs);
  const rand = Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0");
  const tmp = join(dir, `.${basename(abs)}.tmp.${rand}`);
  const fd = openSync(tmp, "wx", mode ?? 0o666);
  try {
    try {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (mode !== undefined) chmodSync(tmp, mode); // open's mode is subject to the umask; the old mode is not
    beforeRename?.();
    renameSync(tmp, abs);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw e;
  }
}

/** A filesystem error as a short message for the model (no stack, the code and the path it was given). */
export function fsMessage(action: string, shown: string, e: unknown): string {
  if (e instanceof ToolError) return e.message;
  const code = (e as { code?: string }).code;
  if (code === "EACCES" || code === "EPERM") return `Permission denied: cannot ${action} ${shown}`;
  if (code === "EISDIR") return `Not a file: ${shown} (a directory)`;
  if (code === "ENOTDIR") return `Not a directory: a parent of ${shown} is a file`;
  if (code === "ENOSPC") return `No space left on device: cannot ${action} ${shown}`;
  return `Cannot ${action} ${shown}: ${code ?? (e instanceof Error ? e.message : String(e))}`;
}

export function writeTool(ws: Workspace): Tool {
  return {
    name: "write",
    description:
      "Create or overwrite a file in the workspace with the given content (parent directories are created). " +
      "Prefer edit for changing part of an existing file.",
    parameters: {
      type: "object",
      properties: {
        path: { type: "string", description: "File path, relative to the workspace root or absolute" },
        content: { type: "string", description: "The whole new content of the file" },
      },
      required: ["path", "content"],
    },
    writeTarget(args) {
      try {
        return typeof args.path === "string" ? ws.resolve(args.path) : undefined;
      } catch {
        return undefined; // refused: execute reports it
      }
    },
    async execute(args) {
      const path = str(args, "path");
      const content = str(args, "content");
      const abs = ws.resolve(path);
      const shown = ws.displayPath(path);
      try {
        mkdirSync(dirname(abs), { recursive: true });
        writeAtomic(abs, content);
      } catch (e) {
        if (e instanceof ToolError && e.message.startsWith("Not a file:")) throw new ToolError(`Not a file: ${shown} (a directory)`);
        throw new ToolError(fsMessage("write", shown, e));
      }
      return { text: `Successfully wrote ${Buffer.byteLength(content, "utf8")} bytes to ${shown}` };
    },
  };
}
