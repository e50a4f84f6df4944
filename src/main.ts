#!/usr/bin/env bun
// Entry point and CLI: serve (default), keygen, mint, check-config, doctor, --version, --help.
//
// Exit codes: 0 success; 1 a failure at run time (a doctor check failed, the gateway could not start for a
// reason other than its config); 2 the command cannot run as given (usage error, bad config, bad or existing
// key file, a listen address that cannot be bound). The systemd unit's RestartPreventExitStatus=2 relies on 2
// meaning "restarting with the same config will not help".
// Every error is one line on stderr, `beyond-ai: …`, never a stack: main() is wrapped whole (see the end).

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ConfigError, loadConfig, redactedConfig, resolveConfigPath, type Config } from "./ops/config.ts";
import { runDoctor } from "./ops/doctor.ts";
import { formatPrivateKey, keygen, mint, parseKid, parsePrivateKeyFile, parseU64, publicKeyFromSeed } from "./controls/keys.ts";
import { log } from "./ops/log.ts";
import { ListenError, startGateway, VERSION } from "./server.ts";

/** An error the user can act on: printed as one line, exit code as given (2 unless said otherwise). */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

interface CommandSpec {
  usage: string;
  /** Flags that take a value (`--flag V` or `--flag=V`). */
  values: readonly string[];
  /** Flags that take none. */
  bools: readonly string[];
}

// Each command declares its flags; anything else is an error naming the command's usage (a flag that is silently
// ignored, like `serve --port 9000`, makes the user believe it took effect).
const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  serve: { usage: "beyond-ai [serve] [--config PATH]", values: ["--config"], bools: [] },
  keygen: { usage: "beyond-ai keygen [--kid N] [--out FILE [--force]]", values: ["--kid", "--out"], bools: ["--force"] },
  mint: {
    usage: "beyond-ai mint --kid N --key-file FILE --tenant T --vpc V [--config PATH]",
    values: ["--kid", "--key-file", "--tenant", "--vpc", "--config"],
    bools: [],
  },
  "check-config": { usage: "beyond-ai check-config [--config PATH]", values: ["--config"], bools: [] },
  doctor: { usage: "beyond-ai doctor [--config PATH]", values: ["--config"], bools: [] },
  help: { usage: "beyond-ai --help", values: [], bools: [] },
};
const GLOBAL_BOOLS = ["--help", "-h", "--version", "-V"];
const ALIASES: Readonly<Record<string, string>> = { "-c": "--config" };
const ALL_VALUES = new Set(Object.values(COMMANDS).flatMap((c) => c.values));
const ALL_BOOLS = new Set([...GLOBAL_BOOLS, ...Object.values(COMMANDS).flatMap((c) => c.bools)]);

const HELP = `beyond-ai ${VERSION}: LLM egress gateway

Usage:
  ${COMMANDS["serve"]!.usage}
      run the gateway (config: --config, $AI_CONFIG_PATH, ./config.toml, or built-in defaults)
  ${COMMANDS["keygen"]!.usage}
      new Ed25519 signing key pair. The private key goes to FILE (created with mode 0600; an existing FILE is
      refused unless --force), or to stdout without --out; then the [signing_keys] line is printed.
  ${COMMANDS["mint"]!.usage}
      print a bai_v1 managed key (deterministic: same inputs, same key); warns on stderr when the key's public
      half is not [signing_keys] kid N of the config (found as for serve)
  ${COMMANDS["check-config"]!.usage}
      validate and print the effective config, secrets redacted
  ${COMMANDS["doctor"]!.usage}
      check NATS, signing keys, pool keys and provider DNS
  beyond-ai --version | --help

-c is short for --config. Flags may also be written --flag=value.

Exit codes: 0 ok; 1 a doctor check failed, or the gateway failed at run time;
            2 usage error, bad config, bad or existing key file, listen address unavailable.
`;

interface Args {
  command: string;
  spec: CommandSpec;
  flags: Map<string, string>;
}

