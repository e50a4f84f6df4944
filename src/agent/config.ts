// The agent CLI's arguments and environment (reference §B.5, §B.9; SPEC §15) as one validated AgentConfig.
// Every problem is a UsageError (exit 2) whose message names the flag or variable; nothing here echoes a key.

import pkg from "../../package.json" with { type: "json" };

export const AGENT_VERSION: string = pkg.version;
export const AGENT_NAME = `beyond-ai-agent/${AGENT_VERSION}`;
export const DEFAULT_MODEL = "claude-opus-4-8";
export const DEFAULT_GATEWAY_URL = "http://ai.internal";
export const DEFAULT_MAX_STEPS = 50;
export const DEFAULT_MAX_TOKENS = 4096;
export const DEFAULT_BASH_TIMEOUT_SECS = 1800;
export const MAX_BASH_TIMEOUT_SECS = 2_147_483;

export const MISSING_KEY_MESSAGE = "no gateway key: pass --key or set AI_AGENT_KEY (a bai_v1… virtual key)";
export const MISSING_DIRECT_KEY_MESSAGE = "no provider key for AI_DIRECT=1: set AI_API_KEY (or ANTHROPIC_API_KEY / OPENAI_API_KEY)";

/** A usage or configuration error: exit 2 with this message. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export type DialectChoice = "auto" | "anthropic" | "openai";
export type Command = "run" | "serve" | "tools" | "version" | "help";

export interface AgentConfig {
  command: Command;
  /** run: the task text, or "-" (read stdin). */
  task?: string;
  model: string;
  /** --model was given (it wins over a session file's model). */
  modelExplicit: boolean;
  dialect: DialectChoice;
  direct: boolean;
  /** Gateway URL (may carry a path prefix), or in direct mode AI_BASE_URL when set. */
  baseUrl?: string;
  key?: string;
  /** Direct mode: per-dialect fallbacks (ANTHROPIC_API_KEY / OPENAI_API_KEY) when AI_API_KEY is unset. */
  directKeys?: { anthropic?: string; openai?: string };
  maxSteps: number;
  maxTokens: number;
  temperature?: number;
  thinking?: number;
  cwd: string;
  allowOutsideWorkspace: boolean;
  tools?: string[];
  excludeTools?: string[];
  noTools: boolean;
  bashTimeoutSecs: number;
  sequentialTools: boolean;
  systemPrompt?: string;
  appendSystemPrompt?: string;
  noContextFiles: boolean;
  sessionFile?: string;
  json: boolean;
  verbose: boolean;
}

const VALUE_FLAGS = new Set([
  "--model",
  "--gateway-url",
  "--key",
  "--dialect",
  "--max-steps",
  "--max-tokens",
  "--temperature",
  "--thinking",
  "--cwd",
  "--tools",
  "--exclude-tools",
  "--bash-timeout",
  "--system-prompt",
  "--append-system-prompt",
  "--session-file",
]);
const BOOL_FLAGS = new Set(["--allow-outside-workspace", "--no-tools", "--sequential-tools", "--no-context-files", "--json", "--verbose", "--help", "-h", "--version", "-V"]);
/** Flags only some commands take (all others apply to run and serve; `tools` takes the tool and workspace flags). */
const ONLY: Readonly<Record<string, readonly Command[]>> = {
  "--json": ["run"],
};
const TOOLS_FLAGS = new Set(["--cwd", "--allow-outside-workspace", "--tools", "--exclude-tools", "--no-tools", "--bash-timeout"]);

