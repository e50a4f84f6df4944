// The `workers` setting (SPEC §14): "auto" or a count >= 1, from the file or AI_WORKERS; resolved once at load, so
// every consumer (and each worker thread loading the same text) sees one number. Bad values are ConfigErrors naming
// the key (the CLI turns them into exit 2; test/e2e-workers.test.ts pins that end to end).
import { describe, expect, test } from "bun:test";
import { availableParallelism } from "node:os";
import { ConfigError, loadConfig } from "../src/ops/config.ts";
import { makeTempDir, writeTempConfig } from "./helpers/gateway.ts";

const load = (toml: string | undefined, env: Record<string, string> = {}) =>
  loadConfig({ configPath: toml === undefined ? undefined : writeTempConfig(toml, makeTempDir()), env });

describe("workers", () => {
  test("the default is auto: os.availableParallelism(), chosen by auto", () => {
    const cfg = load(undefined);
    expect(cfg.workers).toBe(availableParallelism());
    expect(cfg.workers_from).toBe("auto");
  });

  test('workers = "auto", workers = 3 and AI_WORKERS (which wins) all resolve to a number', () => {
    expect(load('workers = "auto"\n').workers).toBe(availableParallelism());
    expect(load('workers = "AUTO"\n').workers).toBe(availableParallelism());
    const three = load("workers = 3\n");
    expect(three.workers).toBe(3);
    expect(three.workers_from).toBe("config");
    expect(load("workers = 3\n", { AI_WORKERS: "1" }).workers).toBe(1);
    expect(load(undefined, { AI_WORKERS: "auto" }).workers).toBe(availableParallelism());
    expect(load(undefined, { AI_WORKERS: " 4 " }).workers).toBe(4);
  });

  const bad: [string, string | undefined, Record<string, string>, string][] = [
    ["workers = 0", "workers = 0\n", {}, "workers"],
    ["workers = -1", "workers = -1\n", {}, "workers"],
    ["workers = 1.5", "workers = 1.5\n", {}, "workers"],
    ['workers = "many"', 'workers = "many"\n', {}, "workers"],
    ['workers = "2"', 'workers = "2.0"\n', {}, "workers"],
    ["workers = true", "workers = true\n", {}, "workers"],
    ["workers = 100000", "workers = 100000\n", {}, "workers"],
    ["AI_WORKERS=0", undefined, { AI_WORKERS: "0" }, "AI_WORKERS"],
    ["AI_WORKERS=-2", undefined, { AI_WORKERS: "-2" }, "AI_WORKERS"],
    ["AI_WORKERS=many", undefined, { AI_WORKERS: "many" }, "AI_WORKERS"],
  ];
  for (const [name, toml, env, key] of bad) {
    test(`${name} is a ConfigError naming ${key} (and the workers setting)`, () => {
      let err: unknown;
      try {
        load(toml, env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe(key);
      expect((err as ConfigError).message).toContain("workers");
    });
  }

  test("a worker loads the text main read (fileText), not the file as it is now", () => {
    const path = writeTempConfig("workers = 2\nrate_limit_rps = 7\n", makeTempDir());
    const cfg = loadConfig({ configPath: path, env: {}, fileText: "workers = 2\nrate_limit_rps = 20\n" });
    expect(cfg.rate_limit_rps).toBe(20);
    expect(cfg.source).toBe(path);
  });
});
