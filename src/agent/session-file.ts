// The JSONL session file (reference §B.10): a `session` header line, then one line per committed entry (`message`,
// `model_change`). Each commit is one write to a descriptor opened with O_APPEND, so a crash can tear at most the last
// line, and loading skips a line it cannot parse. The file is mode 0600: it holds code and command output.
// Loading refuses a header from a newer format (version > 1): SessionFileError, which the CLI turns into exit 2,
// rather than reading a format we do not know and appending lines the newer agent would then misread.
// A session is always valid for the loop (ARCHITECTURE invariant): tool_use blocks left without results (the process
// died mid-dispatch) get synthetic error results in memory only, so the file stays an honest log of what happened.

import { randomBytes } from "node:crypto";
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { ContentBlock, Message, Usage } from "./core/types.ts";

export const SESSION_FORMAT_VERSION = 1;

/** The text of a tool result the loader invents for a tool_use that has none on disk. */
export const ORPHAN_RESULT_TEXT = "no result recorded for this tool call";

export interface SessionHeader {
  type: "session";
  version: number;
  id: string;
  created_at: string;
  cwd: string;
  model: string;
  agent: string;
}

/** A session file that cannot be used (newer format, no header, unreadable): the CLI exits 2 with its message. */
export class SessionFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SessionFileError";
  }
}

export function newSessionId(): string {
  return `sess_${randomBytes(8).toString("hex")}`;
}

function entryId(): string {
  return randomBytes(4).toString("hex");
}

export interface LoadedSession {
  header: SessionHeader;
  /** The messages in order, orphaned tool_use blocks repaired. */
  messages: Message[];
  /** The newest model_change, else the header's model. */
  model: string;
  /** Lines that could not be parsed or had an unknown type (skipped). */
  skipped: number;
  /** The id of the last entry read (the next entry's parent_id). */
  lastEntryId: string | null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isMessage(v: unknown): v is Message {
  return isRecord(v) && (v["role"] === "user" || v["role"] === "assistant") && Array.isArray(v["content"]);
}

/** Parses the text of a session file. Throws SessionFileError for a missing/invalid header or a newer version. */
export function parseSession(text: string, path = "session file"): LoadedSession {
  const lines = text.split("\n");
  let header: SessionHeader | undefined;
  const messages: Message[] = [];
  let model: string | undefined;
  let skipped = 0;
  let lastEntryId: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, "");
    if (line === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      if (header === undefined) throw new SessionFileError(`${path}: the first line is not a session header`);
      skipped++; // a torn last line, or a damaged one: everything else is still usable
      continue;
    }
    if (header === undefined) {
      if (!isRecord(v) || v["type"] !== "session" || typeof v["id"] !== "string") {
        throw new SessionFileError(`${path}: the first line is not a session header`);
      }
      const version = v["version"];
      if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
        throw new SessionFileError(`${path}: the session header has no valid version`);
      }
      if (version > SESSION_FORMAT_VERSION) {
        throw new SessionFileError(`${path}: session format version ${version} is newer than this agent reads (${SESSION_FORMAT_VERSION}); use a newer beyond-ai-agent`);
      }
      header = {
        type: "session",
        version,
        id: v["id"],
        created_at: typeof v["created_at"] === "string" ? v["created_at"] : "",
        cwd: typeof v["cwd"] === "string" ? v["cwd"] : "",
        model: typeof v["model"] === "string" ? v["model"] : "",
        agent: typeof v["agent"] === "string" ? v["agent"] : "",
      };
      continue;
    }
    if (!isRecord(v)) {
      skipped++;
      continue;
    }
    if (typeof v["id"] === "string") lastEntryId = v["id"];
    if (v["type"] === "message" && isMessage(v["message"])) messages.push(v["message"]);
    else if (v["type"] === "model_change" && typeof v["model"] === "string") model = v["model"];
    else skipped++; // unknown types (a later minor addition, or phase-2 entries) are ignored
  }
  if (header === undefined) throw new SessionFileError(`${path}: empty session file has no header`);
  return { header, messages: repairOrphans(messages), model: model ?? header.model, skipped, lastEntryId };
}

/**
 * Gives every tool_use without a result a synthetic error result, so the message list is one the loop and both
 * dialects accept: the results go into the user message that follows the assistant turn when that message carries
 * tool results, else into a new user message inserted right after it. Returns a new array; inputs are not mutated.
 */
