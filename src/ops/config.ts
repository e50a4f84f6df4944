// Configuration: built-in defaults → TOML file → AI_* environment (SPEC §2).
// Every failure is a ConfigError naming the key, so boot can print one line and exit 2.

import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parse as parseToml } from "smol-toml";
import { parseKid, parsePublicKey } from "../controls/keys.ts";
import type { Price } from "../routing/prices.ts";
import { type AuthScheme, BUILT_IN_PROVIDERS, type Dialect, parseAuthority } from "../routing/providers.ts";
import { type AutoConfig, autoFromToml, redactedAuto } from "../routing/auto-config.ts";
import { type ModelRoute, ROUTE_STRATEGIES, type RouteStrategy, type RouteTargetConfig } from "../routing/routes.ts";
import { MODEL_MAX_BYTES } from "../metering/scan-model.ts";
import { Secret } from "./secret.ts";

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly why: string,
  ) {
    super(`${key}: ${why}`);
    this.name = "ConfigError";
  }
}

export type UpstreamTransport = "fetch" | "pool";
const TRANSPORTS: readonly UpstreamTransport[] = ["fetch", "pool"];

export interface Config {
  listen: string;
  metrics_listen: string;
  nats_url: string;
  nats_creds: Secret | undefined;
  nats_creds_file: string | undefined;
  config_bucket: string;
  snapshot_path: string | undefined;
  connect_timeout_secs: number;
  read_timeout_secs: number;
  write_timeout_secs: number;
  idle_timeout_secs: number;
  shutdown_grace_period_secs: number;
  upstream_tls: boolean;
  upstream_verify_cert: boolean;
  upstream_transport: UpstreamTransport;
  /** Worker threads serving the client listener (SPEC §14), resolved: `auto` is os.availableParallelism(). 1 = the
   * single-thread path (no Worker at all). */
  workers: number;
  /** How `workers` was chosen, for the logs: "auto" or "config" (file or AI_WORKERS). */
  workers_from: "auto" | "config";
  /** false: managed traffic is still verified, denied, swapped and rate-limited, but not metered (no ai.usage line). */
  usage_metering: boolean;
  max_request_body_bytes: number;
  /** SPEC §12: the largest body a translated request is parsed from (413 past it). */
  max_translate_bytes: number;
  /** SPEC §12: `max_tokens` for an Anthropic target when an OpenAI client named none. */
  translate_default_max_tokens: number;
  require_signing_keys: boolean;
  rate_limit_rps: number;
  byo_rate_limit_rps: number;
  circuit_breaker_threshold: number;
  circuit_breaker_window_secs: number;
  circuit_breaker_reset_secs: number;
  provider_authorities: Record<string, string>;
  provider_dialects: Record<string, Dialect>;
  provider_auth_schemes: Record<string, AuthScheme>;
  /** provider → the path its API sits under (SPEC §11); only the entries the config gives (built-ins: providers.ts). */
  provider_base_paths: Record<string, string>;
  /** provider → its pool keys in the order listed (SPEC §10: a string or an array; env: comma-separated). */
  pool_keys: Record<string, Secret[]>;
  /** `[key_pool]` (SPEC §10). */
  key_pool: KeyPoolConfig;
  /** `[retry]` (SPEC §10), commit-point hold limits included. */
  retry: RetryConfig;
  /** `[models.<alias>]` (SPEC §11): virtual models, validated (file only). */
  models: Record<string, ModelRoute>;
  /** `[prices."provider/model"]` (SPEC §11), keyed `provider/model` (file only). */
  prices: Map<string, Price>;
  /** `[auto]` (SPEC §13): `model: "auto"` tiers, mode, boundaries (file only); undefined when absent. */
  auto: AutoConfig | undefined;
  /** kid → 32-byte Ed25519 public key. Public keys are not secrets. */
  signing_keys: Map<number, Uint8Array>;
  /** Where the effective config came from, for logs and check-config. */
  source: string;
  /** Non-fatal findings (an `AI_*` variable that looks like a typo of a known one): serve logs each at warn,
   * check-config prints each on stderr, doctor lists them. */
  warnings: string[];
}

/** `[key_pool]`: how a managed request's pool key is chosen, and how long a failing key stays out. */
export interface KeyPoolConfig {
  selection: "affinity" | "round_robin";
  cooldown_ms: number;
  cooldown_max_ms: number;
  dead_key_ms: number;
}

/** `[retry]`: managed-traffic retries, the replay copy and the SSE commit hold. */
export interface RetryConfig {
  max_attempts: number;
  initial_backoff_ms: number;
  multiplier: number;
  max_backoff_ms: number;
  jitter: "full" | "none";
  max_retry_after_ms: number;
  deadline_ms: number;
  budget_ratio: number;
  budget_min_per_sec: number;
  max_replay_bytes: number;
  replay_pool_bytes: number;
  commit_hold_ms: number;
  commit_hold_bytes: number;
}

export const KEY_POOL_DEFAULTS: Readonly<KeyPoolConfig> = { selection: "affinity", cooldown_ms: 5000, cooldown_max_ms: 60000, dead_key_ms: 3600000 };

export const RETRY_DEFAULTS: Readonly<RetryConfig> = {
  max_attempts: 4,
  initial_backoff_ms: 200,
  multiplier: 1.5,
  max_backoff_ms: 10000,
  jitter: "full",
  max_retry_after_ms: 10000,
  deadline_ms: 30000,
  budget_ratio: 0.2,
  budget_min_per_sec: 5,
  max_replay_bytes: 1048576,
  replay_pool_bytes: 134217728,
  commit_hold_ms: 1500,
  commit_hold_bytes: 16384,
};

type ScalarKind = "string" | "optstring" | "secret" | "uint" | "posint" | "bool" | "addr" | "transport" | "workers";

