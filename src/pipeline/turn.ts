// One event-loop turn as a unit of work. Bun runs the callbacks for every socket that became ready in one poll, then
// setImmediate callbacks: so "the end of this turn" is where writes several requests produced can go out together.
// Why it pays: a write to a peer that is asleep also pays for waking it (on the shared VMs measured here a loopback
// send costs ~20 µs when it wakes the receiver), and back-to-back writes let one wake-up serve them all. The first
// caller of a turn always acts at once, so a lone request (one connection, light load) is never held back; later
// callers in a busy turn wait at most for the rest of that turn's callbacks.

export class TurnGate {
  private open = false;

  /** `flush` runs once at the end of every turn in which first() was called. */
  constructor(private readonly flush: () => void) {}

  /** True for the turn's first caller (act now); false for the rest (queue, and flush will see to it). */
  first(): boolean {
    if (this.open) return false;
    this.open = true;
    setImmediate(this.end);
    return true;
  }

  private readonly end = (): void => {
    this.open = false;
    this.flush();
  };
}
