// A scripted ModelTransport for tests (reference §C.1.1): each turn is a StreamEvent[] or a function of the request
// returning events (an array, an async iterable paced by gates, or throwing a TransportError). Every request is
// recorded as a deep copy, since the session's message array keeps growing after the call.

import type { StreamEvent } from "./events.ts";
import { type ModelRequest, type ModelTransport, TransportError } from "./transport.ts";
import type { StopReason, Usage } from "./types.ts";

export type ScriptedTurn =
  | readonly StreamEvent[]
  | ((req: ModelRequest) => readonly StreamEvent[] | AsyncIterable<StreamEvent> | Promise<readonly StreamEvent[]>);

function abortError(): Error {
  return new DOMException("The operation was aborted.", "AbortError");
}

export class MockTransport implements ModelTransport {
  readonly requests: ModelRequest[] = [];
  private readonly turns: ScriptedTurn[];

  constructor(turns: readonly ScriptedTurn[] = []) {
    this.turns = turns.slice();
  }

  /** Adds turns to the end of the script. */
  push(...turns: ScriptedTurn[]): void {
    this.turns.push(...turns);
  }

  get remaining(): number {
    return this.turns.length;
  }

  async *stream(req: ModelRequest, signal: AbortSignal): AsyncIterable<StreamEvent> {
    this.requests.push(structuredClone(req));
    if (signal.aborted) throw abortError();
    const turn = this.turns.shift();
    if (turn === undefined) throw new TransportError("mock transport: no scripted turn left", { retryable: false, phase: "connect" });
    const produced = typeof turn === "function" ? await turn(req) : turn;
    if (Symbol.asyncIterator in produced) {
      const it = (produced as AsyncIterable<StreamEvent>)[Symbol.asyncIterator]();
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(abortError());
        signal.addEventListener("abort", onAbort, { once: true });
      });
      aborted.catch(() => {});
      try {
        for (;;) {
          // A gated script stops at once on abort, as a real fetch would.
          const r = await Promise.race([it.next(), aborted]);
          if (r.done === true) break;
          yield r.value;
          if (signal.aborted) throw abortError();
        }
      } finally {
        if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
        // Not awaited: a generator parked on a gate would hold the return until the gate opens.
        void it.return?.()?.catch(() => {});
      }
      return;
    }
    for (const ev of produced as readonly StreamEvent[]) {
      if (signal.aborted) throw abortError();
      yield ev;
    }
  }
}

export interface ScriptedCall {
  id: string;
  name: string;
  /** An object (serialised) or the raw argument text (to script malformed JSON). */
  input: Record<string, unknown> | string;
}

/** Builders for scripted turns. */
export const turn = {
  text(text: string, usage?: Partial<Usage>, stop: StopReason = "end_turn"): StreamEvent[] {
    const evs: StreamEvent[] = [{ type: "message_start" }, { type: "text_delta", index: 0, text }, { type: "content_block_stop", index: 0 }];
    if (usage !== undefined) evs.push({ type: "usage", ...usage });
    evs.push({ type: "message_stop", stop_reason: stop });
    return evs;
  },
  toolCalls(calls: readonly ScriptedCall[], opts: { text?: string; usage?: Partial<Usage>; stop?: StopReason } = {}): StreamEvent[] {
    const evs: StreamEvent[] = [{ type: "message_start" }];
    let index = 0;
    if (opts.text !== undefined) {
      evs.push({ type: "text_delta", index, text: opts.text }, { type: "content_block_stop", index });
      index++;
    }
    for (const c of calls) {
      const json = typeof c.input === "string" ? c.input : JSON.stringify(c.input);
      evs.push({ type: "tool_use_start", index, id: c.id, name: c.name });
      // Two fragments, so the accumulator's joining is exercised.
      const half = Math.floor(json.length / 2);
      evs.push({ type: "input_json_delta", index, partial_json: json.slice(0, half) }, { type: "input_json_delta", index, partial_json: json.slice(half) });
      evs.push({ type: "content_block_stop", index });
      index++;
    }
    if (opts.usage !== undefined) evs.push({ type: "usage", ...opts.usage });
    evs.push({ type: "message_stop", stop_reason: opts.stop ?? "tool_use" });
    return evs;
  },
  /** Yields `events`, then fails with `error` (a cut stream, an in-band error). */
  failAfter(events: readonly StreamEvent[], error: Error): ScriptedTurn {
    return () =>
      (async function* () {
        for (const ev of events) yield ev;
        throw error;
      })();
  },
};
