/**
 * The agent loop's own overhead per turn, with a scripted transport (no network, no model): one run of a text turn
 * (prompt → one streamed turn of 20 text deltas → done), and one run of a turn with 3 tool calls to no-op tools (its
 * arguments in fragments, validation, dispatch, the results message) followed by a text turn. Each figure is a whole
 * Agent.run with an event listener, as serve and run --json use it.
 * Run: node_modules/.bin/bun bench/agent-loop.bench.ts
 */
import { bench, do_not_optimize, run, summary } from "mitata";
import { Agent, type AgentEvent, MockTransport, type StreamEvent, type Tool, newSession, turn } from "../src/agent/core/index.ts";

const textTurn: StreamEvent[] = [{ type: "message_start", request_id: "r" }];
for (let i = 0; i < 20; i++) textTurn.push({ type: "text_delta", index: 0, text: `word${i} ` });
textTurn.push({ type: "content_block_stop", index: 0 }, { type: "usage", input_tokens: 1200, output_tokens: 40 }, { type: "message_stop", stop_reason: "end_turn" });

const toolTurn = turn.toolCalls(
  [
    { id: "c1", name: "noop", input: { path: "src/a.ts", offset: 1 } },
    { id: "c2", name: "noop", input: { path: "src/b.ts", offset: 10 } },
    { id: "c3", name: "noop", input: { path: "src/c.ts", offset: 100 } },
  ],
  { text: "Reading the files.", usage: { input_tokens: 1200, output_tokens: 60 } },
);
const shortText = turn.text("done", { input_tokens: 1300, output_tokens: 2 });

const noop: Tool = {
  name: "noop",
  description: "does nothing",
  parameters: { type: "object", properties: { path: { type: "string" }, offset: { type: "integer", minimum: 1 } }, required: ["path"] },
  execute: async () => ({ text: "ok" }),
};

let events = 0;
const onEvent = (_e: AgentEvent): void => {
  events++;
};

// One transport whose script never runs out: each request gets the next turn of a fixed cycle.
function cycling(turns: StreamEvent[][]): MockTransport {
  const t = new MockTransport();
  let i = 0;
  const next = (): StreamEvent[] => turns[i++ % turns.length]!;
  t.stream = async function* (_req, _signal) {
    for (const ev of next()) yield ev;
  };
  return t;
}

const textAgent = new Agent({ transport: cycling([textTurn]), model: "m", system: "You are a coding agent." });
const toolAgent = new Agent({ transport: cycling([toolTurn, shortText]), model: "m", system: "You are a coding agent.", tools: [noop] });

summary(() => {
  bench("Agent.run: one text turn (20 deltas)", async () => {
    const s = newSession("s");
    do_not_optimize(await textAgent.run(s, { prompt: "hi", onEvent }));
  });
  bench("Agent.run: a 3-tool-call turn + a text turn", async () => {
    const s = newSession("s");
    do_not_optimize(await toolAgent.run(s, { prompt: "hi", onEvent }));
  });
});

await run();
if (events === 0) throw new Error("no events: the benchmark did not run the loop");
