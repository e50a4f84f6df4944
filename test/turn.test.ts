// TurnGate (src/pipeline/turn.ts) and HeldResponses (src/pipeline/forward.ts): work coalesced to the end of an event-loop turn, with
// the turn's first caller never held back.
import { describe, expect, test } from "bun:test";
import { HeldResponses } from "../src/pipeline/forward.ts";
import { TurnGate } from "../src/pipeline/turn.ts";

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("TurnGate", () => {
  test("the first caller of a turn acts now, later ones wait, and flush runs once at the turn's end", async () => {
    let flushes = 0;
    const gate = new TurnGate(() => flushes++);
    expect([gate.first(), gate.first(), gate.first()]).toEqual([true, false, false]);
    expect(flushes).toBe(0);
    await nextTurn();
    expect(flushes).toBe(1);
    // A new turn has a new first caller, and a turn nobody used flushes nothing.
    expect(gate.first()).toBe(true);
    await nextTurn();
    await nextTurn();
    expect(flushes).toBe(2);
  });
});

describe("HeldResponses", () => {
  test("the turn's first answer is handed over as it is; later ones resolve at the turn's end, each to its own answer", async () => {
    const held = new HeldResponses();
    const answers = [0, 1, 2, 3].map((i) => new Response(`answer ${i}`));
    const released = answers.map((a) => held.release(a));
    expect(released[0]).toBe(answers[0]);
    for (const r of released.slice(1)) expect(r).toBeInstanceOf(Promise);
    let settled = 0;
    for (const r of released.slice(1)) void (r as Promise<Response>).then(() => settled++);
    await Promise.resolve();
    expect(settled).toBe(0);
    const got = await Promise.all(released);
    got.forEach((g, i) => expect(g).toBe(answers[i] as Response));
    expect(await Promise.all(got.map((r) => r.text()))).toEqual(["answer 0", "answer 1", "answer 2", "answer 3"]);
    // Next turn: the first answer again goes straight through.
    const later = new Response("later");
    expect(held.release(later)).toBe(later);
  });
});
