// End to end, `beyond-ai-agent run` (SPEC §15, reference §C.2): the agent as a real process, the real gateway with a
// managed key, and the mock provider playing scripted turns in both dialects. Pins: a file edited through read+edit
// (the provider sees only the pool key and no header holds `bai_`; each turn's usage equals the gateway's ai.usage
// line for its request id), edit errors, bash timeout / truncation with the full-output file / key scrub, parallel
// reads with interleaved argument fragments, max steps (exit 3, session resumable), turn retries (503, 429 with
// Retry-After, a cut stream, an in-band overload, exhaustion; none on 401), direct mode, workspace confinement, invalid
// tool arguments, and the exit-2 paths (missing key, bad flag, a session file from the future).
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Message } from "../../src/agent/core/types.ts";
import { type AgentWorld, agentArgv, alive, ANTHROPIC_POOL, OPENAI_POOL, runAgent, startAgentWorld, until } from "../helpers/agent.ts";
import { makeTempDir, usageLine } from "../helpers/gateway.ts";
import { type MockProvider, startMockProvider } from "../helpers/mock-provider.ts";
import {
  anthropicError,
  anthropicText,
  anthropicTextDeltas,
  anthropicTools,
  openaiText,
  openaiTools,
  type ScriptDialect,
  scriptFor,
  truncated,
} from "../helpers/scripted-model.ts";

let world: AgentWorld;

beforeAll(async () => {
  world = await startAgentWorld();
});
afterAll(async () => {
  await world.stop();
});
beforeEach(() => world.reset());

type Json = Record<string, unknown>;

function workspace(files: Record<string, string> = {}): string {
  const dir = makeTempDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** The session file's messages (entries of type message, in order). */
function sessionMessages(path: string): Message[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Json)
    .filter((e) => e["type"] === "message")
    .map((e) => e["message"] as Message);
}

