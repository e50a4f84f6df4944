// Verdicts of the benchmark runs, in words a reader cannot misread: a run that was capped, stalled or lossy is FAILED,
// never "ok". Pure functions, shared by bench/streams.ts and bench/run.ts and unit-tested in test/bench-verdict.test.ts.

/** What one streams run measured, as far as its verdict needs. */
export interface StreamsOutcome {
  /** N asked for, and N actually run (lower when the descriptor limit capped it). */
  requested: number;
  ran: number;
  /** The most streams the gateway's descriptor limit holds. */
  cap: number;
  failed: number;
  timedOut: number;
  lostEvents: number;
  /** Completed streams with another event count than expected. */
  wrongCount: number;
  stalled: number;
  lateFirst: number;
  /** The stall threshold (ms) and the first-event bar (ms) the counts above were measured against. */
  stallMs: number;
  lateFirstMs: number;
  /** Whether the gateway really held (nearly) all streams at once, and about how many upstream ones it held. */
  concurrent: boolean;
  upstreamAtPeak: number;
  /** Peak RSS projected to 10,000 streams, MiB, against `budgetMiB`. */
  projected10kMiB: number;
  budgetMiB: number;
  errors: Record<string, number>;
  statuses: Record<string, number>;
}

/** Every reason the run failed, in words; empty when it passed. */
export function streamsProblems(o: StreamsOutcome): string[] {
  const p: string[] = [];
  const n = o.ran;
  if (o.ran < o.requested) p.push(`ran only ${o.ran} of the ${o.requested} streams asked for (the gateway's descriptor limit holds ${o.cap})`);
  if (o.failed > 0) p.push(`${o.failed} of ${n} streams failed (errors ${JSON.stringify(o.errors)}, statuses ${JSON.stringify(o.statuses)})`);
  if (o.timedOut > 0) p.push(`${o.timedOut} of ${n} streams were still open after the client's timeout`);
  if (o.lostEvents !== 0) p.push(`${o.lostEvents} events lost`);
  if (o.wrongCount > 0) p.push(`${o.wrongCount} completed streams had a wrong event count`);
  if (o.stalled > 0) p.push(`${o.stalled} of ${n} streams stalled (two events more than ${o.stallMs} ms apart)`);
  if (o.lateFirst > 0) p.push(`${o.lateFirst} of ${n} streams got their first event late (after ${Math.round(o.lateFirstMs)} ms: the slowest direct one + ${o.stallMs} ms)`);
  if (!o.concurrent) p.push(`not concurrent: the gateway held only about ${o.upstreamAtPeak} upstream streams at once`);
  if (o.projected10kMiB >= o.budgetMiB) p.push(`memory over budget: ${Math.round(o.projected10kMiB)} MiB for 10,000 streams (budget ${o.budgetMiB} MiB)`);
  return p;
}

/** The one line that ends a streams run: "PASSED: …" or "FAILED: …" with every problem. */
export function streamsVerdictLine(o: StreamsOutcome, directMs: number, gatewayMs: number): string {
  const problems = streamsProblems(o);
  if (problems.length > 0) return `FAILED: N = ${o.requested}: ${problems.join("; ")}`;
  return `PASSED: N = ${o.ran}: every stream complete, no event lost, none stalled or late, within the memory budget (${gatewayMs} ms vs ${directMs} ms direct)`;
}

/** A step of `npm run bench` ends in one of these words. */
export type StepVerdict = "ok" | "FAILED" | "NOT RUN" | "CRASHED";

/** The exit code a step uses for "a tool I need is missing, nothing was measured" (bench/lib.sh's `require`). */
export const NOT_RUN_EXIT = 3;

/**
 * A step's verdict from its exit code and the verdict lines it printed (lines starting "FAILED:" or "NOT RUN:"):
 * NOT RUN wins (nothing was measured), then FAILED (it ran and said what went wrong), then a bare non-zero exit is
 * CRASHED; only a zero exit with no such line is ok.
 */
export function stepVerdict(code: number, verdictLines: readonly string[]): StepVerdict {
  if (code === NOT_RUN_EXIT || verdictLines.some((l) => l.startsWith("NOT RUN:"))) return "NOT RUN";
  if (verdictLines.some((l) => l.startsWith("FAILED:"))) return "FAILED";
  return code === 0 ? "ok" : "CRASHED";
}

/** Whether an output line is a verdict line `stepVerdict` reads. */
export function isVerdictLine(line: string): boolean {
  return line.startsWith("FAILED:") || line.startsWith("NOT RUN:");
}