export const USAGE = `beyond-ai-agent ${AGENT_VERSION}: a coding agent whose every model call goes through the beyond-ai gateway

Usage:
  beyond-ai-agent run [flags] "<task>" | -     run one task ('-' reads it from stdin)
  beyond-ai-agent serve [flags]                 drive the agent over stdio (one JSON object per line)
  beyond-ai-agent tools [flags]                 print the tool definitions (JSON, sorted by name)
  beyond-ai-agent --version | --help

Flags:
  --model ID                 model (env AI_AGENT_MODEL; default ${DEFAULT_MODEL})
  --gateway-url URL          gateway base URL, may carry a provider path prefix (env AI_GATEWAY_URL; default ${DEFAULT_GATEWAY_URL})
  --key KEY                  the bai_v1 managed key (env AI_AGENT_KEY, preferred: a flag is visible to
                             other processes in ps; required unless AI_DIRECT=1)
  --dialect auto|anthropic|openai
                             wire format; auto: a model starting "claude" or containing "anthropic" speaks
                             Anthropic Messages, anything else OpenAI Chat Completions (default auto)
  --max-steps N              model turns per prompt, 0 = unbounded (default ${DEFAULT_MAX_STEPS})
  --max-tokens N             output tokens per turn (default ${DEFAULT_MAX_TOKENS})
  --temperature X            sampling temperature
  --thinking N               extended-thinking budget in tokens (Anthropic)
  --cwd DIR                  the workspace root (default the current directory)
  --allow-outside-workspace  let file tools reach paths outside the workspace (off by default)
  --tools a,b | --exclude-tools a,b | --no-tools
                             choose the tools (read, write, edit, bash, ls, grep, find)
  --bash-timeout SECS        default bash timeout (default ${DEFAULT_BASH_TIMEOUT_SECS})
  --sequential-tools         run a turn's tool calls one at a time
  --system-prompt TEXT|@FILE replace the base system prompt
  --append-system-prompt T   add text at the end of the system prompt
  --no-context-files         leave out AGENTS.md and CLAUDE.md
  --session-file PATH        JSONL session: serve persists to it; run resumes it and appends
  --json                     run: print every event as a JSON frame, then a result frame
  --verbose                  run: one stderr line per finished tool call

Environment: AI_GATEWAY_URL, AI_AGENT_KEY, AI_AGENT_MODEL; AI_DIRECT=1 talks to the provider itself
(AI_BASE_URL, AI_API_KEY or ANTHROPIC_API_KEY / OPENAI_API_KEY).

File tools are confined to the workspace (symlinks included). bash cannot be confined: it runs in the workspace with
AI_AGENT_KEY and provider keys removed from its environment, in its own process group.

Exit codes: 0 done; 1 model or transport error; 2 usage or config error; 3 max steps reached; 4 refusal;
            130 SIGINT; 143 SIGTERM.
`;

function parseIntFlag(name: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`${name}: expected an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${name}: must be between ${min} and ${max}, got ${raw}`);
  return n;
}

function parseNumberFlag(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name}: expected a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function list(raw: string): string[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v !== "" ? v : undefined;
}

