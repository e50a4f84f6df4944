// The JSONL session file (reference §B.10): header and entries, torn last line, newer version refused, orphaned
// tool_use repaired in memory only, O_APPEND writes at 0600, atomic rewrite for new_session.
import { describe, expect, test } from "bun:test";
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Message } from "../../src/agent/core/types.ts";
import { ORPHAN_RESULT_TEXT, parseSession, repairOrphans, SessionFile, SessionFileError, totalsOf } from "../../src/agent/session-file.ts";
import { buildSystemPrompt } from "../../src/agent/system-prompt.ts";
import { makeTempDir } from "../helpers/gateway.ts";

const OPTS = { cwd: "/w", model: "claude-test", agent: "beyond-ai-agent/0.1.0" };

const user = (text: string): Message => ({ role: "user", content: [{ type: "text", text }], ts: 1 });
const toolTurn = (...ids: string[]): Message => ({
  role: "assistant",
  content: ids.map((id) => ({ type: "tool_use", id, name: "ls", input: {} })),
  stop_reason: "tool_use",
  usage: { input_tokens: 10, output_tokens: 3, cache_read_tokens: 1, cache_write_tokens: 0 },
  ts: 2,
});
const results = (...ids: string[]): Message => ({
  role: "user",
  content: ids.map((id) => ({ type: "tool_result", tool_use_id: id, content: `r-${id}`, is_error: false })),
  ts: 3,
});

