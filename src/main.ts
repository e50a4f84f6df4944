#!/usr/bin/env bun
// Entry point and CLI (SPEC §1): serve (default), keygen, mint, check-config, --version, --help.

import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { ConfigError, loadConfig, redactedConfig } from "./config.ts";
import { runDoctor } from "./doctor.ts";
import { b64urlEncode, keygen, mint, parseKid, parseSeed, parseU64 } from "./keys.ts";
import { log } from "./log.ts";
import { startGateway, VERSION } from "./server.ts";

const HELP = `beyond-ai ${VERSION}: LLM egress gateway

Usage:
  beyond-ai [serve] [--config PATH]      run the gateway (config: --config, $AI_CONFIG_PATH, ./config.toml, or built-in defaults)
  beyond-ai keygen [--kid N] [--out F]   new Ed25519 signing key pair: prints the [signing_keys] line; the private key
                                         (base64url of the 32-byte seed) goes to F (mode 0600), or to stdout without --out
  beyond-ai mint --kid N --key-file F --tenant T --vpc V
                                         print a bai_v1 managed key (deterministic: same inputs, same key)
  beyond-ai check-config [--config PATH] validate and print the effective config, secrets redacted (exit 0 ok, 1 bad)
  beyond-ai doctor [--config PATH]       check NATS, signing keys, pool keys and provider DNS (exit 0 all ok, 1 otherwise)
  beyond-ai --version | --help
`;

interface Args {
  command: string;
  flags: Map<string, string>;
}

const FLAG_ALIASES: Record<string, string> = { "-c": "--config" };
const BOOLEAN_FLAGS = new Set(["--version", "--help", "-h", "-V"]);

function parseArgs(argv: string[]): Args {
  const flags = new Map<string, string>();
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i] as string;
    a = FLAG_ALIASES[a] ?? a;
    if (a.startsWith("-")) {
      const eq = a.indexOf("=");
      if (eq > 0) {
        flags.set(a.slice(0, eq), a.slice(eq + 1));
      } else if (BOOLEAN_FLAGS.has(a)) {
        flags.set(a, "true");
      } else {
        const v = argv[i + 1];
        if (v === undefined) usage(`${a} needs a value`);
        flags.set(a, v);
        i++;
      }
    } else if (command === undefined) {
      command = a;
    } else {
      usage(`unexpected argument "${a}"`);
    }
  }
  return { command: command ?? "serve", flags };
}

function usage(msg: string): never {
  process.stderr.write(`beyond-ai: ${msg}\n\n${HELP}`);
  process.exit(2);
}

function need(flags: Map<string, string>, name: string): string {
  const v = flags.get(name);
  if (v === undefined) usage(`${name} is required`);
  return v;
}

/** Parse one required flag; a bad value exits 2 with a message naming the flag (never echoing file contents). */
function flagValue<T>(flags: Map<string, string>, name: string, parse: (v: string) => T): T {
  const raw = need(flags, name);
  try {
    return parse(raw);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? `file not found: ${raw}` : (e as Error).message;
    process.stderr.write(`beyond-ai: ${name}: ${why}\n`);
    process.exit(2);
  }
}

function configFailure(e: unknown, exitCode: number): never {
  if (e instanceof ConfigError) {
    process.stderr.write(`beyond-ai: config error: ${e.message}\n`);
    process.exit(exitCode);
  }
  throw e;
}

async function main(): Promise<void> {
  const { command, flags } = parseArgs(process.argv.slice(2));
  if (flags.has("--version") || flags.has("-V")) {
    process.stdout.write(`beyond-ai ${VERSION}\n`);
    return;
  }
  if (flags.has("--help") || flags.has("-h") || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  switch (command) {
    case "serve":
      return serve(flags);
    case "keygen": {
      const kid = parseKid(flags.get("--kid") ?? "1");
      const { seed, publicKey } = keygen();
      const out = flags.get("--out");
      process.stdout.write(`# add under [signing_keys] in config.toml (or set AI_SIGNING_KEY_${kid})\n${kid} = "${Buffer.from(publicKey).toString("base64")}"\n`);
      if (out !== undefined) {
        writeFileSync(out, `${b64urlEncode(seed)}\n`, { mode: 0o600 });
        chmodSync(out, 0o600);
        process.stderr.write(`private key written to ${out} (keep it secret; it mints keys)\n`);
      } else {
        process.stdout.write(`# private key (base64url of the 32-byte seed): store it in a file for mint --key-file, keep it secret\n${b64urlEncode(seed)}\n`);
      }
      return;
    }
    case "mint": {
      const kid = flagValue(flags, "--kid", parseKid);
      const seed = flagValue(flags, "--key-file", (f) => parseSeed(readFileSync(f, "utf8")));
      const tenant = flagValue(flags, "--tenant", parseU64);
      const vpc = flagValue(flags, "--vpc", parseU64);
      process.stdout.write(`${mint(kid, seed, tenant, vpc)}\n`);
      return;
    }
    case "check-config": {
      try {
        const cfg = loadConfig({ configPath: flags.get("--config") });
        for (const w of cfg.warnings) process.stderr.write(`beyond-ai: warning: ${w}\n`);
        process.stdout.write(`${JSON.stringify({ source: cfg.source, config: redactedConfig(cfg) }, null, 2)}\n`);
      } catch (e) {
        configFailure(e, 1);
      }
      return;
    }
    case "doctor": {
      let cfg;
      try {
        cfg = loadConfig({ configPath: flags.get("--config") });
      } catch (e) {
        configFailure(e, 1);
      }
      const r = await runDoctor(cfg);
      process.stdout.write(`${r.lines.join("\n")}\n`);
      process.exit(r.ok ? 0 : 1);
    }
    default:
      usage(`unknown command "${command}"`);
  }
}

async function serve(flags: Map<string, string>): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig({ configPath: flags.get("--config") });
  } catch (e) {
    configFailure(e, 2);
  }
  let running;
  try {
    running = await startGateway(cfg);
  } catch (e) {
    // Typically a port already in use: say which and exit non-zero rather than a stack trace.
    process.stderr.write(`beyond-ai: cannot start: ${(e as Error).message}\n`);
    process.exit(1);
  }
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log.gateway("warn", "second signal: exiting now", { signal: sig });
      void log.flush().finally(() => process.exit(0));
      return;
    }
    void running.shutdown(sig).then(() => process.exit(0));
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
}

await main();
