// Phase 1, route: the first path segment names the provider; bare /v1 is the drop-in default (SPEC §3).
// Works on the raw path string with indexOf/slice only: no URL parsing on the hot path.

import type { Dialect, Provider } from "../routing/providers.ts";

export interface Route {
  provider: Provider;
  /** Path and query forwarded verbatim to the provider. */
  forwardPath: string;
}

export class Router {
  private readonly byName: Map<string, Provider>;
  private readonly openai: Provider | undefined;
  private readonly anthropic: Provider | undefined;

  constructor(providers: Iterable<Provider>) {
    this.byName = new Map();
    for (const p of providers) this.byName.set(p.name, p);
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
      return provider === undefined ? undefined : { provider, forwardPath: target };
    }
    return undefined;
  }
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
