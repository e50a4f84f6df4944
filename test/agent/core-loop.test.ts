// The agent loop with a scripted transport (reference §B.4, §C.2 #3 unit, #6, #7 and abort/steer semantics).
import { describe, expect, test } from "bun:test";
import {
  Agent,
  type AgentEvent,
  CANCELLED_TEXT,
  type Message,
  MockTransport,
  type StreamEvent,
  Steering,
  type Tool,
  ToolError,
  TransportError,
  newSession,
  turn,
} from "../../src/agent/core/index.ts";

function collect(): { events: AgentEvent[]; onEvent: (e: AgentEvent) => void } {
  const events: AgentEvent[] = [];
  return { events, onEvent: (e) => events.push(e) };
}

const noSleep = async (): Promise<void> => {};

/** A tool that sleeps `ms` (per call: args.ms) and records the peak number of calls running at once. */
function sleepTool(name = "sleep", extra: Partial<Tool> = {}): Tool & { peak: number; running: number; order: string[] } {
  const t = {
    name,
    description: "sleeps",
    parameters: { type: "object" as const, properties: { ms: { type: "integer" as const }, tag: { type: "string" as const } }, required: ["ms"] },
    peak: 0,
    running: 0,
    order: [] as string[],
    async execute(args: Record<string, unknown>, signal: AbortSignal) {
      t.running++;
      t.peak = Math.max(t.peak, t.running);
      try {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, args.ms as number);
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          });
        });
        t.order.push(String(args.tag ?? ""));
        return { text: `slept ${String(args.tag ?? args.ms)}` };
      } finally {
        t.running--;
      }
    },
    ...extra,
  };
  return t;
}

function echoTool(): Tool {
  return {
    name: "echo",
    description: "echoes",
    parameters: { type: "object", properties: { n: { type: "integer" }, flag: { type: "boolean" } }, required: ["n"] },
    async execute(args) {
      return { text: `n=${JSON.stringify(args.n)} flag=${JSON.stringify(args.flag)}` };
    },
  };
}

function lastUser(m: Message[]): Message {
  const u = m[m.length - 1];
  if (u === undefined || u.role !== "user") throw new Error("last message is not a user message");
  return u;
}