/** Every request reached the provider with the pool key only: no header, and no body, holds a trace of `bai_`. */
function expectOnlyPoolKey(mock: MockProvider, dialect: ScriptDialect): void {
  expect(mock.requests.length).toBeGreaterThan(0);
  for (const r of mock.requests) {
    if (dialect === "openai") expect(r.headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    else expect(r.headers["x-api-key"]).toBe(ANTHROPIC_POOL);
    for (const [name, value] of Object.entries(r.headers)) expect(`${name}: ${value}`).not.toContain("bai_");
    expect(new TextDecoder().decode(r.body)).not.toContain(world.key);
  }
}

/** Each assistant turn's usage equals the gateway's ai.usage line for its request id (the per-turn join). */
async function expectUsageJoined(messages: readonly Message[]): Promise<number> {
  const turns = messages.filter((m) => m.role === "assistant");
  for (const m of turns) {
    expect(m.request_id).toMatch(/.+/);
    const line = await usageLine(world.gw, m.request_id as string);
    expect(line["tenant_id"]).toBe(42);
    expect(line["vpc_id"]).toBe(7);
    expect({ input: line["input_tokens"], output: line["output_tokens"], cacheRead: line["cache_read_tokens"], cacheWrite: line["cache_write_tokens"] }).toEqual({
      input: m.usage?.input_tokens,
      output: m.usage?.output_tokens,
      cacheRead: m.usage?.cache_read_tokens,
      cacheWrite: m.usage?.cache_write_tokens,
    });
  }
  return turns.length;
}

function events(frames: Json[]): Json[] {
  return frames.filter((f) => f["type"] === "event").map((f) => f["event"] as Json);
}

/** The tool results the model got in request `i`, in order, as {id, text, is_error}, for either dialect. */
function resultsIn(mock: MockProvider, i: number, dialect: ScriptDialect): Array<{ id: string; text: string; is_error?: boolean }> {
  const body = mock.requests[i]?.json as Json;
  const msgs = body["messages"] as Json[];
  if (dialect === "openai") {
    const out: Array<{ id: string; text: string }> = [];
    for (let k = msgs.length - 1; k >= 0 && msgs[k]?.["role"] !== "assistant"; k--) {
      const m = msgs[k] as Json;
      if (m["role"] === "tool") out.unshift({ id: String(m["tool_call_id"]), text: String(m["content"]) });
    }
    return out;
  }
  const last = msgs[msgs.length - 1] as Json;
  expect(last["role"]).toBe("user");
  return (last["content"] as Json[])
    .filter((b) => b["type"] === "tool_result")
    .map((b) => {
      const c = b["content"];
      const text = typeof c === "string" ? c : (c as Json[]).map((p) => String(p["text"] ?? "")).join("");
      return { id: String(b["tool_use_id"]), text, is_error: b["is_error"] === true };
    });
}

describe.each(["openai", "anthropic"] as const)("run, %s dialect", (dialect) => {
  const s = scriptFor(dialect);
  const mock = (): MockProvider => world.mockFor(dialect);

  test("edits a file through read and edit, with only the pool key upstream and each turn's usage equal to the gateway's", async () => {
    const ws = workspace({ "a.txt": "hello\nworld\n", "AGENTS.md": "Project rule: keep edits minimal.\n" });
    const sessionPath = join(makeTempDir(), "s.jsonl");
    mock().queue({ kind: "sse", events: s.tools([{ id: "call_read1", name: "read", args: { path: "a.txt" } }], { usage: { input: 40, output: 9, cacheRead: 8 } }) });
    mock().queue({ kind: "sse", events: s.tools([{ id: "call_edit1", name: "edit", args: { path: "a.txt", edits: [{ oldText: "world", newText: "there" }] } }], { usage: { input: 55, output: 14 } }) });
    mock().queue({ kind: "sse", events: s.text("done", { input: 70, output: 2 }) });
    const r = await runAgent({ args: ["run", "--verbose", "--session-file", sessionPath, "change world to there in a.txt"], env: world.env({ AI_AGENT_MODEL: s.model }), cwd: ws });
    expect(r.stderr).toMatch(/\[done in 3 step\(s\); 165 in \/ 25 out tokens\]\n$/);
    expect(r.stderr).toContain("[tool: read ok]      1\thello⏎");
    expect(r.stderr).toContain("[tool: edit ok] Successfully replaced 1 block(s) in a.txt.");
    expect(r.code).toBe(0);
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("hello\nthere\n");
    expect(r.stdout).toContain("[tool: read]");
    expect(r.stdout).toContain("[tool: edit]");
    expect(r.stdout).toContain("done");
    expect(mock().requests.length).toBe(3);
    const read = resultsIn(mock(), 1, dialect);
    expect(read.length).toBe(1);
    expect(read[0]?.id).toBe("call_read1");
    expect(read[0]?.text).toContain("     1\thello\n     2\tworld");
    expect(resultsIn(mock(), 2, dialect)[0]?.text).toContain("Successfully replaced 1 block(s) in a.txt.");
    for (const req of mock().requests) {
      const body = req.json as Json;
      // The system prompt: the base text, the workspace, and AGENTS.md under Project Context.
      const system = dialect === "openai" ? String(((body["messages"] as Json[])[0] as Json)["content"]) : ((body["system"] as Json[]) ?? []).map((b) => String(b["text"])).join("");
      expect(system).toStartWith("You are the Beyond coding agent.");
      expect(system).toContain("# Project Context");
      expect(system).toContain("Project rule: keep edits minimal.");
      expect(body["model"]).toBe(s.model);
      expect(body["stream"]).toBe(true);
      if (dialect === "openai") {
        expect(req.path).toBe("/v1/chat/completions");
        expect((body["stream_options"] as Json)["include_usage"]).toBe(true);
      } else {
        expect(req.path).toBe("/v1/messages");
        expect(req.headers["anthropic-version"]).toBe("2023-06-01");
        expect(body["max_tokens"]).toBe(4096);
      }
    }
    expectOnlyPoolKey(mock(), dialect);
    const messages = sessionMessages(sessionPath);
    expect(await expectUsageJoined(messages)).toBe(3);
    expect(world.gw.logs().filter((l) => l["target"] === "ai.usage" && messages.some((m) => m.request_id === l["request_id"])).length).toBe(3);
  });

  test("a bash command past its timeout is killed and its error result goes back to the model", async () => {
    const ws = workspace();
    mock().queue({ kind: "sse", events: s.tools([{ id: "b1", name: "bash", args: { command: "echo $$ > sh.pid; sleep 5; echo late", timeout: 1 } }]) });
    mock().queue({ kind: "sse", events: s.text("ok") });
    const r = await runAgent({ args: ["run", "--json", "sleep"], env: world.env({ AI_AGENT_MODEL: s.model }), cwd: ws });
    expect(r.code).toBe(0);
    const end = events(r.frames).find((e) => e["kind"] === "tool_end") as Json;
    expect(end["is_error"]).toBe(true);
    expect(String(end["result"])).toMatch(/Command timed out after 1 seconds$/);
    expect(alive(Number(readFileSync(join(ws, "sh.pid"), "utf8")))).toBe(false);
    const res = resultsIn(mock(), 1, dialect)[0];
    expect(res?.text).toContain("Command timed out after 1 seconds");
    if (dialect === "anthropic") expect(res?.is_error).toBe(true);
    expect(r.frames[r.frames.length - 1]).toMatchObject({ type: "result", status: "done", steps: 2 });
  });
});

describe("run, tools end to end", () => {
  test("edit errors come back as error results with the exact texts and the file is unchanged", async () => {
    const ws = workspace({ "a.txt": "hello\nworld\n" });
    world.anthropicMock.queue({ kind: "sse", events: anthropicTools([{ id: "e1", name: "edit", args: { path: "a.txt", edits: [{ oldText: "zzz", newText: "y" }] } }]) });
    world.anthropicMock.queue({ kind: "sse", events: anthropicTools([{ id: "e2", name: "edit", args: { path: "a.txt", edits: [{ oldText: "l", newText: "L" }] } }]) });
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("gave up") });
    const r = await runAgent({ args: ["run", "--json", "edit"], env: world.env({ AI_AGENT_MODEL: "claude-test" }), cwd: ws });
    expect(r.code).toBe(0);
    const ends = events(r.frames).filter((e) => e["kind"] === "tool_end");
    expect(ends.map((e) => e["is_error"])).toEqual([true, true]);
    expect(String(ends[0]?.["result"])).toMatch(/^Could not find the exact text in a\.txt.*The old text must match exactly including all whitespace and newlines\.$/);
    expect(String(ends[1]?.["result"])).toMatch(/^Found 3 occurrences of the text in a\.txt.*The text must be unique\. Please provide more context to make it unique\.$/);
    expect(resultsIn(world.anthropicMock, 1, "anthropic")[0]).toMatchObject({ id: "e1", is_error: true });
    expect(resultsIn(world.anthropicMock, 2, "anthropic")[0]).toMatchObject({ id: "e2", is_error: true });
    expect(readFileSync(join(ws, "a.txt"), "utf8")).toBe("hello\nworld\n");
  });

  test("bash output over the caps is tail-truncated with the full output spilled to a file", async () => {
    const ws = workspace();
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "s1", name: "bash", args: { command: "seq 1 5000" } }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("counted") });
    const r = await runAgent({ args: ["run", "--json", "count"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: ws });
    expect(r.code).toBe(0);
    const end = events(r.frames).find((e) => e["kind"] === "tool_end") as Json;
    const m = /\[Showing lines 3001-5000 of 5000\. Full output: (\S+)\]$/.exec(String(end["result"]));
    expect(m).not.toBeNull();
    const full = readFileSync((m as RegExpExecArray)[1] as string, "utf8");
    expect(full.split("\n").filter((l) => l !== "").length).toBe(5000);
    expect(full.startsWith("1\n2\n3\n")).toBe(true);
    expect(resultsIn(world.openaiMock, 1, "openai")[0]?.text).toContain("[Showing lines 3001-5000 of 5000.");
  });

  test("bash runs without the agent's key in its environment", async () => {
    const ws = workspace();
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "k1", name: "bash", args: { command: "echo k=$AI_AGENT_KEY" } }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("ok") });
    const r = await runAgent({ args: ["run", "--json", "key?"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini", OPENAI_API_KEY: "sk-should-not-leak" }), cwd: ws });
    expect(r.code).toBe(0);
    const end = events(r.frames).find((e) => e["kind"] === "tool_end") as Json;
    expect(end).toMatchObject({ is_error: false, result: "k=" });
    expect(resultsIn(world.openaiMock, 1, "openai")[0]?.text).toBe("k=");
    expectOnlyPoolKey(world.openaiMock, "openai");
    expect(r.stdout + r.stderr).not.toContain(world.key);
  });

  test("a command cannot read the key back from the agent's own /proc environ", async () => {
    const ws = workspace();
    chmodSync(ws, 0o777);
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "p1", name: "bash", args: { command: "tr '\\0' '\\n' < /proc/$PPID/environ; echo status=$?" } }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("ok") });
    // root reads any process's /proc files; the agent runs as an ordinary user, as it would in practice.
    const prefix = process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    const r = await runAgent({ args: ["run", "--json", "peek"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: ws, prefix });
    expect(r.code).toBe(0);
    const end = events(r.frames).find((e) => e["kind"] === "tool_end") as Json;
    expect(String(end["result"])).toContain("Permission denied");
    expect(String(end["result"])).not.toContain(world.key);
    expect(String(end["result"])).not.toContain("AI_AGENT_KEY");
    expectOnlyPoolKey(world.openaiMock, "openai");
  });

  test("three reads whose argument fragments interleave run in parallel and their results go back in call order", async () => {
    const ws = workspace({ "x.txt": "ex\n", "y.txt": "why\n", "z.txt": "zed\n" });
    world.openaiMock.queue({
      kind: "sse",
      events: openaiTools(
        [
          { id: "r0", name: "read", args: { path: "x.txt" }, fragments: 4 },
          { id: "r1", name: "read", args: { path: "y.txt" }, fragments: 4 },
          { id: "r2", name: "read", args: { path: "z.txt" }, fragments: 4 },
        ],
        { interleave: true },
      ),
    });
    world.openaiMock.queue({ kind: "sse", events: openaiText("read them") });
    const r = await runAgent({ args: ["run", "--json", "read all"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: ws });
    expect(r.code).toBe(0);
    const res = resultsIn(world.openaiMock, 1, "openai");
    expect(res.map((x) => x.id)).toEqual(["r0", "r1", "r2"]);
    expect(res[0]?.text).toContain("\tex");
    expect(res[1]?.text).toContain("\twhy");
    expect(res[2]?.text).toContain("\tzed");
    const kinds = events(r.frames)
      .filter((e) => e["kind"] === "tool_start" || e["kind"] === "tool_end")
      .map((e) => e["kind"]);
    expect(kinds.slice(0, 3)).toEqual(["tool_start", "tool_start", "tool_start"]);
    expect(kinds.length).toBe(6);
  });

  test("file tools refuse ../x, an absolute path outside and a symlink pointing out, and nothing is written", async () => {
    const outside = makeTempDir();
    writeFileSync(join(outside, "secret.txt"), "secret\n");
    const ws = workspace();
    symlinkSync(outside, join(ws, "out"));
    world.anthropicMock.queue({
      kind: "sse",
      events: anthropicTools([
        { id: "c1", name: "read", args: { path: "../x" } },
        { id: "c2", name: "write", args: { path: join(outside, "new.txt"), content: "pwned" } },
        { id: "c3", name: "write", args: { path: "out/via-link.txt", content: "pwned" } },
        { id: "c4", name: "read", args: { path: "out/secret.txt" } },
      ]),
    });
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("refused") });
    const r = await runAgent({ args: ["run", "--json", "escape"], env: world.env({ AI_AGENT_MODEL: "claude-test" }), cwd: ws });
    expect(r.code).toBe(0);
    const res = resultsIn(world.anthropicMock, 1, "anthropic");
    expect(res.map((x) => x.id)).toEqual(["c1", "c2", "c3", "c4"]);
    for (const x of res) {
      expect(x.is_error).toBe(true);
      expect(x.text).toStartWith("Path outside workspace: ");
    }
    expect(existsSync(join(outside, "new.txt"))).toBe(false);
    expect(existsSync(join(outside, "via-link.txt"))).toBe(false);
    expect(res[3]?.text).not.toContain("secret\n");
  });

  test("invalid tool arguments from the model become error results, never a crash", async () => {
    const ws = workspace({ "a.txt": "x\n" });
    world.openaiMock.queue({
      kind: "sse",
      events: openaiTools([
        { id: "bad1", name: "read", args: "this is not json", fragments: 2 },
        { id: "bad2", name: "read", args: { offset: 2 } },
        { id: "bad3", name: "nosuchtool", args: {} },
      ]),
    });
    world.openaiMock.queue({ kind: "sse", events: openaiText("sorry") });
    const r = await runAgent({ args: ["run", "--json", "go"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: ws });
    expect(r.code).toBe(0);
    const ends = events(r.frames).filter((e) => e["kind"] === "tool_end");
    expect(ends.map((e) => e["is_error"])).toEqual([true, true, true]);
    expect(String(ends[0]?.["result"])).toStartWith("Invalid JSON arguments for tool read: ");
    expect(String(ends[1]?.["result"])).toStartWith('Validation failed for tool "read":');
    expect(String(ends[2]?.["result"])).toBe("Tool nosuchtool not found");
    expect(resultsIn(world.openaiMock, 1, "openai").map((x) => x.id)).toEqual(["bad1", "bad2", "bad3"]);
  });
});

