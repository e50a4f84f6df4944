// Config for key pools and retries: `[pool_keys]` entries as a string or an array, comma-separated pool key
// variables, and the typed `[key_pool]` / `[retry]` tables with their AI_<TABLE>__<KEY> overrides. Every bad value is a
// ConfigError naming the key (the CLI turns it into exit 2; test/e2e-config.test.ts pins that through the process),
// and no message ever quotes a pool key.
import { describe, expect, test } from "bun:test";
import { ConfigError, envTypoWarnings, KEY_POOL_DEFAULTS, KNOWN_KEYS, loadConfig, redactedConfig, RETRY_DEFAULTS, type Config } from "../src/ops/config.ts";

const load = (fileText: string | undefined, env: Record<string, string> = {}): Config =>
  loadConfig(fileText === undefined ? { env, cwd: "/nonexistent-dir-for-config-tests" } : { configPath: "/virtual/config.toml", fileText, env });

/** The ConfigError loading this throws (fails the test when it loads). */
function configError(fileText: string | undefined, env: Record<string, string> = {}): ConfigError {
  try {
    load(fileText, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError, but the config loaded");
}

const exposed = (cfg: Config, provider: string): string[] => (cfg.pool_keys[provider] ?? []).map((s) => s.expose());

describe("pool keys: accepted forms", () => {
  test("a string entry is one key; an array entry is several keys in the order listed", () => {
    const cfg = load('[pool_keys]\nopenai = ["sk-one", "sk-two", "sk-three"]\nanthropic = "sk-ant-only"\n');
    expect(exposed(cfg, "openai")).toEqual(["sk-one", "sk-two", "sk-three"]);
    expect(exposed(cfg, "anthropic")).toEqual(["sk-ant-only"]);
  });

  test("a one-element array is one key", () => {
    expect(exposed(load('[pool_keys]\nopenai = ["sk-one"]\n'), "openai")).toEqual(["sk-one"]);
  });

  test("AI_POOL_KEY_<NAME> splits on commas, trims around each key and keeps the order", () => {
    const cfg = load(undefined, { AI_POOL_KEY_ANTHROPIC: "sk-ant-1 , sk-ant-2,sk-ant-3\r\n" });
    expect(exposed(cfg, "anthropic")).toEqual(["sk-ant-1", "sk-ant-2", "sk-ant-3"]);
  });

  test("the AI_POOL_KEYS__<NAME> table form splits on commas too", () => {
    expect(exposed(load(undefined, { AI_POOL_KEYS__OPENAI: "sk-a,sk-b" }), "openai")).toEqual(["sk-a", "sk-b"]);
  });

  test("a variable replaces the file's whole list for that provider, and leaves other providers alone", () => {
    const cfg = load('[pool_keys]\nopenai = ["sk-file-1", "sk-file-2", "sk-file-3"]\ngroq = "sk-groq"\n', { AI_POOL_KEY_OPENAI: "sk-env-1" });
    expect(exposed(cfg, "openai")).toEqual(["sk-env-1"]);
    expect(exposed(cfg, "groq")).toEqual(["sk-groq"]);
  });

  test("AI_POOL_KEY_<NAME> wins over AI_POOL_KEYS__<NAME>", () => {
    const cfg = load(undefined, { AI_POOL_KEYS__OPENAI: "sk-table-1,sk-table-2", AI_POOL_KEY_OPENAI: "sk-short-1,sk-short-2" });
    expect(exposed(cfg, "openai")).toEqual(["sk-short-1", "sk-short-2"]);
  });

  test("check-config's view shows one *** per key (the count and order), never a key", () => {
    const cfg = load('[pool_keys]\nopenai = ["sk-secret-1", "sk-secret-2"]\nanthropic = "sk-secret-3"\n');
    const out = redactedConfig(cfg);
    expect(out["pool_keys"]).toEqual({ openai: ["***", "***"], anthropic: ["***"] });
    expect(JSON.stringify(out)).not.toContain("sk-secret");
  });
});

describe("pool keys: bad input names the key and never quotes it", () => {
  const SECRET = "sk-pool-never-quoted-77";
  const bad: Array<[string, string | undefined, Record<string, string>, string]> = [
    ["an empty array", "[pool_keys]\nopenai = []\n", {}, "pool_keys.openai: an empty array"],
    ["a number", "[pool_keys]\nopenai = 5\n", {}, "pool_keys.openai: must be a string or an array of strings, got number 5"],
    ["a boolean", "[pool_keys]\nopenai = true\n", {}, "pool_keys.openai: must be a string or an array of strings"],
    ["a table", `[pool_keys.openai]\nkey = "${SECRET}"\n`, {}, "pool_keys.openai: must be a string or an array of strings, got a table"],
    ["an array holding a number", `[pool_keys]\nopenai = ["${SECRET}", 7]\n`, {}, "pool_keys.openai[1]: must be a string, got number 7"],
    ["an array holding an array", `[pool_keys]\nopenai = [["${SECRET}"]]\n`, {}, "pool_keys.openai[0]: must be a string, got an array"],
    ["an empty string inside the array", `[pool_keys]\nopenai = ["${SECRET}", ""]\n`, {}, "pool_keys.openai[1]: empty key"],
    ["a blank string inside the array", `[pool_keys]\nopenai = ["${SECRET}", "  "]\n`, {}, "pool_keys.openai[1]: empty key"],
    ["an empty string entry", '[pool_keys]\nopenai = ""\n', {}, "pool_keys.openai: empty key"],
    ["a line break inside an array key", `[pool_keys]\nopenai = ["${SECRET}", "${SECRET}\\nX"]\n`, {}, "pool_keys.openai[1]: contains a control character (LF)"],
    ["a non-ASCII character inside an array key", `[pool_keys]\nopenai = ["${SECRET}\u00e9"]\n`, {}, "pool_keys.openai[0]: contains a non-ASCII character"],
    ["a comma inside a file string", `[pool_keys]\nopenai = "${SECRET},sk-b"\n`, {}, "pool_keys.openai: contains a comma; list several keys as an array"],
    ["a comma inside an array key", `[pool_keys]\nopenai = ["${SECRET},sk-b"]\n`, {}, "pool_keys.openai[0]: contains a comma"],
    ["the same key twice in one list", `[pool_keys]\nopenai = ["${SECRET}", "sk-b", " ${SECRET} "]\n`, {}, "pool_keys.openai[2]: the same key as pool_keys.openai[0]"],
    ["an empty variable", undefined, { AI_POOL_KEY_OPENAI: "" }, "pool_keys.openai: empty key"],
    ["a doubled comma in the variable", undefined, { AI_POOL_KEY_OPENAI: `${SECRET},,sk-b` }, "pool_keys.openai[1]: empty key"],
    ["a trailing comma in the variable", undefined, { AI_POOL_KEY_ANTHROPIC: `${SECRET},` }, "pool_keys.anthropic[1]: empty key"],
    ["a leading comma in the table variable", undefined, { AI_POOL_KEYS__OPENAI: `,${SECRET}` }, "pool_keys.openai[0]: empty key"],
    ["a line break inside one key of the variable", undefined, { AI_POOL_KEY_OPENAI: `sk-a,${SECRET}\r\nX-Injected: 1` }, "pool_keys.openai[1]: contains a control character (CR)"],
    ["the same key twice in the variable", undefined, { AI_POOL_KEY_OPENAI: `${SECRET},${SECRET}` }, "pool_keys.openai[1]: the same key as pool_keys.openai[0]"],
  ];
  test.each(bad)("%s", (_what, toml, env, message) => {
    const e = configError(toml, env);
    expect(e.message).toStartWith(message);
    expect(e.message).not.toContain(SECRET);
    expect(e.message).not.toContain("never-quoted");
  });

  test("an error from a variable names the variable as well as the key", () => {
    expect(configError(undefined, { AI_POOL_KEY_OPENAI: "sk-a,,sk-b" }).message).toContain("(from AI_POOL_KEY_OPENAI)");
    expect(configError(undefined, { AI_POOL_KEYS__OPENAI: "sk-a,sk-a" }).message).toContain("(from AI_POOL_KEYS__OPENAI)");
  });
});

describe("[key_pool] and [retry]: accepted forms", () => {
  test("absent tables are the documented defaults", () => {
    const cfg = load(undefined);
    expect(cfg.key_pool).toEqual({ selection: "affinity", cooldown_ms: 5000, cooldown_max_ms: 60000, dead_key_ms: 3600000 });
    expect(cfg.retry).toEqual({
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
    });
    expect(cfg.key_pool).toEqual({ ...KEY_POOL_DEFAULTS });
    expect(cfg.retry).toEqual({ ...RETRY_DEFAULTS });
  });

  test("every key of both tables is read from the file", () => {
    const cfg = load(
      [
        "[key_pool]",
        'selection = "round_robin"',
        "cooldown_ms = 250",
        "cooldown_max_ms = 250",
        "dead_key_ms = 60000",
        "[retry]",
        "max_attempts = 1",
        "initial_backoff_ms = 50",
        "multiplier = 2",
        "max_backoff_ms = 800",
        'jitter = "none"',
        "max_retry_after_ms = 3000",
        "deadline_ms = 9000",
        "budget_ratio = 1",
        "budget_min_per_sec = 0.5",
        "max_replay_bytes = 0",
        "replay_pool_bytes = 0",
        "commit_hold_ms = 700",
        "commit_hold_bytes = 0",
      ].join("\n"),
    );
    expect(cfg.key_pool).toEqual({ selection: "round_robin", cooldown_ms: 250, cooldown_max_ms: 250, dead_key_ms: 60000 });
    expect(cfg.retry).toEqual({
      max_attempts: 1,
      initial_backoff_ms: 50,
      multiplier: 2,
      max_backoff_ms: 800,
      jitter: "none",
      max_retry_after_ms: 3000,
      deadline_ms: 9000,
      budget_ratio: 1,
      budget_min_per_sec: 0.5,
      max_replay_bytes: 0,
      replay_pool_bytes: 0,
      commit_hold_ms: 700,
      commit_hold_bytes: 0,
    });
  });

  test("a duration may go up to a timer's limit (2147483647 ms); byte sizes have no such cap", () => {
    const cfg = load("[key_pool]\ncooldown_max_ms = 2147483647\ndead_key_ms = 2147483647\n[retry]\nmax_replay_bytes = 4294967296\nreplay_pool_bytes = 4294967296\n");
    expect(cfg.key_pool.dead_key_ms).toBe(2147483647);
    expect(cfg.key_pool.cooldown_max_ms).toBe(2147483647);
    expect(cfg.retry.max_replay_bytes).toBe(4294967296);
  });

  test("a table given in part keeps the defaults for the rest", () => {
    const cfg = load("[retry]\nmultiplier = 1.25\nbudget_ratio = 0\n");
    expect(cfg.retry).toEqual({ ...RETRY_DEFAULTS, multiplier: 1.25, budget_ratio: 0 });
    expect(cfg.key_pool).toEqual({ ...KEY_POOL_DEFAULTS });
  });

  test("AI_<TABLE>__<KEY> variables parse numbers from text and win over the file, key by key", () => {
    const cfg = load('[retry]\nmax_attempts = 6\ndeadline_ms = 12000\n[key_pool]\nselection = "affinity"\n', {
      AI_RETRY__MAX_ATTEMPTS: "2",
      AI_RETRY__BUDGET_RATIO: "0.5",
      AI_RETRY__MULTIPLIER: " 2.5 ",
      AI_RETRY__JITTER: "none",
      AI_RETRY__MAX_REPLAY_BYTES: "0",
      AI_KEY_POOL__SELECTION: "round_robin",
      AI_KEY_POOL__COOLDOWN_MS: "1000",
    });
    expect(cfg.retry).toEqual({ ...RETRY_DEFAULTS, max_attempts: 2, deadline_ms: 12000, budget_ratio: 0.5, multiplier: 2.5, jitter: "none", max_replay_bytes: 0 });
    expect(cfg.key_pool).toEqual({ ...KEY_POOL_DEFAULTS, selection: "round_robin", cooldown_ms: 1000 });
  });

  test("check-config's view carries both tables, every value", () => {
    const out = redactedConfig(load("[retry]\nmax_attempts = 3\n", { AI_KEY_POOL__SELECTION: "round_robin" }));
    expect(out["retry"]).toEqual({ ...RETRY_DEFAULTS, max_attempts: 3 });
    expect(out["key_pool"]).toEqual({ ...KEY_POOL_DEFAULTS, selection: "round_robin" });
  });

  test("key_pool and retry are known top-level keys; an unknown top-level key still fails", () => {
    expect(KNOWN_KEYS).toContain("key_pool");
    expect(KNOWN_KEYS).toContain("retry");
    expect(configError("[retries]\nmax_attempts = 2\n").key).toBe("retries");
  });
});

describe("[key_pool] and [retry]: bad input exits naming the key", () => {
  const bad: Array<[string, string | undefined, Record<string, string>, string]> = [
    ["jitter other than full/none", '[retry]\njitter = "some"\n', {}, 'retry.jitter: "some" is not one of full, none'],
    ["jitter of the wrong type", "[retry]\njitter = 1\n", {}, "retry.jitter: must be one of full, none, got number 1"],
    ["selection other than affinity/round_robin", '[key_pool]\nselection = "random"\n', {}, 'key_pool.selection: "random" is not one of affinity, round_robin'],
    ["a zero cooldown", "[key_pool]\ncooldown_ms = 0\n", {}, "key_pool.cooldown_ms: must be an integer > 0, got number 0"],
    ["a negative dead_key_ms", "[key_pool]\ndead_key_ms = -5\n", {}, "key_pool.dead_key_ms: must be an integer > 0, got number -5"],
    ["cooldown_max_ms below cooldown_ms", "[key_pool]\ncooldown_ms = 10000\ncooldown_max_ms = 5000\n", {}, "key_pool.cooldown_max_ms: 5000 is below cooldown_ms 10000"],
    ["cooldown_max_ms below the default cooldown_ms", "[key_pool]\ncooldown_max_ms = 1000\n", {}, "key_pool.cooldown_max_ms: 1000 is below cooldown_ms 5000"],
    ["max_attempts = 0", "[retry]\nmax_attempts = 0\n", {}, "retry.max_attempts: must be an integer > 0, got number 0"],
    ["a fractional max_attempts", "[retry]\nmax_attempts = 2.5\n", {}, "retry.max_attempts: must be an integer > 0, got number 2.5"],
    ["a zero initial backoff", "[retry]\ninitial_backoff_ms = 0\n", {}, "retry.initial_backoff_ms: must be an integer > 0"],
    ["a negative max backoff", "[retry]\nmax_backoff_ms = -1\n", {}, "retry.max_backoff_ms: must be an integer > 0"],
    ["a zero max_retry_after_ms", "[retry]\nmax_retry_after_ms = 0\n", {}, "retry.max_retry_after_ms: must be an integer > 0"],
    ["a zero deadline", "[retry]\ndeadline_ms = 0\n", {}, "retry.deadline_ms: must be an integer > 0"],
    ["a zero commit hold time", "[retry]\ncommit_hold_ms = 0\n", {}, "retry.commit_hold_ms: must be an integer > 0"],
    ["a deadline past a timer's limit", "[retry]\ndeadline_ms = 2147483648\n", {}, "retry.deadline_ms: must be at most 2147483647 ms"],
    ["a dead_key_ms past a timer's limit", "[key_pool]\ndead_key_ms = 9999999999\n", {}, "key_pool.dead_key_ms: must be at most 2147483647 ms"],
    ["a negative replay limit", "[retry]\nmax_replay_bytes = -1\n", {}, "retry.max_replay_bytes: must be an integer >= 0, got number -1"],
    ["a negative replay pool", "[retry]\nreplay_pool_bytes = -1\n", {}, "retry.replay_pool_bytes: must be an integer >= 0"],
    ["a negative commit hold size", "[retry]\ncommit_hold_bytes = -1\n", {}, "retry.commit_hold_bytes: must be an integer >= 0"],
    ["a multiplier below 1", "[retry]\nmultiplier = 0.5\n", {}, "retry.multiplier: must be a number >= 1, got number 0.5"],
    ["an infinite multiplier", "[retry]\nmultiplier = inf\n", {}, "retry.multiplier: must be a number >= 1, got number Infinity"],
    ["budget_ratio above 1", "[retry]\nbudget_ratio = 1.5\n", {}, "retry.budget_ratio: must be a number in [0, 1], got number 1.5"],
    ["budget_ratio below 0", "[retry]\nbudget_ratio = -0.1\n", {}, "retry.budget_ratio: must be a number in [0, 1], got number -0.1"],
    ["budget_ratio nan", "[retry]\nbudget_ratio = nan\n", {}, "retry.budget_ratio: must be a number in [0, 1]"],
    ["a negative budget_min_per_sec", "[retry]\nbudget_min_per_sec = -1\n", {}, "retry.budget_min_per_sec: must be a number >= 0"],
    ["a string where a number goes", '[retry]\nmax_attempts = "3"\n', {}, 'retry.max_attempts: must be an integer > 0, got the string "3"'],
    ["a table where a scalar goes", "[retry.deadline_ms]\nms = 5\n", {}, "retry.deadline_ms: must be an integer > 0, got a table"],
    ["an array where a scalar goes", "[retry]\nbudget_ratio = [0.5]\n", {}, "retry.budget_ratio: must be a number in [0, 1], got an array"],
    ["a boolean where a number goes", "[key_pool]\ncooldown_ms = true\n", {}, "key_pool.cooldown_ms: must be an integer > 0, got boolean true"],
    ["an unknown key inside [retry]", "[retry]\nmax_retries = 3\n", {}, "retry.max_retries: unknown key in [retry] (known keys: max_attempts,"],
    ["an unknown key inside [key_pool]", '[key_pool]\nstrategy = "affinity"\n', {}, "key_pool.strategy: unknown key in [key_pool] (known keys: selection,"],
    ["[retry] given as a number", "retry = 3\n", {}, "retry: must be a table ([retry]), got number 3"],
    ["[key_pool] given as a string", 'key_pool = "round_robin"\n', {}, 'key_pool: must be a table ([key_pool]), got the string "round_robin"'],
    ["[retry] given as an array", "retry = [1, 2]\n", {}, "retry: must be a table ([retry]), got an array"],
    ["AI_RETRY__JITTER=some", undefined, { AI_RETRY__JITTER: "some" }, 'AI_RETRY__JITTER: "some" is not one of full, none (retry.jitter)'],
    ["AI_RETRY__MAX_ATTEMPTS=0", undefined, { AI_RETRY__MAX_ATTEMPTS: "0" }, 'AI_RETRY__MAX_ATTEMPTS: must be an integer > 0, got "0" (retry.max_attempts)'],
    ["AI_RETRY__MAX_ATTEMPTS=two", undefined, { AI_RETRY__MAX_ATTEMPTS: "two" }, 'AI_RETRY__MAX_ATTEMPTS: must be an integer > 0, got "two" (retry.max_attempts)'],
    ["AI_RETRY__BUDGET_RATIO=1.01", undefined, { AI_RETRY__BUDGET_RATIO: "1.01" }, 'AI_RETRY__BUDGET_RATIO: must be a number in [0, 1], got "1.01" (retry.budget_ratio)'],
    ["AI_RETRY__BUDGET_RATIO empty", undefined, { AI_RETRY__BUDGET_RATIO: "" }, 'AI_RETRY__BUDGET_RATIO: must be a number in [0, 1], got "" (retry.budget_ratio)'],
    ["AI_KEY_POOL__COOLDOWN_MS=-5", undefined, { AI_KEY_POOL__COOLDOWN_MS: "-5" }, 'AI_KEY_POOL__COOLDOWN_MS: must be an integer > 0, got "-5" (key_pool.cooldown_ms)'],
    ["AI_KEY_POOL__SELECTION=ROUND_ROBIN", undefined, { AI_KEY_POOL__SELECTION: "ROUND_ROBIN" }, 'AI_KEY_POOL__SELECTION: "ROUND_ROBIN" is not one of affinity, round_robin (key_pool.selection)'],
    ["a variable that breaks the cooldown order", "[key_pool]\ncooldown_max_ms = 8000\n", { AI_KEY_POOL__COOLDOWN_MS: "9000" }, "key_pool.cooldown_max_ms: 8000 is below cooldown_ms 9000"],
  ];
  test.each(bad)("%s", (_what, toml, env, message) => {
    const e = configError(toml, env);
    expect(e.message).toStartWith(message);
    expect(e.message.split("\n").length).toBe(1);
  });

  test("a valid variable does not rescue a bad file value (the file is checked too)", () => {
    expect(configError('[retry]\njitter = "some"\n', { AI_RETRY__JITTER: "none" }).key).toBe("retry.jitter");
  });
});

describe("environment typo warnings know the [retry] and [key_pool] variables", () => {
  test("every AI_RETRY__<KEY> and AI_KEY_POOL__<KEY> is a known name (no warning)", () => {
    const env: Record<string, string> = {};
    for (const k of Object.keys(RETRY_DEFAULTS)) env[`AI_RETRY__${k.toUpperCase()}`] = "1";
    for (const k of Object.keys(KEY_POOL_DEFAULTS)) env[`AI_KEY_POOL__${k.toUpperCase()}`] = "1";
    expect(Object.keys(env).length).toBe(17);
    expect(envTypoWarnings(env)).toEqual([]);
  });

  test("AI_RETRY_MAX_ATTEMPTS (one underscore) suggests AI_RETRY__MAX_ATTEMPTS", () => {
    expect(envTypoWarnings({ AI_RETRY_MAX_ATTEMPTS: "2" })).toEqual(["unknown environment variable AI_RETRY_MAX_ATTEMPTS is ignored: did you mean AI_RETRY__MAX_ATTEMPTS?"]);
    expect(envTypoWarnings({ AI_KEY_POOL_SELECTION: "round_robin" })).toEqual([
      "unknown environment variable AI_KEY_POOL_SELECTION is ignored: did you mean AI_KEY_POOL__SELECTION?",
    ]);
  });

  test("an AI_RETRY__ variable naming no [retry] key, and close to none, is reported with the table's keys", () => {
    const [w] = envTypoWarnings({ AI_RETRY__BACKOFF: "100" });
    expect(w).toStartWith("unknown environment variable AI_RETRY__BACKOFF is ignored: [retry] has no key backoff (keys: max_attempts,");
    expect(envTypoWarnings({ AI_KEY_POOL__STRATEGY: "x" })[0]).toStartWith("unknown environment variable AI_KEY_POOL__STRATEGY is ignored: [key_pool] has no key strategy");
  });

  test("a loaded config carries those warnings and still boots", () => {
    const cfg = load(undefined, { AI_RETRY_MAX_ATTEMPTS: "2" });
    expect(cfg.retry.max_attempts).toBe(RETRY_DEFAULTS.max_attempts);
    expect(cfg.warnings).toEqual(["unknown environment variable AI_RETRY_MAX_ATTEMPTS is ignored: did you mean AI_RETRY__MAX_ATTEMPTS?"]);
  });
});
