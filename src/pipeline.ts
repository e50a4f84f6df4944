// The request pipeline, in order: route → authenticate → admit → rewrite → forward → meter → log.
// Each phase lives in its own module; this file only sequences them around the per-request context.

import type { Server } from "bun";
import { accessLog } from "./access-log.ts";
import { checkFraming } from "./admit.ts";
import { extractCredential, verifyManaged } from "./authenticate.ts";
import type { Config } from "./config.ts";
import { newContext, type RequestContext, requestTarget } from "./context.ts";
import { ERR, errorResponse, type GatewayError } from "./errors.ts";
import { errorCode, HeldResponses, readWhole, relayBody, type RelayEnd, sendUpstream, StreamedBody } from "./forward.ts";
import type { KeyVerifier } from "./keys.ts";
import { DENIED, isBreakerFailure, type CircuitBreaker, type Permit } from "./breaker.ts";
import { log } from "./log.ts";
import type { DenySet } from "./denyset.ts";
import type { RateGuard } from "./ratelimit.ts";
import { injectionEligible, Meter } from "./meter.ts";
import { type HistogramCell, type Labels, type Metrics, ProviderMetrics } from "./metrics.ts";
import { dialectForUnrouted, type Router } from "./route.ts";
import { rewriteRequestHead, rewriteResponseHead } from "./rewrite.ts";
import { SmallBodyRead, StallWatch } from "./stall.ts";
import { Cancel, type Transport } from "./transport.ts";

export interface Gateway {
  cfg: Config;
  rate: RateGuard;
  denySet: DenySet;
  /** One breaker per provider name. */
  breakers: Map<string, CircuitBreaker>;
  router: Router;
  verifier: KeyVerifier;
  transport: Transport;
  metrics: Metrics;
}

/** Bodies declared at or under this size are read in one piece: the same bounded memory as one streamed chunk, and retries become trivial. */
export const SMALL_BODY_BYTES = 64 * 1024;

/** Client went away before the response head: nginx's convention, so the access log tells it apart from real statuses. */
const CLIENT_CLOSED = 499;

/** idle_timeout_secs as applied: Bun's server idle timer takes 8–960 s, and the client body watch uses the same. */
export function clientIdleSecs(cfg: Config): number {
  return Math.min(960, Math.max(8, cfg.idle_timeout_secs));
}

