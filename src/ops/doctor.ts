// `beyond-ai doctor`: the checks an operator runs before (or instead of) reading logs. One [ok]/[FAIL] line each,
// with a hint under every failure; exit 1 when anything failed. Never prints a secret.

import { lookup } from "node:dns/promises";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { connect } from "nats";
import { type Config, natsDisabled, redactNatsUrl } from "./config.ts";
import { loadSnapshot } from "../controls/denyset.ts";
import { natsConnectionOptions } from "../controls/denyset-nats.ts";
import { parseAuthority } from "../routing/providers.ts";
import { buildProviders } from "../server.ts";

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

  for (const w of cfg.warnings) checks.push({ name: "env", ok: false, msg: w, hint: "unknown AI_* variables are ignored: rename or unset it" });

  if (natsDisabled(cfg.nats_url)) {
    checks.push({ name: "nats", ok: true, msg: 'disabled (nats_url = ""): no deny-set updates; managed keys are denied only by a snapshot' });
  } else {
    const where = redactNatsUrl(cfg.nats_url);
    try {
      // The gateway's own connection options (credentials included), so this checks what the gateway will do.
      const opts = await natsConnectionOptions(
        { natsUrl: cfg.nats_url, credsBase64: cfg.nats_creds?.expose(), credsFile: cfg.nats_creds_file },
        { timeout: 3000, reconnect: false },
      );
      const nc = await withTimeout(connect(opts), 4000, "NATS connect");
      await nc.close();
      checks.push({ name: "nats", ok: true, msg: `reachable at ${where}` });
    } catch (e) {
      checks.push({
        name: "nats",
        ok: false,
        msg: `cannot reach ${where}: ${(e as Error).message}`,
        hint: 'the gateway still serves (fail-open) but deny-set updates will not apply; check nats_url and credentials (nats_url = "" turns NATS off)',
      });
    }
  }

  if (cfg.snapshot_path !== undefined) checks.push(await snapshotCheck(cfg.snapshot_path));

  const kids = [...cfg.signing_keys.keys()];
  checks.push(
    kids.length > 0
      ? { name: "signing_keys", ok: true, msg: `${kids.length} key(s): kid ${kids.join(", ")}` }
      : { name: "signing_keys", ok: false, msg: "no [signing_keys]", hint: "every bai_ managed key will get 401; add one with `beyond-ai keygen`" },
  );

  const pooled = Object.entries(cfg.pool_keys).map(([name, keys]) => `${name} (${keys.length} key${keys.length === 1 ? "" : "s"})`);
  if (pooled.length > 0) checks.push({ name: "pool_keys", ok: true, msg: `pool keys for: ${pooled.join(", ")}` });
  else if (kids.length > 0)
    checks.push({ name: "pool_keys", ok: false, msg: "signing keys exist but no [pool_keys]", hint: "managed requests will get 503; set AI_POOL_KEY_<PROVIDER>" });
  else checks.push({ name: "pool_keys", ok: true, msg: "none (BYO only)" });

  // Virtual models were checked at load (every target's provider exists and has a pool key): list them, so an
  // operator sees which names clients may use and where each goes first.
  const aliases = Object.entries(cfg.models);
  if (aliases.length > 0) {
    const list = aliases.map(([alias, m]) => `${alias} → ${m.targets.map((t) => `${t.provider}/${t.model}`).join(", ")} (${m.strategy})`);
    checks.push({ name: "models", ok: true, msg: `${aliases.length} virtual model(s): ${list.join("; ")}` });
  }

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

/** snapshot_path: its directory must exist and be writable (else every write fails); an existing file must load. */
async function snapshotCheck(path: string): Promise<Check> {
  const dir = dirname(path);
  const name = "snapshot_path";
  const lost = "the deny-set snapshot is never written, so a restart with NATS down enforces no denials";
  try {
    if (!(await stat(dir)).isDirectory()) return { name, ok: false, msg: `${dir} is not a directory`, hint: lost };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { name, ok: false, msg: `directory ${dir} does not exist`, hint: `create it (mkdir -p ${dir}); until then ${lost}` };
    return { name, ok: false, msg: `cannot stat ${dir}: ${code ?? String(e)}`, hint: lost };
  }
  try {
    await access(dir, constants.W_OK);
  } catch {
    return { name, ok: false, msg: `directory ${dir} is not writable by this user`, hint: lost };
  }
  const loaded = await loadSnapshot(path);
  if ("missing" in loaded) return { name, ok: true, msg: `${path}: no snapshot yet (directory writable; written once NATS delivers the deny-set)` };
  if ("error" in loaded) return { name, ok: false, msg: `${path}: ${loaded.error}`, hint: "the gateway ignores it and rescans the bucket; it is rewritten once NATS is reachable" };
  return { name, ok: true, msg: `${path}: ${loaded.entries.length} denied tenant(s) at revision ${loaded.revision}` };
}
