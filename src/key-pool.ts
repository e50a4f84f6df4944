// TEMPORARY stub (lead's integration scaffold): replaced by helper A's implementation on merge.
import type { KeyPoolConfig } from "./config.ts";
import type { PoolKey, Provider } from "./providers.ts";
import type { SharedState } from "./shared-state.ts";

export type KeyState = "ready" | "cooling" | "dead";
export type CooldownReason = "rate_limited" | "auth" | "quota";

export class KeyPools {
  private readonly until = new Map<string, number>();
  private readonly dead = new Map<number, number>();
  private readonly now: () => number;
  constructor(
    private readonly opts: KeyPoolConfig,
    private readonly providers: readonly Provider[],
    _shared?: SharedState,
    now?: () => number,
  ) {
    this.now = now ?? (() => performance.now());
  }
  private ready(k: PoolKey, model: string | undefined, t: number): boolean {
    if ((this.dead.get(k.slot) ?? 0) > t) return false;
    return (this.until.get(`${k.slot}\u0000${model ?? ""}`) ?? 0) <= t;
  }
  pick(provider: Provider, model: string | undefined, _session: string, skip?: ReadonlySet<number>): PoolKey | undefined {
    const t = this.now();
    for (const k of provider.keys) if (!skip?.has(k.slot) && this.ready(k, model, t)) return k;
    return undefined;
  }
  readiness(provider: Provider, model: string | undefined): { readyInMs: number; allDead: boolean } {
    const t = this.now();
    let best = Infinity;
    let allDead = true;
    for (const k of provider.keys) {
      const d = this.dead.get(k.slot) ?? 0;
      if (d <= t) allDead = false;
      const c = this.until.get(`${k.slot}\u0000${model ?? ""}`) ?? 0;
      best = Math.min(best, Math.max(0, d - t, c - t));
    }
    return { readyInMs: best === Infinity ? 0 : best, allDead };
  }
  coolDown(key: PoolKey, model: string | undefined, retryAfterMs: number | undefined): number {
    const ms = retryAfterMs ?? this.opts.cooldown_ms;
    this.until.set(`${key.slot}\u0000${model ?? ""}`, this.now() + ms);
    return ms;
  }
  markDead(key: PoolKey, _reason: "auth" | "quota"): boolean {
    const was = (this.dead.get(key.slot) ?? 0) > this.now();
    this.dead.set(key.slot, this.now() + this.opts.dead_key_ms);
    return !was;
  }
  succeeded(_key: PoolKey, _model: string | undefined): void {}
  states(): Array<{ provider: string; keyId: string; state: KeyState }> {
    const t = this.now();
    return this.providers.flatMap((p) => p.keys.map((k) => ({ provider: p.name, keyId: k.id, state: ((this.dead.get(k.slot) ?? 0) > t ? "dead" : "ready") as KeyState })));
  }
}

export class ReplayPool {
  private used = 0;
  constructor(
    private readonly limit: number,
    _shared?: SharedState,
  ) {}
  reserve(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  release(n: number): void {
    this.used -= n;
  }
  inUse(): number {
    return this.used;
  }
}