function lines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("session file", () => {
  test("a new file gets a version-1 header with a sess_ id and mode 0600", () => {
    const path = join(makeTempDir(), "s.jsonl");
    const f = SessionFile.open(path, OPTS);
    expect(f.id).toMatch(/^sess_[0-9a-f]{16}$/);
    const [h] = lines(path);
    expect(h).toMatchObject({ type: "session", version: 1, id: f.id, cwd: "/w", model: "claude-test", agent: "beyond-ai-agent/0.1.0" });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test("messages append one line each with ids chained by parent_id, and reload deep-equal with the same id", () => {
    const path = join(makeTempDir(), "s.jsonl");
    const f = SessionFile.open(path, OPTS);
    const msgs = [user("hi \u2028 there"), toolTurn("c1"), results("c1"), { role: "assistant", content: [{ type: "text", text: "done" }], ts: 4 } as Message];
    for (const m of msgs) f.appendMessage(m);
    const entries = lines(path).slice(1);
    expect(entries.map((e) => e["type"])).toEqual(["message", "message", "message", "message"]);
    expect(entries[0]?.["parent_id"]).toBeNull();
    for (let i = 1; i < entries.length; i++) expect(entries[i]?.["parent_id"]).toBe(entries[i - 1]?.["id"] as string);
    expect(entries[0]?.["id"]).toMatch(/^[0-9a-f]{8}$/);
    const again = SessionFile.open(path, OPTS);
    expect(again.id).toBe(f.id);
    expect(again.messages).toEqual(msgs);
    // The reopened file continues the chain from the last entry on disk.
    again.appendMessage(user("more"));
    const after = lines(path);
    expect(after[after.length - 1]?.["parent_id"]).toBe(entries[3]?.["id"] as string);
  });

  test("a torn last line is skipped on load and the next append starts on a fresh line", () => {
    const path = join(makeTempDir(), "s.jsonl");
    const f = SessionFile.open(path, OPTS);
    f.appendMessage(user("one"));
    appendFileSync(path, '{"type":"message","id":"abcd","message":{"role":"user","con');
    const g = SessionFile.open(path, OPTS);
    expect(g.messages).toEqual([user("one")]);
    g.appendMessage(user("two"));
    const h = SessionFile.open(path, OPTS);
    expect(h.messages).toEqual([user("one"), user("two")]);
  });

  test("a header with version 2 is refused with SessionFileError naming the version", () => {
    const path = join(makeTempDir(), "s.jsonl");
    writeFileSync(path, JSON.stringify({ type: "session", version: 2, id: "sess_x", model: "m" }) + "\n");
    expect(() => SessionFile.open(path, OPTS)).toThrow(SessionFileError);
    expect(() => SessionFile.open(path, OPTS)).toThrow(/version 2 is newer/);
  });

  test("a file whose first line is not a session header is refused", () => {
    expect(() => parseSession('{"type":"message"}\n')).toThrow(/not a session header/);
    expect(() => parseSession("garbage\n")).toThrow(/not a session header/);
  });

  test("unknown entry types are ignored and the newest model_change is the session's model", () => {
    const text = [
      JSON.stringify({ type: "session", version: 1, id: "sess_a", model: "m1" }),
      JSON.stringify({ type: "compaction", summary: "x" }),
      JSON.stringify({ type: "model_change", model: "gpt-4o" }),
      JSON.stringify({ type: "message", message: user("x") }),
    ].join("\n");
    const s = parseSession(text);
    expect(s.model).toBe("gpt-4o");
    expect(s.messages).toEqual([user("x")]);
    expect(s.skipped).toBe(1);
  });

  test("an orphaned tool_use gets a synthetic error result in memory, never on disk", () => {
    const path = join(makeTempDir(), "s.jsonl");
    const f = SessionFile.open(path, OPTS);
    f.appendMessage(user("go"));
    f.appendMessage(toolTurn("c1", "c2"));
    const before = readFileSync(path, "utf8");
    const g = SessionFile.open(path, OPTS);
    expect(g.messages.length).toBe(3);
    expect(g.messages[2]?.role).toBe("user");
    expect(g.messages[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "c1", content: ORPHAN_RESULT_TEXT, is_error: true },
      { type: "tool_result", tool_use_id: "c2", content: ORPHAN_RESULT_TEXT, is_error: true },
    ]);
    expect(readFileSync(path, "utf8")).toBe(before);
  });

  test("a partial result turn is completed in call order, keeping its real results and trailing text", () => {
    const partial: Message = { ...results("c2"), content: [...results("c2").content, { type: "text", text: "steer" }] };
    const fixed = repairOrphans([user("go"), toolTurn("c1", "c2", "c3"), partial]);
    expect(fixed.length).toBe(3);
    expect(fixed[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "c1", content: ORPHAN_RESULT_TEXT, is_error: true },
      { type: "tool_result", tool_use_id: "c2", content: "r-c2", is_error: false },
      { type: "tool_result", tool_use_id: "c3", content: ORPHAN_RESULT_TEXT, is_error: true },
      { type: "text", text: "steer" },
    ]);
    // A complete session is returned as it was.
    const whole = [user("go"), toolTurn("c1"), results("c1")];
    expect(repairOrphans(whole)).toEqual(whole);
  });

  test("a tool_use followed by a plain user prompt gets its results inserted before that prompt", () => {
    const fixed = repairOrphans([user("go"), toolTurn("c1"), user("next")]);
    expect(fixed.map((m) => m.role)).toEqual(["user", "assistant", "user", "user"]);
    expect(fixed[2]?.content[0]).toMatchObject({ type: "tool_result", tool_use_id: "c1", is_error: true });
    expect(fixed[3]).toEqual(user("next"));
  });

  test("reset rewrites the file atomically with a new header and nothing else", () => {
    const dir = makeTempDir();
    const path = join(dir, "s.jsonl");
    const f = SessionFile.open(path, OPTS);
    const oldId = f.id;
    f.appendMessage(user("x"));
    const h = f.reset(OPTS);
    expect(h.id).not.toBe(oldId);
    const all = lines(path);
    expect(all.length).toBe(1);
    expect(all[0]).toMatchObject({ type: "session", id: h.id });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["s.jsonl"]); // no temp file left behind
    f.appendMessage(user("y"));
    expect(lines(path)[1]?.["parent_id"]).toBeNull();
  });

  test("totals count assistant turns and sum their usage", () => {
    const t = totalsOf([user("go"), toolTurn("c1"), results("c1"), toolTurn("c2")]);
    expect(t.steps).toBe(2);
    expect(t.usage).toEqual({ input_tokens: 20, output_tokens: 6, cache_read_tokens: 2, cache_write_tokens: 0 });
  });
});

describe("system prompt", () => {
  test("base text, one line per tool, workspace, date, and AGENTS.md/CLAUDE.md under Project Context", () => {
    const root = makeTempDir();
    writeFileSync(join(root, "AGENTS.md"), "Use tabs.\n");
    writeFileSync(join(root, "CLAUDE.md"), "x".repeat(40 * 1024));
    const p = buildSystemPrompt({ root, tools: [{ name: "ls", description: "List a directory.\nMore." }], now: new Date("2026-01-02T03:04:05Z"), append: "EXTRA" });
    expect(p.startsWith("You are the Beyond coding agent.")).toBe(true);
    expect(p).toContain("- ls: List a directory.\n");
    expect(p).toContain(`Current working directory: ${root}\nCurrent date: 2026-01-02`);
    expect(p).toContain("# Project Context\n\n## AGENTS.md\n\nUse tabs.");
    expect(p).toContain("[truncated at 32.0KB]");
    expect(p.length).toBeLessThan(34 * 1024);
    expect(p.endsWith("\nEXTRA")).toBe(true);
    expect(buildSystemPrompt({ root, tools: [], noContextFiles: true })).not.toContain("Project Context");
  });
});
