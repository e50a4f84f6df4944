// Config for `auto` (SPEC §13): `[auto]` tiers, mode, boundaries, round_up_margin and `[auto.external]`. Every bad
// value is a ConfigError naming the key (the CLI turns it into exit 2, as test/e2e-config.test.ts pins for the
// other tables).
import { describe, expect, test } from "bun:test";
import { ConfigError, KNOWN_KEYS, loadConfig, redactedConfig, type Config } from "../src/ops/config.ts";
import { autoTierInfo, DEFAULT_BOUNDARIES, SCORE_ONE, tierIndexOf } from "../src/routing/auto-config.ts";

const POOL = '[pool_keys]\ngroq = "sk-g"\nopenai = "sk-o"\nanthropic = "sk-a"\n';
const MODELS = '[models.cheap]\ntargets = ["groq/llama-3.1-8b-instant", "openai/gpt-4.1-nano"]\n';
const TIERS4 = 'tiers = { simple = "cheap", medium = "openai/gpt-4.1-mini", complex = "anthropic/claude-sonnet-5", reasoning = "anthropic/claude-opus-4-5" }\n';

const load = (fileText: string, env: Record<string, string> = {}): Config => loadConfig({ configPath: "/virtual/config.toml", fileText, env });

function configError(fileText: string): ConfigError {
  try {
    load(fileText);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError, but the config loaded");
}

describe("[auto]: accepted forms", () => {
  test("no [auto]: auto is undefined (model auto is not served)", () => {
    expect(load(POOL).auto).toBeUndefined();
  });

  test("four tiers (an alias and provider/model targets); defaults: enforce, the tuned boundaries, margin 0.03, no external", () => {
    const a = load(`${POOL}${MODELS}[auto]\n${TIERS4}`).auto;
    expect(a?.tiers).toEqual({ simple: "cheap", medium: "openai/gpt-4.1-mini", complex: "anthropic/claude-sonnet-5", reasoning: "anthropic/claude-opus-4-5" });
    expect(a?.resolved).toEqual(["cheap", "openai/gpt-4.1-mini", "anthropic/claude-sonnet-5", "anthropic/claude-opus-4-5"]);
    expect(a?.mode).toBe("enforce");
    expect(a?.boundaries).toEqual([...DEFAULT_BOUNDARIES]);
    expect(a?.boundariesFixed).toEqual([1500, 3500, 7500]);
    expect(a?.round_up_margin).toBe(0.03);
    expect(a?.external).toBeUndefined();
  });

  test("boundaries and the margin are converted to integers on the classifier's scale at load", () => {
    const a = load(`${POOL}[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.1, 0.25, 0.7]\nround_up_margin = 0.02\n`).auto;
    expect(SCORE_ONE).toBe(10000);
    expect(a?.boundariesFixed).toEqual([1000, 2500, 7000]);
    expect(a?.marginFixed).toBe(200);
    for (const b of a?.boundariesFixed ?? []) expect(Number.isInteger(b)).toBe(true);
    // Integers and the ends of the range are numbers in [0, 1]; a zero margin is allowed (no rounding up).
    const b = load(`${POOL}[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0, 0.5, 1]\nround_up_margin = 0\n`).auto;
    expect(b?.boundariesFixed).toEqual([0, 5000, 10000]);
    expect(b?.marginFixed).toBe(0);
  });

  test("a missing tier uses the next one up; the top ones, with nothing above, use the nearest below", () => {
    const a = load(`${POOL}[auto]\ntiers = { medium = "openai/m", complex = "anthropic/c" }\n`).auto;
    expect(a?.tiers).toEqual({ simple: undefined, medium: "openai/m", complex: "anthropic/c", reasoning: undefined });
    expect(a?.resolved).toEqual(["openai/m", "openai/m", "anthropic/c", "anthropic/c"]);
    const one = load(`${POOL}[auto]\ntiers = { simple = "groq/s" }\n`).auto;
    expect(one?.resolved).toEqual(["groq/s", "groq/s", "groq/s", "groq/s"]);
    const gap = load(`${POOL}[auto]\ntiers = { simple = "groq/s", reasoning = "openai/r" }\n`).auto;
    expect(gap?.resolved).toEqual(["groq/s", "openai/r", "openai/r", "openai/r"]);
  });

  test('mode = "shadow" and [auto.external] with its default timeout, or a given one', () => {
    const a = load(`${POOL}[auto]\ntiers = { medium = "openai/m" }\nmode = "shadow"\n[auto.external]\nurl = "http://127.0.0.1:7070/classify"\n`).auto;
    expect(a?.mode).toBe("shadow");
    expect(a?.external).toEqual({ url: "http://127.0.0.1:7070/classify", timeout_ms: 50 });
    const b = load(`${POOL}[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "https://classifier.internal/v1"\ntimeout_ms = 120\n`).auto;
    expect(b?.external).toEqual({ url: "https://classifier.internal/v1", timeout_ms: 120 });
  });

  test("auto is a known top-level key, shown by check-config with its resolved tiers", () => {
    expect(KNOWN_KEYS).toContain("auto");
    const cfg = load(`${POOL}[auto]\ntiers = { medium = "openai/m" }\nmode = "shadow"\n[auto.external]\nurl = "http://127.0.0.1:7070/"\n`);
    expect((redactedConfig(cfg) as Record<string, unknown>).auto).toEqual({
      tiers: { simple: undefined, medium: "openai/m", complex: undefined, reasoning: undefined },
      resolved: { simple: "openai/m", medium: "openai/m", complex: "openai/m", reasoning: "openai/m" },
      mode: "shadow",
      boundaries: [0.15, 0.35, 0.75],
      round_up_margin: 0.03,
      external: { url: "http://127.0.0.1:7070/", timeout_ms: 50 },
    });
    expect(JSON.stringify(redactedConfig(cfg))).not.toContain("sk-o");
    expect((redactedConfig(load(POOL)) as Record<string, unknown>).auto).toBeNull();
  });
});

describe("[auto]: tier capabilities from [prices]", () => {
  test("a provider/model tier takes its price's vision and context_window; unpriced: no vision, unknown window", () => {
    const cfg = load(
      `${POOL}[auto]\ntiers = { simple = "groq/s", medium = "openai/m" }\n[prices."openai/m"]\ninput = 1\noutput = 1\nvision = true\ncontext_window = 128000\n`,
    );
    const info = autoTierInfo(cfg.auto!, cfg.models, cfg.prices);
    expect(info[0]).toEqual({ vision: false, contextWindow: undefined });
    expect(info[1]).toEqual({ vision: true, contextWindow: 128000 });
    expect(info[3]).toEqual({ vision: true, contextWindow: 128000 });
  });

  test("an alias tier has vision only when every target has it, and the smallest declared window", () => {
    const prices = '[prices."groq/llama-3.1-8b-instant"]\ninput = 0.05\noutput = 0.08\ncontext_window = 131072\n[prices."openai/gpt-4.1-nano"]\ninput = 0.1\noutput = 0.4\nvision = true\ncontext_window = 1047576\n';
    const cfg = load(`${POOL}${MODELS}[auto]\n${TIERS4}${prices}`);
    const info = autoTierInfo(cfg.auto!, cfg.models, cfg.prices);
    expect(info[0]).toEqual({ vision: false, contextWindow: 131072 });
  });
});

describe("[auto]: boot failures name the key", () => {
  const cases: Array<[string, string, string, string]> = [
    ["[auto] that is not a table", 'auto = "on"\n', "auto", "must be a table"],
    ["an unknown key", '[auto]\ntiers = { medium = "openai/m" }\nclassifier = "hybrid"\n', "auto.classifier", "unknown key in [auto]"],
    ["no tiers", '[auto]\nmode = "shadow"\n', "auto.tiers", "missing"],
    ["tiers that are not a table", '[auto]\ntiers = ["openai/m"]\n', "auto.tiers", "must be a table"],
    ["an empty tiers table", "[auto]\ntiers = {}\n", "auto.tiers", "empty"],
    ["an unknown tier", '[auto]\ntiers = { cheap = "openai/m" }\n', "auto.tiers.cheap", "unknown tier"],
    ["a tier that is not a string", "[auto]\ntiers = { simple = 3 }\n", "auto.tiers.simple", "must be an alias"],
    ["a tier naming an unknown alias", '[auto]\ntiers = { simple = "nosuch" }\n', "auto.tiers.simple", '"nosuch" is not an alias of [models]'],
    ["a tier naming an unknown provider", '[auto]\ntiers = { medium = "nosuch/m" }\n', "auto.tiers.medium", 'unknown provider "nosuch"'],
    ["a tier with an empty model", '[auto]\ntiers = { complex = "openai/" }\n', "auto.tiers.complex", "empty model"],
    ["a tier with an empty provider", '[auto]\ntiers = { complex = "/m" }\n', "auto.tiers.complex", "empty provider"],
    ["an empty tier", '[auto]\ntiers = { reasoning = "" }\n', "auto.tiers.reasoning", "empty"],
    ["a tier whose provider has no pool key", '[auto]\ntiers = { reasoning = "mistral/large" }\n', "auto.tiers.reasoning", "provider mistral has no pool key"],
    ["a tier named auto (reserved, never an alias)", '[auto]\ntiers = { simple = "auto" }\n', "auto.tiers.simple", "not an alias"],
    ["a tier model with a control character", '[auto]\ntiers = { simple = "openai/a\\nb" }\n', "auto.tiers.simple", "control character"],
    ["a mode not one of the two", '[auto]\ntiers = { medium = "openai/m" }\nmode = "observe"\n', "auto.mode", '"observe" is not one of enforce, shadow'],
    ["a mode that is not a string", '[auto]\ntiers = { medium = "openai/m" }\nmode = true\n', "auto.mode", "is not one of enforce, shadow"],
    ["boundaries not increasing", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.3, 0.2, 0.6]\n', "auto.boundaries", "strictly increasing"],
    ["boundaries with a repeat", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.2, 0.2, 0.6]\n', "auto.boundaries", "strictly increasing"],
    ["boundaries closer than the classifier's step", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.2, 0.20001, 0.6]\n', "auto.boundaries", "differ by at least"],
    ["a boundary above 1", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.2, 0.5, 1.5]\n', "auto.boundaries", "element 2 must be a number in [0, 1]"],
    ["a negative boundary", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [-0.1, 0.5, 0.9]\n', "auto.boundaries", "element 0 must be a number in [0, 1]"],
    ["a boundary that is nan", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.1, nan, 0.9]\n', "auto.boundaries", "element 1 must be a number in [0, 1]"],
    ["a boundary that is a string", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.1, "0.5", 0.9]\n', "auto.boundaries", "element 1"],
    ["two boundaries", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = [0.1, 0.5]\n', "auto.boundaries", "three numbers"],
    ["boundaries as a number", '[auto]\ntiers = { medium = "openai/m" }\nboundaries = 0.5\n', "auto.boundaries", "three numbers"],
    ["a margin of 0.5", '[auto]\ntiers = { medium = "openai/m" }\nround_up_margin = 0.5\n', "auto.round_up_margin", "in [0, 0.5)"],
    ["a negative margin", '[auto]\ntiers = { medium = "openai/m" }\nround_up_margin = -0.01\n', "auto.round_up_margin", "in [0, 0.5)"],
    ["a margin as a string", '[auto]\ntiers = { medium = "openai/m" }\nround_up_margin = "0.03"\n', "auto.round_up_margin", "in [0, 0.5)"],
    ["[auto.external] that is not a table", '[auto]\ntiers = { medium = "openai/m" }\nexternal = "http://x"\n', "auto.external", "must be a table"],
    ["[auto.external] without url", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\ntimeout_ms = 50\n', "auto.external.url", "missing"],
    ["an external url that is not a URL", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "localhost:7070"\n', "auto.external.url", "http:// or https://"],
    ["an external url of another scheme", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "unix:///run/c.sock"\n', "auto.external.url", "http:// or https://"],
    ["an external url with credentials", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "http://u:secretpw@127.0.0.1/"\n', "auto.external.url", "must not hold credentials"],
    ["an external url that is a number", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = 7070\n', "auto.external.url", "must be an http"],
    ["a timeout of 0", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "http://127.0.0.1/"\ntimeout_ms = 0\n', "auto.external.timeout_ms", "integer in [1, 10000]"],
    ["a fractional timeout", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "http://127.0.0.1/"\ntimeout_ms = 2.5\n', "auto.external.timeout_ms", "integer in [1, 10000]"],
    ["a timeout past 10 s", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "http://127.0.0.1/"\ntimeout_ms = 50000\n', "auto.external.timeout_ms", "integer in [1, 10000]"],
    ["an unknown key in [auto.external]", '[auto]\ntiers = { medium = "openai/m" }\n[auto.external]\nurl = "http://127.0.0.1/"\nbreaker = true\n', "auto.external.breaker", "unknown key"],
  ];
  test.each(cases)("%s", (_what, toml, key, why) => {
    const e = configError(toml.startsWith("[") ? `${POOL}${toml}` : `${toml}${POOL}`);
    expect(e.key).toBe(key);
    expect(e.message).toContain(why);
    expect(e.message).not.toContain("sk-");
    expect(e.message).not.toContain("secretpw");
  });
});

describe("tier names (x-beyond-tier, the external classifier's answer)", () => {
  test("the four tiers map to their index; anything else is undefined", () => {
    expect(["simple", "medium", "complex", " reasoning "].map(tierIndexOf)).toEqual([0, 1, 2, 3]);
    for (const bad of ["", "Simple", "auto", "large", "medium,complex", 2, null, undefined, { tier: "simple" }]) expect(tierIndexOf(bad)).toBeUndefined();
  });
});
