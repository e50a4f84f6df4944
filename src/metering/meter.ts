// Phase 6, meter (managed traffic only, SPEC §6): the requested model from the request bytes as they pass,
// include_usage injection for OpenAI streams, usage and billed model from the response tap, and exactly one
// `ai.usage` line per managed request that reached a provider.

import { scoreText } from "../routing/auto.ts";
import { TIERS } from "../routing/auto-config.ts";
import type { RequestContext } from "../pipeline/context.ts";
import type { RelayEnd, ResponseObserver } from "../pipeline/forward.ts";
import { injectWhole, UsageInjector } from "./inject-usage.ts";
import { log } from "../ops/log.ts";
import type { Metrics } from "../ops/metrics.ts";
import { ModelScanner } from "./scan-model.ts";
import { ResponseTap, tapEncoding } from "./tap-response.ts";
import { parseJsonBody, type Usage } from "./usage.ts";
import { costMicros } from "../routing/prices.ts";

const CHAT_COMPLETIONS = "/chat/completions";

/** SPEC §6: OpenAI-dialect POSTs to a path ending /chat/completions (query ignored) may get include_usage. */
export function injectionEligible(ctx: RequestContext): boolean {
  if (ctx.provider?.dialect !== "openai" || ctx.method !== "POST") return false;
  const q = ctx.forwardPath.indexOf("?");
  const path = q < 0 ? ctx.forwardPath : ctx.forwardPath.slice(0, q);
  return path.endsWith(CHAT_COMPLETIONS);
}

const MODEL_MAX = 256;

/** A token count as a JSON number: whatever a provider sent, the line stays valid JSON (no NaN, no negatives). */
function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

const UNSAFE_MODEL = /[\u0000-\u001f\u007f"\\]/;
/** Recently seen model strings: the same few ids repeat on every request, so the check runs once per id. */
const safeModels = new Set<string>();

/** The last model found safe: most requests compare equal to it, which is cheaper than hashing a fresh string. */
let lastSafeModel = "";

/** A billed model goes into a log line other systems parse: anything odd becomes "unknown" (SPEC §6). */
function sanitizeModel(m: string | undefined): string | undefined {
  if (m === undefined || m === lastSafeModel) return m;
  if (!safeModels.has(m)) {
    if (m.length > MODEL_MAX || UNSAFE_MODEL.test(m)) return "unknown";
    if (safeModels.size >= 1024) safeModels.clear();
    safeModels.add(m);
  }
  lastSafeModel = m;
  return m;
}

const ZERO: Usage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };

/** One scanner for every whole request body: the scan ends within the call, so none is allocated per request. */
const WHOLE_SCANNER = new ModelScanner();

export class Meter {
  private scanner: ModelScanner | undefined;
  private injector: UsageInjector | undefined;
  private requestedModel: string | undefined;
  private requestStream: boolean | undefined;
  private tap: ResponseTap | undefined;
  private emitted = false;
  /** True when the gateway added include_usage, so the usage-only chunk is the gateway's to remove. */
  injected = false;
  /** A streamed request body has not been read to its end yet (set by streamedUpload, cleared by onRequestEnd). */
  private uploadOpen = false;

  constructor(
    private readonly ctx: RequestContext,
    private readonly metrics: Metrics,
    private readonly eligible: boolean,
  ) {}

  /** Small body already in memory: one pass scans it and, when eligible, rewrites it. */
  wholeBody(body: Uint8Array): Uint8Array {
    if (this.eligible) {
      const r = injectWhole(body);
      this.requestedModel = r.model;
      this.requestStream = r.stream;
      this.injected = r.injected;
      this.wholeModelOpen = r.modelOpen;
      this.wholeModelClose = r.modelClose;
      this.wholeInjected = r.injected;
      this.wholePassed = true;
      return r.body;
    }
    const s = WHOLE_SCANNER;
    s.reset();
    s.feed(body);
    this.requestedModel = s.model();
    this.requestStream = s.stream;
    return body;
  }

  /**
   * An eligible whole body's one pass (`wholeBody`): where its root model value sits and whether include_usage went
   * in, so a virtual model's same-dialect target splices its model into that output instead of scanning again.
   * -1 when the pass did not run or found no string value.
   */
  wholeModelOpen = -1;
  wholeModelClose = -1;
  wholeInjected = false;
  /** True once `wholeBody` ran the eligible pass (its output may take a target's model by `spliceModelAt`). */
  wholePassed = false;

  /** A target spliced into `wholeBody`'s output: the meter's own reading of the body is the request's again. */
  useWholePass(): void {
    this.injected = this.wholeInjected;
  }

