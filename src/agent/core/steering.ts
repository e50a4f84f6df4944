// Steering: what a driver (serve, a script) asks of a run from outside it. Two message lanes (steer: folded into the
// next tool-results turn; follow-up: a new user turn when the model would stop) and three run-scoped requests (stop
// after this turn, switch model, switch tool set) that the loop applies at its next turn boundary.

import type { ImageSource } from "./types.ts";

export interface QueuedMessage {
  text: string;
  images?: ImageSource[];
}

export type QueueMode = "one_at_a_time" | "all";

export class Steering {
  steeringMode: QueueMode = "one_at_a_time";
  followUpMode: QueueMode = "one_at_a_time";
  private steerQueue: QueuedMessage[] = [];
  private followUpQueue: QueuedMessage[] = [];
  private stop = false;
  private modelSwitch: { model: string; thinking?: number } | undefined;
  private toolSet: string[] | undefined;

  steer(m: QueuedMessage): void {
    this.steerQueue.push(m);
  }

  followUp(m: QueuedMessage): void {
    this.followUpQueue.push(m);
  }

  requestStop(): void {
    this.stop = true;
  }

  get stopRequested(): boolean {
    return this.stop;
  }

  requestModelSwitch(model: string, thinking?: number): void {
    this.modelSwitch = thinking === undefined ? { model } : { model, thinking };
  }

  requestToolSet(names: string[]): void {
    this.toolSet = names.slice();
  }

  /** The pending model switch, consumed. */
  takeModelSwitch(): { model: string; thinking?: number } | undefined {
    const s = this.modelSwitch;
    this.modelSwitch = undefined;
    return s;
  }

  /** The pending tool-set switch, consumed. */
  takeToolSet(): string[] | undefined {
    const s = this.toolSet;
    this.toolSet = undefined;
    return s;
  }

  /** The steer lane's messages due now (the oldest, or all, by steeringMode), removed from the lane. */
  drainSteer(): QueuedMessage[] {
    return drain(this.steerQueue, this.steeringMode);
  }

  /** The follow-up lane's messages due now (the oldest, or all, by followUpMode), removed from the lane. */
  drainFollowUp(): QueuedMessage[] {
    return drain(this.followUpQueue, this.followUpMode);
  }

  pendingCount(): number {
    return this.steerQueue.length + this.followUpQueue.length;
  }

  steerTexts(): string[] {
    return this.steerQueue.map((m) => m.text);
  }

  followUpTexts(): string[] {
    return this.followUpQueue.map((m) => m.text);
  }

  /** Everything, queued messages included (new_session). */
  clear(): void {
    this.steerQueue = [];
    this.followUpQueue = [];
    this.clearRunScoped();
  }

  /** Run-scoped requests only (stop, model switch, tool set); queued messages stay for the next run. */
  clearRunScoped(): void {
    this.stop = false;
    this.modelSwitch = undefined;
    this.toolSet = undefined;
  }
}

function drain(queue: QueuedMessage[], mode: QueueMode): QueuedMessage[] {
  if (queue.length === 0) return [];
  if (mode === "all") return queue.splice(0, queue.length);
  return queue.splice(0, 1);
}
