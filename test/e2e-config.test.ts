// End-to-end: where the config comes from (flag, AI_CONFIG_PATH, ./config.toml, nothing), env overrides, and
// boot failures: each bad value exits 2 with one stderr line that names the key. Separate processes by nature.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  baseConfig,
  makeTempDir,
  runGatewayExpectExit,
  startGateway,
  writeTempConfig,
  type ExitResult,
  type Gateway,
} from "./helpers/gateway.ts";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { keygen, mint } from "../src/controls/keys.ts";
import { closedPort, startMockProvider, type MockProvider } from "./helpers/mock-provider.ts";

const BYO = "sk-byo-config-0123456789";
const POOL_SECRET = "sk-pool-secret-never-printed-4f9a2c";
const CHAT_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });

let mock: MockProvider;

beforeAll(() => {
  mock = startMockProvider();
});

afterAll(async () => {
  await mock?.stop();
});

/** The env a gateway needs to run on loopback against the mock with no config file at all. */
function loopbackEnv(): Record<string, string> {
  return {
    AI_LISTEN: "127.0.0.1:0",
    AI_METRICS_LISTEN: "127.0.0.1:0",
    AI_UPSTREAM_TLS: "false",
    AI_NATS_URL: "nats://127.0.0.1:1",
    AI_SHUTDOWN_GRACE_PERIOD_SECS: "1",
  };
}

