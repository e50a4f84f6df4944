// Phase 3, admit: checks that need no upstream and no body bytes (SPEC §4 order after the key):
// message framing, declared size. Rate guardrails, deny-set and circuit breaker hook in here too.

import { ERR, type GatewayError } from "./errors.ts";
import { field, type HeaderFields } from "../transport/transport.ts";

/**
 * `content-length` together with `transfer-encoding` is the classic request-smuggling shape: refuse it (400)
 * rather than guess which framing the client meant. A declared length over the cap is 413 before any body is read.
 */
export function checkFraming(headers: HeaderFields, maxBodyBytes: number): GatewayError | undefined {
  const cl = field(headers, "content-length");
  if (cl !== null) {
    if (headers["transfer-encoding"] !== undefined) return ERR.badRequest("request has both content-length and transfer-encoding");
    if (!/^\d+$/.test(cl)) return ERR.badRequest("content-length is not a number");
    if (Number(cl) > maxBodyBytes) return ERR.bodyTooLarge;
  }
  return undefined;
}