/** The scalar keys and their defaults, in the order check-config prints them. */
const SCALARS: ReadonlyArray<readonly [keyof Config & string, ScalarKind, unknown]> = [
  ["listen", "addr", "0.0.0.0:8080"],
  ["metrics_listen", "addr", "0.0.0.0:9090"],
  ["nats_url", "string", "nats://localhost:4222"],
  ["nats_creds", "secret", undefined],
  ["nats_creds_file", "optstring", undefined],
  ["config_bucket", "string", "ai-gateway"],
  ["snapshot_path", "optstring", undefined],
  ["connect_timeout_secs", "posint", 10],
  ["read_timeout_secs", "posint", 600],
  ["write_timeout_secs", "uint", 60],
  ["idle_timeout_secs", "uint", 90],
  ["shutdown_grace_period_secs", "uint", 600],
  ["upstream_tls", "bool", true],
  ["upstream_verify_cert", "bool", true],
  ["upstream_transport", "transport", "pool"],
  ["workers", "workers", "auto"],
  ["usage_metering", "bool", true],
  ["max_request_body_bytes", "posint", 104857600],
  ["max_translate_bytes", "posint", 16777216],
  ["translate_default_max_tokens", "posint", 4096],
  ["require_signing_keys", "bool", false],
  ["rate_limit_rps", "uint", 100],
  ["byo_rate_limit_rps", "uint", 1000],
  ["circuit_breaker_threshold", "uint", 20],
  ["circuit_breaker_window_secs", "posint", 10],
  ["circuit_breaker_reset_secs", "posint", 30],
];

const TABLES = ["provider_authorities", "provider_dialects", "provider_auth_schemes", "provider_base_paths", "pool_keys", "signing_keys"] as const;
type TableName = (typeof TABLES)[number];

/**
 * The typed tables (`[key_pool]`, `[retry]`): a fixed set of keys, each with its own kind, unlike the name → value
 * tables above. `Record<keyof …>` makes the compiler insist every field of the interface has a kind here.
 */
type FieldKind =
  | { readonly t: "int"; readonly min: 0 | 1; readonly max?: number }
  | { readonly t: "number"; readonly min: number; readonly max?: number }
  | { readonly t: "enum"; readonly values: readonly string[] };

const POS_INT: FieldKind = { t: "int", min: 1 };
const NON_NEG_INT: FieldKind = { t: "int", min: 0 };
/** setTimeout's limit: a longer delay fires at once (and Bun warns), so a typo'd huge wait would mean no wait. */
const MAX_TIMER_MS = 2_147_483_647;
/** A duration in ms: > 0, and short enough for a timer. */
const MS: FieldKind = { t: "int", min: 1, max: MAX_TIMER_MS };

const KEY_POOL_FIELDS: Readonly<Record<keyof KeyPoolConfig, FieldKind>> = {
  selection: { t: "enum", values: ["affinity", "round_robin"] },
  cooldown_ms: MS,
  cooldown_max_ms: MS,
  dead_key_ms: MS,
};

const RETRY_FIELDS: Readonly<Record<keyof RetryConfig, FieldKind>> = {
  max_attempts: POS_INT,
  initial_backoff_ms: MS,
  multiplier: { t: "number", min: 1 },
  max_backoff_ms: MS,
  jitter: { t: "enum", values: ["full", "none"] },
  max_retry_after_ms: MS,
  deadline_ms: MS,
  budget_ratio: { t: "number", min: 0, max: 1 },
  budget_min_per_sec: { t: "number", min: 0 },
  max_replay_bytes: NON_NEG_INT,
  replay_pool_bytes: NON_NEG_INT,
  commit_hold_ms: MS,
  commit_hold_bytes: NON_NEG_INT,
};

const STRUCTS = { key_pool: KEY_POOL_FIELDS, retry: RETRY_FIELDS } as const;
type StructName = keyof typeof STRUCTS;
const STRUCT_NAMES = Object.keys(STRUCTS) as StructName[];

/** Tables read from the file only: `[models.<alias>]`, `[prices."provider/model"]` and `[auto]`. */
const NESTED_TABLES = ["models", "prices", "auto"] as const;

export const KNOWN_KEYS: readonly string[] = [...SCALARS.map((s) => s[0]), ...TABLES, ...STRUCT_NAMES, ...NESTED_TABLES];

/** Meta variables that steer loading rather than name a config key. */
const META_ENV = new Set(["AI_CONFIG_PATH", "AI_LOG_LEVEL"]);

export interface LoadOptions {
  /** `--config PATH` from the command line. */
  configPath?: string | undefined;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** The file's text as already read (a worker thread gets the text main read at boot, so a worker that is
   * replaced later runs the config the process started with, not an edited file). */
  fileText?: string;
}

