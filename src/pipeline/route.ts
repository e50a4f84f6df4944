// Phase 1, route: the first path segment names the provider; bare /v1 is the drop-in default (SPEC §3).
// Works on the raw path string with indexOf/slice only: no URL parsing on the hot path.

import type { Dialect, Provider } from "../routing/providers.ts";

export interface Route {
  provider: Provider;
  /** Path and query forwarded verbatim to the provider. */
  forwardPath: string;
  /** A virtual model named by the path (`/<alias>/v1/…`); `provider` is then its first target's. */
  alias?: string | undefined;
  /** The path (and query) below the client's `/v1` root: what a virtual model's target gets after its base path.
   * Set for alias paths and for bare `/v1/…` paths (where the body's model may name an alias). */
  rest?: string | undefined;
  /** An alias path's client dialect: Anthropic below `/messages`, OpenAI at `/chat/completions`, else the first
   * target's (`provider`'s). Bare `/v1` paths speak their provider's. */
  dialect?: Dialect | undefined;
}

export class Router {
  private readonly byName: Map<string, Provider>;
  private readonly openai: Provider | undefined;
  private readonly anthropic: Provider | undefined;

  /** Virtual model name → its first target's provider (the dialect its errors speak before a target is chosen). */
  private readonly aliases: ReadonlyMap<string, Provider>;

  constructor(providers: Iterable<Provider>, aliases: ReadonlyMap<string, Provider> = new Map()) {
    this.byName = new Map();
    for (const p of providers) this.byName.set(p.name, p);
    this.aliases = aliases;
    this.openai = this.byName.get("openai");
    this.anthropic = this.byName.get("anthropic");
  }

  get providers(): IterableIterator<Provider> {
    return this.byName.values();
  }

  /** `target` is the request target as received: path plus optional `?query`. */
  route(target: string): Route | undefined {
    const q = target.indexOf("?");
    const pathEnd = q < 0 ? target.length : q;
    let segEnd = target.indexOf("/", 1);
    if (segEnd < 0 || segEnd > pathEnd) segEnd = pathEnd;
    const segment = target.slice(1, segEnd);
    const named = this.byName.get(segment);
    if (named !== undefined) {
      // `/openai` or `/openai?x` forwards `/` (plus the query), as an HTTP request target must start with `/`.
      const forwardPath = segEnd === pathEnd ? `/${target.slice(pathEnd)}` : target.slice(segEnd);
      return { provider: named, forwardPath };
    }
    if (segment === "v1") {
      const provider = isMessagesPath(target, pathEnd) ? this.anthropic : this.openai;
      return provider === undefined ? undefined : { provider, forwardPath: target, rest: this.aliases.size > 0 ? target.slice(3) : undefined };
    }
    if (this.aliases.size > 0) {
      const first = this.aliases.get(segment);
      // `/<alias>/v1` or `/<alias>/v1/…` (query kept): the part below /v1 goes after each target's base path.
      if (first !== undefined && target.startsWith("/v1", segEnd) && (segEnd + 3 === target.length || target.charCodeAt(segEnd + 3) === 47 || target.charCodeAt(segEnd + 3) === 63)) {
        const rest = target.slice(segEnd + 3);
        return { provider: first, forwardPath: rest, alias: segment, rest, dialect: clientDialect(rest, first.dialect) };
      }
    }
    return undefined;
  }
}

/** The dialect of a client calling `rest` (an alias path below /v1): the translatable endpoints say which SDK calls. */
function clientDialect(rest: string, otherwise: Dialect): Dialect {
  if (rest.startsWith("/messages") && (rest.length === 9 || rest.charCodeAt(9) === 47 || rest.charCodeAt(9) === 63)) return "anthropic";
  if (rest.startsWith("/chat/completions") && (rest.length === 17 || rest.charCodeAt(17) === 63)) return "openai";
  return otherwise;
}

/** `/v1/messages`, `/v1/messages/…` (batches, count_tokens): Anthropic's API under the bare default. */
function isMessagesPath(target: string, pathEnd: number): boolean {
  if (!target.startsWith("/v1/messages")) return false;
  const after = 12; // "/v1/messages".length
  return after === pathEnd || target.charCodeAt(after) === 47; /* '/' */
}

/** The dialect an error should speak when no provider matched: Anthropic clients call …/v1/messages. */
export function dialectForUnrouted(target: string): Dialect {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  return /\/v1\/messages(\/|$)/.test(path) ? "anthropic" : "openai";
}
