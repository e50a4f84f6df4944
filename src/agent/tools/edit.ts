// edit (reference §B.8): one or more oldText → newText replacements, all matched against the original text, all
// applied or none. Exact match first; when a text is not found exactly, pi's fuzzy form (NFKC, trailing whitespace
// per line, smart quotes, Unicode dashes and spaces) is matched and mapped back to the original offsets, so only the
// matched ranges change (pi rewrites the whole file in its normalised form; the seed keeps an offset map, as here).
// The BOM and consistent CRLF line endings are restored; the write is atomic and refused when the file changed on
// disk after it was read (the seed's mtime guard).

import { statSync } from "node:fs";
import { ToolError, type Tool } from "../core/tool.ts";
import { optBool, str, type Args } from "./args.ts";
import { formatSize } from "./truncate.ts";
import type { Workspace } from "./workspace.ts";
import { fsMessage, writeAtomic } from "./write.ts";

/** The seed's MAX_EDIT_BYTES. */
export const MAX_EDIT_BYTES = 64 * 1024 * 1024;
const DIFF_CONTEXT = 4;

export interface EditSpec {
  oldText: string;
  newText: string;
}

/** The accepted argument shapes, as one list: `edits: [{oldText,newText}]` (or `{old_string,new_string}` items),
 * `edits` as a JSON string, or a single top-level `oldText/newText` or `old_string/new_string`. */
export function normalizeEdits(args: Args): { edits: EditSpec[]; replaceAll: boolean } {
  const replaceAll = optBool(args, "replace_all") ?? false;
  let raw = args.edits;
  if (typeof raw === "string") {
    try {
      raw = JSON.parse(raw);
    } catch {
      throw new ToolError("Invalid arguments: edits must be an array of {oldText, newText} (got a string that is not JSON)");
    }
  }
  const edits: EditSpec[] = [];
  if (raw !== undefined && raw !== null) {
    const list = Array.isArray(raw) ? raw : [raw];
    list.forEach((item, i) => edits.push(oneEdit(item, `edits[${i}]`)));
  }
  const single = args.oldText !== undefined || args.old_string !== undefined;
  if (single) edits.push(oneEdit(args, "arguments"));
  if (edits.length === 0) throw new ToolError("Invalid arguments: edits must hold at least one {oldText, newText}");
  if (replaceAll && edits.length > 1) throw new ToolError("Invalid arguments: replace_all applies to a single edit only");
  return { edits, replaceAll };
}

function oneEdit(item: unknown, where: string): EditSpec {
  if (typeof item !== "object" || item === null) throw new ToolError(`Invalid arguments: ${where} must be an object with oldText and newText`);
  const o = item as Record<string, unknown>;
  const oldText = o.oldText ?? o.old_string ?? o.old_text;
  const newText = o.newText ?? o.new_string ?? o.new_text;
  if (typeof oldText !== "string") throw new ToolError(`Invalid arguments: ${where}.oldText must be a string`);
  if (typeof newText !== "string") throw new ToolError(`Invalid arguments: ${where}.newText must be a string`);
  return { oldText, newText };
}

// ---- fuzzy matching --------------------------------------------------------------------------------------------

const SMART_SINGLE = /[\u2018\u2019\u201A\u201B]/g;
const SMART_DOUBLE = /[\u201C\u201D\u201E\u201F]/g;
const DASHES = /[\u2010\u2011\u2012\u2013\u2014\u2015\u2212]/g;
const SPECIAL_SPACES = /[\u00A0\u2002-\u200A\u202F\u205F\u3000]/g;
const WS = /\s/;

function foldChar(c: string): string {
  return c
    .normalize("NFKC")
    .replace(SMART_SINGLE, "'")
    .replace(SMART_DOUBLE, '"')
    .replace(DASHES, "-")
    .replace(SPECIAL_SPACES, " ");
}

/** pi's normalizeForFuzzyMatch, one code point at a time, with `map[k]` = the original offset of normalised unit k
 * (`map[norm.length]` = text.length). Per code point rather than per string so the offsets map back exactly; the
 * old text is folded the same way, so both sides agree. */