/** Resolve which file (if any) to read: --config, else $AI_CONFIG_PATH, else ./config.toml if present. */
export function resolveConfigPath(opts: LoadOptions): string | undefined {
  const env = opts.env ?? process.env;
  if (opts.configPath !== undefined) return opts.configPath;
  const fromEnv = env.AI_CONFIG_PATH;
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const local = `${opts.cwd ?? process.cwd()}/config.toml`;
  return existsSync(local) ? local : undefined;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const path = resolveConfigPath(opts);
  let file: Record<string, unknown> = {};
  if (path !== undefined) {
    let text: string;
    try {
      text = opts.fileText ?? readFileSync(path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ConfigError("config", code === "ENOENT" ? `file not found: ${path}` : `cannot read ${path}: ${code ?? String(e)}`);
    }
    try {
      file = parseToml(text) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError("config", tomlErrorText(path, e));
    }
    for (const key of Object.keys(file)) {
      if (!KNOWN_KEYS.includes(key)) throw new ConfigError(key, `unknown key in ${path} (known keys: ${KNOWN_KEYS.join(", ")})`);
    }
  }
  return buildConfig(file, env, path ?? "built-in defaults");
}

/**
 * `FILE:LINE:COL: not valid TOML: why`. smol-toml's TomlError carries `line` and `column` (1-based); only its first
 * message line is used, because the rest is a code frame quoting the file, which may hold a pool key.
 */
function tomlErrorText(path: string, e: unknown): string {
  const err = e as { message?: unknown; line?: unknown; column?: unknown };
  const why = String(err.message ?? e)
    .split("\n")[0]
    ?.replace(/^Invalid TOML document:\s*/, "");
  const at = typeof err.line === "number" && typeof err.column === "number" ? `${path}:${err.line}:${err.column}` : path;
  return `${at}: not valid TOML: ${why}`;
}

function buildConfig(file: Record<string, unknown>, env: Record<string, string | undefined>, source: string): Config {
  const cfg = { source } as Record<string, unknown>;
  const logLevel = env.AI_LOG_LEVEL;
  if (logLevel !== undefined && parseLogLevel(logLevel) === undefined) {
    throw new ConfigError("AI_LOG_LEVEL", `"${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  for (const [key, kind, def] of SCALARS) {
    const envName = `AI_${key.toUpperCase()}`;
    const envVal = env[envName];
    if (envVal !== undefined) cfg[key] = scalarFromEnv(envName, kind, envVal);
    else if (key in file) cfg[key] = scalarFromToml(key, kind, file[key]);
    else cfg[key] = def;
  }

  const tables: Record<Exclude<TableName, "pool_keys">, Map<string, string>> = {
    provider_authorities: tableFromToml("provider_authorities", file.provider_authorities),
    provider_dialects: tableFromToml("provider_dialects", file.provider_dialects),
    provider_auth_schemes: tableFromToml("provider_auth_schemes", file.provider_auth_schemes),
    provider_base_paths: tableFromToml("provider_base_paths", file.provider_base_paths),
    signing_keys: tableFromToml("signing_keys", file.signing_keys),
  };
  const poolLists = poolKeysFromToml(file.pool_keys);

  // Env table entries: AI_<TABLE>__<NAME>, plus the AI_POOL_KEY_<NAME> and AI_SIGNING_KEY_<KID> shorthands (which win).
  const knownNames = new Set<string>([...BUILT_IN_PROVIDERS.map((p) => p.name), ...tables.provider_authorities.keys()]);
  const envEntries = Object.entries(env).filter(([k, v]) => k.startsWith("AI_") && v !== undefined && !META_ENV.has(k));
  for (const pass of ["table", "shorthand"] as const) {
    for (const [name, value] of envEntries) {
      let table: TableName | undefined;
      let rawName: string | undefined;
      if (pass === "table") {
        const sep = name.indexOf("__");
        if (sep < 0) continue;
        const t = name.slice(3, sep).toLowerCase();
        if (!(TABLES as readonly string[]).includes(t)) continue;
        table = t as TableName;
        rawName = name.slice(sep + 2);
      } else if (name.startsWith("AI_POOL_KEY_")) {
        table = "pool_keys";
        rawName = name.slice("AI_POOL_KEY_".length);
      } else if (name.startsWith("AI_SIGNING_KEY_")) {
        table = "signing_keys";
        rawName = name.slice("AI_SIGNING_KEY_".length);
      }
      if (table === undefined || rawName === undefined || rawName.length === 0) continue;
      const entryName = table === "signing_keys" ? rawName : providerNameFromEnv(rawName, knownNames);
      // A pool key variable replaces the file's whole list for that provider (never merged with it).
      if (table === "pool_keys") poolLists.set(entryName, { keys: (value as string).split(","), form: "env", envName: name });
      else tables[table].set(entryName, value as string);
      if (table === "provider_authorities") knownNames.add(entryName);
    }
  }

  const tls = cfg.upstream_tls as boolean;
  const authorities: Record<string, string> = {};
  for (const [name, value] of tables.provider_authorities) {
    checkProviderName("provider_authorities", name);
    try {
      parseAuthority(value, tls);
    } catch (e) {
      throw new ConfigError(`provider_authorities.${name}`, (e as Error).message);
    }
    authorities[name] = value.trim();
  }
  const providerExists = (n: string) => knownNames.has(n);
  const dialects: Record<string, Dialect> = {};
  for (const [name, value] of tables.provider_dialects) {
    if (value !== "openai" && value !== "anthropic") throw new ConfigError(`provider_dialects.${name}`, `"${value}" is not one of openai, anthropic`);
    if (!providerExists(name)) throw new ConfigError(`provider_dialects.${name}`, "no such provider (add it under [provider_authorities] first)");
    dialects[name] = value;
  }
  const schemes: Record<string, AuthScheme> = {};
  for (const [name, value] of tables.provider_auth_schemes) {
    if (value !== "bearer" && value !== "x-api-key") throw new ConfigError(`provider_auth_schemes.${name}`, `"${value}" is not one of bearer, x-api-key`);
    if (!providerExists(name)) throw new ConfigError(`provider_auth_schemes.${name}`, "no such provider (add it under [provider_authorities] first)");
    schemes[name] = value;
  }
  const basePaths: Record<string, string> = {};
  for (const [name, value] of tables.provider_base_paths) {
    if (!providerExists(name)) throw new ConfigError(`provider_base_paths.${name}`, "no such provider (add it under [provider_authorities] first)");
    basePaths[name] = checkBasePath(`provider_base_paths.${name}`, value);
  }
  const pool: Record<string, Secret[]> = {};
  for (const [name, list] of poolLists) pool[name] = poolKeyList(name, list);
  const signing = new Map<number, Uint8Array>();
  for (const [kidText, value] of tables.signing_keys) {
    let kid: number;
    try {
      kid = parseKid(kidText);
    } catch (e) {
      throw new ConfigError(`signing_keys.${kidText}`, `kid must be a decimal u32 (${(e as Error).message})`);
    }
    try {
      signing.set(kid, parsePublicKey(value));
    } catch (e) {
      throw new ConfigError(`signing_keys.${kidText}`, `not an Ed25519 public key: ${(e as Error).message}`);
    }
  }
  checkListenersDistinct(cfg.listen as string, cfg.metrics_listen as string);
  checkNatsUrl(cfg.nats_url as string);
  if ((cfg.require_signing_keys as boolean) && signing.size === 0) {
    throw new ConfigError("signing_keys", "require_signing_keys = true but no [signing_keys] are configured");
  }

  cfg.provider_authorities = authorities;
  cfg.provider_dialects = dialects;
  cfg.provider_auth_schemes = schemes;
  cfg.pool_keys = pool;
  const keyPool = structFromConfig("key_pool", file.key_pool, env, KEY_POOL_DEFAULTS);
  if (keyPool.cooldown_max_ms < keyPool.cooldown_ms) {
    throw new ConfigError(
      "key_pool.cooldown_max_ms",
      `${keyPool.cooldown_max_ms} is below cooldown_ms ${keyPool.cooldown_ms}: a cooldown starts at cooldown_ms and doubles up to cooldown_max_ms, so the max must be >= cooldown_ms`,
    );
  }
  cfg.key_pool = keyPool;
  cfg.retry = structFromConfig("retry", file.retry, env, RETRY_DEFAULTS);
  cfg.provider_base_paths = basePaths;
  const dialectOf = (name: string): Dialect => dialects[name] ?? BUILT_IN_PROVIDERS.find((p) => p.name === name)?.dialect ?? "openai";
  cfg.models = modelsFromToml(file.models, { known: knownNames, dialectOf, pool, retry: cfg.retry as RetryConfig });
  cfg.prices = pricesFromToml(file.prices, knownNames);
  cfg.auto = autoFromToml(file.auto, { known: knownNames, pool, models: cfg.models as Record<string, ModelRoute> });
  cfg.signing_keys = signing;
  cfg.warnings = envTypoWarnings(env);
  // "auto" resolves here, once, so every consumer (and every worker loading the same file) sees one number.
  cfg.workers_from = cfg.workers === "auto" ? "auto" : "config";
  if (cfg.workers === "auto") cfg.workers = Math.max(1, availableParallelism());
  return cfg as unknown as Config;
}

const CONTROL_NAMES: Record<number, string> = { 0x09: "tab", 0x0a: "LF", 0x0d: "CR", 0x00: "NUL", 0x7f: "DEL" };

/** "contains …" for the first byte a header value must not carry (control, DEL, non-ASCII), else undefined. */
function badHeaderByte(v: string): string | undefined {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      const hex = `0x${c.toString(16).padStart(2, "0")}`;
      return `contains a control character (${CONTROL_NAMES[c] ?? hex}) at offset ${i}`;
    }
    if (c > 0x7e) return `contains a non-ASCII character at offset ${i}`;
  }
  return undefined;
}

/** One provider's pool keys as written: a TOML string, a TOML array, or an env variable split on commas. */
interface RawPoolList {
  keys: unknown[];
  form: "string" | "array" | "env";
  /** The variable an env list came from, for the error message (a variable's name is not a secret). */
  envName?: string;
}

/** `[pool_keys]` from the file: each entry a string (one key) or an array of strings (several, in order). */
function poolKeysFromToml(value: unknown): Map<string, RawPoolList> {
  const out = new Map<string, RawPoolList>();
  if (value === undefined) return out;
  if (!isTable(value)) throw new ConfigError("pool_keys", `must be a table, got ${describe(value)}`);
  for (const [name, v] of Object.entries(value)) {
    if (typeof v === "string") out.set(name, { keys: [v], form: "string" });
    else if (Array.isArray(v)) out.set(name, { keys: v, form: "array" });
    // describe() never runs on a string here, so no key can be quoted.
    else throw new ConfigError(`pool_keys.${name}`, `must be a string or an array of strings, got ${describe(v)}`);
  }
  return out;
}

/**
 * Validates one provider's keys and wraps them as Secrets, in the order listed (key ids `<provider>#<n>` follow it).
 * Every message names the entry (`pool_keys.<name>`, or `pool_keys.<name>[<n>]` for one key of a list) and, for
 * a variable, the variable; never the key itself.
 */
function poolKeyList(name: string, list: RawPoolList): Secret[] {
  const from = list.envName === undefined ? "" : ` (from ${list.envName})`;
  if (list.keys.length === 0) throw new ConfigError(`pool_keys.${name}`, "an empty array; list at least one key, or remove the entry");
  const single = list.keys.length === 1 && list.form !== "array";
  const label = (i: number) => (single ? `pool_keys.${name}` : `pool_keys.${name}[${i}]`);
  const seen = new Map<string, number>();
  const out: Secret[] = [];
  for (let i = 0; i < list.keys.length; i++) {
    const raw = list.keys[i];
    if (typeof raw !== "string") throw new ConfigError(label(i), `must be a string, got ${describe(raw)}`);
    const key = raw.trim();
    if (key.length === 0) {
      const why = list.form === "env" && !single ? "an empty element in the comma-separated list (a doubled, leading or trailing comma?)" : "";
      throw new ConfigError(label(i), `empty key${why === "" ? "" : `: ${why}`}${from}`);
    }
    // A variable separates keys with commas, so no key can hold one; the file refuses it too, so a key that works
    // in one place works in the other (and no provider's keys contain one).
    if (key.includes(",")) {
      throw new ConfigError(label(i), `contains a comma; list several keys as an array (${name} = ["…", "…"]), or comma-separated in AI_POOL_KEY_<NAME>${from}`);
    }
    // The key becomes a header value: CR/LF would split the upstream head (or make every managed request fail),
    // other control bytes and non-ASCII go out raw. Refused at boot; the message names the byte, never the key.
    const bad = badHeaderByte(key);
    if (bad !== undefined) throw new ConfigError(label(i), `${bad}; a provider key is printable ASCII (a pasted line break?)${from}`);
    // A repeated key is a paste mistake that hurts: its two ids share one provider quota, so a 429 on one would be
    // "retried on another key" against the same quota.
    const first = seen.get(key);
    if (first !== undefined) throw new ConfigError(label(i), `the same key as ${label(first)}; list each key once${from}`);
    seen.set(key, i);
    out.push(new Secret(key));
  }
  return out;
}

/**
 * `[key_pool]` or `[retry]`: the defaults, then the file's table (every key known, every value checked), then
 * `AI_<TABLE>__<KEY>` variables, key by key. Errors name `<table>.<key>` (a variable: the variable and the key).
 */
function structFromConfig<T extends object>(table: StructName, value: unknown, env: Record<string, string | undefined>, defaults: Readonly<T>): T {
  const fields = STRUCTS[table] as Readonly<Record<string, FieldKind>>;
  const out = { ...defaults } as Record<string, unknown>;
  if (value !== undefined) {
    if (!isTable(value)) throw new ConfigError(table, `must be a table ([${table}]), got ${describe(value)}`);
    for (const [k, v] of Object.entries(value)) {
      const kind = fields[k];
      if (kind === undefined) throw new ConfigError(`${table}.${k}`, `unknown key in [${table}] (known keys: ${Object.keys(fields).join(", ")})`);
      out[k] = checkField(`${table}.${k}`, kind, v, describe(v));
    }
  }
  for (const [k, kind] of Object.entries(fields)) {
    const envName = structEnvName(table, k);
    const raw = env[envName];
    if (raw === undefined) continue;
    const t = raw.trim();
    // Numbers arrive as text; anything that is not one stays a string and fails the kind's check with the text.
    const v = kind.t !== "enum" && NUMBER_TEXT.test(t) ? Number(t) : t;
    out[k] = checkField(envName, kind, v, `"${raw}"`, ` (${table}.${k})`);
  }
  return out as T;
}

/**
 * A provider base path: `""` (the API sits at the root) or `/seg[/seg…]`, each segment non-empty and made of URL
 * path characters, so no trailing `/`, no `//`, no `?` or `#` (the client's path and query are appended to it).
 */
function checkBasePath(key: string, value: string): string {
  if (value === "" || /^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(value)) return value;
  const why = !value.startsWith("/")
    ? "must start with /"
    : value.endsWith("/")
      ? "must not end with / (the client's path, which starts with one, is appended)"
      : /[?#]/.test(value)
        ? "must not hold ? or # (the client's query is appended)"
        : value.includes("//")
          ? "has an empty segment (//)"
          : "may hold URL path characters only (letters, digits, -._~!$&'()*+,;=:@%)";
  throw new ConfigError(key, `"${value}" ${why}; e.g. "/v1" or "/openai/v1", or "" for the root`);
}

/** Alias names a client could not reach as `/<alias>/v1/…`, or that a future route claims. */
const RESERVED_ALIASES = new Set(["v1", "auto"]);
const MODEL_KEYS = ["targets", "strategy", "weights", "retry"];

interface ModelsContext {
  /** Provider names, built-in and added. */
  readonly known: ReadonlySet<string>;
  readonly dialectOf: (provider: string) => Dialect;
  readonly pool: Readonly<Record<string, Secret[]>>;
  /** The effective global `[retry]`, file and environment applied. */
  readonly retry: RetryConfig;
}

/**
 * `[models.<alias>]` (SPEC §11), file only. Every failure names the key (`models.smart.targets[1]`) and why; a
 * virtual model that could never be served (no pool key, a provider that does not exist) fails
 * boot rather than answering 503 forever.
 */
function modelsFromToml(value: unknown, ctx: ModelsContext): Record<string, ModelRoute> {
  const out: Record<string, ModelRoute> = {};
  if (value === undefined) return out;
  if (!isTable(value)) throw new ConfigError("models", `must be a table of aliases ([models.<alias>]), got ${describe(value)}`);
  const providersLower = new Map([...ctx.known].map((n) => [n.toLowerCase(), n]));
  for (const [alias, raw] of Object.entries(value)) {
    const key = `models.${alias}`;
    // Same rule as a provider name: the alias is the first path segment of /<alias>/v1/….
    if (!/^[A-Za-z0-9._~-]+$/.test(alias) || alias === "." || alias === "..") {
      throw new ConfigError(key, "an alias is a URL path segment (/<alias>/v1/…): letters, digits, '.', '_', '~' and '-' only");
    }
    const clash = providersLower.get(alias.toLowerCase());
    if (clash !== undefined) throw new ConfigError(key, `the alias is named like the provider ${clash}; both are first path segments, so one would hide the other: rename the alias`);
    if (RESERVED_ALIASES.has(alias.toLowerCase())) {
      throw new ConfigError(key, `"${alias}" is reserved (${alias.toLowerCase() === "v1" ? "/v1/… is the drop-in path" : "auto is the cheapest-capable-model router"}): rename the alias`);
    }
    if (!isTable(raw)) throw new ConfigError(key, `must be a table ([models.${alias}] with targets = […]), got ${describe(raw)}`);
    for (const k of Object.keys(raw)) {
      if (!MODEL_KEYS.includes(k)) throw new ConfigError(`${key}.${k}`, `unknown key in [models.${alias}] (known keys: ${MODEL_KEYS.join(", ")})`);
    }

    const targetsRaw = raw.targets;
    if (targetsRaw === undefined) throw new ConfigError(`${key}.targets`, 'missing: list at least one "provider/model"');
    if (!Array.isArray(targetsRaw)) throw new ConfigError(`${key}.targets`, `must be an array of "provider/model" strings, got ${describe(targetsRaw)}`);
    if (targetsRaw.length === 0) throw new ConfigError(`${key}.targets`, 'an empty array; list at least one "provider/model"');
    const targets: RouteTargetConfig[] = [];
    const seen = new Map<string, number>();
    let dialect: Dialect | undefined;
    for (let i = 0; i < targetsRaw.length; i++) {
      const tk = `${key}.targets[${i}]`;
      const t = targetsRaw[i];
      if (typeof t !== "string") throw new ConfigError(tk, `must be a "provider/model" string, got ${describe(t)}`);
      const slash = t.indexOf("/");
      if (slash < 0) throw new ConfigError(tk, `"${t}" has no "/": write "provider/model" (the provider first, e.g. "groq/llama-3.3-70b-versatile")`);
      const provider = t.slice(0, slash);
      const model = t.slice(slash + 1);
      if (provider === "") throw new ConfigError(tk, `"${t}" has an empty provider before the "/"`);
      if (model === "") throw new ConfigError(tk, `"${t}" has an empty model after the "/"`);
      if (!ctx.known.has(provider)) throw new ConfigError(tk, `unknown provider "${provider}" (built in, or added under [provider_authorities])`);
      const bad = badModelText(model);
      if (bad !== undefined) throw new ConfigError(tk, `the model ${bad}`);
      const first = seen.get(t);
      if (first !== undefined) throw new ConfigError(tk, `the same target as ${key}.targets[${first}]; list each target once (weights favour one)`);
      seen.set(t, i);
      // A managed request routed here would get 503 on every attempt: refuse the config instead.
      if ((ctx.pool[provider]?.length ?? 0) === 0) {
        throw new ConfigError(tk, `provider ${provider} has no pool key ([pool_keys] ${provider} or AI_POOL_KEY_${provider.toUpperCase().replaceAll("-", "_")}): a virtual model sends managed traffic, which needs one`);
      }
      // The first target's dialect is the alias's own (what non-translatable paths speak); a target of the other dialect
      // is reached through dialect translation (SPEC §12).
      dialect ??= ctx.dialectOf(provider);
      targets.push({ provider, model });
    }

    let strategy: RouteStrategy = "fallback";
    if (raw.strategy !== undefined) {
      if (typeof raw.strategy !== "string") throw new ConfigError(`${key}.strategy`, `must be one of ${ROUTE_STRATEGIES.join(", ")}, got ${describe(raw.strategy)}`);
      if (!(ROUTE_STRATEGIES as readonly string[]).includes(raw.strategy)) throw new ConfigError(`${key}.strategy`, `"${raw.strategy}" is not one of ${ROUTE_STRATEGIES.join(", ")}`);
      strategy = raw.strategy as RouteStrategy;
    }

    let weights: number[] | undefined;
    if (raw.weights !== undefined) {
      if (strategy !== "weighted") throw new ConfigError(`${key}.weights`, `weights are given but strategy is "${strategy}"; they only apply to strategy = "weighted"`);
      if (!Array.isArray(raw.weights)) throw new ConfigError(`${key}.weights`, `must be an array of numbers, one per target, got ${describe(raw.weights)}`);
      if (raw.weights.length !== targets.length) {
        throw new ConfigError(`${key}.weights`, `${raw.weights.length} weight(s) for ${targets.length} target(s); give one weight per target, in the same order`);
      }
      weights = raw.weights.map((w, i) => {
        const n = typeof w === "bigint" ? Number(w) : w;
        if (typeof n !== "number" || !Number.isFinite(n) || n < 0) throw new ConfigError(`${key}.weights[${i}]`, `must be a number >= 0, got ${describe(w)}`);
        return n;
      });
      if (weights.every((w) => w === 0)) throw new ConfigError(`${key}.weights`, "every weight is 0; at least one target needs a weight above 0");
    } else if (strategy === "weighted") {
      throw new ConfigError(`${key}.weights`, 'missing: strategy = "weighted" needs weights = […], one per target');
    }

    let retry = ctx.retry;
    if (raw.retry !== undefined) {
      if (!isTable(raw.retry)) throw new ConfigError(`${key}.retry`, `must be a table ([models.${alias}.retry]), got ${describe(raw.retry)}`);
      const merged: Record<string, unknown> = { ...ctx.retry };
      for (const [k, v] of Object.entries(raw.retry)) {
        const kind = (RETRY_FIELDS as Readonly<Record<string, FieldKind>>)[k];
        if (kind === undefined) throw new ConfigError(`${key}.retry.${k}`, `unknown key in [models.${alias}.retry] (known keys: ${Object.keys(RETRY_FIELDS).join(", ")})`);
        merged[k] = checkField(`${key}.retry.${k}`, kind, v, describe(v));
      }
      retry = merged as unknown as RetryConfig;
    }
    out[alias] = Object.freeze({ targets: Object.freeze(targets), strategy, weights: weights === undefined ? undefined : Object.freeze(weights), dialect: dialect as Dialect, retry: Object.freeze(retry) });
  }
  return out;
}

/** "…" when a model name cannot go into a request body as written (control characters, too long), else undefined. */
function badModelText(model: string): string | undefined {
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return `contains a control character at offset ${i}`;
  }
  const bytes = Buffer.byteLength(model, "utf8");
  if (bytes > MODEL_MAX_BYTES) return `is ${bytes} bytes long; at most ${MODEL_MAX_BYTES}`;
  return undefined;
}

const PRICE_KEYS = ["input", "output", "cache_read", "cache_write", "context_window", "vision"];

/**
 * `[prices."provider/model"]` (SPEC §11), file only. `input` and `output` are required (USD per million tokens, >= 0);
 * `cache_read` and `cache_write` default to `input`; `context_window` is a positive integer; `vision` a boolean
 * (default false). The key is `provider/model` with a known provider, split at the first `/`.
 */
function pricesFromToml(value: unknown, known: ReadonlySet<string>): Map<string, Price> {
  const out = new Map<string, Price>();
  if (value === undefined) return out;
  if (!isTable(value)) throw new ConfigError("prices", `must be a table of models ([prices."provider/model"]), got ${describe(value)}`);
  for (const [id, raw] of Object.entries(value)) {
    const key = `prices.${id}`;
    const slash = id.indexOf("/");
    if (slash <= 0 || slash === id.length - 1) {
      throw new ConfigError(key, `the key must be "provider/model" (quoted: [prices."openai/gpt-4.1-mini"])${isTable(raw) ? "" : ", a table"}`);
    }
    const provider = id.slice(0, slash);
    if (!known.has(provider)) throw new ConfigError(key, `unknown provider "${provider}" (built in, or added under [provider_authorities])`);
    if (!isTable(raw)) throw new ConfigError(key, `must be a table (input = …, output = …), got ${describe(raw)}`);
    for (const k of Object.keys(raw)) {
      if (!PRICE_KEYS.includes(k)) throw new ConfigError(`${key}.${k}`, `unknown key in [prices."${id}"] (known keys: ${PRICE_KEYS.join(", ")})`);
    }
    const usd = (k: string, fallback?: number): number => {
      const v = raw[k];
      if (v === undefined) {
        if (fallback !== undefined) return fallback;
        throw new ConfigError(`${key}.${k}`, "missing: USD per million tokens (0 for free)");
      }
      const n = typeof v === "bigint" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isFinite(n) || n < 0) throw new ConfigError(`${key}.${k}`, `must be a number >= 0 (USD per million tokens), got ${describe(v)}`);
      return n;
    };
    const input = usd("input");
    const output = usd("output");
    const cache_read = usd("cache_read", input);
    const cache_write = usd("cache_write", input);
    let context_window: number | undefined;
    if (raw.context_window !== undefined) {
      const n = typeof raw.context_window === "bigint" ? Number(raw.context_window) : raw.context_window;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) throw new ConfigError(`${key}.context_window`, `must be an integer > 0 (tokens), got ${describe(raw.context_window)}`);
      context_window = n;
    }
    if (raw.vision !== undefined && typeof raw.vision !== "boolean") throw new ConfigError(`${key}.vision`, `must be true or false, got ${describe(raw.vision)}`);
    out.set(id, Object.freeze({ input, output, cache_read, cache_write, context_window, vision: raw.vision === true }));
  }
  return out;
}

/** Decimal numbers as an environment variable may write them (`2`, `0.5`, `.5`, `1e3`, a sign). */
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function structEnvName(table: StructName, key: string): string {
  return `AI_${table.toUpperCase()}__${key.toUpperCase()}`;
}

/** One typed-table value against its kind; `shown` is how the message quotes it, `what` names the key for a variable. */
function checkField(key: string, kind: FieldKind, v: unknown, shown: string, what = ""): unknown {
  switch (kind.t) {
    case "enum":
      if (typeof v !== "string") throw new ConfigError(key, `must be one of ${kind.values.join(", ")}, got ${shown}${what}`);
      if (!kind.values.includes(v)) throw new ConfigError(key, `"${v}" is not one of ${kind.values.join(", ")}${what}`);
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < kind.min) {
        throw new ConfigError(key, `must be an integer ${kind.min === 1 ? "> 0" : ">= 0"}, got ${shown}${what}`);
      }
      if (kind.max !== undefined && v > kind.max) throw new ConfigError(key, `must be at most ${kind.max} ms (about 24.8 days, a timer's limit), got ${shown}${what}`);
      return v;
    case "number": {
      const range = kind.max === undefined ? `>= ${kind.min}` : `in [${kind.min}, ${kind.max}]`;
      // TOML allows inf and nan: neither is a ratio, a multiplier or a rate.
      if (typeof v !== "number" || !Number.isFinite(v) || v < kind.min || (kind.max !== undefined && v > kind.max)) {
        throw new ConfigError(key, `must be a number ${range}, got ${shown}${what}`);
      }
      return v;
    }
  }
}

export function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const WILDCARD_HOSTS = new Set(["", "0.0.0.0", "::", "*"]);
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1"]);

/**
 * listen and metrics_listen must not be one socket address: the second bind would fail at start-up (or, with
 * SO_REUSEPORT, split traffic between the two servers). A wildcard host (0.0.0.0, ::) holds the port on every
 * address, so it conflicts with any host on the same port; localhost conflicts with the loopback addresses.
 * Port 0 (an ephemeral port each) never conflicts.
 */
function checkListenersDistinct(listen: string, metrics: string): void {
  const a = parseListen(listen);
  const b = parseListen(metrics);
  if (a.port === 0 || a.port !== b.port) return;
  const ha = a.hostname.toLowerCase();
  const hb = b.hostname.toLowerCase();
  const clash =
    ha === hb || WILDCARD_HOSTS.has(ha) || WILDCARD_HOSTS.has(hb) || (LOOPBACK_HOSTS.has(ha) && LOOPBACK_HOSTS.has(hb) && (ha === "localhost" || hb === "localhost"));
  if (clash) throw new ConfigError("metrics_listen", `"${metrics}" uses the same port as listen "${listen}"; give the admin listener its own port`);
}

/** `""` means no NATS; otherwise every comma-separated part must name a server (an empty part would mean localhost). */
function checkNatsUrl(url: string): void {
  if (url.trim() === "") return;
  const parts = url.split(",");
  for (let i = 0; i < parts.length; i++) {
    if ((parts[i] as string).trim() === "") {
      // The URL may hold credentials: name the position, never echo it.
      throw new ConfigError("nats_url", `server ${i + 1} of ${parts.length} in the comma-separated list is empty (use "" for no NATS)`);
    }
  }
}

/** True when nats_url turns NATS off (SPEC §2: `""` means no connection attempts). */
export function natsDisabled(url: string): boolean {
  return url.trim() === "";
}

/**
 * nats_url for printing: the userinfo of every server (`user:pass@`, `token@`) becomes `***@`. Hosts never hold
 * an `@`, so the last `@` of a server ends its userinfo, whatever characters the password has.
 */
export function redactNatsUrl(url: string): string {
  return url
    .split(",")
    .map((part) => {
      const scheme = part.indexOf("://");
      const start = scheme < 0 ? 0 : scheme + 3;
      const at = part.lastIndexOf("@");
      return at >= start ? `${part.slice(0, start)}***${part.slice(at)}` : part;
    })
    .join(",");
}

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** AI_LOG_LEVEL: one of LOG_LEVELS, any case; empty means the default (info). Anything else: undefined. */
export function parseLogLevel(text: string): LogLevelName | undefined {
  const t = text.trim().toLowerCase();
  if (t === "") return "info";
  return (LOG_LEVELS as readonly string[]).includes(t) ? (t as LogLevelName) : undefined;
}

/** Every exact env name the gateway reads. */
const EXACT_ENV = [
  ...META_ENV,
  ...SCALARS.map(([k]) => `AI_${k.toUpperCase()}`),
  ...STRUCT_NAMES.flatMap((t) => Object.keys(STRUCTS[t]).map((k) => structEnvName(t, k))),
];
/** Env name prefixes the gateway reads (the rest of the name is a provider or a kid). */
const PREFIX_ENV = ["AI_POOL_KEY_", "AI_SIGNING_KEY_", ...TABLES.map((t) => `AI_${t.toUpperCase()}__`)];

function envNameKnown(name: string): boolean {
  if (EXACT_ENV.includes(name)) return true;
  return PREFIX_ENV.some((p) => name.startsWith(p) && name.length > p.length);
}

/**
 * Unknown AI_* variables are ignored (platforms inject their own), but one within edit distance 2 of a name the
 * gateway reads is almost surely a typo: say which name was meant. Prefix forms are compared on their prefix
 * (AI_POOL_KEYS_OPENAI → AI_POOL_KEY_OPENAI).
 */
export function envTypoWarnings(env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("AI_") || env[name] === undefined || envNameKnown(name)) continue;
    let best: { d: number; suggestion: string } | undefined;
    for (const known of EXACT_ENV) {
      const d = editDistance(name, known, 2);
      if (d <= 2 && (best === undefined || d < best.d)) best = { d, suggestion: known };
    }
    for (const p of PREFIX_ENV) {
      // Cut points around the prefix's length; at equal distance the longer cut wins, so the typo's own trailing
      // separator is consumed (AI_POOL_KEYS_OPENAI → AI_POOL_KEY_OPENAI, not AI_POOL_KEY_S_OPENAI).
      let mine: { d: number; suggestion: string } | undefined;
      for (let len = p.length - 2; len <= p.length + 2 && len < name.length; len++) {
        const d = editDistance(name.slice(0, len), p, 2);
        if (d <= 2 && (mine === undefined || d <= mine.d)) mine = { d, suggestion: p + name.slice(len) };
      }
      if (mine !== undefined && (best === undefined || mine.d < best.d)) best = mine;
    }
    if (best !== undefined) {
      out.push(`unknown environment variable ${name} is ignored: did you mean ${best.suggestion}?`);
      continue;
    }
    // AI_RETRY__<KEY> / AI_KEY_POOL__<KEY> can only mean one of that table's keys: say so even when none is close.
    const struct = STRUCT_NAMES.find((t) => name.startsWith(`AI_${t.toUpperCase()}__`));
    if (struct !== undefined) {
      const key = name.slice(`AI_${struct.toUpperCase()}__`.length).toLowerCase();
      out.push(`unknown environment variable ${name} is ignored: [${struct}] has no key ${key} (keys: ${Object.keys(STRUCTS[struct]).join(", ")})`);
    }
  }
  return out;
}

