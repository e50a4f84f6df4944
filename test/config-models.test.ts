// Config for virtual models (SPEC §11): `[models.<alias>]`, `[provider_base_paths]` and `[prices."provider/model"]`.
// Every bad value is a ConfigError naming the key (the CLI turns it into exit 2; test/e2e-config.test.ts pins that
// through the process).
import { describe, expect, test } from "bun:test";
import { ConfigError, KNOWN_KEYS, loadConfig, redactedConfig, RETRY_DEFAULTS, type Config } from "../src/ops/config.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildProviders } from "../src/server.ts";
import { REPO_ROOT } from "./helpers/gateway.ts";

/** Pool keys for the providers the tests route to (a virtual model's providers need one). */
const POOL = '[pool_keys]\ngroq = "sk-g"\ncerebras = "sk-c"\nopenai = "sk-o"\nanthropic = "sk-a"\ntogether = "sk-t"\n';

const load = (fileText: string, env: Record<string, string> = {}): Config => loadConfig({ configPath: "/virtual/config.toml", fileText, env });

function configError(fileText: string, env: Record<string, string> = {}): ConfigError {
  try {
    load(fileText, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError, but the config loaded");
}

describe("[models.<alias>]: accepted forms", () => {
  test("targets split at the first /, strategy defaults to fallback, retry to the global [retry]", () => {
    const cfg = load(`${POOL}[models.smart]\ntargets = ["together/meta-llama/Llama-3.3-70B", "groq/llama-3.3-70b-versatile"]\n`);
    const m = cfg.models["smart"];
    expect(m?.targets).toEqual([
      { provider: "together", model: "meta-llama/Llama-3.3-70B" },
      { provider: "groq", model: "llama-3.3-70b-versatile" },
    ]);
    expect(m?.strategy).toBe("fallback");
    expect(m?.weights).toBeUndefined();
    expect(m?.dialect).toBe("openai");
    expect(m?.retry).toEqual(RETRY_DEFAULTS);
  });

  test("no [models] at all: no aliases", () => {
    expect(load(POOL).models).toEqual({});
  });

  test("each strategy is accepted; weighted keeps its weights (TOML integers and decimals)", () => {
    for (const s of ["fallback", "round_robin", "latency", "cost"]) {
      expect(load(`${POOL}[models.m]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "${s}"\n`).models["m"]?.strategy).toBe(s as never);
    }
    const w = load(`${POOL}[models.m]\ntargets = ["groq/a", "cerebras/b", "openai/c"]\nstrategy = "weighted"\nweights = [3, 0.5, 0]\n`).models["m"];
    expect(w?.weights).toEqual([3, 0.5, 0]);
  });

  test("[models.<alias>.retry] overrides only the keys it names, over the global [retry] with its env overrides", () => {
    const cfg = load(`${POOL}[retry]\ninitial_backoff_ms = 300\n[models.smart]\ntargets = ["groq/a"]\n[models.smart.retry]\nmax_attempts = 1\njitter = "none"\n`, {
      AI_RETRY__DEADLINE_MS: "12000",
    });
    expect(cfg.models["smart"]?.retry).toEqual({ ...RETRY_DEFAULTS, initial_backoff_ms: 300, deadline_ms: 12000, max_attempts: 1, jitter: "none" });
    // The global [retry] is not changed by an alias's override.
    expect(cfg.retry.max_attempts).toBe(4);
  });

  test("an alias's dialect is its first target's: an anthropic alias of anthropic targets loads", () => {
    const cfg = load(`${POOL}[models.claude-best]\ntargets = ["anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"]\n`);
    expect(cfg.models["claude-best"]?.dialect).toBe("anthropic");
  });

  test("targets of both dialects load (dialect translation); the alias's own dialect is still its first target's", () => {
    const a = load(`${POOL}[models.smart]\ntargets = ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"]\n`);
    expect(a.models["smart"]?.targets.map((t) => t.provider)).toEqual(["openai", "anthropic"]);
    expect(a.models["smart"]?.dialect).toBe("openai");
    const b = load(`${POOL}[models.smart]\ntargets = ["anthropic/claude-sonnet-4-5", "groq/a"]\n`);
    expect(b.models["smart"]?.dialect).toBe("anthropic");
  });

  test("max_translate_bytes defaults to 16 MiB and translate_default_max_tokens to 4096; both take file and env values", () => {
    const d = load(POOL);
    expect(d.max_translate_bytes).toBe(16777216);
    expect(d.translate_default_max_tokens).toBe(4096);
    const f = load(`max_translate_bytes = 4096\ntranslate_default_max_tokens = 512\n${POOL}`, { AI_TRANSLATE_DEFAULT_MAX_TOKENS: "1024" });
    expect(f.max_translate_bytes).toBe(4096);
    expect(f.translate_default_max_tokens).toBe(1024);
    expect(configError(`max_translate_bytes = 0\n${POOL}`).key).toBe("max_translate_bytes");
  });

  test("a provider added under [provider_authorities] can be a target, with its dialect from [provider_dialects]", () => {
    const cfg = load(`${POOL}azure-east = "sk-az"\n[provider_authorities]\nazure-east = "my.openai.azure.com:443"\n[provider_dialects]\nazure-east = "openai"\n[models.m]\ntargets = ["azure-east/gpt-4o", "openai/gpt-4o"]\n`);
    expect(cfg.models["m"]?.targets[0]).toEqual({ provider: "azure-east", model: "gpt-4o" });
  });

  test("the pool key may come from the environment", () => {
    const cfg = load('[models.m]\ntargets = ["groq/a"]\n', { AI_POOL_KEY_GROQ: "sk-env" });
    expect(cfg.models["m"]?.targets).toEqual([{ provider: "groq", model: "a" }]);
  });
});

describe("[models.<alias>]: boot failures name the key", () => {
  const cases: Array<[string, string, string, string]> = [
    ["an unknown provider", '[models.smart]\ntargets = ["groq/a", "nosuch/b"]\n', "models.smart.targets[1]", 'unknown provider "nosuch"'],
    ["a target without /", '[models.smart]\ntargets = ["gpt-4o"]\n', "models.smart.targets[0]", 'has no "/"'],
    ["an empty model", '[models.smart]\ntargets = ["groq/"]\n', "models.smart.targets[0]", "empty model"],
    ["an empty provider", '[models.smart]\ntargets = ["/gpt-4o"]\n', "models.smart.targets[0]", "empty provider"],
    ["a target that is not a string", "[models.smart]\ntargets = [42]\n", "models.smart.targets[0]", "must be a"],
    ["an empty targets array", "[models.smart]\ntargets = []\n", "models.smart.targets", "an empty array"],
    ["no targets", '[models.smart]\nstrategy = "fallback"\n', "models.smart.targets", "missing"],
    ["targets as a string", '[models.smart]\ntargets = "groq/a"\n', "models.smart.targets", "must be an array"],
    ["the same target twice", '[models.smart]\ntargets = ["groq/a", "cerebras/b", "groq/a"]\n', "models.smart.targets[2]", "the same target as models.smart.targets[0]"],
    ["an alias named like a built-in provider", '[models.groq]\ntargets = ["cerebras/b"]\n', "models.groq", "named like the provider groq"],
    ["an alias named like a provider in another case", '[models.OpenAI]\ntargets = ["cerebras/b"]\n', "models.OpenAI", "named like the provider openai"],
    [
      "an alias named like an added provider",
      '[provider_authorities]\nmyprov = "127.0.0.1:9"\n[models.myprov]\ntargets = ["cerebras/b"]\n',
      "models.myprov",
      "named like the provider myprov",
    ],
    ["an alias that is not a path segment", '[models."a/b"]\ntargets = ["cerebras/b"]\n', "models.a/b", "URL path segment"],
    ["an alias with a space", '[models."my alias"]\ntargets = ["cerebras/b"]\n', "models.my alias", "URL path segment"],
    ["the alias v1 (the drop-in path)", '[models.v1]\ntargets = ["cerebras/b"]\n', "models.v1", "reserved"],
    ["the alias auto", '[models.auto]\ntargets = ["cerebras/b"]\n', "models.auto", "reserved"],
    ["an unknown strategy", '[models.smart]\ntargets = ["groq/a"]\nstrategy = "fastest"\n', "models.smart.strategy", '"fastest" is not one of fallback, round_robin, weighted, latency, cost'],
    ["weights of the wrong length", '[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "weighted"\nweights = [1, 2, 3]\n', "models.smart.weights", "3 weight(s) for 2 target(s)"],
    ["weights without weighted", '[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nweights = [1, 2]\n', "models.smart.weights", 'strategy is "fallback"'],
    ["weighted without weights", '[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "weighted"\n', "models.smart.weights", "missing"],
    ["a negative weight", '[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "weighted"\nweights = [1, -1]\n', "models.smart.weights[1]", "must be a number >= 0"],
    ["a weight that is a string", '[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "weighted"\nweights = [1, "2"]\n', "models.smart.weights[1]", "must be a number >= 0"],
    ["all weights zero", '[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "weighted"\nweights = [0, 0]\n', "models.smart.weights", "every weight is 0"],
    ["an unknown key in the alias", '[models.smart]\ntargets = ["groq/a"]\nfallback_on = ["5xx"]\n', "models.smart.fallback_on", "unknown key in [models.smart]"],
    ["an unknown key in the alias's retry", '[models.smart]\ntargets = ["groq/a"]\n[models.smart.retry]\nmax_retries = 2\n', "models.smart.retry.max_retries", "unknown key"],
    ["a bad value in the alias's retry", '[models.smart]\ntargets = ["groq/a"]\n[models.smart.retry]\nmax_attempts = 0\n', "models.smart.retry.max_attempts", "must be an integer > 0"],
    ["the alias's retry as a string", '[models.smart]\ntargets = ["groq/a"]\nretry = "none"\n', "models.smart.retry", "must be a table"],
    ["an alias that is not a table", 'models.smart = "groq/a"\n', "models.smart", "must be a table"],
    ["[models] that is not a table", 'models = ["groq/a"]\n', "models", "must be a table of aliases"],
    ["a target provider without a pool key", '[models.smart]\ntargets = ["groq/a", "mistral/b"]\n', "models.smart.targets[1]", "provider mistral has no pool key"],
    ["a model with a control character", '[models.smart]\ntargets = ["groq/a\\nb"]\n', "models.smart.targets[0]", "control character"],
    ["a model longer than 256 bytes", `[models.smart]\ntargets = ["groq/${"x".repeat(257)}"]\n`, "models.smart.targets[0]", "at most 256"],
  ];
  test.each(cases)("%s", (_what, toml, key, why) => {
    // Top-level dotted keys (models = …, models.x = …) must come before the first [table] header.
    const e = configError(toml.startsWith("[") ? `${POOL}${toml}` : `${toml}${POOL}`);
    expect(e.key).toBe(key);
    expect(e.message).toContain(why);
    expect(e.message).not.toContain("sk-");
  });
});

describe("[provider_base_paths]", () => {
  test("every built-in provider has the base path of its docs", () => {
    const paths = Object.fromEntries(buildProviders(load("")).map((p) => [p.name, p.basePath]));
    expect(paths).toEqual({
      openai: "/v1",
      anthropic: "/v1",
      openrouter: "/api/v1",
      fireworks: "/inference/v1",
      groq: "/openai/v1",
      deepseek: "/v1",
      together: "/v1",
      cerebras: "/v1",
      mistral: "/v1",
      xai: "/v1",
    });
  });

  test("an entry overrides a built-in's path or sets an added provider's; an added provider defaults to /v1", () => {
    const cfg = load('[provider_authorities]\nazure-east = "my.openai.azure.com:443"\nlocal = "127.0.0.1:9000"\n[provider_base_paths]\ngroq = "/openai/v2"\nazure-east = "/openai/deployments/gpt4o"\n');
    const paths = Object.fromEntries(buildProviders(cfg).map((p) => [p.name, p.basePath]));
    expect(paths["groq"]).toBe("/openai/v2");
    expect(paths["azure-east"]).toBe("/openai/deployments/gpt4o");
    expect(paths["local"]).toBe("/v1");
    expect(paths["openrouter"]).toBe("/api/v1");
  });

  test('"" puts the API at the root (DeepSeek also serves /chat/completions there)', () => {
    const cfg = load('[provider_base_paths]\ndeepseek = ""\n');
    expect(buildProviders(cfg).find((p) => p.name === "deepseek")?.basePath).toBe("");
  });

  test("AI_PROVIDER_BASE_PATHS__<NAME> sets an entry and wins over the file", () => {
    const cfg = load('[provider_base_paths]\ngroq = "/a"\n', { AI_PROVIDER_BASE_PATHS__GROQ: "/b", AI_PROVIDER_BASE_PATHS__XAI: "/v2" });
    expect(cfg.provider_base_paths).toEqual({ groq: "/b", xai: "/v2" });
  });

  const bad: Array<[string, string, string]> = [
    ["relative", "v1", "must start with /"],
    ["a trailing /", "/v1/", "must not end with /"],
    ["the root as /", "/", "must not end with /"],
    ["a query", "/v1?x=1", "must not hold ? or #"],
    ["a fragment", "/v1#x", "must not hold ? or #"],
    ["an empty segment", "/a//b", "empty segment"],
    ["a space", "/v 1", "URL path characters only"],
  ];
  test.each(bad)("a path that is %s fails boot naming provider_base_paths.<name>", (_what, value, why) => {
    const e = configError(`[provider_base_paths]\ngroq = ${JSON.stringify(value)}\n`);
    expect(e.key).toBe("provider_base_paths.groq");
    expect(e.message).toContain(why);
  });

  test("an entry for a provider that does not exist fails boot", () => {
    const e = configError('[provider_base_paths]\nnosuch = "/v1"\n');
    expect(e.key).toBe("provider_base_paths.nosuch");
    expect(e.message).toContain("no such provider");
  });

  test("a value that is not a string fails boot", () => {
    expect(configError("[provider_base_paths]\ngroq = 1\n").key).toBe("provider_base_paths.groq");
  });
});

describe('[prices."provider/model"]', () => {
  test("input and output as given; cache prices default to input; context_window and vision optional", () => {
    const cfg = load('[prices."openai/gpt-4.1-mini"]\ninput = 0.4\noutput = 1.6\ncache_read = 0.1\ncontext_window = 1047576\nvision = true\n[prices."together/meta-llama/Llama-3.3-70B"]\ninput = 0.88\noutput = 0.88\n');
    expect(cfg.prices.get("openai/gpt-4.1-mini")).toEqual({ input: 0.4, output: 1.6, cache_read: 0.1, cache_write: 0.4, context_window: 1047576, vision: true });
    expect(cfg.prices.get("together/meta-llama/Llama-3.3-70B")).toEqual({ input: 0.88, output: 0.88, cache_read: 0.88, cache_write: 0.88, context_window: undefined, vision: false });
  });

  test("integers and zero are prices (a free model is priced at 0)", () => {
    expect(load('[prices."groq/free"]\ninput = 0\noutput = 2\n').prices.get("groq/free")?.output).toBe(2);
  });

  const bad: Array<[string, string, string, string]> = [
    ["a key without /", '[prices.gpt-4o]\ninput = 1\noutput = 1\n', "prices.gpt-4o", '"provider/model"'],
    ["a key with an empty model", '[prices."openai/"]\ninput = 1\noutput = 1\n', "prices.openai/", '"provider/model"'],
    ["an unknown provider", '[prices."nosuch/m"]\ninput = 1\noutput = 1\n', "prices.nosuch/m", 'unknown provider "nosuch"'],
    ["a missing input", '[prices."openai/m"]\noutput = 1\n', "prices.openai/m.input", "missing"],
    ["a missing output", '[prices."openai/m"]\ninput = 1\n', "prices.openai/m.output", "missing"],
    ["a negative price", '[prices."openai/m"]\ninput = -1\noutput = 1\n', "prices.openai/m.input", "must be a number >= 0"],
    ["a price as a string", '[prices."openai/m"]\ninput = "1.0"\noutput = 1\n', "prices.openai/m.input", "must be a number >= 0"],
    ["an infinite price", '[prices."openai/m"]\ninput = inf\noutput = 1\n', "prices.openai/m.input", "must be a number >= 0"],
    ["a zero context window", '[prices."openai/m"]\ninput = 1\noutput = 1\ncontext_window = 0\n', "prices.openai/m.context_window", "integer > 0"],
    ["a fractional context window", '[prices."openai/m"]\ninput = 1\noutput = 1\ncontext_window = 1.5\n', "prices.openai/m.context_window", "integer > 0"],
    ["vision that is not a boolean", '[prices."openai/m"]\ninput = 1\noutput = 1\nvision = "yes"\n', "prices.openai/m.vision", "true or false"],
    ["an unknown key", '[prices."openai/m"]\ninput = 1\noutput = 1\nmax_output = 5\n', "prices.openai/m.max_output", "unknown key"],
    ["an entry that is a number", 'prices = { "openai/m" = 3 }\n', "prices.openai/m", "must be a table"],
  ];
  test.each(bad)("%s fails boot naming the key", (_what, toml, key, why) => {
    const e = configError(toml);
    expect(e.key).toBe(key);
    expect(e.message).toContain(why);
  });
});

describe("check-config and known keys", () => {
  test("models, provider_base_paths and prices are known top-level keys", () => {
    for (const k of ["models", "prices", "provider_base_paths"]) expect(KNOWN_KEYS).toContain(k);
  });

  test("check-config's view shows each alias (targets as written, strategy, weights, merged retry), the base paths and the prices", () => {
    const cfg = load(`${POOL}[provider_base_paths]\ngroq = "/openai/v1"\n[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "weighted"\nweights = [3, 1]\n[models.smart.retry]\nmax_attempts = 2\n[prices."groq/a"]\ninput = 0.5\noutput = 1\n`);
    const out = redactedConfig(cfg) as Record<string, Record<string, unknown>>;
    expect(out["models"]?.["smart"]).toEqual({ targets: ["groq/a", "cerebras/b"], strategy: "weighted", weights: [3, 1], dialect: "openai", retry: { ...RETRY_DEFAULTS, max_attempts: 2 } });
    expect(out["provider_base_paths"]).toEqual({ groq: "/openai/v1" });
    expect(out["prices"]?.["groq/a"]).toEqual({ input: 0.5, output: 1, cache_read: 0.5, cache_write: 0.5, context_window: undefined, vision: false });
    expect(JSON.stringify(out)).not.toContain("sk-g");
  });
});

describe("config.example.toml", () => {
  test("its commented [models], [prices] and [auto] examples load once uncommented (with the pool keys they need)", () => {
    const text = readFileSync(join(REPO_ROOT, "config.example.toml"), "utf8").replace(
      /^# (\[(?:models|prices|auto)[^ ]*\]|(?:targets|strategy|weights|max_attempts|input|output|cache_read|cache_write|context_window|vision|tiers|mode|boundaries|round_up_margin|url|timeout_ms) = )/gm,
      "$1",
    );
    const cfg = load(text, { AI_POOL_KEY_GROQ: "sk-g", AI_POOL_KEY_CEREBRAS: "sk-c", AI_POOL_KEY_OPENAI: "sk-o", AI_POOL_KEY_ANTHROPIC: "sk-a" });
    expect(Object.keys(cfg.models)).toEqual(["smart", "bulk"]);
    expect(cfg.models["bulk"]?.weights).toEqual([3, 1]);
    expect(cfg.models["smart"]?.retry.max_attempts).toBe(2);
    expect([...cfg.prices.keys()]).toEqual([
      "openai/gpt-4.1-mini",
      "anthropic/claude-sonnet-5",
      "anthropic/claude-haiku-4-5",
      "groq/llama-3.3-70b-versatile",
      "openai/gpt-4.1-nano",
      "anthropic/claude-opus-4-5",
    ]);
    // Every tier of the [auto] example is priced (bench/auto-eval.ts computes its cost figures from these prices).
    expect(cfg.auto?.resolved).toEqual(["openai/gpt-4.1-nano", "openai/gpt-4.1-mini", "anthropic/claude-sonnet-5", "anthropic/claude-opus-4-5"]);
    for (const t of cfg.auto?.resolved ?? []) expect(cfg.prices.has(t)).toBe(true);
    expect(cfg.auto?.mode).toBe("enforce");
    expect(cfg.auto?.external).toEqual({ url: "http://127.0.0.1:7070/classify", timeout_ms: 50 });
  });
});