function parseArgs(argv: readonly string[]): Args {
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  const problems: string[] = [];
  const seen: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = ALIASES[eq > 0 ? arg.slice(0, eq) : arg] ?? (eq > 0 ? arg.slice(0, eq) : arg);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (flags.has(name)) problems.push(`${name} given twice`);
    seen.push(name);
    if (ALL_BOOLS.has(name)) {
      if (inline !== undefined) problems.push(`${name} takes no value`);
      flags.set(name, "true");
    } else if (ALL_VALUES.has(name)) {
      let value = inline;
      if (value === undefined) {
        const next = argv[i + 1];
        // `--out --force` means a forgotten value, not a file named "--force".
        if (next !== undefined && !next.startsWith("--") && ALIASES[next] === undefined && !GLOBAL_BOOLS.includes(next)) {
          value = next;
          i++;
        }
      }
      if (value === undefined) problems.push(`${name} needs a value`);
      else flags.set(name, value);
    } else {
      // Not consumed as taking a value: `serve --port 9000` reports --port, not a stray "9000".
      problems.push(`unknown flag ${name}`);
    }
  }
  const command = positionals[0] ?? "serve";
  const spec = COMMANDS[command];
  if (spec === undefined) {
    throw new CliError(`unknown command ${JSON.stringify(command)} (commands: ${Object.keys(COMMANDS).join(", ")}; see beyond-ai --help)`);
  }
  if (flags.has("--help") || flags.has("-h") || flags.has("--version") || flags.has("-V")) return { command, spec, flags };
  for (const name of seen) {
    if (ALL_VALUES.has(name) || ALL_BOOLS.has(name)) {
      if (!spec.values.includes(name) && !spec.bools.includes(name) && !GLOBAL_BOOLS.includes(name)) problems.push(`unknown flag ${name}`);
    }
  }
  if (positionals.length > 1) problems.push(`unexpected argument ${JSON.stringify(positionals[1])}`);
  if (flags.has("--force") && !flags.has("--out")) problems.push("--force only applies with --out");
  if (problems.length > 0) usage(command, spec, problems[0]!);
  return { command, spec, flags };
}

function usage(command: string, spec: CommandSpec, msg: string): never {
  throw new CliError(`${command}: ${msg} (usage: ${spec.usage})`);
}

/** Parse one required flag; a bad value exits 2 naming the flag (parsers never echo file contents). */
function required<T>(args: Args, name: string, parse: (v: string) => T): T {
  const raw = args.flags.get(name);
  if (raw === undefined) usage(args.command, args.spec, `${name} is required`);
  return parsed(args.command, name, raw, parse);
}

function parsed<T>(command: string, name: string, raw: string, parse: (v: string) => T): T {
  try {
    return parse(raw);
  } catch (e) {
    throw new CliError(`${command}: ${name}: ${describeError(e, raw)}`);
  }
}

/** A file-system error as words with the path, else the error's own message. */
function describeError(e: unknown, path: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return `file not found: ${path}`;
    case "EEXIST":
      return `${path} already exists`;
    case "EACCES":
    case "EPERM":
      return `permission denied: ${path}`;
    case "EISDIR":
      return `${path} is a directory`;
    case "ENOTDIR":
      return `a part of ${path} is not a directory`;
    default:
      return typeof code === "string" ? `${path}: ${code}` : (e as Error).message;
  }
}