/** Levenshtein distance, or max + 1 as soon as it must exceed max. */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prev = cur;
  }
  return prev[b.length] as number;
}

/** Env names are upper case with `_` for `-`: map back to a known provider when one matches, else lower-case. */
function providerNameFromEnv(raw: string, known: Set<string>): string {
  for (const name of known) if (name.toUpperCase().replaceAll("-", "_") === raw) return name;
  return raw.toLowerCase();
}

function checkProviderName(table: string, name: string): void {
  // The name is a path segment: anything that cannot be one would never be routable.
  if (!/^[A-Za-z0-9._~-]+$/.test(name)) throw new ConfigError(`${table}.${name}`, "provider names may use letters, digits, '.', '_', '~' and '-' only");
}

function tableFromToml(key: string, value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  if (!isTable(value)) throw new ConfigError(key, "must be a table");
  for (const [name, v] of Object.entries(value)) {
    if (typeof v !== "string") throw new ConfigError(`${key}.${name}`, `must be a string, got ${describe(v)}`);
    out.set(name, v);
  }
  return out;
}

function scalarFromToml(key: string, kind: ScalarKind, v: unknown): unknown {
  switch (kind) {
    case "string":
    case "optstring":
    case "addr":
      if (typeof v !== "string") throw new ConfigError(key, `must be a string, got ${describe(v)}`);
      if (kind === "addr") checkListen(key, v);
      return v;
    case "secret":
      if (typeof v !== "string") throw new ConfigError(key, `must be a string, got ${describe(v)}`);
      return new Secret(v);
    case "transport":
      if (typeof v !== "string") throw new ConfigError(key, `must be a string, got ${describe(v)}`);
      return checkTransport(key, v);
    case "workers": {
      if (typeof v === "string") return checkWorkers(key, v);
      const n = typeof v === "bigint" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) throw new ConfigError(key, `must be "auto" or an integer >= 1, got ${describe(v)}`);
      return checkWorkerCount(key, n);
    }
    case "bool":
      if (typeof v !== "boolean") throw new ConfigError(key, `must be true or false, got ${describe(v)}`);
      return v;
    case "uint":
    case "posint": {
      const n = typeof v === "bigint" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new ConfigError(key, `must be a non-negative integer, got ${describe(v)}`);
      if (kind === "posint" && n === 0) throw new ConfigError(key, "must be > 0");
      return n;
    }
  }
}