export function fuzzyFold(text: string): { norm: string; map: number[] } {
  const parts: string[] = [];
  const map: number[] = [];
  let lineStart = 0;
  while (lineStart <= text.length) {
    let lineEnd = text.indexOf("\n", lineStart);
    const last = lineEnd === -1;
    if (last) lineEnd = text.length;
    let end = lineEnd;
    while (end > lineStart && WS.test(text[end - 1]!)) end--; // trailing whitespace of the line
    let i = lineStart;
    while (i < end) {
      // ASCII is its own NFKC form and none of the folded characters is ASCII: copy such runs whole.
      let j = i;
      while (j < end && text.charCodeAt(j) < 0x80) j++;
      if (j > i) {
        parts.push(text.slice(i, j));
        for (let k = i; k < j; k++) map.push(k);
        i = j;
        continue;
      }
      const len = text.codePointAt(i)! > 0xffff ? 2 : 1;
      const f = foldChar(text.slice(i, i + len));
      parts.push(f);
      for (let k = 0; k < f.length; k++) map.push(i);
      i += len;
    }
    if (last) break;
    parts.push("\n");
    map.push(lineEnd);
    lineStart = lineEnd + 1;
  }
  map.push(text.length);
  return { norm: parts.join(""), map };
}

export function fuzzyNormalize(text: string): string {
  return fuzzyFold(text).norm;
}

function findAll(haystack: string, needle: string): number[] {
  const out: number[] = [];
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) out.push(i);
  return out;
}

interface Range {
  start: number;
  end: number;
  text: string;
  /** 1-based edit number. */
  edit: number;
}

/** Resolves every edit against `content` (LF, no BOM) and returns the new text. Throws the §B.8 errors. */
export function applyEdits(content: string, edits: EditSpec[], replaceAll: boolean, shown: string): { result: string; ranges: Range[] } {
  let folded: { norm: string; map: number[] } | undefined;
  const ranges: Range[] = [];
  edits.forEach((e, idx) => {
    const n = idx + 1;
    if (e.oldText === "") throw new ToolError("oldText must not be empty");
    let found: { start: number; end: number }[] = findAll(content, e.oldText).map((s) => ({ start: s, end: s + e.oldText.length }));
    if (found.length === 0) {
      folded ??= fuzzyFold(content);
      const needle = fuzzyNormalize(e.oldText);
      if (needle !== "") {
        const map = folded.map;
        found = findAll(folded.norm, needle).map((s) => {
          const endN = s + needle.length;
          // An end inside one code point's expansion (NFKC "ﬁ" → "fi") extends to that code point's end.
          let endO = map[endN]!;
          if (endN > 0 && endN < folded!.norm.length && map[endN] === map[endN - 1]) {
            let k = endN;
            while (k < folded!.norm.length && map[k] === map[endN - 1]) k++;
            endO = map[k]!;
          }
          return { start: map[s]!, end: endO };
        });
      }
    }
    if (found.length === 0) {
      throw new ToolError(
        `Could not find the exact text in ${shown} (edit ${n}). The old text must match exactly including all whitespace and newlines.`,
      );
    }
    if (found.length > 1 && !replaceAll) {
      throw new ToolError(
        `Found ${found.length} occurrences of the text in ${shown} (edit ${n}). The text must be unique. Please provide more context to make it unique.`,
      );
    }
    for (const f of found) ranges.push({ start: f.start, end: f.end, text: e.newText, edit: n });
  });
  ranges.sort((a, b) => a.start - b.start || a.edit - b.edit);
  for (let i = 1; i < ranges.length; i++) {
    const a = ranges[i - 1]!;
    const b = ranges[i]!;
    if (a.end > b.start || (a.start === b.start && a.edit !== b.edit)) {
      const [x, y] = a.edit < b.edit ? [a.edit, b.edit] : [b.edit, a.edit];
      throw new ToolError(`Edits ${x} and ${y} overlap in ${shown}. Merge them into one edit.`);
    }
  }
  let result = "";
  let at = 0;
  for (const r of ranges) {
    result += content.slice(at, r.start) + r.text;
    at = r.end;
  }
  result += content.slice(at);
  return { result, ranges };
}