export function createHandler(gw: Gateway): (req: Request, server: Server<undefined>) => Promise<Response> {
  const { cfg, router, verifier, transport, metrics, rate, breakers, denySet } = gw;
  const readTimeoutMs = cfg.read_timeout_secs * 1000;
  const perProvider = new Map<string, ProviderMetrics>();
  for (const p of router.providers) perProvider.set(p.name, new ProviderMetrics(metrics, p.name));
  // Unlabelled series exist from boot anyway, so their cells are bound here once.
  const requestsTotal = metrics.cell("ai_requests_total");
  const inFlight = metrics.cell("ai_requests_in_flight");
  const activeStreams = metrics.cell("ai_active_streams");
  const overhead = metrics.histogramCell("ai_gateway_overhead_seconds");
  const maxBody = cfg.max_request_body_bytes;
  const metering = cfg.usage_metering;
  const held = new HeldResponses();
  // Bun's idle timer is off once a request is admitted; this watches the client's body instead (408, SPEC §5).
  const idleSecs = clientIdleSecs(cfg);
  const stalls = new StallWatch(idleSecs * 1000);

  function reject(ctx: RequestContext, err: GatewayError, reason: string, rejection?: string): Response {
    ctx.status = err.status;
    ctx.error = reason;
    if (rejection !== undefined) metrics.inc("ai_rejections_total", reasonLabels(rejection));
    accessLog(ctx);
    return errorResponse(ctx.dialect, err, ctx.id);
  }

  return async function handle(req: Request, server: Server<undefined>): Promise<Response> {
    requestsTotal.v++;
    const target = requestTarget(req.url);
    const ctx = newContext(req.method, target, "openai");

    // 1. route
    const route = router.route(target);
    // TRACE would have a provider echo the request, pool key included, and CONNECT asks for a tunnel: neither is
    // proxied (SPEC §5). A string compare on the method, so ordinary requests pay nothing measurable.
    const method = req.method;
    if (method === "TRACE" || method === "CONNECT") {
      ctx.provider = route?.provider;
      ctx.dialect = route === undefined ? dialectForUnrouted(target) : route.provider.dialect;
      return reject(ctx, ERR.methodNotAllowed, "method_not_allowed");
    }
    if (route === undefined) {
      ctx.dialect = dialectForUnrouted(target);
      return reject(ctx, ERR.unknownProvider, "unknown_provider");
    }
    const provider = route.provider;
    const pm = perProvider.get(provider.name) as ProviderMetrics;
    ctx.provider = provider;
    ctx.dialect = provider.dialect;
    ctx.forwardPath = route.forwardPath;

    // 2. authenticate: key present
    const headers = req.headers;
    const cred = extractCredential(headers);
    if (cred === undefined) return reject(ctx, ERR.missingKey, "missing_api_key");
    if ("error" in cred) return reject(ctx, cred.error, cred.reason);
    ctx.managed = cred.managed;

    // 3. admit: rate guardrails first (before any signature work), then framing and declared size
    const admitted = rate.check(cred.token, cred.managed);
    if (!admitted.ok) return reject(ctx, ERR.rateLimited(admitted.retryAfterSecs), admitted.reason, admitted.reason);
    const framing = checkFraming(headers, maxBody);
    if (framing !== undefined) return closeAfter(reject(ctx, framing, framing.status === 413 ? "body_too_large" : "bad_request", framing.status === 413 ? "body_too_large" : undefined));

    // 2b. managed: verify, then pool key
    if (cred.managed) {
      const auth = verifyManaged(verifier, cred.token);
      if (!auth.ok) return reject(ctx, auth.error, auth.reason, auth.rejection);
      ctx.identity = auth.identity;
      const denied = denySet.lookup(auth.identity.tenant);
      if (denied !== undefined) {
        const rejection = denied === "spend" ? "deny_spend" : denied === "fraud" ? "deny_fraud" : "deny_unknown";
        return reject(ctx, ERR.denied(denied === "spend" ? 402 : 403), rejection, rejection);
      }
      if (provider.keys.length === 0) return reject(ctx, ERR.noPoolKey, "no_pool_key");
    }

    // 3b. circuit breaker last. Here only the side-effect-free check, so an open provider is refused without reading
    // the body; the permit itself (the half-open probe's included) is taken just before the upstream send, once a
    // small body is in hand, so a client that never finishes its body can never hold the probe.
    const breaker = breakers.get(provider.name);
    if (breaker !== undefined && !breaker.wouldAllow()) return reject(ctx, ERR.circuitOpen(breaker.retryAfterSecs()), "circuit_open", "circuit_open");
    let permit: Permit = DENIED;

    // Admitted: from here the request may take minutes (long generations, streams), so Bun's idle timer must not
    // cut it. The gateway's own timers take over: the stall watch (idle_timeout_secs, 408) while it waits on the
    // client's body, the read timeout (read_timeout_secs, 504) while it waits on the provider.
    server.timeout(req, 0);
    inFlight.v++;

    const meter = cred.managed && metering ? new Meter(ctx, metrics, injectionEligible(ctx)) : undefined;
    // The exchange's cancellation doubles as the listener on the client's signal: no closure, no listener options.
    const cancel = new Cancel();
    req.signal.addEventListener("abort", cancel);

    let body: Uint8Array | StreamedBody | null = null;
    let bodyChanged = false;
    let tooLarge = false;
    const declared = headers.get("content-length");
    if (req.body !== null) {
      if (declared !== null && Number(declared) <= SMALL_BODY_BYTES) {
        let whole: Uint8Array;
        const read = new SmallBodyRead(req.bytes());
        stalls.wait(read);
        try {
          whole = await read.result;
        } catch {
          return finishEarly(ctx, CLIENT_CLOSED, "client_closed");
        } finally {
          stalls.done(read);
        }
        if (read.stalled) return finishEarly(ctx, 0, "client_timeout", ERR.requestTimeout);
        ctx.bytesIn = whole.byteLength;
        body = meter === undefined ? whole : meter.wholeBody(whole);
        bodyChanged = body !== whole;
      } else {
        const m = meter;
        m?.streamedUpload();
        bodyChanged = m?.streamedBodyChanges === true;
        body = new StreamedBody(
          req.body,
          (chunk) => {
            ctx.bytesIn += chunk.byteLength;
            if (ctx.bytesIn > maxBody) {
              tooLarge = true;
              throw new Error("request body too large");
            }
            return m === undefined ? chunk : m.onRequestChunk(chunk);
          },
          m === undefined ? undefined : () => m.onRequestEnd(),
          stalls,
          cancel,
        );
      }
    }

    // 4. rewrite. When the gateway may change the body it also asks for identity encoding, so the usage-only chunk it
    // caused can be removed from plain SSE bytes.
    const upHeaders = rewriteRequestHead(headers, provider, { managed: cred.managed, key: provider.keys[0], bodyChanged, forceIdentity: bodyChanged });

    // 5. forward. The breaker permit is taken now, just before the send; every path from here reports it once.
    if (breaker !== undefined) {
      permit = breaker.allow();
      if (permit === DENIED) {
        if (body instanceof StreamedBody) body.discard();
        metrics.inc("ai_rejections_total", reasonLabels("circuit_open"));
        return finishEarly(ctx, 0, "circuit_open", ERR.circuitOpen(breaker.retryAfterSecs()));
      }
    }
    const sendNs = Bun.nanoseconds();
    const sent = await sendUpstream({
      transport,
      url: provider.origin + ctx.forwardPath,
      method: req.method,
      headers: upHeaders,
      body,
      cancel,
      headTimeoutMs: readTimeoutMs,
      onRetry: (attempt, e) => {
        pm.retries.v++;
        // The host (an authority from config: never a key) makes ENOTFOUND or ECONNREFUSED actionable.
        log.gateway("warn", "upstream connect failed, retrying", { request_id: ctx.id, provider: provider.name, attempt, error: `${errorCode(e)} ${provider.authority}` });
      },
    });
    ctx.attempts = sent.attempts;
    if (!sent.ok) {
      if (body instanceof StreamedBody) body.discard();
      if (tooLarge) {
        metrics.inc("ai_rejections_total", reasonLabels("body_too_large"));
        return closeAfter(finishEarly(ctx, 0, "body_too_large", ERR.bodyTooLarge));
      }
      if (req.signal.aborted) {
        ctx.status = CLIENT_CLOSED;
        meter?.finish("client_closed", undefined);
        return finishEarly(ctx, CLIENT_CLOSED, "client_closed");
      }
      if (sent.reason === "client_timeout") return finishEarly(ctx, 0, "client_timeout", sent.error);
      // e.g. "upstream_unreachable: ENOTFOUND api.example.com:443", "upstream_timeout api.example.com:443".
      const where = provider.authority;
      log.gateway("warn", "upstream request failed", { request_id: ctx.id, provider: provider.name, error: sent.cause === undefined ? `${sent.reason} ${where}` : `${sent.reason}: ${sent.cause} ${where}` });
      ctx.status = sent.error.status;
      // A connect failure never reached the provider: nothing to bill. A timeout or reset may have.
      if (sent.reason !== "upstream_unreachable") meter?.finish(sent.reason === "upstream_timeout" ? "upstream_timeout" : "upstream_reset", undefined);
      return finishEarly(ctx, 0, sent.reason, sent.error);
    }

    // 6. relay (meter hooks in as the observer)
    const up = sent.response;
    ctx.headersNs = Bun.nanoseconds();
    pm.ttft.observe((ctx.headersNs - ctx.startNs) / 1e9);
    ctx.status = up.status;
    pm.status(up.status).v++;
    const outHeaders = rewriteResponseHead(up.headers, ctx.id);
    const streaming = (up.headers.get("content-type") ?? "").includes("event-stream");
    if (streaming) activeStreams.v++;

    // A received status decides the breaker outcome, whatever happens to the body afterwards: record it now, so a
    // long stream does not hold the half-open probe and the next request already sees the outcome.
    if (isBreakerFailure(up.status, false)) breaker?.onFailure(permit);
    else breaker?.onSuccess(permit);
    const done = (how: RelayEnd) => {
      req.signal.removeEventListener("abort", cancel);
      // Bun keeps a per-request timeout for the connection's life: without this, a keep-alive connection that served
      // one admitted request would never idle out. Set while the response is still being written (later is a no-op).
      server.timeout(req, idleSecs);
      meter?.finish(how, streaming);
      if (how !== "complete") ctx.error = how;
      if (streaming) activeStreams.v--;
      inFlight.v--;
      pm.latency.observe((Bun.nanoseconds() - ctx.startNs) / 1e9);
      // 7. log
      accessLog(ctx);
    };
    if (up.body === null && up.whole === undefined) {
      done("complete");
      observeOverhead(overhead, ctx, sendNs);
      return new Response(null, { status: up.status, statusText: up.statusText, headers: outHeaders });
    }
    // Read whole: a body the transport already holds (no stream left: any framing, SSE too), or a small declared
    // non-SSE body read now.
    const declaredOut = up.headers.get("content-length");
    if (up.body === null || (!streaming && declaredOut !== null && Number(declaredOut) <= SMALL_BODY_BYTES)) {
      const read = readWhole(up, cancel, readTimeoutMs);
      const got = read instanceof Promise ? await read : read;
      if (!got.ok) {
        // The head was not sent to the client yet, so a broken body can still become a clean 502/504.
        ctx.status = got.how === "client_closed" ? CLIENT_CLOSED : got.how === "upstream_timeout" ? 504 : 502;
        done(got.how);
        if (got.how === "client_closed") return new Response(null, { status: CLIENT_CLOSED });
        return errorResponse(ctx.dialect, got.how === "upstream_timeout" ? ERR.upstreamTimeout : ERR.upstreamReset, ctx.id);
      }
      let out = got.bytes;
      if (meter !== undefined && (streaming || !meter.wholeJson(up.headers, out))) {
        const observer = meter.observe(up.headers, streaming);
        if (observer !== undefined) {
          out = observer.push(out);
          const tail = observer.end();
          if (tail.byteLength > 0) out = Buffer.concat([out, tail]);
        }
      }
      ctx.bytesOut = out.byteLength;
      done("complete");
      const response = new Response(out, { status: up.status, statusText: up.statusText, headers: outHeaders });
      observeOverhead(overhead, ctx, sendNs);
      return held.release(response);
    }
    const relayed = relayBody({
      body: up.body,
      cancel,
      readTimeoutMs,
      observer: meter?.observe(up.headers, streaming),
      onBytes: (n) => {
        ctx.bytesOut += n;
      },
      onEnd: done,
    });
    const response = new Response(relayed, { status: up.status, statusText: up.statusText, headers: outHeaders });
    observeOverhead(overhead, ctx, sendNs);
    return response;

    function finishEarly(c: RequestContext, status: number, reason: string, err?: GatewayError): Response {
      req.signal.removeEventListener("abort", cancel);
      // As in done(): the connection idles out again, also one whose unread body the client never finishes.
      server.timeout(req, idleSecs);
      // No upstream status. Reported only by a request that holds a permit: a gateway-side 502/504 is the provider's
      // failure; a client that left, stalled (408) or sent too much (413) says nothing about the provider: neutral,
      // which also hands a half-open probe's permit back.
      if (permit !== DENIED) {
        if (err !== undefined && err.status >= 500) breaker?.onFailure(permit);
        else breaker?.onNeutral(permit);
      }
      inFlight.v--;
      c.status = err?.status ?? status;
      c.error = reason;
      accessLog(c);
      return err !== undefined ? errorResponse(c.dialect, err, c.id) : new Response(null, { status: CLIENT_CLOSED, headers: { "x-beyond-request-id": c.id } });
    }
  };
}

/**
 * For an answer sent while the client's body is still unread (refused framing, a body over max_request_body_bytes):
 * `connection: close` makes Bun close the connection after it instead of reading and discarding the rest of the
 * body, which can be hundreds of MB the client keeps sending.
 */
function closeAfter(res: Response): Response {
  res.headers.set("connection", "close");
  return res;
}

/** Time spent in the gateway's own code: before the upstream send, and from the upstream head to the client head. */
function observeOverhead(overhead: HistogramCell, ctx: RequestContext, sendNs: number): void {
  overhead.observe((sendNs - ctx.startNs + Bun.nanoseconds() - ctx.headersNs) / 1e9);
}

const REASONS = new Map<string, Labels>();
function reasonLabels(reason: string): Labels {
  let l = REASONS.get(reason);
  if (l === undefined) REASONS.set(reason, (l = { reason }));
  return l;
}