export function repairOrphans(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Message;
    out.push(m);
    if (m.role !== "assistant") continue;
    const calls = m.content.filter((b): b is Extract<ContentBlock, { type: "tool_use" }> => b.type === "tool_use");
    if (calls.length === 0) continue;
    const next = messages[i + 1];
    const carriesResults = next !== undefined && next.role === "user" && next.content.some((b) => b.type === "tool_result");
    const answered = new Set<string>();
    if (carriesResults) for (const b of next.content) if (b.type === "tool_result") answered.add(b.tool_use_id);
    const missing = calls.filter((c) => !answered.has(c.id));
    if (missing.length === 0) continue;
    const synthetic: ContentBlock[] = missing.map((c) => ({ type: "tool_result", tool_use_id: c.id, content: ORPHAN_RESULT_TEXT, is_error: true }));
    if (carriesResults) {
      // Results first (call order), then whatever else that turn held (steered text).
      const results = next.content.filter((b) => b.type === "tool_result");
      const rest = next.content.filter((b) => b.type !== "tool_result");
      const byId = new Map<string, ContentBlock>();
      for (const b of [...results, ...synthetic]) if (b.type === "tool_result") byId.set(b.tool_use_id, b);
      const ordered = calls.map((c) => byId.get(c.id) as ContentBlock);
      const extra = results.filter((b) => b.type === "tool_result" && !calls.some((c) => c.id === b.tool_use_id));
      out.push({ ...next, content: [...ordered, ...extra, ...rest] });
      i++;
    } else {
      out.push({ role: "user", content: synthetic, ts: m.ts });
    }
  }
  return out;
}

/** Cumulative steps (assistant turns) and usage of a message list, for a resumed session's counters. */
export function totalsOf(messages: readonly Message[]): { steps: number; usage: Usage } {
  const usage: Usage = { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
  let steps = 0;
  for (const m of messages) {
    if (m.role !== "assistant") continue;
    steps++;
    if (m.usage === undefined) continue;
    usage.input_tokens += m.usage.input_tokens;
    usage.output_tokens += m.usage.output_tokens;
    usage.cache_read_tokens += m.usage.cache_read_tokens;
    usage.cache_write_tokens += m.usage.cache_write_tokens;
  }
  return { steps, usage };
}

/** Writes `text` to `path` atomically: a temp file beside it (created exclusively, 0600), then rename. */
function writeAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp.${randomBytes(6).toString("hex")}`);
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface SessionFileOptions {
  cwd: string;
  model: string;
  /** `beyond-ai-agent/<version>` */
  agent: string;
}

/** One open session file: the loaded (or new) session, and the appends of its commits. */
export class SessionFile {
  readonly path: string;
  header: SessionHeader;
  /** The messages at open (repaired); the live list is the loop's Session. */
  readonly messages: Message[];
  readonly model: string;
  private lastId: string | null = null;
  /** The file does not end with LF (a torn last line): the next append starts a fresh line first. */
  private needsNewline = false;

  private constructor(path: string, header: SessionHeader, messages: Message[], model: string) {
    this.path = path;
    this.header = header;
    this.messages = messages;
    this.model = model;
  }

  /** Opens `path`: loads it when it exists and is not empty (SessionFileError on a bad or newer header), else
   * creates it with a fresh header. */
  static open(path: string, opts: SessionFileOptions): SessionFile {
    if (existsSync(path) && statSync(path).size > 0) {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (e) {
        throw new SessionFileError(`${path}: cannot read: ${(e as Error).message}`);
      }
      const loaded = parseSession(text, path);
      const f = new SessionFile(path, loaded.header, loaded.messages, loaded.model);
      f.needsNewline = !text.endsWith("\n");
      f.lastId = loaded.lastEntryId;
      return f;
    }
    const header = SessionFile.makeHeader(opts);
    writeAtomic(path, JSON.stringify(header) + "\n");
    return new SessionFile(path, header, [], opts.model);
  }

  static makeHeader(opts: SessionFileOptions): SessionHeader {
    return { type: "session", version: SESSION_FORMAT_VERSION, id: newSessionId(), created_at: new Date().toISOString(), cwd: opts.cwd, model: opts.model, agent: opts.agent };
  }

  get id(): string {
    return this.header.id;
  }

  private appendEntry(type: string, fields: Record<string, unknown>): void {
    const id = entryId();
    const line = JSON.stringify({ type, id, parent_id: this.lastId, ts: new Date().toISOString(), ...fields }) + "\n";
    // One write per entry, O_APPEND ("a"): concurrent or crashing writers can tear only the line being written.
    appendFileSync(this.path, this.needsNewline ? "\n" + line : line, { mode: 0o600 });
    this.needsNewline = false;
    this.lastId = id;
  }

  appendMessage(message: Message): void {
    this.appendEntry("message", { message });
  }

  appendModelChange(model: string): void {
    this.appendEntry("model_change", { model });
  }

  /** `new_session`: the file is replaced atomically by a fresh header (new id); returns the new header. */
  reset(opts: SessionFileOptions): SessionHeader {
    const header = SessionFile.makeHeader(opts);
    writeAtomic(this.path, JSON.stringify(header) + "\n");
    this.header = header;
    this.lastId = null;
    this.needsNewline = false;
    return header;
  }
}
