// End to end, `beyond-ai-agent serve` (SPEC §15, reference §B.9, §C.2 #4, #4b, #5, #6, #8): the agent as a real
// process driven over stdio, the real gateway with a managed key, the mock provider playing scripted turns. Pins the
// frame sequence of a prompt, the busy rule, abort mid-tool (process groups gone, session resumable) and mid-stream
// (the gateway still meters), steer and follow-up lanes, max steps, switch_model at the next turn, new_session, the
// session file across restarts (torn last line, U+2028), and bad command lines answered without stopping the server.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Message } from "../../src/agent/core/types.ts";
import { type AgentWorld, alive, type Frame, is, type ServeHandle, startAgentWorld, startServe, until } from "../helpers/agent.ts";
import { makeTempDir } from "../helpers/gateway.ts";
import { createGate } from "../helpers/mock-provider.ts";
import { anthropicText, anthropicTextDeltas, anthropicTools, openaiText, openaiTools } from "../helpers/scripted-model.ts";

let world: AgentWorld;
const running: ServeHandle[] = [];

beforeAll(async () => {
  world = await startAgentWorld();
});
afterAll(async () => {
  for (const h of running) h.kill();
  await world.stop();
});
beforeEach(() => world.reset());

type Json = Record<string, unknown>;

async function serveIn(ws: string, model: string, args: string[] = []): Promise<ServeHandle & { ready: Frame }> {
  const h = await startServe({ args, env: world.env({ AI_AGENT_MODEL: model }), cwd: ws });
  running.push(h);
  return h;
}

function data(f: Frame): Json {
  return f["data"] as Json;
}

/** The shell command of a tool that runs until the file `go` appears in the workspace. */
const WAIT_FOR_GO = "while [ ! -f go ]; do sleep 0.05; done; echo ok";

