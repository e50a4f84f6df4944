// TEMPORARY stub (lead's integration scaffold): replaced by helper A's implementation on merge.
import type { SharedState } from "./shared-state.ts";

export interface BackoffPolicy {
  initialMs: number;
  multiplier: number;
  maxMs: number;
  jitter: "full" | "none";
}
export function backoffMs(retry: number, p: BackoffPolicy, random: () => number = Math.random): number {
  const d = Math.min(p.maxMs, p.initialMs * p.multiplier ** (retry - 1));
  return p.jitter === "full" ? random() * d : d;
}
export function retryAfterFromHeaders(h: Headers, _nowEpochMs: number): number | undefined {
  const ms = h.get("retry-after-ms");
  if (ms !== null && Number.isFinite(Number(ms))) return Number(ms);
  const s = h.get("retry-after");
  if (s !== null && Number.isFinite(Number(s))) return Number(s) * 1000;
  return undefined;
}
export function isQuotaExhausted(body: Uint8Array): boolean {
  return new TextDecoder().decode(body).includes("insufficient_quota");
}
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 500 || status === 502 || status === 503 || status === 504 || status === 529;
}
export class RetryBudgets {
  constructor(_opts: { ratio: number; minPerSec: number }, _providers: readonly string[], _shared?: SharedState, _now?: () => number) {}
  first(_provider: number): void {}
  tryRetry(_provider: number): boolean {
    return true;
  }
}
