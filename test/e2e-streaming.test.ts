// End-to-end: streaming responses. The mock paces its events on gates the test opens, so "the client saw event 1
// before the provider sent event 2" is a fact of ordering, not of timing.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { baseConfig, metricValue, startGateway, type Gateway } from "./helpers/gateway.ts";
import {
  anthropicSseEvents,
  createGate,
  MOCK_TEXT,
  startMockProvider,
  type MockProvider,
} from "./helpers/mock-provider.ts";

const BYO = "sk-byo-stream-0123456789";
const CHAT_STREAM_BODY = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] });
const MSG_STREAM_BODY = JSON.stringify({ model: "claude-opus-4-8", max_tokens: 16, stream: true, messages: [{ role: "user", content: "hi" }] });

let mock: MockProvider;
let gw: Gateway;

beforeAll(async () => {
  mock = startMockProvider();
  gw = await startGateway({ config: baseConfig({ authorities: { openai: mock.authority, anthropic: mock.authority } }) });
});

afterAll(async () => {
  await gw?.stop();
  await mock?.stop();
});

beforeEach(() => {
  mock.reset();
});

interface EventReader {
  /** Resolves with the text up to and including the next blank line (one SSE event); rejects after timeoutMs. */
  nextEvent(timeoutMs?: number): Promise<string>;
  /** Reads to the end of the body and returns what was left. */
  rest(): Promise<string>;
  cancel(): Promise<void>;
}

function eventReader(res: Response): EventReader {
  const body = res.body;
  if (body === null) throw new Error("response has no body");
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  let pending: ReturnType<typeof reader.read> | undefined;
  return {
    async nextEvent(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const end = buf.indexOf("\n\n");
        if (end >= 0) {
          const ev = buf.slice(0, end + 2);
          buf = buf.slice(end + 2);
          return ev;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no complete SSE event within ${timeoutMs} ms; buffered: ${JSON.stringify(buf)}`);
        // Keep one read outstanding across timeouts so no bytes are lost.
        pending ??= reader.read();
        const r = await Promise.race([pending, Bun.sleep(left).then(() => undefined)]);
        if (r === undefined) continue;
        pending = undefined;
        if (r.done) throw new Error(`stream ended before the next event; buffered: ${JSON.stringify(buf)}`);
        buf += dec.decode(r.value, { stream: true });
      }
    },
    async rest() {
      let out = buf;
      buf = "";
      for (;;) {
        const r = await (pending ?? reader.read());
        pending = undefined;
        if (r.done) return out + dec.decode();
        out += dec.decode(r.value, { stream: true });
      }
    },
    async cancel() {
      await reader.cancel();
    },
  };
}

function postChat(headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${BYO}`, "content-type": "application/json", ...headers },
    body: CHAT_STREAM_BODY,
    signal,
  });
}

async function expectStillServing(): Promise<void> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${BYO}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { id: string }).id).toBe("chatcmpl-mock");
}