function scalarFromEnv(name: string, kind: ScalarKind, v: string): unknown {
  switch (kind) {
    case "string":
    case "optstring":
      return v;
    case "addr":
      checkListen(name, v);
      return v;
    case "secret":
      return new Secret(v);
    case "transport":
      return checkTransport(name, v);
    case "workers":
      return checkWorkers(name, v);
    case "bool": {
      const t = v.trim().toLowerCase();
      if (t === "true" || t === "1") return true;
      if (t === "false" || t === "0") return false;
      throw new ConfigError(name, `must be true or false, got "${v}"`);
    }
    case "uint":
    case "posint": {
      const t = v.trim();
      if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) throw new ConfigError(name, `must be a non-negative integer, got "${v}"`);
      const n = Number(t);
      if (kind === "posint" && n === 0) throw new ConfigError(name, "must be > 0");
      return n;
    }
  }
}

export function parseListen(text: string): { hostname: string; port: number } {
  const colon = text.lastIndexOf(":");
  if (colon <= 0) throw new Error(`"${text}" is not host:port`);
  let hostname = text.slice(0, colon);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  const portText = text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new Error(`"${text}" has a bad port`);
  return { hostname, port: Number(portText) };
}

function checkTransport(key: string, v: string): UpstreamTransport {
  const t = v.trim() as UpstreamTransport;
  if (!TRANSPORTS.includes(t)) throw new ConfigError(key, `"${v}" is not one of ${TRANSPORTS.join(", ")}`);
  return t;
}

