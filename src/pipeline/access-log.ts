// Phase 7, log: exactly one `ai.access` line per request, written when the response is over
// (body relayed, failed, or abandoned by the client), so its status and byte counts are final.

import type { RequestContext } from "./context.ts";
import { log } from "../ops/log.ts";

/** The last path and its JSON form: the same few paths repeat on nearly every request. */
let lastPath = "";
let lastPathJson = '""';

/** `endNs`: Bun.nanoseconds() at the end, when the caller read the clock already. */
export function accessLog(ctx: RequestContext, endNs = Bun.nanoseconds()): void {
  const q = ctx.target.indexOf("?");
  // The query is left out: some clients put keys there (`?key=`), and logs must never carry a secret.
  const path = q < 0 ? ctx.target : ctx.target.slice(0, q);
  // Built by hand (this runs for every request): the id is hex, the method a token, the provider name is restricted
  // to path-segment characters at boot, and `error` is one of the gateway's own reason codes; only the path needs
  // JSON escaping.
  const durationMs = Math.round((endNs - ctx.startNs) / 1e4) / 100;
  if (path !== lastPath) {
    lastPath = path;
    lastPathJson = JSON.stringify(path);
  }
  let body = `"request_id":"${ctx.id}","method":"${ctx.method}","path":${lastPathJson},"provider":${ctx.provider === undefined ? "null" : `"${ctx.provider.name}"`},"status":${ctx.status},"duration_ms":${durationMs},"managed":${ctx.managed},"bytes_in":${ctx.bytesIn},"bytes_out":${ctx.bytesOut}`;
  if (ctx.attempts > 1) body += `,"attempts":${ctx.attempts}`;
  if (ctx.error !== undefined) body += `,"error":"${ctx.error}"`;
  log.writeRaw("ai.access", "info", body);
}
