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
      return { text: formatText(await file.text(), offset, limit) };
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

/** The numbered text of lines offset.. of `content`, with the continuation notice. */
export function formatText(content: string, offset: number | undefined, limit: number | undefined): string {
  if (content === "") {
    if (offset !== undefined && offset > 1) throw new ToolError(`Offset ${offset} is beyond end of file (0 lines total)`);
    return "(empty file)";
  }
  const lines = content.split("\n");
  if (lines[lines.length - 1] === "") lines.pop(); // a final newline ends the last line
  const total = lines.length;
  const start = (offset ?? 1) - 1;
  if (start >= total) throw new ToolError(`Offset ${offset} is beyond end of file (${total} lines total)`);
  const maxLines = Math.min(limit ?? DEFAULT_MAX_LINES, DEFAULT_MAX_LINES);
  const out: string[] = [];
  let bytes = 0;
  let byBytes = false;
  let i = start;
  for (; i < total && out.length < maxLines; i++) {
    let text = lines[i]!;
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (byteLength(text) > READ_MAX_LINE_BYTES) text = headBytes(text, READ_MAX_LINE_BYTES) + "… [line truncated]";
    const line = String(i + 1).padStart(6) + "\t" + text;
    const add = byteLength(line) + (out.length > 0 ? 1 : 0);
    if (bytes + add > DEFAULT_MAX_BYTES) {
      byBytes = true;
      break;
    }
    bytes += add;
    out.push(line);
  }
  const last = i; // 1-based number of the last line shown
  let text = out.join("\n");
  if (last < total) {
    const a = start + 1;
    if (byBytes) {
      text += `\n\n[Showing lines ${a}-${last} of ${total} (${formatSize(DEFAULT_MAX_BYTES)} limit). Use offset=${last + 1} to continue.]`;
    } else if (limit !== undefined && limit <= DEFAULT_MAX_LINES) {
      text += `\n\n[${total - last} more lines in file. Use offset=${last + 1} to continue.]`;
    } else {
      text += `\n\n[Showing lines ${a}-${last} of ${total}. Use offset=${last + 1} to continue.]`;
    }
  }
  return text;
}