describe("Agent.run basics", () => {
  test("a text turn ends done with one step, the assistant message and the turn's usage", async () => {
    const t = new MockTransport([turn.text("hello", { input_tokens: 10, output_tokens: 3 })]);
    const agent = new Agent({ transport: t, model: "m1", system: "sys" });
    const s = newSession("s1");
    const { events, onEvent } = collect();
    const r = await agent.run(s, { prompt: "hi", onEvent });
    expect(r.status).toBe("done");
    expect(r.steps).toBe(1);
    expect(r.usage.input_tokens).toBe(10);
    expect(s.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    expect(s.messages[1]!.content).toEqual([{ type: "text", text: "hello" }]);
    expect(s.usage.output_tokens).toBe(3);
    expect(t.requests[0]!.system).toBe("sys");
    expect(t.requests[0]!.max_tokens).toBe(4096);
    expect(events[0]).toEqual({ kind: "agent_start" });
    expect(events[events.length - 1]).toEqual({ kind: "agent_end", steps: 1, status: "done" });
    expect(events.filter((e) => e.kind === "turn_end")).toEqual([{ kind: "turn_end", stop_reason: "end_turn", step: 1 }]);
  });

  test("tool definitions are sent sorted by name and a tool call's result goes back in the next request", async () => {
    const t = new MockTransport([turn.toolCalls([{ id: "c1", name: "echo", input: { n: 1 } }]), turn.text("done")]);
    const zeta: Tool = { name: "zeta", description: "z", parameters: { type: "object" }, execute: async () => ({ text: "" }) };
    const agent = new Agent({ transport: t, model: "m", tools: [zeta, echoTool()] });
    const s = newSession("s");
    const r = await agent.run(s, { prompt: "go" });
    expect(r.status).toBe("done");
    expect(t.requests[0]!.tools.map((d) => d.name)).toEqual(["echo", "zeta"]);
    const req2 = t.requests[1]!;
    expect(lastUser(req2.messages as Message[]).content).toEqual([{ type: "tool_result", tool_use_id: "c1", content: "n=1 flag=undefined", is_error: false }]);
  });

  test("the onAppend hook sees every message the loop appends, in order", async () => {
    const t = new MockTransport([turn.toolCalls([{ id: "c1", name: "echo", input: { n: 1 } }]), turn.text("done")]);
    const agent = new Agent({ transport: t, model: "m", tools: [echoTool()] });
    const s = newSession("s");
    const appended: string[] = [];
    s.onAppend = (m) => appended.push(m.role);
    await agent.run(s, { prompt: "go" });
    expect(appended).toEqual(["user", "assistant", "user", "assistant"]);
  });

  test("a listener that throws does not disturb the run", async () => {
    const t = new MockTransport([turn.text("ok")]);
    const agent = new Agent({ transport: t, model: "m" });
    const r = await agent.run(newSession("s"), {
      prompt: "x",
      onEvent: () => {
        throw new Error("listener bug");
      },
    });
    expect(r.status).toBe("done");
  });

  test("a second run while one is in progress gets an error status and leaves the session alone", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = new MockTransport([
      async () => {
        await gate;
        return turn.text("first");
      },
    ]);
    const agent = new Agent({ transport: t, model: "m" });
    const s = newSession("s");
    const p1 = agent.run(s, { prompt: "one" });
    expect(agent.isRunning).toBe(true);
    const r2 = await agent.run(s, { prompt: "two" });
    expect(r2).toEqual({ status: "error", steps: 0, usage: { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 }, error: "busy: a prompt is running" });
    release();
    expect((await p1).status).toBe("done");
    expect(agent.isRunning).toBe(false);
    expect(s.messages.map((m) => m.content[0])).toEqual([
      { type: "text", text: "one" },
      { type: "text", text: "first" },
    ]);
  });

  test("the request id of message_start is on the message and on turn_end", async () => {
    const t = new MockTransport([[{ type: "message_start", request_id: "rid-1" }, { type: "text_delta", index: 0, text: "x" }, { type: "message_stop", stop_reason: "end_turn" }]]);
    const agent = new Agent({ transport: t, model: "m" });
    const s = newSession("s");
    const { events, onEvent } = collect();
    await agent.run(s, { prompt: "x", onEvent });
    expect(s.messages[1]!.request_id).toBe("rid-1");
    expect(events.find((e) => e.kind === "turn_end")).toEqual({ kind: "turn_end", stop_reason: "end_turn", step: 1, request_id: "rid-1" });
  });
});

