// The value at quantile q (0-1) of an ascending array, nearest rank rounded down: the one definition the tail tools
// (gc-position.ts, floor.ts, sched-cycles.ts, syscall-latency.ts) share, so their p99s are the same statistic.
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}