describe("serve protocol", () => {
  test("a full transcript: frames in order, bad lines answered, restart on the same file, torn line, switch_model, new_session", async () => {
    const ws = makeTempDir();
    const sessionPath = join(makeTempDir(), "s.jsonl");
    let h = await serveIn(ws, "gpt-4o-mini", ["--session-file", sessionPath]);
    expect(h.frames()[0]?.type).toBe("ready");
    expect(h.ready).toMatchObject({ protocol: 1, model: "gpt-4o-mini" });
    const sessionId = h.ready["session_id"] as string;
    expect(sessionId).toMatch(/^sess_[0-9a-f]{16}$/);

    h.send({ type: "get_state", id: "s0" });
    const s0 = await h.next(is.response("get_state", "s0"));
    expect(s0["success"]).toBe(true);
    expect(data(s0)).toMatchObject({ session_id: sessionId, model: "gpt-4o-mini", is_streaming: false, message_count: 0, session_file: sessionPath });

    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "t1", name: "ls", args: {} }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("all done") });
    const promptText = "list the files\u2028please";
    h.send({ type: "prompt", id: "p1", message: promptText });
    const resp = await h.next(is.response("prompt", "p1"));
    expect(resp["success"]).toBe(true);
    expect(data(resp)).toMatchObject({ status: "done", steps: 2, stop_reason: "end_turn", refused: false });
    // The sequence from the ack to the response, with nothing of p1 after its response.
    const all = h.frames();
    const from = all.findIndex(is.ack("p1"));
    const to = all.indexOf(resp);
    expect(from).toBeGreaterThan(0);
    const seq = all.slice(from + 1, to).map((f) => f["event"] as Json);
    const kinds = seq.map((e) => e["kind"]).filter((k) => k !== "stream");
    expect(kinds).toEqual(["agent_start", "turn_start", "turn_end", "tool_start", "tool_end", "turn_start", "turn_end", "agent_end"]);
    expect(seq.find((e) => e["kind"] === "turn_start")).toEqual({ kind: "turn_start", step: 1 });
    expect(seq.find((e) => e["kind"] === "turn_end")).toMatchObject({ kind: "turn_end", stop_reason: "tool_use", step: 1 });
    expect(seq.filter((e) => e["kind"] === "turn_end").every((e) => typeof e["request_id"] === "string")).toBe(true);
    expect(seq[seq.length - 1]).toEqual({ kind: "agent_end", steps: 2, status: "done" });
    expect(seq.some((e) => e["kind"] === "stream" && e["type"] === "text_delta")).toBe(true);

    // Bad lines: each answered, and the server keeps serving.
    h.send({ type: "nope", id: "n1" });
    expect(await h.next(is.response("nope", "n1"))).toMatchObject({ success: false, error: "unknown command: nope" });
    h.send("{bad");
    const parse = await h.next(is.response("parse"));
    expect(parse["success"]).toBe(false);
    expect(String(parse["error"])).toStartWith("invalid JSON: ");
    h.send({ type: "prompt", id: "m1" });
    expect(await h.next(is.response("prompt", "m1"))).toMatchObject({ success: false, error: "missing `message`" });
    h.send({ type: "steer", id: "m2", message: 5 });
    expect(await h.next(is.response("steer", "m2"))).toMatchObject({ success: false, error: "missing `message`" });
    h.send({ type: "prompt", id: "m3", message: "x", streaming_behavior: "later" });
    expect(await h.next(is.response("prompt", "m3"))).toMatchObject({ success: false, error: "invalid `streaming_behavior`: expected steer or follow_up" });
    h.send({ id: "m4" });
    expect(await h.next(is.response("parse", "m4"))).toMatchObject({ success: false, error: "missing `type`" });
    h.send("[1,2]");
    expect(await h.next(is.response("parse"))).toMatchObject({ success: false });
    h.send("");
    h.send({ type: "get_messages", id: 7 });
    const msgs1 = await h.next(is.response("get_messages", 7));
    const before = data(msgs1)["messages"] as Message[];
    expect(data(msgs1)["total"]).toBe(4);
    expect(before.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(before[0]?.content[0]).toEqual({ type: "text", text: promptText });
    expect(world.openaiMock.requests.length).toBe(2);
    // Nothing of p1 after its response: only responses between it and get_messages' answer.
    expect(h.frames().slice(to + 1, h.frames().indexOf(msgs1)).filter((f) => f.type !== "response")).toEqual([]);
    // On the wire U+2028 is escaped, so readers that also split on it (JavaScript's readline) keep frames whole.
    expect(h.rawStdout()).toContain("list the files\\u2028please");
    expect(h.rawStdout()).not.toContain("\u2028");
    expect(await h.close()).toBe(0);

    // Restart on the same file, with a torn half line appended: same id, same messages.
    appendFileSync(sessionPath, '{"type":"message","id":"ffff0000","parent_id":null,"ts":"2026-01-01T00:00:00Z","message":{"role":"us');
    h = await serveIn(ws, "gpt-4o-mini", ["--session-file", sessionPath]);
    expect(h.ready["session_id"]).toBe(sessionId);
    h.send({ type: "get_messages", id: "g2" });
    expect(data(await h.next(is.response("get_messages", "g2")))["messages"]).toEqual(before);

    // switch_model during a run: applied at the next turn boundary.
    world.openaiMock.reset();
    const gate = createGate();
    const first = openaiTools([{ id: "t2", name: "ls", args: {} }]);
    world.openaiMock.queue({ kind: "sse", events: first, gates: first.map((_, i) => (i === first.length - 1 ? gate.promise : undefined)) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("switched", undefined, "gpt-4o-2024-08-06") });
    h.send({ type: "prompt", id: "p2", message: "again" });
    await h.next(is.ack("p2"));
    await world.openaiMock.waitForRequest(() => true);
    h.send({ type: "switch_model", id: "sw", model: "gpt-4o" });
    expect(await h.next(is.response("switch_model", "sw"))).toMatchObject({ success: true, data: { model: "gpt-4o", applies: "next_turn" } });
    gate.open();
    await h.next(is.event("model_switched", { model: "gpt-4o" }));
    expect(await h.next(is.response("prompt", "p2"))).toMatchObject({ success: true });
    expect((world.openaiMock.requests[0]?.json as Json)["model"]).toBe("gpt-4o-mini");
    expect((world.openaiMock.requests[1]?.json as Json)["model"]).toBe("gpt-4o");
    h.send({ type: "get_state", id: "s1" });
    expect(data(await h.next(is.response("get_state", "s1")))).toMatchObject({ model: "gpt-4o", message_count: 8, is_streaming: false });
    expect(await h.close()).toBe(0);

    // The model change was recorded: a restart without --model starts on gpt-4o.
    h = await serveIn(ws, "gpt-4o-mini", ["--session-file", sessionPath]);
    expect(h.ready).toMatchObject({ session_id: sessionId, model: "gpt-4o" });
    h.send({ type: "new_session", id: "ns" });
    const ns = await h.next(is.response("new_session", "ns"));
    expect(ns["success"]).toBe(true);
    expect(data(ns)["session_id"]).not.toBe(sessionId);
    h.send({ type: "get_state", id: "s2" });
    expect(data(await h.next(is.response("get_state", "s2")))).toMatchObject({ session_id: data(ns)["session_id"], message_count: 0, steps: 0 });
    const lines = readFileSync(sessionPath, "utf8").split("\n").filter((l) => l !== "");
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ type: "session", version: 1, id: data(ns)["session_id"] });
    expect(await h.close()).toBe(0);
  });

  test("abort mid-tool kills the process group, answers after the prompt's response, and the session continues", async () => {
    const ws = makeTempDir();
    world.anthropicMock.queue({ kind: "sse", events: anthropicTools([{ id: "b1", name: "bash", args: { command: "echo $$ > sh.pid; sleep 30 & echo $! > child.pid; wait" } }]) });
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("fresh start") });
    const h = await serveIn(ws, "claude-test");
    h.send({ type: "prompt", id: "p1", message: "run it" });
    await until(() => existsSync(join(ws, "child.pid")) && readFileSync(join(ws, "child.pid"), "utf8").trim() !== "", 10_000, "child.pid");
    const shPid = Number(readFileSync(join(ws, "sh.pid"), "utf8"));
    const childPid = Number(readFileSync(join(ws, "child.pid"), "utf8"));
    expect(alive(childPid)).toBe(true);
    h.send({ type: "abort", id: "a1" });
    const end = await h.next(is.event("tool_end"));
    expect(end["event"]).toMatchObject({ is_error: true });
    expect(String((end["event"] as Json)["result"])).toMatch(/Command aborted$/);
    await h.next(is.event("agent_end", { status: "aborted" }));
    expect(await h.next(is.response("prompt", "p1"))).toMatchObject({ success: false, error: "run cancelled" });
    expect(await h.next(is.response("abort", "a1"))).toMatchObject({ success: true, data: { aborted: true } });
    await until(() => !alive(shPid) && !alive(childPid), 3000, "the tool's processes to be gone");

    h.send({ type: "get_messages", id: "g" });
    const msgs = data(await h.next(is.response("get_messages", "g")))["messages"] as Message[];
    expect(msgs.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(msgs[1]?.content.some((b) => b.type === "tool_use" && b.id === "b1")).toBe(true);
    expect(msgs[2]?.content[0]).toMatchObject({ type: "tool_result", tool_use_id: "b1", is_error: true });

    h.send({ type: "prompt", id: "p2", message: "try something else" });
    expect(await h.next(is.response("prompt", "p2"))).toMatchObject({ success: true });
    const roles = ((world.anthropicMock.requests[1]?.json as Json)["messages"] as Json[]).map((m) => m["role"]);
    expect(roles).toEqual(["user", "assistant", "user"]);
    // abort while idle answers at once, with aborted false.
    h.send({ type: "abort", id: "a2" });
    expect(await h.next(is.response("abort", "a2"))).toMatchObject({ success: true, data: { aborted: false } });
    expect(await h.close()).toBe(0);
  });

  test("abort mid-stream closes the upstream, the gateway still meters, and the aborted turn is sent as (no content)", async () => {
    const ws = makeTempDir();
    const gate = createGate();
    const events = [...anthropicTextDeltas(["Once", " upon"]), ...anthropicText("never sent").slice(-2)];
    world.anthropicMock.queue({ kind: "sse", events, gates: events.map((_, i) => (i === events.length - 2 ? gate.promise : undefined)) });
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("second") });
    const h = await serveIn(ws, "claude-test");
    const usageBefore = world.gw.logs().filter((l) => l["target"] === "ai.usage").length;
    h.send({ type: "prompt", id: "p1", message: "tell a story" });
    await h.next((f) => f.type === "event" && (f["event"] as Json)["type"] === "text_delta" && (f["event"] as Json)["text"] === " upon");
    h.send({ type: "abort", id: "a1" });
    expect(await h.next(is.response("prompt", "p1"))).toMatchObject({ success: false, error: "run cancelled" });
    await h.next(is.response("abort", "a1"));
    await world.anthropicMock.requests[0]?.closedEarly;
    await world.gw.waitForLog(() => world.gw.logs().filter((l) => l["target"] === "ai.usage").length > usageBefore, 5000);
    gate.open();

    h.send({ type: "get_messages", id: "g" });
    const msgs = data(await h.next(is.response("get_messages", "g")))["messages"] as Message[];
    expect(msgs[msgs.length - 1]).toMatchObject({ role: "assistant", aborted: true });
    h.send({ type: "prompt", id: "p2", message: "again" });
    expect(await h.next(is.response("prompt", "p2"))).toMatchObject({ success: true });
    const sent = (world.anthropicMock.requests[1]?.json as Json)["messages"] as Json[];
    expect(sent.map((m) => m["role"])).toEqual(["user", "assistant", "user"]);
    expect(sent[1]?.["content"]).toMatchObject([{ type: "text", text: "(no content)" }]);
    expect((sent[1]?.["content"] as Json[]).length).toBe(1);
    expect(await h.close()).toBe(0);
  });

  test("steer while a tool runs lands in the same user turn as the tool result, before turn 2", async () => {
    const ws = makeTempDir();
    world.anthropicMock.queue({ kind: "sse", events: anthropicTools([{ id: "w1", name: "bash", args: { command: WAIT_FOR_GO } }]) });
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("tabs it is") });
    const h = await serveIn(ws, "claude-test");
    h.send({ type: "prompt", id: "p1", message: "format" });
    await h.next(is.event("tool_start"));
    h.send({ type: "steer", id: "st", message: "use tabs" });
    expect(await h.next(is.response("steer", "st"))).toMatchObject({ success: true, data: { pending: 1 } });
    writeFileSync(join(ws, "go"), "");
    expect(await h.next(is.response("prompt", "p1"))).toMatchObject({ success: true });
    const evs = h.events();
    const steered = evs.findIndex((e) => e["kind"] === "steered");
    expect(evs[steered]).toEqual({ kind: "steered", messages: 1, lane: "steer" });
    expect(steered).toBeLessThan(evs.findIndex((e) => e["kind"] === "turn_start" && e["step"] === 2));
    const sent = (world.anthropicMock.requests[1]?.json as Json)["messages"] as Json[];
    const last = sent[sent.length - 1] as Json;
    const blocks = last["content"] as Json[];
    expect(last["role"]).toBe("user");
    expect(blocks.map((b) => b["type"])).toEqual(["tool_result", "text"]);
    expect(blocks[1]?.["text"]).toBe("use tabs");
    expect(await h.close()).toBe(0);
  });

  test("follow-ups run one at a time when the model would stop, or together in 'all' mode", async () => {
    for (const mode of ["one_at_a_time", "all"] as const) {
      world.reset();
      const ws = makeTempDir();
      world.anthropicMock.queue({ kind: "sse", events: anthropicTools([{ id: "w1", name: "bash", args: { command: WAIT_FOR_GO } }]) });
      for (let i = 0; i < 3; i++) world.anthropicMock.queue({ kind: "sse", events: anthropicText(`answer ${i}`) });
      const h = await serveIn(ws, "claude-test");
      h.send({ type: "set_follow_up_mode", id: "m", mode });
      await h.next(is.response("set_follow_up_mode", "m"));
      h.send({ type: "prompt", id: "p1", message: "start" });
      await h.next(is.event("tool_start"));
      h.send({ type: "follow_up", id: "f1", message: "first follow-up" });
      expect(await h.next(is.response("follow_up", "f1"))).toMatchObject({ success: true, data: { pending: 1 } });
      h.send({ type: "follow_up", id: "f2", message: "second follow-up" });
      expect(await h.next(is.response("follow_up", "f2"))).toMatchObject({ success: true, data: { pending: 2 } });
      writeFileSync(join(ws, "go"), "");
      expect(await h.next(is.response("prompt", "p1"))).toMatchObject({ success: true });
      const reqs = world.anthropicMock.requests;
      const lastUser = (i: number): Json => {
        const m = (reqs[i]?.json as Json)["messages"] as Json[];
        return m[m.length - 1] as Json;
      };
      const steered = h.events().filter((e) => e["kind"] === "steered");
      if (mode === "one_at_a_time") {
        expect(reqs.length).toBe(4);
        // toMatchObject: the agent may mark the last block with cache_control.
        expect(lastUser(2)["content"]).toMatchObject([{ type: "text", text: "first follow-up" }]);
        expect(lastUser(3)["content"]).toMatchObject([{ type: "text", text: "second follow-up" }]);
        expect(steered).toEqual([
          { kind: "steered", messages: 1, lane: "follow_up" },
          { kind: "steered", messages: 1, lane: "follow_up" },
        ]);
      } else {
        expect(reqs.length).toBe(3);
        expect(lastUser(2)["content"]).toMatchObject([
          { type: "text", text: "first follow-up" },
          { type: "text", text: "second follow-up" },
        ]);
        expect(steered).toEqual([{ kind: "steered", messages: 2, lane: "follow_up" }]);
      }
      expect(await h.close()).toBe(0);
    }
  });

  test("the busy rule: new_session and a plain prompt are refused while a prompt runs; queries and queued prompts are not", async () => {
    const ws = makeTempDir();
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "w1", name: "bash", args: { command: WAIT_FOR_GO } }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("first") });
    world.openaiMock.queue({ kind: "sse", events: openaiText("queued one") });
    const h = await serveIn(ws, "gpt-4o-mini");
    h.send({ type: "prompt", id: "p1", message: "go" });
    await h.next(is.event("tool_start"));
    h.send({ type: "new_session", id: "b1" });
    expect(await h.next(is.response("new_session", "b1"))).toMatchObject({ success: false, error: "busy: a prompt is running" });
    h.send({ type: "prompt", id: "b2", message: "another" });
    expect(await h.next(is.response("prompt", "b2"))).toMatchObject({ success: false, error: "busy: a prompt is running" });
    h.send({ type: "get_state", id: "q1" });
    expect(data(await h.next(is.response("get_state", "q1")))).toMatchObject({ is_streaming: true });
    h.send({ type: "get_messages", id: "q2" });
    expect(await h.next(is.response("get_messages", "q2"))).toMatchObject({ success: true });
    h.send({ type: "prompt", id: "q3", message: "later", streaming_behavior: "follow_up" });
    expect(await h.next(is.response("prompt", "q3"))).toMatchObject({ success: true });
    writeFileSync(join(ws, "go"), "");
    expect(await h.next(is.response("prompt", "p1"))).toMatchObject({ success: true });
    expect(h.frames().filter((f) => f.type === "ack").map((f) => f["id"])).toEqual(["p1"]);
    expect(world.openaiMock.requests.length).toBe(3);
    const msgs = (world.openaiMock.requests[2]?.json as Json)["messages"] as Json[];
    expect(msgs[msgs.length - 1]).toMatchObject({ role: "user", content: "later" });
    expect(await h.close()).toBe(0);
  });

  test("stop_after_turn ends the run once the current turn's tools finish; images ride on the prompt", async () => {
    const ws = makeTempDir();
    world.anthropicMock.queue({ kind: "sse", events: anthropicTools([{ id: "w1", name: "bash", args: { command: WAIT_FOR_GO } }]) });
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("next prompt") });
    const h = await serveIn(ws, "claude-test");
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    h.send({ type: "prompt", id: "p1", message: "look", images: [{ media_type: "image/png", data: png }] });
    await h.next(is.event("tool_start"));
    h.send({ type: "stop_after_turn", id: "st" });
    expect(await h.next(is.response("stop_after_turn", "st"))).toMatchObject({ success: true, data: { requested: true } });
    h.send({ type: "get_state", id: "gs" });
    expect(data(await h.next(is.response("get_state", "gs")))).toMatchObject({ is_streaming: true, steps: 1 });
    writeFileSync(join(ws, "go"), "");
    expect(await h.next(is.response("prompt", "p1"))).toMatchObject({ success: true, data: { status: "stopped", steps: 1 } });
    expect(world.anthropicMock.requests.length).toBe(1);
    const first = ((world.anthropicMock.requests[0]?.json as Json)["messages"] as Json[])[0] as Json;
    expect(first["content"]).toMatchObject([
      { type: "text", text: "look" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
    ]);
    // Bad images are refused by name; idle stop_after_turn has nothing to stop.
    h.send({ type: "prompt", id: "bad", message: "x", images: [{ data: png }] });
    expect(await h.next(is.response("prompt", "bad"))).toMatchObject({ success: false, error: "invalid `images[0]`: expected {media_type, data}" });
    h.send({ type: "stop_after_turn", id: "st2" });
    expect(await h.next(is.response("stop_after_turn", "st2"))).toMatchObject({ success: true, data: { requested: false } });
    // The stop was for that run only: the next prompt runs to its end.
    h.send({ type: "prompt", id: "p2", message: "continue" });
    expect(await h.next(is.response("prompt", "p2"))).toMatchObject({ success: true, data: { status: "done" } });
    expect(await h.close()).toBe(0);
  });

  test("switch_model while idle applies to the next prompt, across dialects: the history goes to the other provider", async () => {
    const ws = makeTempDir();
    world.anthropicMock.queue({ kind: "sse", events: anthropicText("from claude") });
    world.openaiMock.queue({ kind: "sse", events: openaiText("from gpt") });
    const h = await serveIn(ws, "claude-test");
    h.send({ type: "prompt", id: "p1", message: "one" });
    expect(await h.next(is.response("prompt", "p1"))).toMatchObject({ success: true });
    h.send({ type: "switch_model", id: "sw", model: "gpt-4o-mini" });
    expect(await h.next(is.response("switch_model", "sw"))).toMatchObject({ success: true, data: { model: "gpt-4o-mini", applies: "next_prompt" } });
    h.send({ type: "get_state", id: "gs" });
    expect(data(await h.next(is.response("get_state", "gs")))).toMatchObject({ model: "gpt-4o-mini" });
    h.send({ type: "prompt", id: "p2", message: "two" });
    await h.next(is.event("model_switched", { model: "gpt-4o-mini" }));
    expect(await h.next(is.response("prompt", "p2"))).toMatchObject({ success: true });
    expect(world.anthropicMock.requests.length).toBe(1);
    expect(world.openaiMock.requests.length).toBe(1);
    const body = world.openaiMock.requests[0]?.json as Json;
    expect(body["model"]).toBe("gpt-4o-mini");
    expect((body["messages"] as Json[]).map((m) => [m["role"], m["content"]])).toEqual([
      ["system", expect.any(String)],
      ["user", "one"],
      ["assistant", "from claude"],
      ["user", "two"],
    ]);
    expect(world.openaiMock.requests[0]?.headers["authorization"]).toBe("Bearer sk-pool-secret");
    expect(await h.close()).toBe(0);
  });

  test("max steps fails the prompt's response and the next prompt still runs", async () => {
    const ws = makeTempDir();
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "l1", name: "ls", args: {} }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "l2", name: "ls", args: {} }]) });
    world.openaiMock.queue({ kind: "sse", events: openaiText("ok then") });
    const h = await serveIn(ws, "gpt-4o-mini", ["--max-steps", "2"]);
    h.send({ type: "prompt", id: "p1", message: "loop" });
    await h.next(is.event("error", { message: "reached max steps (2) without completion" }));
    await h.next(is.event("agent_end", { steps: 2, status: "max_steps" }));
    const r = await h.next(is.response("prompt", "p1"));
    expect(r).toMatchObject({ success: false, error: "reached max steps (2) without completion", data: { status: "max_steps", steps: 2 } });
    expect(world.openaiMock.requests.length).toBe(2);
    h.send({ type: "prompt", id: "p2", message: "stop looping" });
    expect(await h.next(is.response("prompt", "p2"))).toMatchObject({ success: true, data: { status: "done", steps: 1 } });
    expect(await h.close()).toBe(0);
  });

  test("end of stdin, SIGTERM or SIGINT during a run aborts it, kills its tool, and exits 0", async () => {
    for (const how of ["eof", "SIGTERM", "SIGINT"] as const) {
      world.reset();
      const ws = makeTempDir();
      world.openaiMock.queue({ kind: "sse", events: openaiTools([{ id: "w1", name: "bash", args: { command: "echo $$ > sh.pid; sleep 30" } }]) });
      const h = await serveIn(ws, "gpt-4o-mini");
      h.send({ type: "prompt", id: "p1", message: "go" });
      await until(() => existsSync(join(ws, "sh.pid")) && readFileSync(join(ws, "sh.pid"), "utf8").trim() !== "", 10_000, "sh.pid");
      const pid = Number(readFileSync(join(ws, "sh.pid"), "utf8"));
      if (how === "eof") expect(await h.close()).toBe(0);
      else {
        h.proc.kill(how);
        expect(await h.proc.exited).toBe(0);
      }
      // The run was ended through the loop: its response went out before the exit.
      expect(h.frames().some((f) => is.response("prompt", "p1")(f) && f["success"] === false && f["error"] === "run cancelled")).toBe(true);
      await until(() => !alive(pid), 3000, "the tool's process to be gone");
    }
  });
});