/** More threads than this is a typo, not a machine (each worker holds its own pools and caches). */
const MAX_WORKERS = 1024;

/** `auto` (any case, trimmed) or a decimal count >= 1. From the environment the message names the setting as well
 * as the variable (AI_WORKERS: … the workers setting …), so either is found in it. */
function checkWorkers(key: string, v: string): number | "auto" {
  const t = v.trim();
  if (t.toLowerCase() === "auto") return "auto";
  const what = key === "workers" ? "" : " (the workers setting)";
  if (!/^\d+$/.test(t)) throw new ConfigError(key, `must be "auto" or an integer >= 1${what}, got "${v}"`);
  const n = Number(t);
  if (n < 1) throw new ConfigError(key, `must be "auto" or an integer >= 1${what}, got "${v}"`);
  return checkWorkerCount(key, n);
}

function checkWorkerCount(key: string, n: number): number {
  if (n > MAX_WORKERS) throw new ConfigError(key, `${n} is more than ${MAX_WORKERS} worker threads`);
  return n;
}

function checkListen(key: string, v: string): void {
  try {
    parseListen(v);
  } catch (e) {
    throw new ConfigError(key, (e as Error).message);
  }
}

/** A config value as a ConfigError message shows it (shared by the table parsers, e.g. [auto]). */
export function describe(v: unknown): string {
  if (typeof v === "string") return `the string "${v}"`;
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date";
  return typeof v === "object" ? "a table" : `${typeof v} ${String(v)}`;
}