describe("dispatch (§C.2 #3 unit)", () => {
  test("10 sleep calls run at most 8 at once, results come back in call order although durations are reversed", async () => {
    const tool = sleepTool();
    const calls = Array.from({ length: 10 }, (_, i) => ({ id: `c${i}`, name: "sleep", input: { ms: 10 + (10 - i) * 8, tag: `t${i}` } }));
    const t = new MockTransport([turn.toolCalls(calls), turn.text("done")]);
    const agent = new Agent({ transport: t, model: "m", tools: [tool] });
    const s = newSession("s");
    const { events, onEvent } = collect();
    const r = await agent.run(s, { prompt: "go", onEvent });
    expect(r.status).toBe("done");
    expect(tool.peak).toBe(8);
    const results = s.messages[2]!.content;
    expect(results.map((b) => (b.type === "tool_result" ? b.tool_use_id : ""))).toEqual(calls.map((c) => c.id));
    expect(results.map((b) => (b.type === "tool_result" ? b.content : ""))).toEqual(calls.map((c) => `slept ${c.input.tag}`));
    // The first call (the longest) does not finish first: tool_end comes in completion order.
    const ends = events.filter((e) => e.kind === "tool_end").map((e) => (e.kind === "tool_end" ? e.id : ""));
    expect(ends[0]).not.toBe("c0");
    // Every tool_start comes before the first tool_end.
    const kinds = events.map((e) => e.kind);
    expect(kinds.lastIndexOf("tool_start")).toBeLessThan(kinds.indexOf("tool_end"));
  });

  test("an exclusive (bash-like) tool in the batch makes the whole batch run one call at a time", async () => {
    const tool = sleepTool();
    const bash = sleepTool("bash", { exclusive: true });
    const calls = [
      ...Array.from({ length: 5 }, (_, i) => ({ id: `c${i}`, name: "sleep", input: { ms: 5 } })),
      { id: "b", name: "bash", input: { ms: 5 } },
    ];
    const t = new MockTransport([turn.toolCalls(calls), turn.text("done")]);
    const agent = new Agent({ transport: t, model: "m", tools: [tool, bash] });
    await agent.run(newSession("s"), { prompt: "go" });
    expect(tool.peak).toBe(1);
    expect(bash.peak).toBe(1);
  });

  test("sequentialTools runs one call at a time", async () => {
    const tool = sleepTool();
    const calls = Array.from({ length: 4 }, (_, i) => ({ id: `c${i}`, name: "sleep", input: { ms: 5 } }));
    const agent = new Agent({ transport: new MockTransport([turn.toolCalls(calls), turn.text("d")]), model: "m", tools: [tool], sequentialTools: true });
    await agent.run(newSession("s"), { prompt: "go" });
    expect(tool.peak).toBe(1);
  });

  test("two calls writing the same target run one after another in call order, others beside them", async () => {
    const log: string[] = [];
    const writer: Tool = {
      name: "write",
      description: "w",
      parameters: { type: "object", properties: { path: { type: "string" }, ms: { type: "integer" } }, required: ["path", "ms"] },
      writeTarget: (a) => `/w/${String(a.path)}`,
      async execute(a) {
        log.push(`start ${String(a.path)} ${String(a.ms)}`);
        await Bun.sleep(a.ms as number);
        log.push(`end ${String(a.path)} ${String(a.ms)}`);
        return { text: "ok" };
      },
    };
    const calls = [
      { id: "a1", name: "write", input: { path: "a", ms: 40 } },
      { id: "b1", name: "write", input: { path: "b", ms: 5 } },
      { id: "a2", name: "write", input: { path: "a", ms: 1 } },
    ];
    const agent = new Agent({ transport: new MockTransport([turn.toolCalls(calls), turn.text("d")]), model: "m", tools: [writer] });
    await agent.run(newSession("s"), { prompt: "go" });
    // a2 starts only after a1 ended, although it is much shorter; b ran beside a1.
    expect(log.indexOf("start a 1")).toBeGreaterThan(log.indexOf("end a 40"));
    expect(log.indexOf("end b 5")).toBeLessThan(log.indexOf("end a 40"));
  });

  test("unknown tool, malformed JSON, failed validation and a throwing tool are error results, never a crash", async () => {
    const thrower: Tool = {
      name: "boom",
      description: "b",
      parameters: { type: "object" },
      execute: async () => {
        throw new ToolError("it broke");
      },
    };
    const calls = [
      { id: "u", name: "nope", input: {} },
      { id: "j", name: "echo", input: '{"n": 1,, }' },
      { id: "v", name: "echo", input: { n: "abc" } },
      { id: "m", name: "echo", input: {} },
      { id: "b", name: "boom", input: {} },
      { id: "ok", name: "echo", input: { n: "5", flag: "true" } },
    ];
    const t = new MockTransport([turn.toolCalls(calls), turn.text("done")]);
    const agent = new Agent({ transport: t, model: "m", tools: [echoTool(), thrower] });
    const s = newSession("s");
    const r = await agent.run(s, { prompt: "go" });
    expect(r.status).toBe("done");
    const res = s.messages[2]!.content.map((b) => (b.type === "tool_result" ? [b.content, b.is_error] : []));
    expect(res[0]).toEqual(["Tool nope not found", true]);
    expect(res[1]![0]).toStartWith("Invalid JSON arguments for tool echo: ");
    expect(res[1]![1]).toBe(true);
    expect(res[2]).toEqual(['Validation failed for tool "echo":\n  - n: must be integer', true]);
    expect(res[3]).toEqual([`Validation failed for tool "echo":\n  - n: must have required property 'n'`, true]);
    expect(res[4]).toEqual(["it broke", true]);
    expect(res[5]).toEqual(["n=5 flag=true", false]);
  });

  test("a tool call cut short by max_tokens runs with its repaired arguments", async () => {
    const t = new MockTransport([turn.toolCalls([{ id: "c", name: "echo", input: '{"n": 7, "flag": tr' }], { stop: "max_tokens" }), turn.text("d")]);
    const agent = new Agent({ transport: t, model: "m", tools: [echoTool()] });
    const s = newSession("s");
    await agent.run(s, { prompt: "go" });
    const b = s.messages[2]!.content[0]!;
    expect(b.type === "tool_result" && b.content).toBe("n=7 flag=undefined");
  });

  test("hooks: beforeToolCall blocks (and fails closed), afterToolCall overrides the result", async () => {
    const calls = [
      { id: "a", name: "echo", input: { n: 1 } },
      { id: "b", name: "echo", input: { n: 2 } },
      { id: "c", name: "echo", input: { n: 3 } },
    ];
    const agent = new Agent({
      transport: new MockTransport([turn.toolCalls(calls), turn.text("d")]),
      model: "m",
      tools: [echoTool()],
      hooks: {
        beforeToolCall: async ({ call }) => {
          if (call.id === "a") return { block: true, reason: "policy says no" };
          if (call.id === "b") throw new Error("hook bug");
          return undefined;
        },
        afterToolCall: async ({ result }) => ({ text: `${result.text}!` }),
      },
    });
    const s = newSession("s");
    await agent.run(s, { prompt: "go" });
    expect(s.messages[2]!.content.map((b) => (b.type === "tool_result" ? b.content : ""))).toEqual(["policy says no", "Tool execution was blocked", "n=3 flag=undefined!"]);
  });

  test("every call returning terminate ends the run as terminated", async () => {
    const term: Tool = { name: "fin", description: "f", parameters: { type: "object" }, execute: async () => ({ text: "bye", terminate: true }) };
    const t = new MockTransport([turn.toolCalls([{ id: "a", name: "fin", input: {} }]), turn.text("never")]);
    const r = await new Agent({ transport: t, model: "m", tools: [term] }).run(newSession("s"), { prompt: "go" });
    expect(r.status).toBe("terminated");
    expect(t.requests.length).toBe(1);
  });
});

