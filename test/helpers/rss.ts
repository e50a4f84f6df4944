// Resident set size of another process, from /proc (Linux): what the kernel actually holds for the
// gateway, GC heap, native buffers and all, which is what "does not buffer bodies" has to bound.
import { readFileSync } from "node:fs";

/** VmRSS of `pid` in bytes. Throws when the process or /proc is gone. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

export interface RssSampler {
  /** Stops sampling; the highest and lowest RSS seen (bytes), and how many samples were taken. */
  stop(): { max: number; min: number; samples: number };
}

/** Samples RSS every `intervalMs` so a short-lived peak during a transfer is not missed. */
export function sampleRss(pid: number, intervalMs = 5): RssSampler {
  let max = 0;
  let min = Number.POSITIVE_INFINITY;
  let samples = 0;
  const take = (): void => {
    try {
      const v = rssBytes(pid);
      max = Math.max(max, v);
      min = Math.min(min, v);
      samples++;
    } catch {
      // The process may be exiting; the caller judges by the samples it has.
    }
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { max, min, samples };
    },
  };
}