/** Starts a gateway, proves it serves BYO traffic through `path` to the mock, and stops it. */
async function expectServes(gwPromise: Promise<Gateway>, path = "/v1/chat/completions", upstreamPath = "/v1/chat/completions"): Promise<void> {
  const gw = await gwPromise;
  try {
    mock.reset();
    const res = await fetch(gw.url + path, {
      method: "POST",
      headers: { authorization: `Bearer ${BYO}`, "content-type": "application/json" },
      body: CHAT_BODY,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe("chatcmpl-mock");
    expect(mock.last().path).toBe(upstreamPath);
    expect(mock.last().headers["authorization"]).toBe(`Bearer ${BYO}`);
  } finally {
    await gw.stop();
  }
}

function mockConfig(extra = ""): string {
  return baseConfig({ authorities: { openai: mock.authority }, extra });
}

describe("where the config comes from", () => {
  test("with no config file at all the gateway starts and serves BYO traffic (env only)", async () => {
    const cwd = makeTempDir();
    await expectServes(
      startGateway({
        cwd,
        args: ["serve"],
        env: { ...loopbackEnv(), AI_PROVIDER_AUTHORITIES__OPENAI: mock.authority },
      }),
    );
  });

  test("AI_CONFIG_PATH is used when there is no --config", async () => {
    const path = writeTempConfig(mockConfig());
    await expectServes(startGateway({ cwd: makeTempDir(), args: ["serve"], env: { AI_CONFIG_PATH: path } }));
  });

  test("./config.toml in the working directory is used when there is neither --config nor AI_CONFIG_PATH", async () => {
    const cwd = makeTempDir();
    writeFileSync(join(cwd, "config.toml"), mockConfig());
    await expectServes(startGateway({ cwd, args: ["serve"] }));
  });

  test("--config wins over AI_CONFIG_PATH, which wins over ./config.toml", async () => {
    const cwd = makeTempDir();
    writeFileSync(join(cwd, "config.toml"), "this is not toml ===\n");
    const broken = writeTempConfig("read_timeout_secs = 0\n");
    const good = writeTempConfig(mockConfig());
    await expectServes(startGateway({ cwd, args: ["serve", "--config", good], env: { AI_CONFIG_PATH: broken } }));
    await expectServes(startGateway({ cwd, args: ["serve"], env: { AI_CONFIG_PATH: good } }));
  });

  test("-c is accepted as the short form of --config", async () => {
    const path = writeTempConfig(mockConfig());
    await expectServes(startGateway({ cwd: makeTempDir(), args: ["serve", "-c", path] }));
  });

  test("--config pointing at a missing file exits 2 and names the path", async () => {
    const missing = join(makeTempDir(), "nope", "missing.toml");
    const r = await runGatewayExpectExit({ cwd: makeTempDir(), args: ["serve", "--config", missing] });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(missing);
    expect(r.stdout).not.toContain('"listening"');
  });
});

describe("env overrides", () => {
  test("AI_PROVIDER_AUTHORITIES__<NAME> overrides a provider set in the file and adds a new one", async () => {
    const dead = `127.0.0.1:${closedPort()}`;
    const config = baseConfig({ authorities: { openai: dead } });
    const env = { AI_PROVIDER_AUTHORITIES__OPENAI: mock.authority, AI_PROVIDER_AUTHORITIES__ENVPROV: mock.authority };
    const gw = await startGateway({ config, env });
    try {
      mock.reset();
      const a = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${BYO}` }, body: CHAT_BODY });
      expect(a.status).toBe(200);
      expect(mock.last().path).toBe("/v1/chat/completions");
      const b = await fetch(`${gw.url}/envprov/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${BYO}` }, body: CHAT_BODY });
      expect(b.status).toBe(200);
      expect(mock.requests.length).toBe(2);
      const line = await gw.accessLog(b.headers.get("x-beyond-request-id") ?? "");
      expect(line["provider"]).toBe("envprov");
    } finally {
      await gw.stop();
    }
  });

  test("unknown AI_* variables (AI_FOO, AI_LOG, AI_AGENT) are ignored", async () => {
    await expectServes(startGateway({ config: mockConfig(), env: { AI_FOO: "bar", AI_LOG: "debug", AI_AGENT: "1", AI_FOO__BAR: "x" } }));
  });
});

describe("bad config fails boot with exit 2 and one line naming the key", () => {
  const validKey = Buffer.from(new Uint8Array(32).fill(7)).toString("base64url");
  // Every bad config also carries a pool key: whatever the error, the secret must not be printed. The configs are
  // built before the mock exists and must never start, so openai points at the discard port.
  const withSecret = (topLevel: string, tables = ""): string =>
    baseConfig({
      authorities: { openai: "127.0.0.1:9", myprov: "127.0.0.1:9" },
      extra: topLevel,
      tables: `${tables}\n\n[pool_keys]\nopenai = "${POOL_SECRET}"\n`,
    });

  const cases: Array<[string, string, string[]]> = [
    ["unknown top-level key (typo reqiure_signing_keys)", withSecret("reqiure_signing_keys = true"), ["reqiure_signing_keys"]],
    ["wrong type (rate_limit_rps = \"fast\")", withSecret("").replace(/^rate_limit_rps = 0$/m, 'rate_limit_rps = "fast"'), ["rate_limit_rps"]],
    ["zero connect_timeout_secs", withSecret("connect_timeout_secs = 0"), ["connect_timeout_secs"]],
    ["zero read_timeout_secs", withSecret("read_timeout_secs = 0"), ["read_timeout_secs"]],
    ["a kid in [signing_keys] that is not a u32", withSecret("", `[signing_keys]\nabc = "${validKey}"`), ["signing_keys", "abc"]],
    ["a signing key that is not 32 bytes", withSecret("", `[signing_keys]\n1 = "${Buffer.from(new Uint8Array(16).fill(1)).toString("base64url")}"`), ["signing_keys"]],
    ["a bad [provider_dialects] value", withSecret("", `[provider_dialects]\nmyprov = "gemini"`), ["provider_dialects"]],
    ["a bad [provider_auth_schemes] value", withSecret("", `[provider_auth_schemes]\nmyprov = "basic"`), ["provider_auth_schemes"]],
    ["usage_metering that is not a boolean", withSecret('usage_metering = "sometimes"'), ["usage_metering"]],
  ];

  function expectBootFailure(r: ExitResult, mustName: string[]): void {
    expect(r.code).toBe(2);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines.length).toBe(1);
    for (const name of mustName) expect((lines[0] ?? "").toLowerCase()).toContain(name.toLowerCase());
    expect(r.stdout).not.toContain('"listening"');
    expect(r.stderr).not.toContain(POOL_SECRET);
    expect(r.stdout).not.toContain(POOL_SECRET);
  }

  test("control: the same config without a bad part boots (so each failure below comes from its bad part)", async () => {
    const gw = await startGateway({ config: withSecret("") });
    try {
      expect(gw.port).toBeGreaterThan(0);
      expect(gw.stdout()).not.toContain(POOL_SECRET);
    } finally {
      await gw.stop();
    }
  });

  test.each(cases)("%s", async (_name, toml, mustName) => {
    const r = await runGatewayExpectExit({ config: toml });
    expectBootFailure(r, mustName);
    // The key is named at its real place: a top-level key is not reported as a table entry.
    expect(r.stderr).not.toContain("provider_authorities.");
  });

  test("unparsable TOML names the file", async () => {
    const path = writeTempConfig(`listen = "127.0.0.1:0\nmetrics_listen = [\n[pool_keys]\nopenai = "${POOL_SECRET}"\n`);
    const r = await runGatewayExpectExit({ args: ["serve", "--config", path] });
    expectBootFailure(r, [path]);
  });

  test("a bad env value (AI_RATE_LIMIT_RPS=abc) names the key", async () => {
    const r = await runGatewayExpectExit({ config: withSecret(""), env: { AI_RATE_LIMIT_RPS: "abc" } });
    expectBootFailure(r, ["rate_limit_rps"]);
  });

  test("a bad env boolean (AI_USAGE_METERING=maybe) names the key", async () => {
    const r = await runGatewayExpectExit({ config: withSecret(""), env: { AI_USAGE_METERING: "maybe" } });
    expectBootFailure(r, ["usage_metering"]);
  });
});

describe("secrets and typos a first config carries", () => {
  const NATS_PASS = "nats-pass-never-printed-77ab";
  const NATS_TOKEN = "nats-token-never-printed-91cd";
  // Each shape of nats_url credentials, including a password with characters URL parsing chokes on.
  const natsUrls: Array<[string, string, string]> = [
    ["user:pass", `nats://gw:${NATS_PASS}@127.0.0.1:1`, NATS_PASS],
    ["token", `nats://${NATS_TOKEN}@127.0.0.1:1`, NATS_TOKEN],
    ["a password with # and / in it, no scheme, in a server list", `127.0.0.1:2,gw:${NATS_PASS}#/x@127.0.0.1:1`, NATS_PASS],
  ];

  test.each(natsUrls)("check-config redacts the NATS credentials inside nats_url (%s)", async (_shape, url, secret) => {
    const path = writeTempConfig(`${mockConfig()}`.replace('nats_url = "nats://127.0.0.1:1"', `nats_url = ${JSON.stringify(url)}`));
    const r = await runGatewayExpectExit({ args: ["check-config", "--config", path] });
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout) as { config: Record<string, unknown> };
    expect(printed.config["nats_url"]).toContain("***@127.0.0.1:1");
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(r.stdout).not.toContain("gw:");
  });

  test("a NATS url with credentials that is unreachable: the gateway's log names the server, never the password or token", async () => {
    // The third server's password holds `#` and `/`, which URL parsing cannot take: it must still not be logged.
    const url = `nats://gw:${NATS_PASS}@127.0.0.1:1,nats://${NATS_TOKEN}@127.0.0.1:2,gw:${NATS_PASS}#/x@127.0.0.1:3`;
    const gw = await startGateway({
      config: mockConfig().replace('nats_url = "nats://127.0.0.1:1"', `nats_url = ${JSON.stringify(url)}`),
      env: { AI_LOG_LEVEL: "debug" },
    });
    try {
      const line = await gw.waitForLog((l) => String(l["msg"]).startsWith("deny-set NATS connect failed"));
      expect(String(line["servers"])).toBe("nats://***@127.0.0.1:1,nats://***@127.0.0.1:2,***@127.0.0.1:3");
      const all = gw.stdout() + gw.stderr();
      expect(all).not.toContain(NATS_PASS);
      expect(all).not.toContain(NATS_TOKEN);
    } finally {
      await gw.stop();
    }
  });

  // A pool key carrying a line break (a pasted key, a file read with its CRLF) used to boot and break every managed
  // request; it must fail boot naming pool_keys.<provider>, never echoing the key.
  const badKeys: Array<[string, string]> = [
    ["CR LF in the middle", "sk-pool-AAAA\r\nX-Injected: 1"],
    ["LF in the middle", "sk-pool-AAAA\nBBBB"],
    ["a NUL byte", "sk-pool-AAAA\u0000BBBB"],
    ["a tab", "sk-pool-AAAA\tBBBB"],
    ["a non-ASCII character", "sk-pool-AAAA\u00e9BBBB"],
  ];

  test.each(badKeys)("a pool key with %s in the config file fails boot with exit 2 naming pool_keys.openai", async (_what, key) => {
    const r = await runGatewayExpectExit({ config: baseConfig({ tables: `[pool_keys]\nopenai = ${JSON.stringify(key)}\n` }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pool_keys.openai");
    expect(r.stderr).not.toContain("sk-pool-AAAA");
    expect(r.stdout).not.toContain('"listening"');
  });

  // An environment cannot carry a NUL byte at all.
  test.each(badKeys.filter(([what]) => what !== "a NUL byte"))("a pool key with %s in AI_POOL_KEY_OPENAI fails boot with exit 2 naming pool_keys.openai", async (_what, key) => {
    const r = await runGatewayExpectExit({ config: baseConfig(), env: { AI_POOL_KEY_OPENAI: key } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pool_keys.openai");
    expect(r.stderr).not.toContain("sk-pool-AAAA");
  });

  test("a pool key whose only line break is a trailing one (a file read whole) is trimmed and boots", async () => {
    const gw = await startGateway({ config: mockConfig(), env: { AI_POOL_KEY_OPENAI: "sk-pool-AAAA-trailing\r\n" } });
    try {
      expect(gw.port).toBeGreaterThan(0);
    } finally {
      await gw.stop();
    }
  });

  const sameAddress: Array<[string, string, string]> = [
    ["the same host and port", "127.0.0.1:28091", "127.0.0.1:28091"],
    ["a wildcard listen and a loopback metrics_listen on one port", "0.0.0.0:28091", "127.0.0.1:28091"],
    ["a loopback listen and an IPv6 wildcard metrics_listen on one port", "127.0.0.1:28091", "[::]:28091"],
    ["localhost and 127.0.0.1 on one port", "localhost:28091", "127.0.0.1:28091"],
  ];

  test.each(sameAddress)("listen and metrics_listen on %s: exit 2 naming metrics_listen, nothing bound", async (_what, listen, metrics) => {
    const config = baseConfig().replace('listen = "127.0.0.1:0"', `listen = "${listen}"`).replace('metrics_listen = "127.0.0.1:0"', `metrics_listen = "${metrics}"`);
    const r = await runGatewayExpectExit({ config });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("metrics_listen");
    expect(r.stdout).not.toContain('"listening"');
    const checked = await runGatewayExpectExit({ config, args: ["check-config", "--config", writeTempConfig(config)] });
    expect(checked.code).not.toBe(0);
    expect(checked.stderr).toContain("metrics_listen");
  });

  test("listen and metrics_listen on one port but different specific hosts is accepted by check-config", async () => {
    const config = baseConfig().replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:28092"').replace('metrics_listen = "127.0.0.1:0"', 'metrics_listen = "127.0.0.2:28092"');
    const r = await runGatewayExpectExit({ args: ["check-config", "--config", writeTempConfig(config)] });
    expect(r.code).toBe(0);
  });

  test("AI_LOG_LEVEL=verbose fails boot with exit 2 naming AI_LOG_LEVEL and the accepted levels", async () => {
    const r = await runGatewayExpectExit({ config: mockConfig(), env: { AI_LOG_LEVEL: "verbose" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("AI_LOG_LEVEL");
    expect(r.stderr).toContain("error, warn, info, debug");
    expect(r.stdout).not.toContain('"listening"');
  });

  test("AI_LOG_LEVEL is case-insensitive (DEBUG turns debug lines on)", async () => {
    const gw = await startGateway({ config: mockConfig(), env: { AI_LOG_LEVEL: "DEBUG" } });
    try {
      await gw.waitForLog((l) => l["level"] === "debug");
    } finally {
      await gw.stop();
    }
  });

  test("an AI_* variable within edit distance 2 of a known one boots with a warn line naming the intended variable", async () => {
    const gw = await startGateway({
      config: mockConfig(),
      env: { AI_RATE_LIMT_RPS: "5", AI_POOL_KEYS_OPENAI: "sk-typo-never-printed", AI_AGENT: "1", AI_RETRY_MAX_ATTEMPTS: "2" },
    });
    try {
      const rps = await gw.waitForLog((l) => l["level"] === "warn" && String(l["msg"]).includes("AI_RATE_LIMT_RPS"));
      expect(String(rps["msg"])).toContain("did you mean AI_RATE_LIMIT_RPS?");
      const retry = await gw.waitForLog((l) => l["level"] === "warn" && String(l["msg"]).includes("AI_RETRY_MAX_ATTEMPTS"));
      expect(String(retry["msg"])).toContain("did you mean AI_RETRY__MAX_ATTEMPTS?");
      const pool = await gw.waitForLog((l) => l["level"] === "warn" && String(l["msg"]).includes("AI_POOL_KEYS_OPENAI"));
      expect(String(pool["msg"])).toContain("did you mean AI_POOL_KEY_OPENAI?");
      // A platform's own variable is not near any known name: no warning for it, and the value is never printed.
      expect(gw.stdout()).not.toContain("AI_AGENT");
      expect(gw.stdout()).not.toContain("sk-typo-never-printed");
    } finally {
      await gw.stop();
    }
  });

  test("check-config prints the same typo warning on stderr, one line, and keeps stdout pure JSON", async () => {
    const r = await runGatewayExpectExit({ args: ["check-config", "--config", writeTempConfig(mockConfig())], env: { AI_RATE_LIMT_RPS: "5" } });
    expect(r.code).toBe(0);
    expect(r.stderr.trim()).toBe("beyond-ai: warning: unknown environment variable AI_RATE_LIMT_RPS is ignored: did you mean AI_RATE_LIMIT_RPS?");
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });

  test("a TOML error names the file, line and column, and never quotes the file's text", async () => {
    const path = writeTempConfig(`listen = "127.0.0.1:0"\nmetrics_listen = "127.0.0.1:0"\nlisten = "127.0.0.1:1"\n[pool_keys]\nopenai = "${POOL_SECRET}"\n`);
    const r = await runGatewayExpectExit({ args: ["serve", "--config", path] });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${path}:3:1: not valid TOML:`);
    expect(r.stderr.split("\n").filter((l) => l.trim() !== "").length).toBe(1);
    expect(r.stderr).not.toContain("127.0.0.1:1");
    expect(r.stderr).not.toContain(POOL_SECRET);
  });
});

// Several pool keys per provider (a TOML array, or a comma-separated variable) and the [key_pool] / [retry] tables,
// through the real process: the forms boot and serve managed traffic with a listed key, and each bad input exits 2
// with one stderr line naming the key, never a key value.
describe("pool key lists, [key_pool] and [retry]", () => {
  const OPENAI_KEYS = ["sk-pool-list-openai-0a1b", "sk-pool-list-openai-1c2d"];
  const ANTHROPIC_KEYS = ["sk-ant-pool-list-0e3f", "sk-ant-pool-list-1g4h", "sk-ant-pool-list-2i5j"];
  const signer = keygen();
  const MANAGED = mint(1, signer.seed, 15n, 1n);

  test("an array in the file and a comma-separated AI_POOL_KEY_ variable boot with the tables set, and managed requests go out with a listed key", async () => {
    const anthropicMock = startMockProvider();
    const gw = await startGateway({
      config: baseConfig({
        authorities: { openai: mock.authority, anthropic: anthropicMock.authority },
        tables: [
          "[pool_keys]",
          `openai = ${JSON.stringify(OPENAI_KEYS)}`,
          "",
          "[signing_keys]",
          `1 = "${Buffer.from(signer.publicKey).toString("base64")}"`,
          "",
          "[key_pool]",
          'selection = "round_robin"',
          "cooldown_ms = 1000",
          "",
          "[retry]",
          "max_attempts = 2",
          'jitter = "none"',
        ].join("\n"),
      }),
      env: { AI_POOL_KEY_ANTHROPIC: ANTHROPIC_KEYS.join(" , "), AI_RETRY__BUDGET_RATIO: "0.5", AI_KEY_POOL__DEAD_KEY_MS: "60000" },
    });
    try {
      mock.reset();
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MANAGED, maxRetries: 0 });
      const chat = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
      expect(chat.id).toBe("chatcmpl-mock");
      expect(OPENAI_KEYS.map((k) => `Bearer ${k}`)).toContain(mock.last().headers["authorization"] as string);

      const anthropic = new Anthropic({ baseURL: `${gw.url}/anthropic`, apiKey: MANAGED, maxRetries: 0 });
      const msg = await anthropic.messages.create({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
      expect(msg.type).toBe("message");
      expect(ANTHROPIC_KEYS).toContain(anthropicMock.last().headers["x-api-key"] as string);

      const all = gw.stdout() + gw.stderr();
      for (const k of [...OPENAI_KEYS, ...ANTHROPIC_KEYS]) expect(all).not.toContain(k);
    } finally {
      await gw.stop();
      await anthropicMock.stop();
    }
  });

  test("check-config on the same forms prints one *** per key and every [retry] value from file and environment", async () => {
    const path = writeTempConfig(baseConfig({ tables: `[pool_keys]\nopenai = ${JSON.stringify(OPENAI_KEYS)}\n\n[retry]\ndeadline_ms = 20000\n` }));
    const r = await runGatewayExpectExit({ args: ["check-config", "--config", path], env: { AI_POOL_KEYS__ANTHROPIC: ANTHROPIC_KEYS.join(","), AI_RETRY__MAX_ATTEMPTS: "1" } });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { config: { pool_keys: unknown; retry: Record<string, unknown>; key_pool: Record<string, unknown> } };
    expect(out.config.pool_keys).toEqual({ openai: ["***", "***"], anthropic: ["***", "***", "***"] });
    expect(out.config.retry["deadline_ms"]).toBe(20000);
    expect(out.config.retry["max_attempts"]).toBe(1);
    expect(out.config.key_pool["selection"]).toBe("affinity");
    for (const k of [...OPENAI_KEYS, ...ANTHROPIC_KEYS]) expect(r.stdout + r.stderr).not.toContain(k);
  });

  // [what, top-level lines, tables, env, message]
  const bad: Array<[string, string, string, Record<string, string>, string]> = [
    ["a pool key entry that is a number", "", "[pool_keys]\nopenai = 42\n", {}, "pool_keys.openai: must be a string or an array of strings"],
    ["an empty array of pool keys", "", "[pool_keys]\nopenai = []\n", {}, "pool_keys.openai: an empty array"],
    ["an empty key inside the array", "", `[pool_keys]\nopenai = ["${POOL_SECRET}", ""]\n`, {}, "pool_keys.openai[1]: empty key"],
    ["a doubled comma in AI_POOL_KEY_OPENAI", "", "", { AI_POOL_KEY_OPENAI: `${POOL_SECRET},,sk-second` }, "pool_keys.openai[1]: empty key"],
    ["jitter other than full/none", "", `[pool_keys]\nopenai = "${POOL_SECRET}"\n[retry]\njitter = "some"\n`, {}, 'retry.jitter: "some" is not one of full, none'],
    ["budget_ratio above 1", "", `[pool_keys]\nopenai = "${POOL_SECRET}"\n[retry]\nbudget_ratio = 1.5\n`, {}, "retry.budget_ratio: must be a number in [0, 1]"],
    ["a zero cooldown", "", `[pool_keys]\nopenai = "${POOL_SECRET}"\n[key_pool]\ncooldown_ms = 0\n`, {}, "key_pool.cooldown_ms: must be an integer > 0"],
    ["an unknown key inside [retry]", "", `[pool_keys]\nopenai = "${POOL_SECRET}"\n[retry]\nmax_retries = 3\n`, {}, "retry.max_retries: unknown key in [retry]"],
    ["[retry] given as a string", 'retry = "fast"', `[pool_keys]\nopenai = "${POOL_SECRET}"\n`, {}, "retry: must be a table"],
    ["AI_RETRY__MAX_ATTEMPTS=0", "", `[pool_keys]\nopenai = "${POOL_SECRET}"\n`, { AI_RETRY__MAX_ATTEMPTS: "0" }, "AI_RETRY__MAX_ATTEMPTS: must be an integer > 0"],
  ];
  test.each(bad)("%s: exit 2, one stderr line naming the key, no key value anywhere", async (_what, extra, tables, env, message) => {
    const r = await runGatewayExpectExit({ config: baseConfig({ authorities: { openai: mock.authority }, extra, tables }), env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`config error: ${message}`);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).not.toContain('"listening"');
    expect(r.stdout + r.stderr).not.toContain(POOL_SECRET);
  });
});

// Virtual models (SPEC §11) through the real process: a config with [models], [provider_base_paths] and [prices]
// boots and check-config prints them; each bad alias, base path or price exits 2 with one stderr line naming the key
// (never a pool key).
describe("virtual models: [models], [provider_base_paths], [prices]", () => {
  const POOL = `[pool_keys]\ngroq = "${POOL_SECRET}"\ncerebras = "sk-cerebras-e2e"\nanthropic = "sk-ant-e2e"\n`;
  const GOOD = [
    POOL,
    "[provider_base_paths]",
    'myprov = "/api/v2"',
    "",
    "[models.smart]",
    'targets = ["groq/llama-3.3-70b-versatile", "cerebras/llama-3.3-70b"]',
    'strategy = "weighted"',
    "weights = [3, 1]",
    "",
    "[models.smart.retry]",
    "max_attempts = 2",
    "",
    '[prices."groq/llama-3.3-70b-versatile"]',
    "input = 0.59",
    "output = 0.79",
    "context_window = 131072",
  ].join("\n");

  test("a config with an alias, a base path and a price boots and still serves BYO traffic as before", async () => {
    await expectServes(startGateway({ config: baseConfig({ authorities: { openai: mock.authority, myprov: "127.0.0.1:9" }, tables: GOOD }) }));
  });

  test("check-config prints the alias (targets, strategy, weights, merged retry), the base paths and the prices, and no pool key", async () => {
    const path = writeTempConfig(baseConfig({ authorities: { myprov: "127.0.0.1:9" }, tables: GOOD }));
    const r = await runGatewayExpectExit({ args: ["check-config", "--config", path], env: { AI_PROVIDER_BASE_PATHS__GROQ: "/openai/v1" } });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { config: { models: Record<string, Record<string, unknown>>; provider_base_paths: unknown; prices: Record<string, unknown> } };
    expect(out.config.models["smart"]?.["targets"]).toEqual(["groq/llama-3.3-70b-versatile", "cerebras/llama-3.3-70b"]);
    expect(out.config.models["smart"]?.["strategy"]).toBe("weighted");
    expect(out.config.models["smart"]?.["weights"]).toEqual([3, 1]);
    expect((out.config.models["smart"]?.["retry"] as Record<string, unknown>)["max_attempts"]).toBe(2);
    expect(out.config.provider_base_paths).toEqual({ myprov: "/api/v2", groq: "/openai/v1" });
    expect(out.config.prices["groq/llama-3.3-70b-versatile"]).toEqual({ input: 0.59, output: 0.79, cache_read: 0.59, cache_write: 0.59, context_window: 131072, vision: false });
    expect(r.stdout + r.stderr).not.toContain(POOL_SECRET);
  });

  // [what, tables after the pool keys, message]
  const bad: Array<[string, string, string]> = [
    ["an unknown target provider", '[models.smart]\ntargets = ["groq/a", "nosuch/b"]\n', 'models.smart.targets[1]: unknown provider "nosuch"'],
    ["an alias named like a provider", '[models.groq]\ntargets = ["cerebras/b"]\n', "models.groq: the alias is named like the provider groq"],
    ["weights of the wrong length", '[models.smart]\ntargets = ["groq/a", "cerebras/b"]\nstrategy = "weighted"\nweights = [1]\n', "models.smart.weights: 1 weight(s) for 2 target(s)"],
    ["a target without /", '[models.smart]\ntargets = ["llama-3.3-70b"]\n', 'models.smart.targets[0]: "llama-3.3-70b" has no "/"'],
    ["a target provider with no pool key", '[models.smart]\ntargets = ["groq/a", "mistral/b"]\n', "models.smart.targets[1]: provider mistral has no pool key"],
    ["an unknown key in an alias", '[models.smart]\ntargets = ["groq/a"]\nfallbacks = 2\n', "models.smart.fallbacks: unknown key in [models.smart]"],
    ["a base path with a trailing /", '[provider_base_paths]\ngroq = "/openai/v1/"\n', 'provider_base_paths.groq: "/openai/v1/" must not end with /'],
    ["a price keyed without a provider", '[prices.gpt-4o]\ninput = 1\noutput = 4\n', 'prices.gpt-4o: the key must be "provider/model"'],
  ];
  test.each(bad)("%s: exit 2, one stderr line naming the key", async (_what, tables, message) => {
    const r = await runGatewayExpectExit({ config: baseConfig({ authorities: { openai: mock.authority }, tables: `${POOL}${tables}` }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`config error: ${message}`);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).not.toContain('"listening"');
    expect(r.stdout + r.stderr).not.toContain(POOL_SECRET);
  });

  test("a bad base path from the environment names the variable's entry", async () => {
    const r = await runGatewayExpectExit({ config: baseConfig({ authorities: { openai: mock.authority }, tables: POOL }), env: { AI_PROVIDER_BASE_PATHS__GROQ: "openai/v1" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config error: provider_base_paths.groq: "openai/v1" must start with /');
  });
});