describe("limits and ends", () => {
  test("max steps: error event, then agent_end max_steps; exactly N requests; the session can run on", async () => {
    const t = new MockTransport([
      turn.toolCalls([{ id: "a", name: "echo", input: { n: 1 } }]),
      turn.toolCalls([{ id: "b", name: "echo", input: { n: 2 } }]),
      turn.text("later"),
    ]);
    const agent = new Agent({ transport: t, model: "m", tools: [echoTool()], maxSteps: 2 });
    const s = newSession("s");
    const { events, onEvent } = collect();
    const r = await agent.run(s, { prompt: "go", onEvent });
    expect(r.status).toBe("max_steps");
    expect(r.error).toBe("reached max steps (2) without completion");
    expect(t.requests.length).toBe(2);
    expect(events.slice(-2)).toEqual([
      { kind: "error", message: "reached max steps (2) without completion" },
      { kind: "agent_end", steps: 2, status: "max_steps" },
    ]);
    const r2 = await agent.run(s, { prompt: "continue" });
    expect(r2.status).toBe("done");
    expect(s.steps).toBe(3);
  });

  test("a refusal ends the run as refused even with tool calls, and leaves both queues intact", async () => {
    const tool = sleepTool();
    const t = new MockTransport([turn.toolCalls([{ id: "a", name: "sleep", input: { ms: 1 } }], { stop: "refusal" })]);
    const steering = new Steering();
    const agent = new Agent({ transport: t, model: "m", tools: [tool] });
    const s = newSession("s");
    const p = agent.run(s, { prompt: "go", steering });
    steering.followUp({ text: "later" });
    const r = await p;
    expect(r.status).toBe("refused");
    expect(tool.order).toEqual([]);
    expect(steering.followUpTexts()).toEqual(["later"]);
  });

  test("maxSteps 0 is unbounded", async () => {
    const turns = Array.from({ length: 60 }, (_, i) => turn.toolCalls([{ id: `c${i}`, name: "echo", input: { n: i } }]));
    const t = new MockTransport([...turns, turn.text("d")]);
    const r = await new Agent({ transport: t, model: "m", tools: [echoTool()], maxSteps: 0 }).run(newSession("s"), { prompt: "go" });
    expect(r.status).toBe("done");
    expect(r.steps).toBe(61);
  });
});