// ---- diff ------------------------------------------------------------------------------------------------------

function lineStarts(s: string): number[] {
  const starts = [0];
  for (let i = s.indexOf("\n"); i !== -1; i = s.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

function splitDiffLines(s: string): string[] {
  const lines = s.split("\n");
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Index of the line holding offset `off`. */
function lineAt(starts: number[], off: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= off) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A unified diff (4 lines of context) of applying `ranges` to `before`, built from the known changed ranges rather
 * than a general diff, so its cost follows the size of the edits, not of the file. */
export function unifiedDiff(path: string, before: string, after: string, ranges: Range[]): string {
  // A final newline ends the last line; it does not open an empty one (the diff would show it as context).
  const oldLines = splitDiffLines(before);
  const newLines = splitDiffLines(after);
  const oldStarts = lineStarts(before);
  const newStarts = lineStarts(after);
  // Changed line spans, half-open: old [oA, oB), new [nA, nB).
  const regions: { oA: number; oB: number; nA: number; nB: number }[] = [];
  let delta = 0;
  for (const r of ranges) {
    const ns = r.start + delta;
    const ne = ns + r.text.length;
    delta += r.text.length - (r.end - r.start);
    const reg = {
      oA: Math.min(lineAt(oldStarts, r.start), oldLines.length),
      oB: Math.min(lineAt(oldStarts, r.end) + 1, oldLines.length),
      nA: Math.min(lineAt(newStarts, ns), newLines.length),
      nB: Math.min(lineAt(newStarts, ne) + 1, newLines.length),
    };
    const prev = regions[regions.length - 1];
    if (prev && reg.oA < prev.oB) {
      prev.oB = Math.max(prev.oB, reg.oB);
      prev.nB = Math.max(prev.nB, reg.nB);
    } else regions.push(reg);
  }
  const trimmed = [];
  for (const g of regions) {
    while (g.oA < g.oB && g.nA < g.nB && oldLines[g.oA] === newLines[g.nA]) {
      g.oA++;
      g.nA++;
    }
    while (g.oB > g.oA && g.nB > g.nA && oldLines[g.oB - 1] === newLines[g.nB - 1]) {
      g.oB--;
      g.nB--;
    }
    if (g.oA < g.oB || g.nA < g.nB) trimmed.push(g);
  }
  const out = [`--- a/${path}`, `+++ b/${path}`];
  let i = 0;
  while (i < trimmed.length) {
    let j = i;
    while (j + 1 < trimmed.length && trimmed[j + 1]!.oA - trimmed[j]!.oB <= 2 * DIFF_CONTEXT) j++;
    const first = trimmed[i]!;
    const last = trimmed[j]!;
    const oStart = Math.max(0, first.oA - DIFF_CONTEXT);
    const nStart = first.nA - (first.oA - oStart);
    const oEnd = Math.min(oldLines.length, last.oB + DIFF_CONTEXT);
    const body: string[] = [];
    for (let k = oStart; k < first.oA; k++) body.push(" " + oldLines[k]);
    let newCount = first.oA - oStart;
    for (let g = i; g <= j; g++) {
      const r = trimmed[g]!;
      for (let k = r.oA; k < r.oB; k++) body.push("-" + oldLines[k]);
      for (let k = r.nA; k < r.nB; k++) body.push("+" + newLines[k]);
      newCount += r.nB - r.nA;
      const ctxEnd = g < j ? trimmed[g + 1]!.oA : oEnd;
      for (let k = r.oB; k < ctxEnd; k++) body.push(" " + oldLines[k]);
      newCount += ctxEnd - r.oB;
    }
    const oldCount = oEnd - oStart;
    const hdr = (start: number, count: number) => `${count === 0 ? start : start + 1},${count}`;
    out.push(`@@ -${hdr(oStart, oldCount)} +${hdr(nStart, newCount)} @@`, ...body);
    i = j + 1;
  }
  return out.join("\n");
}

// ---- the tool --------------------------------------------------------------------------------------------------

export function editTool(ws: Workspace): Tool {
  return {
    name: "edit",
    description:
      "Replace text in an existing file. Each edits[i].oldText must match exactly one place in the original file " +
      "(including whitespace and newlines; give enough surrounding lines to make it unique) and is replaced by " +
      "newText. All edits are matched against the original file, must not overlap, and are applied together or " +
      "not at all. replace_all (single edit only) replaces every occurrence.",
    parameters: {
      type: "object",
      properties: {
        path: { type: "string", description: "File path, relative to the workspace root or absolute" },
        edits: {
          type: "array",
          minItems: 1,
          description: "The replacements, each {oldText, newText}",
          items: {
            type: "object",
            properties: {
              oldText: { type: "string", description: "Exact text to find (must be unique in the file)" },
              newText: { type: "string", description: "Text to put in its place" },
            },
          },
        },
        oldText: { type: "string", description: "Single-edit form: the text to find (instead of edits)" },
        newText: { type: "string", description: "Single-edit form: the text to put in its place" },
        replace_all: { type: "boolean", description: "Replace every occurrence (single edit only; default false)" },
      },
      required: ["path"],
    },
    writeTarget(args) {
      try {
        return typeof args.path === "string" ? ws.resolve(args.path) : undefined;
      } catch {
        return undefined;
      }
    },
    async execute(args) {
      const path = str(args, "path");
      const { edits, replaceAll } = normalizeEdits(args);
      const abs = ws.resolve(path);
      const shown = ws.displayPath(path);
      let st1;
      let bytes: Buffer;
      try {
        st1 = statSync(abs);
        if (st1.isDirectory()) throw new ToolError(`Not a file: ${shown} (a directory)`);
        if (!st1.isFile()) throw new ToolError(`Not a regular file: ${shown}`);
        if (st1.size > MAX_EDIT_BYTES) throw new ToolError(`${shown} is too large to edit (${formatSize(st1.size)}; limit ${formatSize(MAX_EDIT_BYTES)})`);
        // Read after the stat: a change made from here until the rename moves the mtime the guard compares.
        bytes = Buffer.from(await Bun.file(abs).bytes());
      } catch (e) {
        if (e instanceof ToolError) throw e;
        if ((e as { code?: string }).code === "ENOENT") throw new ToolError(`File not found: ${shown}`);
        throw new ToolError(fsMessage("read", shown, e));
      }
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        throw new ToolError(`${shown} is not valid UTF-8`);
      }
      const bom = text.startsWith("\uFEFF");
      if (bom) text = text.slice(1);
      // Consistently CRLF (every LF preceded by CR): edit in LF and put the CRs back. Mixed endings are left as
      // they are, so lines this edit does not touch keep their bytes.
      const lf = text.split("\n").length - 1;
      const crlf = lf > 0 && text.split("\r\n").length - 1 === lf;
      const content = crlf ? text.replaceAll("\r\n", "\n") : text;
      const specs = crlf
        ? edits.map((e) => ({ oldText: e.oldText.replaceAll("\r\n", "\n"), newText: e.newText.replaceAll("\r\n", "\n") }))
        : edits;
      const { result, ranges } = applyEdits(content, specs, replaceAll, shown);
      if (result === content) throw new ToolError(`No changes made to ${shown}.`);
      const out = (bom ? "\uFEFF" : "") + (crlf ? result.replaceAll("\n", "\r\n") : result);
      try {
        writeAtomic(abs, out, () => {
          const st2 = statSync(abs);
          if (st2.mtimeMs !== st1.mtimeMs || st2.size !== st1.size) {
            throw new ToolError(`${shown} was modified on disk after it was read; re-read the file and retry`);
          }
        });
      } catch (e) {
        throw new ToolError(fsMessage("write", shown, e));
      }
      return {
        text: `Successfully replaced ${ranges.length} block(s) in ${shown}.`,
        details: { diff: unifiedDiff(shown, content, result, ranges) },
      };
    },
  };
}
