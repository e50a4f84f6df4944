// read (reference §B.8): an image comes back as an image block; a text file comes back line-numbered as the seed
// prints it (`%6d\t…`), each line clipped at 4000 bytes, at most 2000 lines or 51,200 bytes, with a notice saying
// how to continue.

import { statSync } from "node:fs";
import type { ImageSource } from "../core/types.ts";
import { ToolError, type Tool } from "../core/tool.ts";
import { optInt, str } from "./args.ts";
import { byteLength, DEFAULT_MAX_BYTES, DEFAULT_MAX_LINES, formatSize, headBytes } from "./truncate.ts";
import type { Workspace } from "./workspace.ts";

export const READ_MAX_LINE_BYTES = 4000;
/** 4.5 MiB of base64. */
export const IMAGE_MAX_BASE64 = 4_718_592;
const BINARY_SNIFF = 8192;

export function sniffImage(head: Uint8Array): string | undefined {
  const b = head;
  if (b.length >= 4 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "image/png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (b.length >= 4 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38) return "image/gif";
  if (
    b.length >= 12 &&
    b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 &&
    b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50
  ) {
    return "image/webp";
  }
  return undefined;
}

export function readTool(ws: Workspace): Tool {
  return {
    name: "read",
    description:
      "Read a file in the workspace. Text comes back with line numbers (`     N\\t<line>`), at most 2000 lines or " +
      "50KB per call and 4000 bytes per line; use offset (1-based line) and limit to page through longer files. " +
      "PNG, JPEG, GIF and WEBP images come back as images.",
    parameters: {
      type: "object",
      properties: {
        path: { type: "string", description: "File path, relative to the workspace root or absolute" },
        offset: { type: "integer", minimum: 1, description: "Line number to start at (1-based)" },
        limit: { type: "integer", minimum: 1, description: "Maximum number of lines to return (at most 2000)" },
      },
      required: ["path"],
    },
    async execute(args) {
      const path = str(args, "path");
      const offset = optInt(args, "offset", 1);
      const limit = optInt(args, "limit", 1);
      const abs = ws.resolve(path);
      const shown = ws.displayPath(path);
      let size: number;
      try {
        const st = statSync(abs);
        if (st.isDirectory()) throw new ToolError(`Not a file: ${shown} (a directory; use ls)`);
        // A FIFO or a device would block the read or never end.
        if (!st.isFile()) throw new ToolError(`Not a regular file: ${shown}`);
        size = st.size;
      } catch (e) {
        if (e instanceof ToolError) throw e;
        throw new ToolError(`File not found: ${shown}`);
      }
      const file = Bun.file(abs);
      const head = new Uint8Array(await file.slice(0, BINARY_SNIFF).arrayBuffer());
      const mime = sniffImage(head.subarray(0, 16));
      if (mime !== undefined) return readImage(abs, size, mime);
      if (head.includes(0)) throw new ToolError(`Binary file: ${shown} (${size} bytes)`);
      return { text: await readLines(abs, offset, limit) };
    },
  };
}

async function readImage(abs: string, size: number, mime: string) {
  const b64len = 4 * Math.ceil(size / 3);
  if (b64len > IMAGE_MAX_BASE64) {
    throw new ToolError(`Image too large (${(b64len / (1024 * 1024)).toFixed(1)}MB base64; limit 4.5MB)`);
  }
  const data = Buffer.from(await Bun.file(abs).arrayBuffer()).toString("base64");
  const image: ImageSource = { type: "base64", media_type: mime, data };
  return { text: `Read image file [${mime}]`, images: [image] };
}

/** The numbered lines of one read call, fed line by line so that a file of any size is read in one pass holding
 * only the lines it shows: each line clipped at 4000 bytes, at most `limit` (≤ 2000) lines and 51,200 bytes. */
class LineWindow {
  private readonly start: number;
  private readonly maxLines: number;
  private readonly out: string[] = [];
  private bytes = 0;
  private full = false;
  private byBytes = false;
  /** Lines seen so far (= the file's line count once fed to the end). */
  total = 0;
  /** 1-based number of the last line shown. */
  last = 0;

  constructor(
    private readonly offset: number | undefined,
    private readonly limit: number | undefined,
  ) {
    this.start = (offset ?? 1) - 1;
    this.maxLines = Math.min(limit ?? DEFAULT_MAX_LINES, DEFAULT_MAX_LINES);
  }

  /** True once the window is complete (later lines are only counted). */
  get done(): boolean {
    return this.full;
  }

  line(raw: string): void {
    const i = this.total++;
    if (this.full || i < this.start) return;
    let text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (byteLength(text) > READ_MAX_LINE_BYTES) text = headBytes(text, READ_MAX_LINE_BYTES) + "… [line truncated]";
    const line = String(i + 1).padStart(6) + "\t" + text;
    const add = byteLength(line) + (this.out.length > 0 ? 1 : 0);
    if (this.bytes + add > DEFAULT_MAX_BYTES) {
      this.byBytes = true;
      this.full = true;
      return;
    }
    this.bytes += add;
    this.out.push(line);
    this.last = i + 1;
    if (this.out.length >= this.maxLines) this.full = true;
  }

  finish(): string {
    if (this.total === 0) {
      if (this.offset !== undefined && this.offset > 1) throw new ToolError(`Offset ${this.offset} is beyond end of file (0 lines total)`);
      return "(empty file)";
    }
    if (this.start >= this.total) throw new ToolError(`Offset ${this.offset} is beyond end of file (${this.total} lines total)`);
    let text = this.out.join("\n");
    const { last, total } = this;
    if (last < total) {
      const a = this.start + 1;
      if (this.byBytes) {
        text += `\n\n[Showing lines ${a}-${last} of ${total} (${formatSize(DEFAULT_MAX_BYTES)} limit). Use offset=${last + 1} to continue.]`;
      } else if (this.limit !== undefined && this.limit <= DEFAULT_MAX_LINES) {
        text += `\n\n[${total - last} more lines in file. Use offset=${last + 1} to continue.]`;
      } else {
        text += `\n\n[Showing lines ${a}-${last} of ${total}. Use offset=${last + 1} to continue.]`;
      }
    }
    return text;
  }
}

/** The numbered text of lines offset.. of `content`, with the continuation notice. */
export function formatText(content: string, offset: number | undefined, limit: number | undefined): string {
  const w = new LineWindow(offset, limit);
  const lines = content.split("\n");
  if (lines[lines.length - 1] === "") lines.pop(); // a final newline ends the last line
  for (const l of lines) w.line(l);
  return w.finish();
}

/** Streams `abs` through a LineWindow. A line is held only up to what the window needs: past 4001 characters (at
 * least 4001 bytes, so it will be clipped anyway) the rest of it is only scanned for its end. */
async function readLines(abs: string, offset: number | undefined, limit: number | undefined): Promise<string> {
  const w = new LineWindow(offset, limit);
  const decoder = new TextDecoder();
  let carry = "";
  let longLine = false;
  const HOLD = READ_MAX_LINE_BYTES + 1;
  for await (const chunk of Bun.file(abs).stream()) {
    if (w.done) {
      // Only counting now: LFs in raw bytes, no decoding.
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
        w.line("");
        carry = "";
      }
      const tail = chunk.length - 1 - chunk.lastIndexOf(10);
      if (tail > 0) carry = "x"; // an open last line still counts as a line
      continue;
    }
    const text = decoder.decode(chunk, { stream: true });
    let from = 0;
    for (let lf = text.indexOf("\n"); lf !== -1; lf = text.indexOf("\n", from)) {
      w.line(longLine ? carry : carry + text.slice(from, lf));
      carry = "";
      longLine = false;
      from = lf + 1;
    }
    if (!longLine) {
      carry += text.slice(from);
      if (carry.length > HOLD) {
        carry = carry.slice(0, HOLD);
        longLine = true;
      }
    }
  }
  if (!w.done) carry += longLine ? "" : decoder.decode();
  if (carry !== "") w.line(carry);
  return w.finish();
}