function loadOrExit(configPath: string | undefined): Config {
  try {
    return loadConfig({ configPath });
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(`config error: ${e.message}`);
    throw e;
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const { command, flags } = args;
  if (flags.has("--version") || flags.has("-V")) {
    process.stdout.write(`beyond-ai ${VERSION}\n`);
    return 0;
  }
  if (flags.has("--help") || flags.has("-h") || command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  switch (command) {
    case "serve":
      return serve(flags.get("--config"));
    case "keygen":
      return keygenCommand(args);
    case "mint":
      return mintCommand(args);
    case "check-config": {
      const cfg = loadOrExit(flags.get("--config"));
      for (const w of cfg.warnings) process.stderr.write(`beyond-ai: warning: ${w}\n`);
      process.stdout.write(`${JSON.stringify({ source: cfg.source, config: redactedConfig(cfg) }, null, 2)}\n`);
      return 0;
    }
    case "doctor": {
      const cfg = loadOrExit(flags.get("--config"));
      const r = await runDoctor(cfg);
      process.stdout.write(`${r.lines.join("\n")}\n`);
      // Exit now: the checks may leave sockets (NATS) that would keep the process alive.
      process.exit(r.ok ? 0 : 1);
    }
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}`);
  }
}

function keygenCommand(args: Args): number {
  const kid = parsed("keygen", "--kid", args.flags.get("--kid") ?? "1", parseKid);
  const { seed, publicKey } = keygen();
  const out = args.flags.get("--out");
  const signingLine = `# add under [signing_keys] in config.toml (or set AI_SIGNING_KEY_${kid})\n${kid} = "${Buffer.from(publicKey).toString("base64")}"\n`;
  if (out === undefined) {
    process.stdout.write(`${signingLine}# private key: save it as a file (mode 0600) for mint --key-file; keep it secret, it mints keys\n${formatPrivateKey(seed)}`);
    return 0;
  }
  try {
    writePrivateKey(out, formatPrivateKey(seed), args.flags.has("--force"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CliError(`keygen: --out: no such directory: ${dirname(out)}`);
    const hint = code === "EEXIST" ? "; refusing to overwrite a key (--force replaces it)" : "";
    throw new CliError(`keygen: --out: ${describeError(e, out)}${hint}`);
  }
  // Only now, with the private half on disk, is the public half worth pasting anywhere.
  process.stderr.write(`private key written to ${out} (mode 0600; keep it secret, it mints keys)\n`);
  process.stdout.write(signingLine);
  return 0;
}

/**
 * Creates `path` exclusively (O_EXCL, mode 0600 from the start, so the key is never readable by others and never
 * replaces a file by accident) and syncs it before returning. With `force`, an existing file is replaced by a
 * rename of a freshly created sibling, so the result is still 0600 and a crash leaves the old key or the new one.
 */
function writePrivateKey(path: string, content: string, force: boolean): void {
  const target = force ? join(dirname(path), `.${basename(path)}.${process.pid}.tmp`) : path;
  const fd = openSync(target, "wx", 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(target, { force: true });
    throw e;
  }
  closeSync(fd);
  if (force) {
    try {
      renameSync(target, path);
    } catch (e) {
      rmSync(target, { force: true });
      throw e;
    }
  }
}

function mintCommand(args: Args): number {
  const kid = required(args, "--kid", parseKid);
  const keyFile = required(args, "--key-file", (f) => parsePrivateKeyFile(readFileSync(f, "utf8")));
  const tenant = required(args, "--tenant", parseU64);
  const vpc = required(args, "--vpc", parseU64);
  const configured = configSigningKeys(args.flags.get("--config"));
  const { seed } = keyFile;
  const publicKey = publicKeyFromSeed(seed);
  if (configured !== undefined) {
    const { keys, source } = configured;
    // A public key handed over as a bare base64url "seed" (the legacy format cannot tell): the config knows it.
    for (const [k, pk] of keys) {
      if (equalBytes(pk, seed)) throw new CliError(`mint: --key-file: this is the public key of [signing_keys] kid ${k} in ${source}, not a private key`);
    }
    const mine = keys.get(kid);
    if (mine === undefined || !equalBytes(mine, publicKey)) {
      const elsewhere = [...keys].find(([, pk]) => equalBytes(pk, publicKey))?.[0];
      const why =
        elsewhere !== undefined
          ? `its public key is kid ${elsewhere} there, not kid ${kid} (use --kid ${elsewhere})`
          : mine === undefined
            ? `${source} has no [signing_keys] kid ${kid}`
            : `[signing_keys] kid ${kid} in ${source} is a different public key`;
      process.stderr.write(`beyond-ai: warning: a gateway with this config will refuse the minted key (401): ${why}\n`);
    }
  }
  process.stdout.write(`${mint(kid, seed, tenant, vpc)}\n`);
  return 0;
}

/**
 * The signing keys of the config mint can see, found as serve finds it. An explicit --config that does not load is a
 * bad config (exit 2); a config found implicitly ($AI_CONFIG_PATH, ./config.toml) that does not load only costs the
 * check (a warning), since mint itself needs no config. No config anywhere: undefined, nothing to compare with.
 */
function configSigningKeys(explicit: string | undefined): { keys: ReadonlyMap<number, Uint8Array>; source: string } | undefined {
  if (explicit !== undefined) {
    const cfg = loadOrExit(explicit);
    return { keys: cfg.signing_keys, source: cfg.source };
  }
  const path = resolveConfigPath({});
  let cfg: Config;
  try {
    cfg = loadConfig({});
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`beyond-ai: warning: cannot check the key against the config: ${e.message}\n`);
    return undefined;
  }
  // Built-in defaults with no AI_SIGNING_KEY_* either: there is no config to check against.
  if (path === undefined && cfg.signing_keys.size === 0) return undefined;
  return { keys: cfg.signing_keys, source: path ?? "the AI_SIGNING_KEY_* environment" };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function serve(configPath: string | undefined): Promise<number> {
  const cfg = loadOrExit(configPath);
  let running;
  try {
    running = await startGateway(cfg, { configPath });
  } catch (e) {
    if (e instanceof ListenError) throw new CliError(`cannot start: ${e.message}`, 2);
    throw new CliError(`cannot start: ${(e as Error).message}`, 1);
  }
  // One signal drains; a second one exits at once. A repeat of the same signal within a second is not a second
  // request: Ctrl-C under `npm start` reaches the gateway twice (from the terminal, to the whole process group,
  // and forwarded by npm), and must still drain.
  let first: { sig: string; at: number } | undefined;
  const onSignal = (sig: string) => {
    const now = Date.now();
    if (first === undefined) {
      first = { sig, at: now };
      void running.shutdown(sig).then(() => process.exit(0));
      return;
    }
    if (sig === first.sig && now - first.at < 1000) return;
    log.gateway("warn", "second signal: exiting now", { signal: sig });
    void log.flush().finally(() => process.exit(0));
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  return -1; // keep running
}

// The one place errors leave the CLI: a known one as its message, anything else as its message too (a stack, or in
// the compiled binary lines of minified source, helps no user). Exit codes: see the top of this file.
main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`beyond-ai: ${msg.split("\n")[0]}\n`);
    process.exit(e instanceof CliError ? e.exitCode : 1);
  },
);