describe("SSE relaying", () => {
  test("the client receives each OpenAI event before the provider sends the next one", async () => {
    const g1 = createGate();
    const g2 = createGate();
    const events = ['data: {"n":1}\n\n', 'data: {"n":2}\n\n', "data: [DONE]\n\n"];
    mock.setMode({ kind: "sse", events, gates: [undefined, g1.promise, g2.promise] }, "/v1/chat/completions");
    try {
      const res = await postChat();
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type") ?? "").toContain("text/event-stream");
      const r = eventReader(res);
      expect(await r.nextEvent()).toBe(events[0] ?? "");
      g1.open();
      expect(await r.nextEvent()).toBe(events[1] ?? "");
      g2.open();
      expect(await r.rest()).toBe(events[2] ?? "");
    } finally {
      g1.open();
      g2.open();
    }
  });

  test("the client receives each Anthropic event before the provider sends the next one", async () => {
    const events = anthropicSseEvents();
    const gates = events.map(() => createGate());
    // Event 0 goes at once; event i (i > 0) waits until the test has seen event i-1.
    mock.setMode({ kind: "sse", events, gates: events.map((_, i) => (i === 0 ? undefined : gates[i]?.promise)) }, "/v1/messages");
    try {
      const res = await fetch(`${gw.url}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": BYO, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: MSG_STREAM_BODY,
      });
      expect(res.status).toBe(200);
      const r = eventReader(res);
      let text = "";
      for (let i = 0; i < events.length; i++) {
        const ev = await r.nextEvent();
        expect(ev).toBe(events[i] ?? "");
        const m = /"text_delta","text":"([^"]*)"/.exec(ev);
        if (m) text += m[1];
        gates[i + 1]?.open();
      }
      expect(await r.rest()).toBe("");
      expect(text).toBe(MOCK_TEXT);
    } finally {
      for (const g of gates) g.open();
    }
  });

  test("a stream idle for longer than Bun's default 10 s server idle timeout is not cut", async () => {
    const gap = createGate();
    const events = ['data: {"n":1}\n\n', 'data: {"n":2}\n\n', "data: [DONE]\n\n"];
    mock.setMode({ kind: "sse", events, gates: [undefined, gap.promise, undefined] }, "/v1/chat/completions");
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const res = await postChat();
      expect(res.status).toBe(200);
      const r = eventReader(res);
      expect(await r.nextEvent()).toBe(events[0] ?? "");
      timer = setTimeout(() => gap.open(), 12_000);
      expect(await r.nextEvent(20_000)).toBe(events[1] ?? "");
      expect(await r.rest()).toBe(events[2] ?? "");
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      gap.open();
    }
    mock.setMode(null, "/v1/chat/completions");
    await expectStillServing();
  }, 30_000);

  test("a client that disconnects while the provider's head is pending, before the gateway reads its signal (100-200 ms in), still has the upstream request cut and is logged 499", async () => {
    const ac = new AbortController();
    const sent = postChat({ "x-mock-mode": "delay:3000" }, ac.signal).catch(() => undefined);
    await mock.waitForRequest(() => true);
    const rec = mock.last();
    // Gone well inside the first tick: the gateway learns of it when it reads the signal, which Bun reports aborted.
    ac.abort();
    await sent;
    const closed = await Promise.race([rec.closedEarly.then(() => true), Bun.sleep(1500).then(() => false)]);
    expect(closed).toBe(true);
    const access = await gw.waitForLog((l) => l["target"] === "ai.access" && l["status"] === 499);
    expect(access["error"]).toBe("client_closed");
    await expectStillServing();
  });

  test("client disconnect mid-stream aborts the upstream request promptly, frees the stream, and the gateway keeps serving", async () => {
    const ac = new AbortController();
    const res = await postChat({ "x-mock-mode": "drip:100" }, ac.signal);
    expect(res.status).toBe(200);
    const r = eventReader(res);
    expect(await r.nextEvent()).toBe('data: {"n":0}\n\n');
    expect(await r.nextEvent()).toBe('data: {"n":1}\n\n');
    const rec = mock.last();
    expect(rec.closedEarlyAt).toBeNull();
    ac.abort();
    const closed = await Promise.race([rec.closedEarly.then(() => true), Bun.sleep(1500).then(() => false)]);
    // The drip never ends on its own: only the gateway abandoning the upstream request stops it.
    expect(closed).toBe(true);
    // Nothing stays held for the dead exchange.
    const deadline = Date.now() + 2000;
    let active = -1;
    let inFlight = -1;
    while (Date.now() < deadline) {
      active = await metricValue(gw.metricsUrl, "ai_active_streams");
      inFlight = await metricValue(gw.metricsUrl, "ai_requests_in_flight");
      if (active === 0 && inFlight === 0) break;
      await Bun.sleep(20);
    }
    expect([active, inFlight]).toEqual([0, 0]);
    await expectStillServing();
  });

  test("an upstream reset mid-body reaches the client as a broken stream, not a clean end", async () => {
    const res = await postChat({ "x-mock-mode": "reset" });
    expect(res.status).toBe(200);
    let failed = false;
    try {
      await res.text();
    } catch {
      failed = true;
    }
    expect(failed).toBe(true);
    await expectStillServing();
  });
});