/** Parses argv (after the executable and script) and the environment. Throws UsageError. */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, processCwd: string): AgentConfig {
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  let afterDashes = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (afterDashes || !arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      afterDashes = true;
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (flags.has(name)) throw new UsageError(`${name} given twice`);
    if (BOOL_FLAGS.has(name)) {
      if (inline !== undefined) throw new UsageError(`${name} takes no value`);
      flags.set(name, "true");
    } else if (VALUE_FLAGS.has(name)) {
      let value = inline;
      if (value === undefined) {
        const next = argv[i + 1];
        // `--model --json` is a forgotten value, not a model named "--json".
        if (next !== undefined && !(next.startsWith("--") && (VALUE_FLAGS.has(next.split("=", 1)[0] as string) || BOOL_FLAGS.has(next)))) {
          value = next;
          i++;
        }
      }
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      flags.set(name, value);
    } else {
      throw new UsageError(`unknown flag ${name}`);
    }
  }

  let command: Command;
  if (flags.has("--version") || flags.has("-V")) command = "version";
  else if (flags.has("--help") || flags.has("-h") || positionals[0] === "help") command = "help";
  else {
    const c = positionals[0];
    if (c === undefined) throw new UsageError("missing command (run, serve or tools)");
    if (c !== "run" && c !== "serve" && c !== "tools") throw new UsageError(`unknown command ${JSON.stringify(c)} (commands: run, serve, tools)`);
    command = c;
  }

  let task: string | undefined;
  if (command === "run") {
    if (positionals.length < 2) throw new UsageError('run: missing the task (beyond-ai-agent run "<task>", or - to read it from stdin)');
    if (positionals.length > 2) throw new UsageError(`run: unexpected argument ${JSON.stringify(positionals[2])} (quote the task as one argument)`);
    task = positionals[1];
  } else if ((command === "serve" || command === "tools") && positionals.length > 1) {
    throw new UsageError(`${command}: unexpected argument ${JSON.stringify(positionals[1])}`);
  }
  if (command === "run" || command === "serve" || command === "tools") {
    for (const name of flags.keys()) {
      const only = ONLY[name];
      if (only !== undefined && !only.includes(command)) throw new UsageError(`${name} only applies to ${only.join(", ")}`);
      if (command === "tools" && !TOOLS_FLAGS.has(name)) throw new UsageError(`${name} does not apply to tools`);
    }
  }

  const dialectRaw = flags.get("--dialect") ?? "auto";
  if (dialectRaw !== "auto" && dialectRaw !== "anthropic" && dialectRaw !== "openai") {
    throw new UsageError(`--dialect: expected auto, anthropic or openai, got ${JSON.stringify(dialectRaw)}`);
  }
  const modelFlag = nonEmpty(flags.get("--model"));
  if (flags.has("--model") && modelFlag === undefined) throw new UsageError("--model needs a value");
  const model = modelFlag ?? nonEmpty(env["AI_AGENT_MODEL"]) ?? DEFAULT_MODEL;
  const direct = env["AI_DIRECT"] === "1" || env["AI_DIRECT"] === "true";

  const cfg: AgentConfig = {
    command,
    task,
    model,
    modelExplicit: modelFlag !== undefined,
    dialect: dialectRaw,
    direct,
    maxSteps: flags.has("--max-steps") ? parseIntFlag("--max-steps", flags.get("--max-steps") as string, 0) : DEFAULT_MAX_STEPS,
    maxTokens: flags.has("--max-tokens") ? parseIntFlag("--max-tokens", flags.get("--max-tokens") as string, 1) : DEFAULT_MAX_TOKENS,
    cwd: flags.get("--cwd") ?? processCwd,
    allowOutsideWorkspace: flags.has("--allow-outside-workspace"),
    noTools: flags.has("--no-tools"),
    bashTimeoutSecs: flags.has("--bash-timeout") ? parseIntFlag("--bash-timeout", flags.get("--bash-timeout") as string, 1, MAX_BASH_TIMEOUT_SECS) : DEFAULT_BASH_TIMEOUT_SECS,
    sequentialTools: flags.has("--sequential-tools"),
    noContextFiles: flags.has("--no-context-files"),
    json: flags.has("--json"),
    verbose: flags.has("--verbose"),
  };
  if (flags.has("--temperature")) cfg.temperature = parseNumberFlag("--temperature", flags.get("--temperature") as string, 0, 2);
  if (flags.has("--thinking")) cfg.thinking = parseIntFlag("--thinking", flags.get("--thinking") as string, 1);
  if (flags.has("--tools")) cfg.tools = list(flags.get("--tools") as string);
  if (flags.has("--exclude-tools")) cfg.excludeTools = list(flags.get("--exclude-tools") as string);
  if (cfg.noTools && (cfg.tools !== undefined || cfg.excludeTools !== undefined)) throw new UsageError("--no-tools cannot be combined with --tools or --exclude-tools");
  if (flags.has("--system-prompt")) cfg.systemPrompt = flags.get("--system-prompt");
  if (flags.has("--append-system-prompt")) cfg.appendSystemPrompt = flags.get("--append-system-prompt");
  if (flags.has("--session-file")) cfg.sessionFile = flags.get("--session-file");

  if (command === "run" || command === "serve") {
    if (direct) {
      cfg.baseUrl = nonEmpty(env["AI_BASE_URL"]);
      cfg.key = nonEmpty(flags.get("--key")) ?? nonEmpty(env["AI_API_KEY"]);
      cfg.directKeys = { anthropic: nonEmpty(env["ANTHROPIC_API_KEY"]), openai: nonEmpty(env["OPENAI_API_KEY"]) };
      if (cfg.key === undefined && cfg.directKeys.anthropic === undefined && cfg.directKeys.openai === undefined) throw new UsageError(MISSING_DIRECT_KEY_MESSAGE);
    } else {
      cfg.baseUrl = nonEmpty(flags.get("--gateway-url")) ?? nonEmpty(env["AI_GATEWAY_URL"]) ?? DEFAULT_GATEWAY_URL;
      cfg.key = nonEmpty(flags.get("--key")) ?? nonEmpty(env["AI_AGENT_KEY"]);
      if (cfg.key === undefined) throw new UsageError(MISSING_KEY_MESSAGE);
    }
    if (cfg.baseUrl !== undefined) {
      let u: URL;
      try {
        u = new URL(cfg.baseUrl);
      } catch {
        throw new UsageError(`${direct ? "AI_BASE_URL" : "--gateway-url / AI_GATEWAY_URL"}: not a URL: ${JSON.stringify(cfg.baseUrl)}`);
      }
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError(`${direct ? "AI_BASE_URL" : "--gateway-url / AI_GATEWAY_URL"}: expected http or https, got ${u.protocol}`);
      // The dialect path is appended: keep a prefix (e.g. /groq/openai) and drop a trailing slash.
      cfg.baseUrl = cfg.baseUrl.replace(/\/+$/, "");
    }
  }
  return cfg;
}