describe("run, limits and exit codes", () => {
  test("max steps stops before a third request, exits 3, and the session file resumes with the next run", async () => {
    const ws = workspace();
    const sessionPath = join(makeTempDir(), "s.jsonl");
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "l1", name: "ls", args: {} }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "l2", name: "ls", args: {} }]) });
    const r = await runAgent({ args: ["run", "--json", "--max-steps", "2", "--session-file", sessionPath, "loop"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: ws });
    expect(r.code).toBe(3);
    expect(world.openaiMock.requests.length).toBe(2);
    const ev = events(r.frames);
    const errAt = ev.findIndex((e) => e["kind"] === "error" && e["message"] === "reached max steps (2) without completion");
    expect(errAt).toBeGreaterThan(0);
    expect(ev[errAt + 1]).toEqual({ kind: "agent_end", steps: 2, status: "max_steps" });
    expect(r.frames[r.frames.length - 1]).toMatchObject({ type: "result", status: "max_steps", steps: 2 });

    world.openaiMock.queue({ kind: "sse", events: openaiText("finally") });
    const again = await runAgent({ args: ["run", "--session-file", sessionPath, "go on"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: ws });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("finally");
    const msgs = (world.openaiMock.requests[2]?.json as Json)["messages"] as Json[];
    expect(msgs.map((m) => m["role"])).toEqual(["system", "user", "assistant", "tool", "assistant", "tool", "user"]);
    expect(msgs[msgs.length - 1]?.["content"]).toBe("go on");
  });

  test("a refusal ends the run with exit 4", async () => {
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("I can't help with that.", undefined, undefined, "refusal") });
    const r = await runAgent({ args: ["run", "--json", "do something bad"], env: world.env({ AI_AGENT_MODEL: "claude-test" }), cwd: workspace() });
    expect(r.code).toBe(4);
    expect(r.frames[r.frames.length - 1]).toMatchObject({ type: "result", status: "refused", steps: 1 });
  });

  test("a 503 before the first byte is retried and the run succeeds quietly", async () => {
    world.openaiMock.queue({ kind: "status", status: 503 });
    world.openaiMock.queue({ kind: "sse", events: openaiText("after 503") });
    const r = await runAgent({ args: ["run", "hi"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: workspace() });
    expect(r.code).toBe(0);
    expect(world.openaiMock.requests.length).toBe(2);
    expect(r.stdout).toContain("after 503");
    expect(r.stderr).not.toContain("beyond-ai-agent:");
  });

  test("a 429 with retry-after 1 is retried no sooner than a second later", async () => {
    world.openaiMock.queue({ kind: "status", status: 429, headers: { "retry-after": "1" } });
    world.openaiMock.queue({ kind: "sse", events: openaiText("after 429") });
    const r = await runAgent({ args: ["run", "hi"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: workspace() });
    expect(r.code).toBe(0);
    const reqs = world.openaiMock.requests;
    expect(reqs.length).toBeGreaterThanOrEqual(2);
    expect((reqs[reqs.length - 1] as { receivedAt: number }).receivedAt - (reqs[0] as { receivedAt: number }).receivedAt).toBeGreaterThanOrEqual(1000);
    expect(r.stdout).toContain("after 429");
  });

  test("a stream cut before its end is retried once with turn_retry, and only the second attempt's text is kept", async () => {
    const sessionPath = join(makeTempDir(), "s.jsonl");
    world.openaiMock.queue({ kind: "sse", events: truncated(openaiText("first attempt")) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("second attempt") });
    const r = await runAgent({ args: ["run", "--json", "--session-file", sessionPath, "hi"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: workspace() });
    expect(r.code).toBe(0);
    const retries = events(r.frames).filter((e) => e["kind"] === "turn_retry");
    expect(retries.length).toBe(1);
    expect(retries[0]).toMatchObject({ attempt: 1, delay_ms: 250 });
    const last = sessionMessages(sessionPath).filter((m) => m.role === "assistant");
    expect(last.length).toBe(1);
    expect(last[0]?.content).toEqual([{ type: "text", text: "second attempt" }]);
  });

  test("an in-band overloaded error mid-stream is retried, text mode notes it on stderr", async () => {
    world.anthropicMock.queue({ kind: "sse", events: [...anthropicTextDeltas(["Hel", "lo"]), anthropicError("overloaded_error")] });
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("recovered") });
    const r = await runAgent({ args: ["run", "hi"], env: world.env({ AI_AGENT_MODEL: "claude-test" }), cwd: workspace() });
    expect(r.code).toBe(0);
    expect(world.anthropicMock.requests.length).toBe(2);
    expect(r.stderr).toMatch(/\[retrying turn 1 \(attempt 1\/3\) in 250 ms: .*Overloaded.*\]/);
    expect(r.stdout).toContain("recovered");
  });

  test("four cut streams exhaust the retries: an error event and exit 1", async () => {
    for (let i = 0; i < 4; i++) world.openaiMock.queue({ kind: "sse", events: truncated(openaiText(`try ${i}`)) });
    const r = await runAgent({ args: ["run", "--json", "hi"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: workspace() });
    expect(r.code).toBe(1);
    expect(world.openaiMock.requests.length).toBe(4);
    const ev = events(r.frames);
    expect(ev.filter((e) => e["kind"] === "turn_retry").map((e) => e["delay_ms"])).toEqual([250, 500, 1000]);
    expect(ev.some((e) => e["kind"] === "error")).toBe(true);
    expect(r.frames[r.frames.length - 1]).toMatchObject({ type: "result", status: "error" });
  });

  test("a key the gateway rejects is not retried: exit 1 with the 401 message and the key never printed", async () => {
    const bogus = "bai_v1.1.bogus.bogus";
    const r = await runAgent({ args: ["run", "hi"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini", AI_AGENT_KEY: bogus }), cwd: workspace() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("gateway rejected the key (401): check AI_AGENT_KEY");
    expect(world.openaiMock.requests.length).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(bogus);
    expect(r.stdout + r.stderr).not.toContain("bai_v1.1.bogus");
  });

  test("without a key the agent exits 2 naming AI_AGENT_KEY and sends nothing", async () => {
    const env = world.env({ AI_AGENT_MODEL: "gpt-4o-mini" });
    delete env["AI_AGENT_KEY"];
    const r = await runAgent({ args: ["run", "hi"], env, cwd: workspace() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("AI_AGENT_KEY");
    expect(world.openaiMock.requests.length).toBe(0);
  });

  test("an unknown flag, a missing task and a bad --max-steps exit 2 with one line naming the problem", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["run", "--frobnicate", "hi"], /unknown flag --frobnicate/],
      [["run"], /missing the task/],
      [["run", "--max-steps", "many", "hi"], /--max-steps: expected an integer/],
      [["run", "--dialect", "klingon", "hi"], /--dialect: expected auto, anthropic or openai/],
      [["serve", "extra"], /unexpected argument "extra"/],
      [["run", "--cwd", "/nonexistent/dir", "hi"], /--cwd: not a directory/],
    ];
    for (const [args, msg] of cases) {
      const r = await runAgent({ args, env: world.env(), cwd: workspace() });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toContain("    at "); // no stack trace
    }
    expect(world.openaiMock.requests.length + world.anthropicMock.requests.length).toBe(0);
  });

  test("a session file from a newer format is refused with exit 2 and left untouched", async () => {
    const sessionPath = join(makeTempDir(), "s.jsonl");
    const text = JSON.stringify({ type: "session", version: 2, id: "sess_future", model: "gpt-4o-mini" }) + "\n";
    writeFileSync(sessionPath, text);
    const r = await runAgent({ args: ["run", "--session-file", sessionPath, "hi"], env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), cwd: workspace() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("version 2");
    expect(readFileSync(sessionPath, "utf8")).toBe(text);
    expect(world.openaiMock.requests.length).toBe(0);
  });

  test("the task can come from stdin with -, and --version / --help exit 0", async () => {
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("from stdin") });
    const r = await runAgent({ args: ["run", "-"], env: world.env({ AI_AGENT_MODEL: "claude-test" }), cwd: workspace(), stdin: "a task on stdin\n" });
    expect(r.code).toBe(0);
    const msgs = (world.anthropicMock.requests[0]?.json as Json)["messages"] as Json[];
    expect(JSON.stringify(msgs[0])).toContain("a task on stdin");
    const v = await runAgent({ args: ["--version"], env: { PATH: process.env["PATH"] ?? "" }, cwd: workspace() });
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^beyond-ai-agent \d+\.\d+\.\d+\n$/);
    const h = await runAgent({ args: ["--help"], env: { PATH: process.env["PATH"] ?? "" }, cwd: workspace() });
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("beyond-ai-agent run");
  });

  test("tools prints the sorted tool definitions as JSON", async () => {
    const r = await runAgent({ args: ["tools"], env: { PATH: process.env["PATH"] ?? "" }, cwd: workspace() });
    expect(r.code).toBe(0);
    const defs = JSON.parse(r.stdout) as Json[];
    expect(defs.map((d) => d["name"])).toEqual(["bash", "edit", "find", "grep", "ls", "read", "write"]);
    for (const d of defs) expect((d["input_schema"] as Json)["type"]).toBe("object");
    const some = await runAgent({ args: ["tools", "--tools", "read,ls"], env: { PATH: process.env["PATH"] ?? "" }, cwd: workspace() });
    expect((JSON.parse(some.stdout) as Json[]).map((d) => d["name"])).toEqual(["ls", "read"]);
  });
});

