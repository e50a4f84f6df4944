// Phase 7, log: exactly one `ai.access` line per request, written when the response is over
// (body relayed, failed, or abandoned by the client), so its status and byte counts are final.

import type { RequestContext } from "./context.ts";
import { log } from "./log.ts";

export function accessLog(ctx: RequestContext): void {
  const q = ctx.target.indexOf("?");
  log.write("ai.access", "info", undefined, {
    request_id: ctx.id,
    method: ctx.method,
    // The query is left out: some clients put keys there (`?key=`), and logs must never carry a secret.
    path: q < 0 ? ctx.target : ctx.target.slice(0, q),
    provider: ctx.provider?.name ?? null,
    status: ctx.status,
    duration_ms: Math.round((Bun.nanoseconds() - ctx.startNs) / 1e4) / 100,
    managed: ctx.managed,
    bytes_in: ctx.bytesIn,
    bytes_out: ctx.bytesOut,
    attempts: ctx.attempts > 1 ? ctx.attempts : undefined,
    error: ctx.error,
  });
}