describe("turn retries", () => {
  test("a retryable failure mid-stream emits turn_retry (attempt 1, 250 ms) and retries with a fresh accumulator", async () => {
    const slept: number[] = [];
    const t = new MockTransport([
      turn.failAfter([{ type: "message_start" }, { type: "text_delta", index: 0, text: "partial " }], new TransportError("stream truncated", { retryable: true, phase: "stream" })),
      turn.text("second"),
    ]);
    const agent = new Agent({ transport: t, model: "m", sleep: async (ms) => void slept.push(ms) });
    const s = newSession("s");
    const { events, onEvent } = collect();
    const r = await agent.run(s, { prompt: "go", onEvent });
    expect(r.status).toBe("done");
    expect(events.filter((e) => e.kind === "turn_retry")).toEqual([{ kind: "turn_retry", step: 1, attempt: 1, delay_ms: 250, message: "stream truncated" }]);
    expect(slept).toEqual([250]);
    expect(s.messages[1]!.content).toEqual([{ type: "text", text: "second" }]);
  });

  test("after 3 retries the turn ends in error: 4 attempts, backoff 250/500/1000, the session keeps an errored record", async () => {
    const fail = (): ReturnType<typeof turn.failAfter> => turn.failAfter([{ type: "text_delta", index: 0, text: "x" }], new TransportError("stream truncated", { retryable: true, phase: "stream" }));
    const t = new MockTransport([fail(), fail(), fail(), fail(), turn.text("never")]);
    const slept: number[] = [];
    const agent = new Agent({ transport: t, model: "m", sleep: async (ms) => void slept.push(ms) });
    const s = newSession("s");
    const { events, onEvent } = collect();
    const r = await agent.run(s, { prompt: "go", onEvent });
    expect(r.status).toBe("error");
    expect(r.error).toBe("stream truncated");
    expect(t.requests.length).toBe(4);
    expect(slept).toEqual([250, 500, 1000]);
    expect(events.slice(-2)).toEqual([{ kind: "error", message: "stream truncated" }, { kind: "agent_end", steps: 1, status: "error" }]);
    const last = s.messages[s.messages.length - 1]!;
    expect(last.role).toBe("assistant");
    expect(last.error_message).toBe("stream truncated");
  });

  test("a non-retryable failure is not retried", async () => {
    const t = new MockTransport([
      () => {
        throw new TransportError("gateway rejected the key (401): check AI_AGENT_KEY", { retryable: false, status: 401, phase: "headers", requestId: "gw-401" });
      },
      turn.text("never"),
    ]);
    const s = newSession("s");
    const r = await new Agent({ transport: t, model: "m", sleep: noSleep }).run(s, { prompt: "go" });
    expect(r.status).toBe("error");
    expect(r.error).toBe("gateway rejected the key (401): check AI_AGENT_KEY");
    expect(t.requests.length).toBe(1);
    expect(s.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    // The errored record still joins to the gateway's access line.
    expect(s.messages[1]!.request_id).toBe("gw-401");
  });

  test("a Retry-After carried by the error sets the wait (capped at 60 s)", async () => {
    const slept: number[] = [];
    const t = new MockTransport([
      turn.failAfter([], new TransportError("overloaded", { retryable: true, phase: "stream", retryAfterMs: 120_000 })),
      turn.text("ok"),
    ]);
    await new Agent({ transport: t, model: "m", sleep: async (ms) => void slept.push(ms) }).run(newSession("s"), { prompt: "go" });
    expect(slept).toEqual([60_000]);
  });
});

describe("abort", () => {
  test("abort mid-tool: grace, then the unfinished call is cancelled, finished calls keep their results; the session resumes", async () => {
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    const stubborn: Tool = {
      name: "stubborn",
      description: "ignores abort",
      parameters: { type: "object" },
      execute: () => {
        started();
        return new Promise(() => {}); // never settles
      },
    };
    const quick: Tool = { name: "quick", description: "q", parameters: { type: "object" }, execute: async () => ({ text: "quick done" }) };
    const t = new MockTransport([
      turn.toolCalls([
        { id: "q", name: "quick", input: {} },
        { id: "s", name: "stubborn", input: {} },
      ]),
      turn.text("resumed"),
    ]);
    const agent = new Agent({ transport: t, model: "m", tools: [quick, stubborn], toolAbortGraceMs: 50 });
    const s = newSession("s");
    const ac = new AbortController();
    const { events, onEvent } = collect();
    const p = agent.run(s, { prompt: "go", signal: ac.signal, onEvent });
    await startedP;
    ac.abort();
    const r = await p;
    expect(r.status).toBe("aborted");
    const results = s.messages[2]!.content;
    expect(results).toEqual([
      { type: "tool_result", tool_use_id: "q", content: "quick done", is_error: false },
      { type: "tool_result", tool_use_id: "s", content: CANCELLED_TEXT, is_error: true },
    ]);
    expect(events.some((e) => e.kind === "error")).toBe(false);
    expect(events[events.length - 1]).toEqual({ kind: "agent_end", steps: 1, status: "aborted" });
    expect(events.filter((e) => e.kind === "tool_end" && e.id === "s")).toEqual([{ kind: "tool_end", id: "s", name: "stubborn", result: CANCELLED_TEXT, is_error: true }]);

    const r2 = await agent.run(s, { prompt: "again" });
    expect(r2.status).toBe("done");
    expect(s.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "user", "assistant"]);
  });

  test("a tool that honours the signal settles within the grace and keeps its own result", async () => {
    const tool = sleepTool();
    const t = new MockTransport([turn.toolCalls([{ id: "a", name: "sleep", input: { ms: 10_000 } }])]);
    const agent = new Agent({ transport: t, model: "m", tools: [tool] });
    const s = newSession("s");
    const ac = new AbortController();
    const p = agent.run(s, { prompt: "go", signal: ac.signal });
    while (tool.running === 0) await Bun.sleep(1);
    ac.abort();
    const r = await p;
    expect(r.status).toBe("aborted");
    const b = s.messages[2]!.content[0]!;
    expect(b.type === "tool_result" && b.content).toBe("slept 10000");
  });

  test("abort mid-stream keeps the partial turn marked aborted", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = new MockTransport([
      () =>
        (async function* (): AsyncGenerator<StreamEvent> {
          yield { type: "message_start" };
          yield { type: "text_delta", index: 0, text: "half" };
          release();
          await new Promise(() => {});
        })(),
    ]);
    const s = newSession("s");
    const ac = new AbortController();
    const p = new Agent({ transport: t, model: "m" }).run(s, { prompt: "go", signal: ac.signal });
    await gate;
    ac.abort();
    const r = await p;
    expect(r.status).toBe("aborted");
    const last = s.messages[1]!;
    expect(last.aborted).toBe(true);
    expect(last.content).toEqual([{ type: "text", text: "half" }]);
  });

  test("a run started with an aborted signal closes the prompt with an empty aborted record", async () => {
    const ac = new AbortController();
    ac.abort();
    const s = newSession("s");
    const t = new MockTransport([turn.text("never")]);
    const r = await new Agent({ transport: t, model: "m" }).run(s, { prompt: "go", signal: ac.signal });
    expect(r.status).toBe("aborted");
    expect(t.requests.length).toBe(0);
    expect(s.messages.map((m) => [m.role, m.aborted])).toEqual([
      ["user", undefined],
      ["assistant", true],
    ]);
  });
});