  /**
   * Virtual models: the body's edits are each target's (rewrite-model.ts), so the meter only scans (`scanOnly`), or
   * is told what a whole body held; the attempt that answered says whether include_usage went in (`adopt`).
   */
  scanOnly = false;
  private adopted: { readonly injected: boolean } | undefined;

  /** A whole body a virtual model's target rewrote: what the client asked for, and whether include_usage went in. */
  wholeRequest(model: string | undefined, stream: boolean | undefined, injected: boolean): void {
    this.requestedModel = model;
    this.requestStream = stream;
    this.injected = injected;
    // A streamed body read whole first (a translated virtual model): what its scanner saw is superseded.
    this.scanner = undefined;
    this.injector = undefined;
  }

  /** The body edit of the attempt whose answer the client gets (a streamed virtual-model body). */
  adopt(edit: { readonly injected: boolean }): void {
    this.adopted = edit;
  }

  /** The requested model as far as the request bytes seen so far tell (undefined while no root model was seen). */
  requestModel(): string | undefined {
    this.syncRequestSide();
    return this.requestedModel;
  }

  /** Streamed body: returns the per-chunk hook. An eligible body may change, so its content-length must go. */
  get streamedBodyChanges(): boolean {
    return this.eligible;
  }

  /** The request body streams: until onRequestEnd, the provider has not received the whole request. */
  streamedUpload(): void {
    this.uploadOpen = true;
  }

  onRequestChunk(chunk: Uint8Array): Uint8Array | Uint8Array[] {
    if (this.eligible && !this.scanOnly) {
      this.injector ??= new UsageInjector();
      return this.injector.push(chunk);
    }
    this.scanner ??= new ModelScanner();
    if (!this.scanner.done) this.scanner.feed(chunk);
    return chunk;
  }

  onRequestEnd(): Uint8Array[] | undefined {
    this.uploadOpen = false;
    const tail = this.injector?.end();
    this.syncRequestSide();
    return tail;
  }

  /**
   * A small plain JSON response already in memory: parse it once directly, no tap needed. Returns false when the
   * body is encoded (then the caller falls back to observe()).
   */
  wholeJson(headers: Headers, body: Uint8Array): boolean {
    if (tapEncoding(headers.get("content-encoding")) !== null) return false;
    this.parsed = parseJsonBody(this.ctx.provider?.dialect ?? "openai", body);
    this.wholeBytes = body.byteLength;
    return true;
  }

  private parsed: { usage: Usage | undefined; model: string | undefined } | undefined;
  private wholeBytes = 0;

  /** The response observer for the relay, or undefined when the body cannot be read (an encoding we do not decode). */
  observe(headers: Headers, sse: boolean): ResponseObserver | undefined {
    this.syncRequestSide();
    const encoding = tapEncoding(headers.get("content-encoding"));
    // Stacked or unknown encodings pass through unmetered rather than being parsed as garbage.
    if (encoding === "unsupported") return undefined;
    this.tap = new ResponseTap({ dialect: this.ctx.provider?.dialect ?? "openai", sse, stripUsageChunk: this.injected && sse, encoding });
    return this.tap;
  }

  /**
   * Copy what the streamed body's scanner knows (the body may still be mid-flight when the head arrives). Scanner
   * state only grows, so the latest reading always wins. A whole body set these fields directly and has no scanner.
   */
  private syncRequestSide(): void {
    if (this.adopted !== undefined) this.injected = this.adopted.injected;
    const scanner = this.injector?.scanner ?? this.scanner;
    if (scanner === undefined) return;
    if (this.injector !== undefined) this.injected = this.injector.injected;
    this.requestedModel = scanner.model();
    this.requestStream = scanner.stream;
  }

