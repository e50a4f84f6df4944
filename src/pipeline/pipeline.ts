// The request pipeline, in order: route → authenticate → admit → rewrite → forward → meter → log.
// Each phase lives in its own module; this file only sequences them around the per-request context.

import type { Server } from "bun";
import { accessLog } from "./access-log.ts";
import { checkFraming } from "./admit.ts";
import { extractCredential, verifyManaged } from "./authenticate.ts";
import type { Config } from "../ops/config.ts";
import { newContext, type RequestContext, requestTarget } from "./context.ts";
import { ERR, errorResponse, type GatewayError } from "./errors.ts";
import type { ModelRoute, Routes, Target } from "../routing/routes.ts";
import { jsonString, ModelRewriter, rewriteModelWhole, spliceModelAt } from "../metering/rewrite-model.ts";
import { UsageInjector } from "../metering/inject-usage.ts";
import { ModelScanner } from "../metering/scan-model.ts";
import { holdPreamble, type HoldOptions, type HoldResult, type ReadResult, scanWhole } from "./commit.ts";
import { type BodyTransform, CLIENT_TIMEOUT, errorCode, HeldResponses, type Reader, readWhole, relayBody, type RelayEnd, type ReplayOptions, sendUpstream, StreamedBody, type WholeRead } from "./forward.ts";
import type { KeyPools, ReplayPool } from "../routing/key-pool.ts";
import type { PoolKey } from "../routing/providers.ts";
import { backoffMs, type BackoffPolicy, isContextLengthError, isQuotaExhausted, isRetryableStatus, retryAfterFromHeaders, type RetryBudgets } from "../routing/retry-policy.ts";
import type { KeyVerifier } from "../controls/keys.ts";
import { DENIED, isBreakerFailure, type CircuitBreaker, type Permit } from "../controls/breaker.ts";
import { log } from "../ops/log.ts";
import type { DenySet } from "../controls/denyset.ts";
import type { RateGuard } from "../controls/ratelimit.ts";
import { injectionEligible, Meter } from "../metering/meter.ts";
import { type AttemptOutcome, type Cell, type HistogramCell, type Labels, type Metrics, ProviderMetrics, type RetryReason } from "../ops/metrics.ts";
import { dialectForUnrouted, type Router } from "./route.ts";
import { rewriteRequestHead, rewriteResponseHead } from "./rewrite.ts";
import { ClientLink, SmallBodyRead, StallWatch } from "./stall.ts";
import { Cancel, type CancelListener, field, type HeaderFields, type Transport, type UpstreamResponse } from "../transport/transport.ts";
import { prepareTranslation, targetBody, translatedHead, translatedRest, TranslatingObserver, translateWhole } from "../translate/exchange.ts";
import type { TranslatedRequest } from "../translate/types.ts";
import type { Dialect } from "../routing/providers.ts";
import { AUTO, type AutoDecision, type AutoRouter } from "../routing/auto.ts";
import { TIERS } from "../routing/auto-config.ts";

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
  /** SPEC §10: pool-key selection and cooldowns, per-provider retry budgets, the process's replay-copy pool. */
  pools: KeyPools;
  budgets: RetryBudgets;
  replayPool: ReplayPool;
  /** SPEC §11: virtual models' target orders (per thread); with `[auto]`, its tiers' routes too. */
  routes: Routes;
  /** SPEC §13: `model: "auto"`; undefined when `[auto]` is absent. */
  auto: AutoRouter | undefined;
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
  const { cfg, router, verifier, transport, metrics, rate, breakers, denySet, pools, budgets, replayPool, routes, auto } = gw;
  /** Every route a request may take: the aliases, and (with `[auto]`) the tiers' own `provider/model` routes. */
  const models = auto?.models ?? cfg.models;
  /** The names a client may use as a virtual model (path segment or body model): the aliases, and `auto`. The tiers'
   * own routes are not among them (a body's "openai/gpt-4o" is a plain model name, forwarded as it is). */
  const clientAliases = new Set(Object.keys(cfg.models));
  if (auto !== undefined) clientAliases.add(AUTO);
  const aliasCount = clientAliases.size;
  /** SPEC §12: the dialects each virtual model's targets speak; an alias with both translates for some clients. */
  const aliasDialects = new Map<string, ReadonlySet<Dialect>>();
  /** Aliases with a target whose provider has several pool keys: only their requests read `x-session-id`. */
  const multiKey = new Set<string>();
  {
    const byName = new Map([...router.providers].map((p) => [p.name, p]));
    for (const [alias, r] of Object.entries(models)) {
      aliasDialects.set(alias, new Set(r.targets.map((t) => byName.get(t.provider)?.dialect ?? r.dialect)));
      if (r.targets.some((t) => (byName.get(t.provider)?.keys.length ?? 0) > 1)) multiKey.add(alias);
    }
  }
  /** ai_route_requests_total label sets per target, and ai_fallbacks_total's per route and reason, bound on first use. */
  const targetCells = new Map<Target, Cell>();
  /** The same for `auto` requests, whose `route` label is "auto" whichever tier served. */
  const autoTargetCells = new Map<Target, Cell>();
  /** ai_route_decisions_total's cells, by the (shared, frozen) label set AutoRouter hands out. */
  const decisionCells = new Map<Labels, Cell>();
  const fallbackLabels = new Map<string, Labels>();
  const fallbackLabelsFor = (route: string, reason: string): Labels => {
    const k = `${route}\u0000${reason}`;
    let l = fallbackLabels.get(k);
    if (l === undefined) fallbackLabels.set(k, (l = { route, reason }));
    return l;
  };
  const retry = cfg.retry;
  const backoff: BackoffPolicy = { initialMs: retry.initial_backoff_ms, multiplier: retry.multiplier, maxMs: retry.max_backoff_ms, jitter: retry.jitter };
  const holdOpts: HoldOptions = { maxMs: retry.commit_hold_ms, maxBytes: retry.commit_hold_bytes };
  /** Each provider's index in the router's table: its retry-budget slot. */
  const providerIndex = new Map<string, number>([...router.providers].map((p, i) => [p.name, i]));
  const replayAbandoned = (reason: string): void => metrics.inc("ai_replay_abandoned_total", reasonLabels(reason));
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
  const heldResponses = new HeldResponses();
  // Bun's idle timer is off once a request is admitted; this watches the client's body instead (408, SPEC §5).
  const idleSecs = clientIdleSecs(cfg);
  const stalls = new StallWatch(idleSecs * 1000);
  // Provider heads get one watch too (HeadWait): a head that has not come within read_timeout_secs is cut at most a
  // tick later, an eighth of the timeout (250 ms at most: 60.25 s for the default 60 s).
  const heads = new StallWatch(readTimeoutMs, Math.min(250, Math.max(10, readTimeoutMs / 8)));
  // Requests whose client signal is worth reading: those still in flight after a tick or two (ClientLink).
  const clients = new StallWatch(100, 100);

  const replayOptions: ReplayOptions = { maxBytes: retry.max_replay_bytes, pool: replayPool, onAbandon: replayAbandoned };

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
    // A virtual model's targets change these per attempt (useTarget); everything else reads them as the provider.
    let provider = route.provider;
    let pm = perProvider.get(provider.name) as ProviderMetrics;
    let pIndex = providerIndex.get(provider.name) as number;
    ctx.provider = provider;
    // An alias path speaks its client's dialect (route.ts); a bare /v1 path its provider's.
    ctx.dialect = route.dialect ?? provider.dialect;
    ctx.forwardPath = route.forwardPath;

    // 2. authenticate: key present. The client's head is read once, into plain fields (HeaderFields): every later
    // read is a property load, and phase 4 edits these fields into the upstream head. Bun's own Headers stay as sent.
    const headers = req.headers.toJSON() as HeaderFields;
    const cred = extractCredential(headers);
    if (cred === undefined) return reject(ctx, ERR.missingKey, "missing_api_key");
    if ("error" in cred) return reject(ctx, cred.error, cred.reason);
    ctx.managed = cred.managed;
    // SPEC §11: a virtual model, named by the path, or (bare /v1 paths, when aliases exist) maybe by the body's model.
    let alias = route.alias;
    const mayAlias = alias !== undefined || (aliasCount > 0 && route.rest !== undefined);
    if (alias !== undefined && !cred.managed) return reject(ctx, ERR.aliasNeedsManagedKey, "alias_needs_managed_key");
    // SPEC §10: managed requests may be retried (another key, backoff, the commit hold); BYO keeps §5's connect retries.
    // A virtual model may fall back to its next target even with max_attempts = 1.
    const retrying = cred.managed && (retry.max_attempts > 1 || mayAlias);
    /** The retry settings in force: the alias's own once a virtual model is chosen. */
    let rc = retry;

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
      // (A body may still name a virtual model whose targets are elsewhere: then the path's provider is checked later.)
      if (!mayAlias && provider.keys.length === 0) return reject(ctx, ERR.noPoolKey, "no_pool_key");
    }

    // 3b. circuit breaker last. Here only the side-effect-free check, so an open provider is refused without reading
    // the body; the permit itself (the half-open probe's included) is taken just before the upstream send, once a
    // small body is in hand, so a client that never finishes its body can never hold the probe.
    let breaker = breakers.get(provider.name);
    // (A virtual model checks each target's breaker as it chooses one.)
    if (!mayAlias && breaker !== undefined && !breaker.wouldAllow()) return reject(ctx, ERR.circuitOpen(breaker.retryAfterSecs()), "circuit_open", "circuit_open");
    let permit: Permit = DENIED;

    // Admitted: from here the request may take minutes (long generations, streams), so Bun's idle timer must not
    // cut it. The gateway's own timers take over: the stall watch (idle_timeout_secs, 408) while it waits on the
    // client's body, the read timeout (read_timeout_secs, 504) while it waits on the provider.
    server.timeout(req, 0);
    inFlight.v++;

    const meter = cred.managed && metering ? new Meter(ctx, metrics, injectionEligible(ctx)) : undefined;
    // The exchange's cancellation doubles as the listener on the client's signal: no closure, no listener options.
    // The signal is read only if the request is still in flight 100-200 ms from now (ClientLink).
    const cancel = new Cancel();
    const client = new ClientLink(req, cancel, clients);

    let body: Uint8Array | StreamedBody | null = null;
    /** A virtual model's whole body as the client sent it (each target gets its own rewrite of it). */
    let rawWhole: Uint8Array | undefined;
    /** A body alias's whole body as the meter's eligible pass left it (include_usage in), for spliceModelAt. */
    let metered: Uint8Array | undefined;
    /** A streamed body's per-attempt edit (a target's ModelRewriter, or include_usage when the meter only scans). */
    let transform: (() => BodyTransform) | undefined;
    let lastEdit: { readonly injected: boolean } | undefined;
    let aliasScanner: ModelScanner | undefined;
    /** A streamed virtual-model body: its length change with the model value written as "" (see the probe below). */
    let lengthBase: { delta: number; replaced: boolean } | undefined;
    let bodyChanged = false;
    let tooLarge = false;
    const declared = field(headers, "content-length");
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
        // The meter's one pass over the body also says whether its model names a virtual model (bare /v1 paths):
        // no second scan for requests that do not use one.
        body = meter === undefined || route.alias !== undefined ? whole : meter.wholeBody(whole);
        if (alias === undefined && mayAlias) {
          let bodyModel: string | undefined;
          if (meter !== undefined) bodyModel = meter.requestModel();
          else {
            ALIAS_SCANNER.reset();
            ALIAS_SCANNER.feed(whole);
            bodyModel = ALIAS_SCANNER.model();
          }
          if (bodyModel !== undefined && clientAliases.has(bodyModel)) {
            if (!cred.managed) return finishEarly(ctx, 0, "alias_needs_managed_key", ERR.aliasNeedsManagedKey);
            alias = bodyModel;
          }
        }
        if (alias === AUTO) {
          const d = await decideTier(auto as AutoRouter, headers, ctx.dialect, declared, whole, true);
          if (!("tier" in d)) return finishEarly(ctx, 0, "bad_tier", d);
          alias = recordTier(ctx, d, auto as AutoRouter, metrics, decisionCells);
        }
        if (alias !== undefined) {
          // The meter's pass already found the model value and applied include_usage: same-dialect targets splice
          // their model into that output (spliceModelAt), no second scan.
          if (meter?.wholePassed === true) metered = body as Uint8Array;
          rawWhole = whole;
          body = whole;
          bodyChanged = true;
        } else bodyChanged = body !== whole;
      } else {
        const m = meter;
        m?.streamedUpload();
        // A body that may carry a virtual model is only scanned here; each attempt edits it (transform).
        // (A BYO body is scanned too, only to refuse a virtual model with the 400; it is never edited.)
        if (mayAlias) {
          if (m !== undefined) m.scanOnly = true;
          // Only the body's first 64 KiB may name a virtual model (SPEC §11): this scanner sees no more.
          aliasScanner = new ModelScanner();
        }
        const sc = aliasScanner;
        bodyChanged = m?.streamedBodyChanges === true;
        body = new StreamedBody(
          req.body,
          (chunk) => {
            ctx.bytesIn += chunk.byteLength;
            if (ctx.bytesIn > maxBody) {
              tooLarge = true;
              throw new Error("request body too large");
            }
            if (sc !== undefined && !sc.done) {
              const before = ctx.bytesIn - chunk.byteLength;
              if (before < SMALL_BODY_BYTES) sc.feed(before + chunk.byteLength <= SMALL_BODY_BYTES ? chunk : chunk.subarray(0, SMALL_BODY_BYTES - before));
            }
            return m === undefined ? chunk : m.onRequestChunk(chunk);
          },
          m === undefined ? undefined : () => m.onRequestEnd(),
          stalls,
          cancel,
          retrying ? replayOptions : undefined,
        );
        if (sc !== undefined) {
          const streamed = body;
          // The alias must show within the first 64 KiB (SPEC §11): read until the scanner has the whole model value
          // (or saw 64 KiB), the pieces wait for the send. A path alias reads as far too, for an exact content-length.
          await streamed.readAhead(() => sc.modelDecided || sc.done, SMALL_BODY_BYTES).catch(() => {});
          const bodyModel = sc.model();
          if (alias === undefined && bodyModel !== undefined && clientAliases.has(bodyModel)) {
            if (!cred.managed) {
              streamed.discard();
              return closeAfter(finishEarly(ctx, 0, "alias_needs_managed_key", ERR.aliasNeedsManagedKey));
            }
            alias = bodyModel;
          }
          if (alias === AUTO) {
            // The classifier reads the same 64 KiB lookahead (SPEC §13): read on to 64 KiB or the body's end. The
            // pieces wait for the send; the one bounded copy is the prefix the classifier scans.
            await streamed.readAhead(NEVER_ENOUGH, SMALL_BODY_BYTES).catch(() => {});
            const q = streamed.queued();
            const all = q.length === 1 ? (q[0] as Uint8Array) : Buffer.concat(q as Uint8Array[]);
            const prefix = all.byteLength > SMALL_BODY_BYTES ? all.subarray(0, SMALL_BODY_BYTES) : all;
            const d = await decideTier(auto as AutoRouter, headers, ctx.dialect, declared, prefix, streamed.readToEnd && all.byteLength <= SMALL_BODY_BYTES);
            if (!("tier" in d)) {
              streamed.discard();
              return closeAfter(finishEarly(ctx, 0, "bad_tier", d));
            }
            alias = recordTier(ctx, d, auto as AutoRouter, metrics, decisionCells);
          }
          if (alias === undefined && m !== undefined && m.streamedBodyChanges) {
            transform = () => {
              const t = new UsageInjector();
              lastEdit = t;
              return t;
            };
          }
          if (alias !== undefined) {
            bodyChanged = true;
            // The exact upstream length: one probe rewrite (to the model "") of the bytes read ahead gives the length
            // change apart from the model value, for every target (useTarget adds its model's). It needs the old value
            // and, when include_usage may go in, that decision, known only where the body says `stream` and whether
            // `stream_options` is there (often its root end): the replay copy keeps these bytes anyway, so read ahead
            // as far as it may hold (max_replay_bytes) before the first send; past that, chunked.
            if (declared !== null) {
              const inject = m !== undefined && injectionEligible(ctx);
              const probe = new ModelRewriter("", { injectUsage: inject });
              let fed = 0;
              const decided = (): boolean => {
                const q = streamed.queued();
                for (; fed < q.length; fed++) probe.push(q[fed] as Uint8Array);
                return probe.delta() !== undefined;
              };
              if (!decided() && inject) await streamed.readAhead(decided, Math.max(SMALL_BODY_BYTES, (models[alias] as ModelRoute).retry.max_replay_bytes)).catch(() => {});
              const d = probe.delta();
              // Unless the value was left alone (over the rewriter's cap), a target's model replaces the probe's "".
              if (d !== undefined) lengthBase = { delta: d, replaced: probe.replaced };
            }
          }
        }
      }
    }

    // 3c. translate (SPEC §12): a virtual model with a target of the other dialect. Those targets serve only the
    // translatable endpoints; for them the body is read whole (up to max_translate_bytes) and translated once here, so
    // a body the translator cannot carry is refused before anything is sent. Same-dialect targets keep the bytes.
    let translation: TranslatedRequest | undefined;
    let clientModel: string | undefined;
    let crossRest: string | undefined;
    let otherDialectOk = true;
    if (alias !== undefined) {
      const ds = aliasDialects.get(alias) as ReadonlySet<Dialect>;
      if (ds.size > 1 || !ds.has(ctx.dialect)) {
        crossRest = translatedRest(ctx.dialect, method, route.rest ?? "");
        if (crossRest === undefined) {
          otherDialectOk = false;
          if (!ds.has(ctx.dialect)) {
            if (body instanceof StreamedBody) body.discard();
            return closeAfter(finishEarly(ctx, 0, "untranslatable", ERR.untranslatable));
          }
        } else {
          const maxT = cfg.max_translate_bytes;
          let whole = rawWhole;
          if (whole === undefined && body instanceof StreamedBody) {
            const streamed = body;
            let all: Uint8Array | undefined;
            try {
              all = await streamed.readAll(maxT);
            } catch {
              streamed.discard();
              if (tooLarge) {
                metrics.inc("ai_rejections_total", reasonLabels("body_too_large"));
                return closeAfter(finishEarly(ctx, 0, "body_too_large", ERR.bodyTooLarge));
              }
              if (cancel.reason === CLIENT_TIMEOUT) return finishEarly(ctx, 0, "client_timeout", ERR.requestTimeout);
              return clientLeft();
            }
            if (all === undefined) {
              streamed.discard();
              metrics.inc("ai_rejections_total", reasonLabels("body_too_large"));
              return closeAfter(finishEarly(ctx, 0, "translate_too_large", ERR.translateTooLarge(maxT)));
            }
            whole = all;
            transform = undefined;
            lengthBase = undefined;
          }
          whole ??= new Uint8Array(0);
          if (whole.byteLength > maxT) {
            metrics.inc("ai_rejections_total", reasonLabels("body_too_large"));
            return finishEarly(ctx, 0, "translate_too_large", ERR.translateTooLarge(maxT));
          }
          const prepared = prepareTranslation(ctx.dialect, whole, cfg.translate_default_max_tokens);
          if (!prepared.ok) return finishEarly(ctx, 0, "untranslatable_body", ERR.badRequest(prepared.message));
          translation = prepared.request;
          clientModel = prepared.clientModel;
          rawWhole = whole;
          body = whole;
          bodyChanged = true;
        }
      }
    }

    // 4. rewrite. When the gateway may change the body it also asks for identity encoding, so the usage-only chunk it
    // caused can be removed from plain SSE bytes. Managed: the pool key comes first (SPEC §10): the one the session
    // hashes to among the keys that are ready for this model; none ready means every key is cooling or dead.
    let key: PoolKey | undefined;
    let model = "";
    let session = "";
    let attempt = 0;
    let tried: Set<number> | undefined;
    let resetRetried = false;
    let upHeadersRef: HeaderFields | undefined;
    /** A streamed virtual-model body's exact upstream content-length for the current target, when known. */
    let streamedLength: string | undefined;
    /** A virtual model's targets in this request's order, and the one being tried. */
    let targets: readonly Target[] | undefined;
    let tgt: Target | undefined;
    let ti = -1;
    /** The first skipTarget answer of this request: null before it is asked, else the reason or undefined. */
    let firstSkip: string | undefined | null = null;
    const rest = route.rest ?? "";
    if (alias !== undefined) {
      const r = models[alias] as ModelRoute;
      rc = r.retry;
      ctx.route = ctx.auto === undefined ? alias : AUTO;
      // The session only matters where a target has keys to choose among (as for a direct request).
      if (multiKey.has(alias)) session = field(headers, "x-session-id") ?? cred.token;
      // Targets whose breaker is open or whose keys all cool go last (routes.ts), so the chain is never empty.
      targets = routes.order(alias, skipTarget);
      if (typeof firstSkip === "string") {
        ctx.fallbackReason = firstSkip;
        metrics.inc("ai_fallbacks_total", fallbackLabelsFor(alias, firstSkip));
      }
      const first = targets === undefined ? undefined : usableTarget(0);
      if (first !== undefined) {
        ti = first;
        useTarget((targets as readonly Target[])[first] as Target);
      } else {
        if (body instanceof StreamedBody) body.discard();
        // Every target passed over: the first one's own refusal (its open breaker, or its keys' 429).
        const nominal = targets?.[0];
        if (nominal !== undefined) useTarget(nominal);
        if (breaker !== undefined && !breaker.wouldAllow()) {
          metrics.inc("ai_rejections_total", reasonLabels("circuit_open"));
          return finishEarly(ctx, 0, "circuit_open", ERR.circuitOpen(breaker.retryAfterSecs()));
        }
        return keysExhausted(ctx);
      }
    }
    if (cred.managed && tgt === undefined) {
      if (provider.keys.length === 0) {
        if (body instanceof StreamedBody) body.discard();
        return finishEarly(ctx, 0, "no_pool_key", ERR.noPoolKey);
      }
      model = meter?.requestModel() ?? "";
      // The session only matters when there are keys to choose among: one key costs no header lookup.
      if (provider.keys.length > 1) session = field(headers, "x-session-id") ?? cred.token;
      key = pools.pick(provider, model, session);
      if (key === undefined) {
        if (body instanceof StreamedBody) body.discard();
        return keysExhausted(ctx);
      }
      ctx.keyId = key.id;
    }
    if (cred.managed) budgets.first(pIndex);
    // A virtual model's whole body keeps its content-length unless this target's rewrite changed the length (then the
    // exact new one); identity encoding is asked for only when include_usage went in (as for any managed body).
    if (rawWhole !== undefined && body instanceof Uint8Array) bodyChanged = translation !== undefined || body.byteLength !== rawWhole.byteLength || meter?.injected === true;
    // A translated answer is parsed, so its bytes must come unencoded.
    const upHeaders = rewriteRequestHead(headers, provider, { managed: cred.managed, key, bodyChanged, forceIdentity: translation !== undefined || (rawWhole !== undefined ? meter?.injected === true : bodyChanged) });
    if (rawWhole !== undefined && body instanceof Uint8Array) {
      if (bodyChanged) upHeaders["content-length"] = String(body.byteLength);
    } else if (streamedLength !== undefined) upHeaders["content-length"] = streamedLength;

    // 5. forward, attempt by attempt. The breaker permit is taken just before each send; every path reports it once.
    const sendNs = Bun.nanoseconds();
    const deadlineNs = retrying ? ctx.startNs + rc.deadline_ms * 1e6 : 0;
    const bo: BackoffPolicy = rc === retry ? backoff : { initialMs: rc.initial_backoff_ms, multiplier: rc.multiplier, maxMs: rc.max_backoff_ms, jitter: rc.jitter };
    upHeadersRef = upHeaders;
    let up: UpstreamResponse;
    /** The answer's body when it was read whole while deciding (a small error answer). */
    let whole: Uint8Array | undefined;
    /** The SSE hold's result when the answer is a held stream. */
    let held: Uint8Array[] | undefined;
    let heldReader: Reader | undefined;
    let heldPending: Promise<ReadResult> | undefined;
    for (;;) {
      attempt++;
      whole = undefined;
      held = undefined;
      heldReader = undefined;
      heldPending = undefined;
      if (breaker !== undefined) {
        permit = breaker.allow();
        if (permit === DENIED) {
          if (body instanceof StreamedBody) body.discard();
          metrics.inc("ai_rejections_total", reasonLabels("circuit_open"));
          return finishEarly(ctx, 0, "circuit_open", ERR.circuitOpen(breaker.retryAfterSecs()));
        }
      }
      const attemptNs = Bun.nanoseconds();
      // A virtual model with a target left to try gives each attempt its own cancellation, linked to the request's:
      // a head timeout then ends this attempt only, and the next target can be tried (fallback_reason "timeout").
      let attemptCancel = cancel;
      let link: CancelListener | undefined;
      if (targets !== undefined && ti + 1 < targets.length) {
        const ac = new Cancel();
        attemptCancel = ac;
        if (cancel.aborted) ac.abort(cancel.reason);
        else cancel.listen((link = { onCancel: (why: unknown) => ac.abort(why) }));
      }
      const sent = await sendUpstream({
        transport,
        url: provider.origin + ctx.forwardPath,
        method: req.method,
        headers: upHeaders,
        body,
        transform,
        cancel: attemptCancel,
        heads,
        onRetry: (n, e) => {
          pm.retries.v++;
          // The host (an authority from config: never a key) makes ENOTFOUND or ECONNREFUSED actionable.
          log.gateway("warn", "upstream connect failed, retrying", { request_id: ctx.id, provider: provider.name, attempt: n, error: `${errorCode(e)} ${provider.authority}` });
        },
      });
      ctx.attempts += sent.attempts;
      if (!sent.ok) {
        if (link !== undefined) cancel.unlisten(link);
        if (tooLarge) {
          if (body instanceof StreamedBody) body.discard();
          metrics.inc("ai_rejections_total", reasonLabels("body_too_large"));
          return closeAfter(finishEarly(ctx, 0, "body_too_large", ERR.bodyTooLarge));
        }
        if (req.signal.aborted) {
          if (body instanceof StreamedBody) body.discard();
          ctx.status = CLIENT_CLOSED;
          meter?.finish("client_closed", undefined);
          return finishEarly(ctx, CLIENT_CLOSED, "client_closed");
        }
        if (sent.reason === "client_timeout") {
          if (body instanceof StreamedBody) body.discard();
          return finishEarly(ctx, 0, "client_timeout", sent.error);
        }
        // e.g. "upstream_unreachable: ENOTFOUND api.example.com:443", "upstream_timeout api.example.com:443".
        const where = provider.authority;
        const error = sent.cause === undefined ? `${sent.reason} ${where}` : `${sent.reason}: ${sent.cause} ${where}`;
        if (key !== undefined) {
          const outcome = sent.reason === "upstream_unreachable" ? "connect_failure" : sent.reason === "upstream_timeout" ? "timeout" : "reset";
          pm.attempt(outcome).v++;
          // The breaker hears this attempt's failure first, so the decision below sees a breaker it just opened.
          if (permit !== DENIED) breaker?.onFailure(permit);
          permit = DENIED;
          // A head timeout is never retried on its target (it may have run the request, and with the defaults comes
          // long after deadline_ms); a virtual model may still move on to its next target.
          if (outcome === "timeout" && attemptCancel !== cancel && !cancel.aborted) {
            const wait = nextWait("timeout", undefined);
            if (wait !== undefined) {
              log.gateway("warn", "upstream attempt failed, trying the next target", { request_id: ctx.id, provider: provider.name, attempt, error });
              if (!(await pause(wait, cancel, ctx))) return clientLeft();
              continue;
            }
          }
          // A reset is retried once per target; after that a virtual model may still move on to its next target.
          if (outcome !== "timeout") {
            const wait = outcome === "reset" && resetRetried ? nextWait(outcome, undefined, true) : nextWait(outcome, undefined);
            if (wait !== undefined) {
              log.gateway("warn", "upstream attempt failed, retrying", { request_id: ctx.id, provider: provider.name, attempt, error });
              if (outcome === "reset") resetRetried = true;
              pm.retry(outcome).v++;
              if (!(await pause(wait, cancel, ctx))) return clientLeft();
              continue;
            }
          }
        }
        log.gateway("warn", "upstream request failed", { request_id: ctx.id, provider: provider.name, attempt, error });
        if (body instanceof StreamedBody) body.discard();
        ctx.status = sent.error.status;
        // A connect failure never reached the provider: nothing to bill. A timeout or reset may have.
        if (sent.reason !== "upstream_unreachable") meter?.finish(sent.reason === "upstream_timeout" ? "upstream_timeout" : "upstream_reset", undefined);
        return finishEarly(ctx, 0, sent.reason, sent.error);
      }
      up = sent.response;
      if (key === undefined) break;

      // Managed: the answer's status decides what happens to the key and whether another attempt follows.
      const status = up.status;
      // Only `latency` reads the measurement.
      if (tgt !== undefined && models[tgt.route]?.strategy === "latency") routes.observeTtft(tgt, (Bun.nanoseconds() - attemptNs) / 1e6);
      if (status === 429 || status === 401 || status === 403 || (retrying && isRetryableStatus(status)) || (status === 400 && targets !== undefined && ti + 1 < targets.length)) {
        whole = smallBody(up);
        if (whole === undefined && up.body !== null && declaredSmall(up.headers)) {
          const got = await readWhole(up, cancel, readTimeoutMs);
          if (got.ok) whole = got.bytes;
          else if (got.how === "client_closed") return clientLeft();
        }
        // 429 and 401/403 are the key's, not the provider's health: the breaker hears a success (SPEC §10).
        if (permit !== DENIED) {
          if (isBreakerFailure(status, false)) breaker?.onFailure(permit);
          else breaker?.onSuccess(permit);
        }
        permit = DENIED;
        pm.status(status).v++;
        let outcome: AttemptOutcome;
        let wait: number | undefined;
        const retryAfter = status === 429 || status === 503 ? retryAfterFromHeaders(up.headers, Date.now()) : undefined;
        if (status === 401 || status === 403 || (status === 429 && whole !== undefined && isQuotaExhausted(whole))) {
          outcome = "dead_key";
          const reason = status === 429 ? "quota" : "auth";
          pm.cooldown(key.id, reason).v++;
          if (pools.markDead(key, reason)) log.gateway("error", "pool key is dead", { request_id: ctx.id, provider: provider.name, key_id: key.id, reason, status });
          (tried ??= new Set()).add(key.slot);
          wait = nextWait("dead_key", undefined);
          // Nothing can help when no other key is left: the gateway answers (SPEC §10), not the provider's 401/403.
          if (wait === undefined && retrying && pools.pick(provider, model, session, tried) === undefined) {
            discardAnswer(up);
            if (body instanceof StreamedBody) body.discard();
            pm.attempt(outcome).v++;
            return keysExhausted(ctx);
          }
        } else if (status === 429) {
          outcome = "rate_limited";
          pm.cooldown(key.id, "rate_limited").v++;
          pools.coolDown(key, model, retryAfter);
          (tried ??= new Set()).add(key.slot);
          wait = nextWait("rate_limited", undefined);
        } else if (status === 400) {
          // A virtual model's context-length 400 moves to the next target; any other 400 is the answer.
          outcome = "client_error";
          if (whole !== undefined && isContextLengthError(whole)) wait = nextWait("context_length", undefined);
        } else {
          outcome = status >= 500 || status === 408 ? "server_error" : "client_error";
          if (outcome === "server_error") wait = nextWait("server_error", retryAfter);
        }
        pm.attempt(outcome).v++;
        if (wait !== undefined) {
          discardAnswer(up);
          if (outcome !== "client_error") pm.retry(outcome).v++;
          if (!(await pause(wait, cancel, ctx))) return clientLeft();
          if (!pickAgain()) {
            if (body instanceof StreamedBody) body.discard();
            return keysExhausted(ctx);
          }
          continue;
        }
        // No retry: this answer goes to the client as the provider sent it (its retry-after intact).
        ctx.status = status;
        break;
      }
      pools.succeeded(key, model);
      const sse = (up.headers.get("content-type") ?? "").includes("event-stream");
      if (retrying && sse && status >= 200 && status < 300 && retry.commit_hold_ms > 0 && retry.commit_hold_bytes > 0) {
        // The commit point: hold the head and preamble until the first content event (SPEC §10). A stream that came
        // whole with its head is scanned as it is.
        let reader: Reader | undefined;
        let h: HoldResult | undefined;
        if (up.body === null) h = scanWhole(up.whole ?? new Uint8Array(0));
        else {
          reader = up.body.getReader() as Reader;
          h = await holdPreamble(reader, holdOpts);
        }
        if (h === undefined) {
          pm.attempt("ok").v++;
          break;
        }
        if (h.kind === "commit") {
          held = h.held;
          heldReader = reader;
          heldPending = h.pending;
          pm.attempt("ok").v++;
          break;
        }
        if (req.signal.aborted) {
          reader?.cancel().catch(() => {});
          return clientLeft();
        }
        const outcome = h.kind === "reset" ? "reset" : "in_band_error";
        pm.attempt(outcome).v++;
        // An overload inside a 200 is the provider failing, as a 529 head would be.
        if (permit !== DENIED) breaker?.onFailure(permit);
        permit = DENIED;
        pm.status(status).v++;
        const wait = nextWait(outcome, undefined, outcome === "reset" && resetRetried);
        if (wait !== undefined) {
          if (outcome === "reset") resetRetried = true;
          ctx.wastedInputTokens += h.inputTokens;
          reader?.cancel().catch(() => {});
          pm.retry(outcome).v++;
          if (!(await pause(wait, cancel, ctx))) return clientLeft();
          if (!pickAgain()) {
            if (body instanceof StreamedBody) body.discard();
            return keysExhausted(ctx);
          }
          continue;
        }
        // Nothing retries it: the client gets this stream as the provider sent it.
        if (reader !== undefined) {
          held = h.held;
          heldReader = reader;
        }
        break;
      }
      pm.attempt(status >= 400 ? "client_error" : "ok").v++;
      break;
    }
    // The commit point: no attempt follows, so the replay copy goes.
    if (body instanceof StreamedBody) body.release();
    if (lastEdit !== undefined) meter?.adopt(lastEdit);
    if (tgt !== undefined) {
      const cells = ctx.auto === undefined ? targetCells : autoTargetCells;
      let c = cells.get(tgt);
      if (c === undefined) cells.set(tgt, (c = metrics.cell("ai_route_requests_total", { route: ctx.route ?? tgt.route, target: tgt.id })));
      c.v++;
    }

    // 6. relay (meter hooks in as the observer)
    ctx.headersNs = Bun.nanoseconds();
    pm.ttft.observe((ctx.headersNs - ctx.startNs) / 1e9);
    ctx.status = up.status;
    const outHeaders = rewriteResponseHead(up.headers, ctx.id, up.hopByHopStripped === true);
    if (ctx.auto !== undefined) routeHeader(outHeaders, ctx.auto, tgt);
    const streaming = (up.headers.get("content-type") ?? "").includes("event-stream");
    if (streaming) activeStreams.v++;

    // A received status decides the breaker outcome, whatever happens to the body afterwards: record it now, so a
    // long stream does not hold the half-open probe and the next request already sees the outcome. (An answer
    // decided on above already reported, and its permit is spent.)
    if (permit !== DENIED) {
      pm.status(up.status).v++;
      if (isBreakerFailure(up.status, false)) breaker?.onFailure(permit);
      else breaker?.onSuccess(permit);
    }
    const done = (how: RelayEnd) => {
      client.end();
      // Bun keeps a per-request timeout for the connection's life: without this, a keep-alive connection that served
      // one admitted request would never idle out. Set while the response is still being written (later is a no-op).
      server.timeout(req, idleSecs);
      // One clock read serves the usage line, the latency histogram and the access line.
      const endNs = Bun.nanoseconds();
      meter?.finish(how, streaming, endNs);
      if (how !== "complete") ctx.error = how;
      if (streaming) activeStreams.v--;
      inFlight.v--;
      pm.latency.observe((endNs - ctx.startNs) / 1e9);
      // 7. log
      accessLog(ctx, endNs);
    };
    // SPEC §12: a translated answer is the client's dialect, not the provider's bytes: errors and JSON bodies are
    // read whole and rewritten, a 2xx stream is translated event by event behind the meter's tap.
    const translating = ctx.translated;
    const okStream = streaming && up.status >= 200 && up.status < 300;
    if (whole === undefined && up.body === null && up.whole === undefined && !translating) {
      done("complete");
      observeOverhead(overhead, ctx, sendNs);
      return new Response(null, { status: up.status, statusText: up.statusText, headers: outHeaders });
    }
    // Read whole: a body already in hand (read while deciding, or the transport holds it), or a small declared
    // non-SSE body read now.
    if (held === undefined && (whole !== undefined || up.body === null || (!streaming && declaredSmall(up.headers)) || (translating && !okStream))) {
      let got: WholeRead;
      if (whole !== undefined) got = { ok: true, bytes: whole };
      else {
        const read = readWhole(up, cancel, readTimeoutMs);
        got = read instanceof Promise ? await read : read;
      }
      if (!got.ok) {
        // The head was not sent to the client yet, so a broken body can still become a clean 502/504.
        ctx.status = got.how === "client_closed" ? CLIENT_CLOSED : got.how === "upstream_timeout" ? 504 : 502;
        done(got.how);
        if (got.how === "client_closed") return new Response(null, { status: CLIENT_CLOSED });
        const res = errorResponse(ctx.dialect, got.how === "upstream_timeout" ? ERR.upstreamTimeout : ERR.upstreamReset, ctx.id);
        if (ctx.auto !== undefined) routeHeader(res.headers, ctx.auto, tgt);
        return res;
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
      if (translating) {
        const t = translateWhole(ctx.dialect, up.status, out, streaming, { includeUsage: translation?.includeUsage === true, model: tgt?.model ?? "" });
        if (t === undefined) {
          ctx.status = ERR.untranslatableAnswer.status;
          done("complete");
          const res = errorResponse(ctx.dialect, ERR.untranslatableAnswer, ctx.id);
          if (ctx.auto !== undefined) routeHeader(res.headers, ctx.auto, tgt);
          return res;
        }
        out = t;
        translatedHead(outHeaders, okStream, (translation as TranslatedRequest).dropped);
      }
      ctx.bytesOut = out.byteLength;
      done("complete");
      const response = new Response(out, { status: up.status, statusText: up.statusText, headers: outHeaders });
      observeOverhead(overhead, ctx, sendNs);
      return heldResponses.release(response);
    }
    const relayed = relayBody({
      body: up.body as ReadableStream<Uint8Array>,
      reader: heldReader,
      held,
      pending: heldPending,
      cancel,
      readTimeoutMs,
      observer: translating ? new TranslatingObserver(meter?.observe(up.headers, streaming), ctx.dialect, { includeUsage: translation?.includeUsage === true, model: tgt?.model ?? "" }) : meter?.observe(up.headers, streaming),
      onBytes: (n) => {
        ctx.bytesOut += n;
      },
      onEnd: done,
    });
    if (translating) translatedHead(outHeaders, true, (translation as TranslatedRequest).dropped);
    const response = new Response(relayed, { status: up.status, statusText: up.statusText, headers: outHeaders });
    observeOverhead(overhead, ctx, sendNs);
    return response;

    /**
     * Whether another attempt follows one that ended with `outcome`, and after how long (ms); undefined: relay what
     * came. Counts the retry against the provider's budget when it allows one.
     */
    function nextWait(outcome: RetryReason | "context_length" | "timeout", retryAfterMs: number | undefined, targetOnly = false): number | undefined {
      if (!retrying || cancel.aborted) return undefined;
      if (body instanceof StreamedBody && !body.replayable) return undefined;
      let wait: number | undefined;
      let switchTo: number | undefined;
      // `targetOnly`: this target may not be tried again (its one reset retry is spent): only another target may follow.
      if (outcome !== "context_length" && outcome !== "timeout" && !targetOnly) wait = sameTargetWait(outcome, retryAfterMs);
      // A virtual model moves on to its next usable target when this one cannot help (SPEC §11), and rather than
      // wait out a cooldown.
      if (targets !== undefined && (wait === undefined || ((outcome === "rate_limited" || outcome === "dead_key") && wait > 0) || (breaker !== undefined && !breaker.wouldAllow()))) {
        switchTo = usableTarget(ti + 1);
        if (switchTo !== undefined) wait = 0;
      }
      if (wait === undefined) return undefined;
      if (Bun.nanoseconds() + wait * 1e6 > deadlineNs) return undefined;
      if (switchTo === undefined && breaker !== undefined && !breaker.wouldAllow()) return undefined;
      if (!budgets.tryRetry(pIndex)) {
        pm.budgetExhausted.v++;
        return undefined;
      }
      if (switchTo !== undefined) {
        const reason = FALLBACK_REASON[outcome];
        ctx.fallbackReason ??= reason;
        metrics.inc("ai_fallbacks_total", fallbackLabelsFor(ctx.route as string, reason));
        ti = switchTo;
        useTarget((targets as readonly Target[])[switchTo] as Target);
      }
      return wait;
    }

    /** §10's same-target rules: the wait before another attempt at this target, or undefined when none may follow. */
    function sameTargetWait(outcome: RetryReason, retryAfterMs: number | undefined): number | undefined {
      if (attempt >= rc.max_attempts) return undefined;
      if (outcome === "rate_limited" || outcome === "dead_key") {
        // Another ready key at once; else (429 only) the same key once its cooldown ends, if that is soon enough.
        if (pools.pick(provider, model, session, tried) !== undefined) return 0;
        if (outcome === "dead_key" || sdkRetrying(headers)) return undefined;
        const r = pools.readiness(provider, model);
        if (r.allDead || r.readyInMs > rc.max_retry_after_ms) return undefined;
        tried = undefined;
        return r.readyInMs;
      }
      if (sdkRetrying(headers)) return undefined;
      if (retryAfterMs !== undefined && retryAfterMs > rc.max_retry_after_ms) return undefined;
      return Math.max(backoffMs(attempt, bo), retryAfterMs ?? 0);
    }

    /** The first target from `from` on whose breaker would let a request through and that has a ready key. */
    function usableTarget(from: number): number | undefined {
      const ts = targets as readonly Target[];
      for (let j = from; j < ts.length; j++) {
        const t = ts[j] as Target;
        if (!otherDialectOk && t.provider.dialect !== ctx.dialect) continue;
        const b = breakers.get(t.provider.name);
        if (b !== undefined && !b.wouldAllow()) continue;
        if (pools.pick(t.provider, t.model, session) === undefined) continue;
        return j;
      }
      return undefined;
    }

    /**
     * A target's sort order key: its breaker open or its keys all cooling for its model (it goes last). The strategy
     * asks in its own order, so the first answer says whether the request's first choice was passed over, and why.
     */
    function skipTarget(t: Target): boolean {
      // A target of the other dialect cannot serve an endpoint that is not translated: it goes last, never used.
      if (!otherDialectOk && t.provider.dialect !== ctx.dialect) return true;
      const b = breakers.get(t.provider.name);
      const why = b !== undefined && !b.wouldAllow() ? "breaker_open" : pools.pick(t.provider, t.model, session) === undefined ? "keys_cooling" : undefined;
      if (firstSkip === null) firstSkip = why;
      return why !== undefined;
    }

    /** Points the request at a virtual model's target: provider, path, model, body, key, upstream head. */
    function useTarget(t: Target): void {
      tgt = t;
      provider = t.provider;
      pm = perProvider.get(provider.name) as ProviderMetrics;
      pIndex = providerIndex.get(provider.name) as number;
      breaker = breakers.get(provider.name);
      ctx.provider = provider;
      ctx.forwardPath = provider.basePath + rest;
      ctx.price = t.price;
      model = t.model;
      attempt = 0;
      resetRetried = false;
      tried = undefined;
      const inject = meter !== undefined && injectionEligible(ctx);
      ctx.translated = translation !== undefined && provider.dialect !== ctx.dialect;
      if (ctx.translated) {
        // SPEC §12: the body translated once, with this target's model; the path is the target dialect's endpoint.
        const tr = translation as TranslatedRequest;
        ctx.forwardPath = provider.basePath + (crossRest as string);
        body = targetBody(tr, t.model);
        meter?.wholeRequest(clientModel, tr.stream, false);
      } else if (metered !== undefined && inject && meter !== undefined) {
        body = spliceModelAt(metered, meter.wholeModelOpen, meter.wholeModelClose, t.model);
        meter.useWholePass();
      } else if (rawWhole !== undefined) {
        const r = rewriteModelWhole(rawWhole, t.model, { injectUsage: inject });
        body = r.body;
        meter?.wholeRequest(r.model, r.stream, r.injected);
      } else if (body instanceof StreamedBody) {
        transform = () => {
          const w = new ModelRewriter(t.model, { injectUsage: inject });
          lastEdit = w;
          return w;
        };
        // The exact upstream length when the client sent one and the body's probe settled it; else chunked.
        streamedLength =
          lengthBase === undefined ? undefined : String(Number(declared) + lengthBase.delta + (lengthBase.replaced ? jsonString(t.model).length - EMPTY_MODEL_BYTES : 0));
      }
      key = pools.pick(provider, model, session);
      ctx.keyId = key?.id;
      const h = upHeadersRef;
      if (h !== undefined) {
        h["host"] = provider.hostHeader;
        delete h["authorization"];
        delete h["x-api-key"];
        if (key !== undefined) h[provider.authHeader] = key.auth.expose();
        if (provider.dialect === "anthropic" && h["anthropic-version"] === undefined) h["anthropic-version"] = "2023-06-01";
        if (rawWhole !== undefined && body instanceof Uint8Array) h["content-length"] = String(body.byteLength);
        else if (streamedLength !== undefined) h["content-length"] = streamedLength;
        else delete h["content-length"];
      }
    }

    /** The key for the next attempt; false when none is ready any more. Rewrites the upstream auth header. */
    function pickAgain(): boolean {
      const next = pools.pick(provider, model, session, tried);
      if (next === undefined) return false;
      key = next;
      ctx.keyId = next.id;
      upHeaders[provider.authHeader] = next.auth.expose();
      return true;
    }

    /** SPEC §10: every key of the target is cooling or dead: 429 in dialect, Retry-After until the first is ready. The
     * millisecond taken off absorbs the shared clock's cross-thread error (a 30 s cooldown read a hair later on another
     * worker must still say 30, not 31). */
    function keysExhausted(c: RequestContext): Response {
      const r = pools.readiness(provider, model);
      const res = finishEarly(c, 0, "keys_exhausted", ERR.keysCooling(provider.name, Math.max(1, Math.ceil((r.readyInMs - 1) / 1000)), r.allDead));
      if (r.allDead) res.headers.set("x-should-retry", "false");
      return res;
    }

    function clientLeft(): Response {
      if (body instanceof StreamedBody) body.discard();
      ctx.status = CLIENT_CLOSED;
      meter?.finish("client_closed", undefined);
      return finishEarly(ctx, CLIENT_CLOSED, "client_closed");
    }

    function finishEarly(c: RequestContext, status: number, reason: string, err?: GatewayError): Response {
      client.end();
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
      if (err === undefined) return new Response(null, { status: CLIENT_CLOSED, headers: { "x-beyond-request-id": c.id } });
      const res = errorResponse(c.dialect, err, c.id);
      if (c.auto !== undefined) routeHeader(res.headers, c.auto, tgt);
      return res;
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

/** ai.usage `fallback_reason` (SPEC §11) for the outcome that moved a virtual model to its next target. */
const FALLBACK_REASON: Record<RetryReason | "context_length" | "timeout", string> = {
  connect_failure: "connect",
  reset: "connect",
  rate_limited: "429",
  dead_key: "keys_cooling",
  server_error: "5xx",
  in_band_error: "in_band_error",
  context_length: "context_length",
  timeout: "timeout",
};

/**
 * SPEC §13: the tier of a request asking for `auto` (body or path): from the x-beyond-tier header (a value that names
 * no tier is the GatewayError to answer), else the external classifier when configured, else the built-in one, over
 * the body's first ≤ 64 KiB (`prefix`; `complete` when that is the whole body).
 */
async function decideTier(a: AutoRouter, headers: HeaderFields, dialect: Dialect, declared: string | null, prefix: Uint8Array, complete: boolean): Promise<AutoDecision | GatewayError> {
  const asked = field(headers, "x-beyond-tier");
  if (asked !== null) return a.override(asked) ?? ERR.badTier(asked);
  const input = { prefix, complete, dialect, totalBytes: declared === null ? undefined : Number(declared) };
  return a.external ? a.decideWithExternal(input) : a.decide(input);
}

/** Records an `auto` decision (context, ai_route_decisions_total) and returns the route that serves it. */
function recordTier(ctx: RequestContext, d: AutoDecision, a: AutoRouter, metrics: Metrics, cells: Map<Labels, Cell>): string {
  const labels = a.labels(d);
  let cell = cells.get(labels);
  if (cell === undefined) cells.set(labels, (cell = metrics.cell("ai_route_decisions_total", labels)));
  cell.v++;
  ctx.auto = d;
  return d.route;
}

/** `x-beyond-route: <tier>; <provider>/<model>`: the tier that served and the target that answered (or was tried). */
function routeHeader(h: Headers, d: AutoDecision, tgt: Target | undefined): void {
  h.set("x-beyond-route", tgt === undefined ? TIERS[d.routed] : `${TIERS[d.routed]}; ${tgt.id}`);
}

/** The SDK is already retrying (x-stainless-retry-count ≥ 1): no same-target retries here, only other keys. The
 * header passes the rewrite unchanged, and only a request about to retry reads it. */
function sdkRetrying(headers: HeaderFields): boolean {
  const n = field(headers, "x-stainless-retry-count");
  return n !== null && Number(n) >= 1;
}

/** Waits `ms` (0: not at all), counted in the request's retry wait; false when the client went away meanwhile. */
async function pause(ms: number, cancel: Cancel, ctx: RequestContext): Promise<boolean> {
  if (ms > 0) {
    const t0 = Bun.nanoseconds();
    await sleepUnless(ms, cancel);
    ctx.retryWaitMs += (Bun.nanoseconds() - t0) / 1e6;
  }
  return !cancel.aborted;
}

/** readAhead's predicate for "as far as the limit or the body's end". */
const NEVER_ENOUGH = (): boolean => false;

/** The bytes of `""`, the model a length probe writes. */
const EMPTY_MODEL_BYTES = 2;

/** Scans a whole body for a virtual model's name (bare /v1 paths): the scan ends within the call. */
const ALIAS_SCANNER = new ModelScanner();

/** A small answer the transport already holds whole, if any. */
function smallBody(up: UpstreamResponse): Uint8Array | undefined {
  return up.whole ?? (up.body === null ? new Uint8Array(0) : undefined);
}

/** A declared body of at most SMALL_BODY_BYTES: read whole, the same bounded memory as one relayed chunk. */
function declaredSmall(h: Headers): boolean {
  const d = h.get("content-length");
  return d !== null && Number(d) <= SMALL_BODY_BYTES;
}

/** A failed attempt's answer is not relayed: free its body (and with it the upstream connection's exchange). */
function discardAnswer(up: UpstreamResponse): void {
  up.body?.cancel().catch(() => {});
}

/** Sleeps `ms`, or less when the exchange is cancelled (the client went away). */
function sleepUnless(ms: number, cancel: Cancel): Promise<void> {
  if (cancel.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const l = {
      onCancel(): void {
        clearTimeout(t);
        resolve();
      },
    };
    const t = setTimeout(() => {
      cancel.unlisten(l);
      resolve();
    }, ms);
    cancel.listen(l);
  });
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

