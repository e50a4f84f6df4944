// `beyond-ai doctor`: the checks an operator runs before (or instead of) reading logs. One [ok]/[FAIL] line each,
// with a hint under every failure; exit 1 when anything failed. Never prints a secret.

import { lookup } from "node:dns/promises";
import { connect } from "nats";
import type { Config } from "./config.ts";
import { parseAuthority } from "./providers.ts";
import { buildProviders } from "./server.ts";

interface Check {
  name: string;
  ok: boolean;
  msg: string;
  hint?: string;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms).unref())]);
}

export async function runDoctor(cfg: Config): Promise<{ ok: boolean; lines: string[] }> {
  const checks: Check[] = [];

  try {
    const nc = await withTimeout(connect({ servers: cfg.nats_url.split(","), timeout: 3000, reconnect: false }), 4000, "NATS connect");
    await nc.close();
    checks.push({ name: "nats", ok: true, msg: `reachable at ${redactUrl(cfg.nats_url)}` });
  } catch (e) {
    checks.push({
      name: "nats",
      ok: false,
      msg: `cannot reach ${redactUrl(cfg.nats_url)}: ${(e as Error).message}`,
      hint: "the gateway still serves (fail-open) but deny-set updates will not apply; check nats_url and credentials",
    });
  }

  const kids = [...cfg.signing_keys.keys()];
  checks.push(
    kids.length > 0
      ? { name: "signing_keys", ok: true, msg: `${kids.length} key(s): kid ${kids.join(", ")}` }
      : { name: "signing_keys", ok: false, msg: "no [signing_keys]", hint: "every bai_ managed key will get 401; add one with `beyond-ai keygen`" },
  );

  const pooled = Object.keys(cfg.pool_keys);
  if (pooled.length > 0) checks.push({ name: "pool_keys", ok: true, msg: `pool keys for: ${pooled.join(", ")}` });
  else if (kids.length > 0)
    checks.push({ name: "pool_keys", ok: false, msg: "signing keys exist but no [pool_keys]", hint: "managed requests will get 503; set AI_POOL_KEY_<PROVIDER>" });
  else checks.push({ name: "pool_keys", ok: true, msg: "none (BYO only)" });

  const dns = await Promise.all(
    buildProviders(cfg).map(async (p): Promise<Check> => {
      const { host } = parseAuthority(p.authority, cfg.upstream_tls);
      const bare = host.startsWith("[") ? host.slice(1, -1) : host;
      try {
        const r = await withTimeout(lookup(bare), 3000, "DNS lookup");
        return { name: `dns ${p.name}`, ok: true, msg: `${bare} → ${r.address}` };
      } catch (e) {
        return { name: `dns ${p.name}`, ok: false, msg: `${bare}: ${(e as Error).message}`, hint: "requests to this provider will get 502" };
      }
    }),
  );
  checks.push(...dns);

  const lines = ["== beyond-ai doctor =="];
  for (const c of checks) {
    lines.push(`[${c.ok ? "ok" : "FAIL"}] ${c.name}: ${c.msg}`);
    if (!c.ok && c.hint !== undefined) lines.push(`       hint: ${c.hint}`);
  }
  return { ok: checks.every((c) => c.ok), lines };
}

/** user:pass in a NATS URL is a secret. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, "//***@");
}