describe("steering", () => {
  test("a steer sent while a tool runs is folded into the tool-results turn, after the results", async () => {
    const steering = new Steering();
    const tool = sleepTool();
    const t = new MockTransport([turn.toolCalls([{ id: "a", name: "sleep", input: { ms: 20 } }]), turn.text("ok")]);
    const { events, onEvent } = collect();
    const s = newSession("s");
    const p = new Agent({ transport: t, model: "m", tools: [tool] }).run(s, { prompt: "go", steering, onEvent });
    while (tool.running === 0) await Bun.sleep(1);
    steering.steer({ text: "use tabs" });
    expect((await p).status).toBe("done");
    expect(s.messages[2]!.content).toEqual([
      { type: "tool_result", tool_use_id: "a", content: "slept 20", is_error: false },
      { type: "text", text: "use tabs" },
    ]);
    const kinds = events.map((e) => (e.kind === "turn_start" ? `turn_start${e.step}` : e.kind));
    expect(kinds.indexOf("steered")).toBeLessThan(kinds.indexOf("turn_start2"));
    expect(events.find((e) => e.kind === "steered")).toEqual({ kind: "steered", messages: 1, lane: "steer" });
  });

  test("follow-ups one at a time: each becomes its own user turn when the model would stop", async () => {
    const steering = new Steering();
    const tool = sleepTool();
    const t = new MockTransport([turn.toolCalls([{ id: "a", name: "sleep", input: { ms: 20 } }]), turn.text("1"), turn.text("2"), turn.text("3")]);
    const { events, onEvent } = collect();
    const s = newSession("s");
    const p = new Agent({ transport: t, model: "m", tools: [tool] }).run(s, { prompt: "go", steering, onEvent });
    steering.followUp({ text: "f1" });
    steering.followUp({ text: "f2" });
    expect((await p).status).toBe("done");
    expect(t.requests.length).toBe(4);
    expect(lastUser(t.requests[2]!.messages as Message[]).content).toEqual([{ type: "text", text: "f1" }]);
    expect(lastUser(t.requests[3]!.messages as Message[]).content).toEqual([{ type: "text", text: "f2" }]);
    expect(events.filter((e) => e.kind === "steered")).toEqual([
      { kind: "steered", messages: 1, lane: "follow_up" },
      { kind: "steered", messages: 1, lane: "follow_up" },
    ]);
  });

  test("follow-ups in mode all: one user message with both texts", async () => {
    const steering = new Steering();
    steering.followUpMode = "all";
    const t = new MockTransport([turn.toolCalls([{ id: "a", name: "echo", input: { n: 1 } }]), turn.text("1"), turn.text("2")]);
    const s = newSession("s");
    steering.followUp({ text: "f1" });
    steering.followUp({ text: "f2" });
    // Queued while idle with a prompt given: they wait for the point where the model would stop.
    await new Agent({ transport: t, model: "m", tools: [echoTool()] }).run(s, { prompt: "go", steering });
    expect(t.requests.length).toBe(3);
    expect(lastUser(t.requests[2]!.messages as Message[]).content).toEqual([
      { type: "text", text: "f1" },
      { type: "text", text: "f2" },
    ]);
  });

  test("a follow-up queued while idle is the prompt of a run started without one", async () => {
    const steering = new Steering();
    steering.followUp({ text: "do it" });
    const t = new MockTransport([turn.text("done")]);
    const s = newSession("s");
    const r = await new Agent({ transport: t, model: "m" }).run(s, { steering });
    expect(r.status).toBe("done");
    expect(t.requests[0]!.messages).toEqual([{ role: "user", content: [{ type: "text", text: "do it" }], ts: expect.any(Number) }]);
  });

  test("stop after turn: the run ends stopped once the turn's tools finish", async () => {
    const steering = new Steering();
    steering.requestStop();
    const t = new MockTransport([turn.toolCalls([{ id: "a", name: "echo", input: { n: 1 } }]), turn.text("never")]);
    const s = newSession("s");
    const r = await new Agent({ transport: t, model: "m", tools: [echoTool()] }).run(s, { prompt: "go", steering });
    expect(r.status).toBe("stopped");
    expect(t.requests.length).toBe(1);
    expect(s.messages[2]!.content[0]!.type).toBe("tool_result");
    expect(steering.stopRequested).toBe(false);
  });

  test("a model switch applies at the next turn boundary and emits model_switched; a tool-set switch narrows the tools", async () => {
    const steering = new Steering();
    const t = new MockTransport([
      (req) => {
        steering.requestModelSwitch("gpt-4o");
        steering.requestToolSet(["echo"]);
        expect(req.model).toBe("m");
        return turn.toolCalls([{ id: "a", name: "echo", input: { n: 1 } }]);
      },
      turn.text("ok"),
    ]);
    const zeta: Tool = { name: "zeta", description: "z", parameters: { type: "object" }, execute: async () => ({ text: "" }) };
    const agent = new Agent({ transport: t, model: "m", tools: [echoTool(), zeta] });
    const { events, onEvent } = collect();
    await agent.run(newSession("s"), { prompt: "go", steering, onEvent });
    expect(t.requests[1]!.model).toBe("gpt-4o");
    expect(t.requests[1]!.tools.map((d) => d.name)).toEqual(["echo"]);
    expect(agent.model).toBe("gpt-4o");
    expect(events.filter((e) => e.kind === "model_switched" || e.kind === "tools_updated")).toEqual([
      { kind: "model_switched", model: "gpt-4o" },
      { kind: "tools_updated", tool_names: ["echo"] },
    ]);
  });
});