/** The effective config as plain data with every secret redacted (check-config, startup log). */
export function redactedConfig(cfg: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key] of SCALARS) {
    const v = cfg[key];
    out[key] = v instanceof Secret ? "***" : key === "nats_url" ? redactNatsUrl(v as string) : (v ?? null);
  }
  out.provider_authorities = cfg.provider_authorities;
  out.provider_dialects = cfg.provider_dialects;
  out.provider_auth_schemes = cfg.provider_auth_schemes;
  // One "***" per key, in order: how many keys each provider has (and so its key ids), never what they are.
  out.pool_keys = Object.fromEntries(Object.entries(cfg.pool_keys).map(([k, keys]) => [k, keys.map(() => "***")]));
  out.key_pool = { ...cfg.key_pool };
  out.retry = { ...cfg.retry };
  out.provider_base_paths = cfg.provider_base_paths;
  out.models = Object.fromEntries(
    Object.entries(cfg.models).map(([alias, m]) => [
      alias,
      { targets: m.targets.map((t) => `${t.provider}/${t.model}`), strategy: m.strategy, ...(m.weights === undefined ? {} : { weights: m.weights }), dialect: m.dialect, retry: { ...m.retry } },
    ]),
  );
  out.prices = Object.fromEntries(cfg.prices);
  out.auto = redactedAuto(cfg.auto);
  out.signing_keys = Object.fromEntries([...cfg.signing_keys.entries()].map(([kid, pk]) => [String(kid), Buffer.from(pk).toString("base64")]));
  return out;
}