describe("run, direct mode", () => {
  let direct: MockProvider;
  beforeAll(() => {
    direct = startMockProvider();
  });
  afterAll(async () => {
    await direct.stop();
  });

  test("AI_DIRECT=1 talks to AI_BASE_URL with the provider key in each dialect's own header", async () => {
    direct.queue({ kind: "sse", events: openaiText("direct openai") });
    const env = { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", AI_DIRECT: "1", AI_BASE_URL: direct.url, AI_API_KEY: "sk-direct" };
    const o = await runAgent({ args: ["run", "--model", "gpt-4o-mini", "hi"], env, cwd: workspace() });
    expect(o.code).toBe(0);
    expect(o.stdout).toContain("direct openai");
    expect(direct.requests[0]?.path).toBe("/v1/chat/completions");
    expect(direct.requests[0]?.headers["authorization"]).toBe("Bearer sk-direct");

    direct.queue({ kind: "sse", events: anthropicText("direct anthropic") });
    const a = await runAgent({ args: ["run", "--model", "claude-test", "hi"], env, cwd: workspace() });
    expect(a.code).toBe(0);
    expect(a.stdout).toContain("direct anthropic");
    expect(direct.requests[1]?.path).toBe("/v1/messages");
    expect(direct.requests[1]?.headers["x-api-key"]).toBe("sk-direct");
    expect(direct.requests[1]?.headers["authorization"]).toBeUndefined();
    // No gateway was involved: neither the gateway's mocks nor its id header saw anything.
    expect(world.openaiMock.requests.length + world.anthropicMock.requests.length).toBe(0);
  });
});

describe("run, signals", () => {
  /** Starts a run whose first turn runs `sleep 30` in bash and waits until the shell wrote its pid. */
  async function runningTool(): Promise<{ proc: ReturnType<typeof Bun.spawn>; pid: number; ws: string; out: Promise<[string, string]> }> {
    const ws = workspace();
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "s1", name: "bash", args: { command: "echo $$ > sh.pid; sleep 30" } }]) });
    const proc = Bun.spawn(agentArgv(["run", "wait"]), { cwd: ws, env: world.env({ AI_AGENT_MODEL: "gpt-4o-mini" }), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const out = Promise.all([new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text()]);
    await until(() => existsSync(join(ws, "sh.pid")) && readFileSync(join(ws, "sh.pid"), "utf8").trim() !== "", 10_000, "sh.pid");
    return { proc, pid: Number(readFileSync(join(ws, "sh.pid"), "utf8")), ws, out };
  }

  test("SIGINT aborts the run gracefully: the tool's group is killed, [aborted] is printed, exit 130", async () => {
    const { proc, pid, out } = await runningTool();
    expect(alive(pid)).toBe(true);
    proc.kill("SIGINT");
    const [stdout, stderr] = await out;
    expect(await proc.exited).toBe(130);
    expect(stderr).toContain("[aborted]");
    expect(stdout).toContain("[tool: bash]");
    await until(() => !alive(pid), 3000, "the tool's process to be gone");
    // The run ended through the loop (no second model request: the aborted turn was not continued).
    expect(world.openaiMock.requests.length).toBe(1);
  });

  test("SIGTERM exits 143 and takes the tool's process group with it", async () => {
    const { proc, pid, out } = await runningTool();
    proc.kill("SIGTERM");
    await out;
    expect(await proc.exited).toBe(143);
    await until(() => !alive(pid), 3000, "the tool's process to be gone");
  });
});