  /**
   * Emit the `ai.usage` line (once). `complete` is true only when the provider reported usage; otherwise the counts
   * are an estimate from the bytes seen (a stream cut short, or a 2xx whose usage could not be found). `endNs`: the
   * clock at the exchange's end, when the caller read it already.
   */
  finish(how: RelayEnd | "upstream_timeout" | "upstream_reset", sse: boolean | undefined, endNs = Bun.nanoseconds()): void {
    if (this.emitted) return;
    this.emitted = true;
    const tap = this.tap;
    // An aborted relay never reached the tap's end(): release its decompressor now.
    if (how !== "complete") tap?.end();
    // The request body never fully reached the provider (the client aborted or stalled its upload, or the exchange
    // broke before the body's end): the provider never had the whole request, so it never ran it. No line at all. A
    // provider that answered completely anyway (how === "complete") had what it needed, and is billed as usual.
    if (this.uploadOpen && how !== "complete") return;
    this.syncRequestSide();
    const ctx = this.ctx;
    let usage: Usage;
    let complete: boolean;
    const parsed = this.parsed;
    if (parsed?.usage !== undefined) {
      usage = parsed.usage;
      complete = true;
    } else if (tap !== undefined && tap.usageComplete()) {
      usage = tap.usage() ?? ZERO;
      complete = true;
    } else {
      const ok2xx = ctx.status >= 200 && ctx.status < 300;
      if (ok2xx && how === "complete") {
        this.metrics.inc("ai_usage_parse_errors_total");
        log.gateway("warn", "managed 2xx response without parsable usage", { request_id: ctx.id, provider: ctx.provider?.name });
      }
      // A provider's error answer bills nothing; anything else that ended without full usage gets an estimate
      // (exact input and cache counts when the stream reported them, output estimated from the bytes seen).
      const estimate = ok2xx || how !== "complete";
      if (!estimate) usage = tap?.usage() ?? ZERO;
      else usage = tap?.estimate(ctx.bytesIn) ?? { input: Math.round(ctx.bytesIn / 5), output: Math.round(this.wholeBytes / 4.5), cacheRead: 0, cacheWrite: 0 };
      complete = !estimate;
    }
    const input = count(usage.input);
    const output = count(usage.output);
    const cacheRead = count(usage.cacheRead);
    const cacheWrite = count(usage.cacheWrite);
    const tokens = this.metrics.tokens;
    tokens.input += input;
    tokens.output += output;
    tokens.cacheRead += cacheRead;
    tokens.cacheWrite += cacheWrite;
    tokens.metered = true;
    const requested = sanitizeModel(this.requestedModel) ?? "";
    const id = ctx.identity;
    // Built by hand (one line per managed request): ids are exact u64 digits, models pass sanitizeModel (no quote,
    // backslash or control character), provider names are path-segment characters, everything else is a number.
    const model = sanitizeModel(parsed?.model ?? tap?.model()) ?? requested;
    // From the response content-type once a head arrived (what the provider actually did), else what was asked.
    const stream = sse ?? this.requestStream === true;
    let body = `"msg":"usage","request_id":"${ctx.id}","tenant_id":${id?.tenant ?? "0"},"vpc_id":${id?.vpc ?? "0"},"provider":"${ctx.provider?.name ?? ""}","model":"${model}","requested_model":"${requested}","stream":${stream},"status":${ctx.status},"input_tokens":${input},"output_tokens":${output},"cache_read_tokens":${cacheRead},"cache_write_tokens":${cacheWrite}`;
    if (usage.reasoning !== undefined) body += `,"reasoning_tokens":${count(usage.reasoning)}`;
    body += `,"complete":${complete},"latency_ms":${Math.round((endNs - ctx.startNs) / 1e6)},"attempts":${ctx.attempts < 1 ? 1 : ctx.attempts}`;
    // SPEC §10: the key that served (an id such as openai#1: provider name and a number, never the key itself).
    if (ctx.keyId !== undefined) body += `,"key_id":"${ctx.keyId}"`;
    body += `,"retry_wait_ms":${Math.round(ctx.retryWaitMs)}`;
    if (ctx.wastedInputTokens > 0) body += `,"wasted_input_tokens":${count(ctx.wastedInputTokens)}`;
    // Virtual models: the alias (config: path-segment characters), the first reason the target changed (a fixed word),
    // and the cost at the answering target's [prices] entry.
    if (ctx.route !== undefined) {
      body += `,"route":"${ctx.route}"`;
      if (ctx.fallbackReason !== undefined) body += `,"fallback_reason":"${ctx.fallbackReason}"`;
      // SPEC §13: the tier decided (in shadow mode not the one that served: medium did), the classifier's score, and
      // why, as fixed short codes (classify.ts SIG: never request text, so no escaping is needed).
      const a = ctx.auto;
      if (a !== undefined) {
        body += `,"tier":"${TIERS[a.tier]}"`;
        if (a.score !== undefined) body += `,"tier_score":${scoreText(a.score)}`;
        body += `,"tier_signals":${a.signals.length === 0 ? "[]" : `["${a.signals.join('","')}"]`},"tier_mode":"${a.mode}"`;
      }
    }
    if (ctx.translated) body += `,"translated":true`;
    if (ctx.price !== undefined) body += `,"cost_usd_micros":${costMicros({ input, output, cacheRead, cacheWrite }, ctx.price)}`;
    log.writeRaw("ai.usage", "info", body);
  }
}
