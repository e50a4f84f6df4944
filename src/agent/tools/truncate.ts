// Output caps shared by every tool (pi's truncate.ts, reference §A.1.3 and §B.6): at most 2000 lines and 51,200 bytes
// reach the model. truncateHead (read, ls, grep, find) keeps whole lines from the start; truncateTail (bash) keeps
// the end and may cut into the last line, but never inside a UTF-8 character.

export const DEFAULT_MAX_LINES = 2000;
export const DEFAULT_MAX_BYTES = 51_200;
export const GREP_MAX_LINE_LENGTH = 500;

export interface TruncationOptions {
  maxLines?: number;
  maxBytes?: number;
}

export interface TruncationResult {
  content: string;
  truncated: boolean;
  truncatedBy: "lines" | "bytes" | null;
  totalLines: number;
  totalBytes: number;
  outputLines: number;
  outputBytes: number;
  /** truncateTail only: the kept text starts inside the last line (that line alone is over maxBytes). */
  lastLinePartial: boolean;
  /** truncateHead only: the first line alone is over maxBytes, so nothing is kept. */
  firstLineExceedsLimit: boolean;
  maxLines: number;
  maxBytes: number;
}

const encoder = new TextEncoder();

export function byteLength(s: string): number {
  // Buffer.byteLength counts without allocating; UTF-8 length of a JS string.
  return Buffer.byteLength(s, "utf8");
}

/** `B`, then `x.xKB`, then `x.xMB` (pi's formatSize). */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)}KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)}MB`;
}

/** Lines of `content`: split on LF; a final LF ends the last line rather than opening an empty one, so
 * "1\n2\n" is two lines (as `seq` and `wc -l` count them). */
export function splitLines(content: string): string[] {
  if (content === "") return [];
  const lines = content.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function result(
  content: string,
  lines: string[],
  totalBytes: number,
  outputLines: number,
  truncatedBy: "lines" | "bytes" | null,
  maxLines: number,
  maxBytes: number,
  extra: { lastLinePartial?: boolean; firstLineExceedsLimit?: boolean } = {},
): TruncationResult {
  return {
    content,
    truncated: truncatedBy !== null,
    truncatedBy,
    totalLines: lines.length,
    totalBytes,
    outputLines,
    outputBytes: byteLength(content),
    lastLinePartial: extra.lastLinePartial ?? false,
    firstLineExceedsLimit: extra.firstLineExceedsLimit ?? false,
    maxLines,
    maxBytes,
  };
}

/** Keeps whole lines from the start: at most maxLines lines and maxBytes bytes (newlines between lines counted).
 * A trailing newline of the input is dropped from the output. */
export function truncateHead(content: string, opts: TruncationOptions = {}): TruncationResult {
  const maxLines = opts.maxLines ?? DEFAULT_MAX_LINES;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const lines = splitLines(content);
  const totalBytes = byteLength(content);
  if (lines.length <= maxLines && totalBytes <= maxBytes) {
    return result(lines.join("\n"), lines, totalBytes, lines.length, null, maxLines, maxBytes);
  }
  let bytes = 0;
  let n = 0;
  let by: "lines" | "bytes" | null = null;
  for (const line of lines) {
    if (n >= maxLines) {
      by = "lines";
      break;
    }
    const add = byteLength(line) + (n > 0 ? 1 : 0);
    if (bytes + add > maxBytes) {
      by = "bytes";
      break;
    }
    bytes += add;
    n++;
  }
  // Every line fitted: only the dropped trailing newline was over the cap.
  if (by === null) return result(lines.join("\n"), lines, totalBytes, n, null, maxLines, maxBytes);
  return result(lines.slice(0, n).join("\n"), lines, totalBytes, n, by, maxLines, maxBytes, {
    firstLineExceedsLimit: n === 0 && lines.length > 0,
  });
}

/** Keeps whole lines from the end: at most maxLines lines and maxBytes bytes. When the last line alone is over
 * maxBytes, keeps its last maxBytes bytes, starting at a character boundary (lastLinePartial). */
export function truncateTail(content: string, opts: TruncationOptions = {}): TruncationResult {
  const maxLines = opts.maxLines ?? DEFAULT_MAX_LINES;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const lines = splitLines(content);
  const totalBytes = byteLength(content);
  if (lines.length <= maxLines && totalBytes <= maxBytes) {
    return result(lines.join("\n"), lines, totalBytes, lines.length, null, maxLines, maxBytes);
  }
  let bytes = 0;
  let n = 0;
  let by: "lines" | "bytes" | null = null;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (n >= maxLines) {
      by = "lines";
      break;
    }
    const add = byteLength(lines[i]!) + (n > 0 ? 1 : 0);
    if (bytes + add > maxBytes) {
      by = "bytes";
      break;
    }
    bytes += add;
    n++;
  }
  if (n === 0 && lines.length > 0) {
    const tail = tailBytes(lines[lines.length - 1]!, maxBytes);
    return result(tail, lines, totalBytes, 1, "bytes", maxLines, maxBytes, { lastLinePartial: true });
  }
  if (by === null) return result(lines.join("\n"), lines, totalBytes, n, null, maxLines, maxBytes);
  return result(lines.slice(lines.length - n).join("\n"), lines, totalBytes, n, by, maxLines, maxBytes);
}

/** The last at most `maxBytes` bytes of `s`, starting on a UTF-8 character boundary. */
export function tailBytes(s: string, maxBytes: number): string {
  const bytes = encoder.encode(s);
  if (bytes.length <= maxBytes) return s;
  let start = bytes.length - maxBytes;
  while (start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start++; // skip continuation bytes
  return new TextDecoder().decode(bytes.subarray(start));
}

/** The first at most `maxBytes` bytes of `s`, ending on a UTF-8 character boundary. */
export function headBytes(s: string, maxBytes: number): string {
  const bytes = encoder.encode(s);
  if (bytes.length <= maxBytes) return s;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // bytes[end] is the first byte left out
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/** A truncation as tool `details` (snake_case like every frame on the wire), without the content it already
 * returned as the result text. */
export interface TruncationInfo {
  truncated_by: "lines" | "bytes" | null;
  total_lines: number;
  total_bytes: number;
  output_lines: number;
  output_bytes: number;
  last_line_partial: boolean;
}

export function truncationInfo(t: TruncationResult, totalLines = t.totalLines, totalBytes = t.totalBytes): TruncationInfo {
  return {
    truncated_by: t.truncatedBy ?? "bytes",
    total_lines: totalLines,
    total_bytes: totalBytes,
    output_lines: t.outputLines,
    output_bytes: t.outputBytes,
    last_line_partial: t.lastLinePartial,
  };
}
