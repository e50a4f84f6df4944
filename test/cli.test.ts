// The command line (SPEC §1): keygen, mint, check-config, --version, --help, run as real processes
// (`bun src/main.ts …` from the repo root), plus one round trip keygen → mint → gateway → provider.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { formatPrivateKey, mint, parsePrivateKeyFile, PRIVATE_KEY_PREFIX, publicKeyFromSeed } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, makeTempDir, REPO_ROOT, runGatewayExpectExit, startGateway, writeTempConfig } from "./helpers/gateway.ts";
import { type MockProvider, startMockProvider } from "./helpers/mock-provider.ts";

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `bun src/main.ts ...args` from the repo root with a clean environment (no AI_* leaking in from outside). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const proc = Bun.spawn([process.execPath, "src/main.ts", ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/tmp", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(killer);
  return { code: proc.exitCode, stdout, stderr };
}

/** A failure a user can read: exit 2 (the command cannot run as given), exactly one `beyond-ai: …` line on stderr,
 * no JS stack trace, no token on stdout. */
function expectCleanFailure(r: CliResult): void {
  expect(r.code).toBe(2);
  expect(r.stderr.trim().length).toBeGreaterThan(0);
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(r.stderr).toMatch(/^beyond-ai: /);
  expect(r.stderr).not.toMatch(/^\s+at\s/m);
  expect(r.stderr).not.toMatch(/\.ts:\d+/);
  expect(r.stdout).not.toMatch(/^bai_v1\./m);
}

/** The `N = "<base64>"` line keygen prints for [signing_keys]. */
function signingLine(stdout: string): { line: string; kid: number; publicKey: string } {
  const m = /^(\d+) = "([A-Za-z0-9+/=_-]+)"$/m.exec(stdout);
  if (m === null) throw new Error(`no [signing_keys] line in keygen output:\n${stdout}`);
  return { line: m[0], kid: Number(m[1]), publicKey: m[2]! };
}

const gateways: Gateway[] = [];
let mock: MockProvider | undefined;

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await mock?.stop();
});

describe("keygen", () => {
  test("keygen --out, then mint --key-file, verifies through a gateway configured with the printed line", async () => {
    const dir = makeTempDir();
    const keyFile = join(dir, "signing.key");
    const kg = await cli(["keygen", "--kid", "5", "--out", keyFile]);
    expect(kg.code).toBe(0);
    const { line, kid } = signingLine(kg.stdout);
    expect(kid).toBe(5);
    const seedText = readFileSync(keyFile, "utf8").trim();
    expect(seedText.length).toBeGreaterThan(0);
    // With --out the private key goes only to the file.
    expect(kg.stdout).not.toContain(seedText);

    const mt = await cli(["mint", "--kid", "5", "--key-file", keyFile, "--tenant", "42", "--vpc", "7"]);
    expect(mt.code).toBe(0);
    const token = mt.stdout.trim();
    expect(token).toMatch(/^bai_v1\.5\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{86}$/);

    mock = startMockProvider();
    const g = await startGateway({
      config: baseConfig({
        authorities: { openai: mock.authority },
        // The keygen line pasted verbatim under [signing_keys], as an operator would.
        tables: `[pool_keys]\nopenai = "sk-cli-roundtrip-pool"\n\n[signing_keys]\n${line}`,
      }),
    });
    gateways.push(g);
    const res = await fetch(`${g.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(mock.requests.length).toBe(1);
    expect(mock.last().headers["authorization"]).toBe("Bearer sk-cli-roundtrip-pool");

    // A key minted from a different keygen run is not trusted by this gateway.
    const other = join(dir, "other.key");
    expect((await cli(["keygen", "--kid", "5", "--out", other])).code).toBe(0);
    const foreign = (await cli(["mint", "--kid", "5", "--key-file", other, "--tenant", "42", "--vpc", "7"])).stdout.trim();
    const bad = await fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${foreign}` }, body: "{}" });
    expect(bad.status).toBe(401);
    await bad.arrayBuffer();
    expect(mock.requests.length).toBe(1);
  });

  test("keygen --out writes the private key file with mode 0600", async () => {
    const keyFile = join(makeTempDir(), "k.key");
    const r = await cli(["keygen", "--out", keyFile]);
    expect(r.code).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(() => parsePrivateKeyFile(readFileSync(keyFile, "utf8"))).not.toThrow();
  });

  test("keygen --out writes the self-describing key format, whose seed belongs to the printed public key", async () => {
    const keyFile = join(makeTempDir(), "k.key");
    const r = await cli(["keygen", "--kid", "4", "--out", keyFile]);
    expect(r.code).toBe(0);
    const text = readFileSync(keyFile, "utf8");
    expect(text).toMatch(new RegExp(`^${PRIVATE_KEY_PREFIX}[A-Za-z0-9_-]{43}\n$`));
    const { seed, legacy } = parsePrivateKeyFile(text);
    expect(legacy).toBe(false);
    expect(Buffer.from(publicKeyFromSeed(seed)).toString("base64")).toBe(signingLine(r.stdout).publicKey);
  });

  test("keygen --out refuses an existing file: exit 2 naming it, the old key untouched, no [signing_keys] line", async () => {
    const keyFile = join(makeTempDir(), "kid2.key");
    const old = formatPrivateKey(new Uint8Array(32).fill(3));
    writeFileSync(keyFile, old, { mode: 0o600 });
    const r = await cli(["keygen", "--kid", "2", "--out", keyFile]);
    expectCleanFailure(r);
    expect(r.stderr).toContain(keyFile);
    expect(r.stderr).toContain("--force");
    expect(r.stdout).toBe("");
    expect(readFileSync(keyFile, "utf8")).toBe(old);
  });

  test("keygen --out --force replaces an existing, world-readable file with a new key at mode 0600, leaving no temp file", async () => {
    const dir = makeTempDir();
    const keyFile = join(dir, "existing.key");
    writeFileSync(keyFile, "old\n");
    chmodSync(keyFile, 0o644);
    const r = await cli(["keygen", "--out", keyFile, "--force"]);
    expect(r.code).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const { seed } = parsePrivateKeyFile(readFileSync(keyFile, "utf8"));
    expect(Buffer.from(publicKeyFromSeed(seed)).toString("base64")).toBe(signingLine(r.stdout).publicKey);
    expect(readdirSync(dir)).toEqual(["existing.key"]);
  });

  test("keygen --out into a missing directory fails (exit 2, naming it) before printing any [signing_keys] line", async () => {
    const missingDir = join(makeTempDir(), "nope", "dir");
    const r = await cli(["keygen", "--out", join(missingDir, "k.key")]);
    expectCleanFailure(r);
    expect(r.stderr).toContain(missingDir);
    expect(r.stdout).toBe("");
  });

  test("keygen without --out prints a private key that belongs to the printed public key", async () => {
    const r = await cli(["keygen", "--kid", "9"]);
    expect(r.code).toBe(0);
    const { kid, publicKey } = signingLine(r.stdout);
    expect(kid).toBe(9);
    const lines = r.stdout.trim().split("\n");
    const priv = lines.at(-1)!;
    // The private key follows a comment line that says what it is.
    expect(lines.at(-2)).toMatch(/^#.*private/i);
    expect(priv.startsWith(PRIVATE_KEY_PREFIX)).toBe(true);
    // Saved as printed, comment included, it is a key file mint reads.
    const { seed } = parsePrivateKeyFile(`${lines.at(-2)}\n${priv}\n`);
    expect(Buffer.from(publicKeyFromSeed(seed)).toString("base64")).toBe(Buffer.from(publicKey, "base64").toString("base64"));
  });

  test("two keygen runs produce different keys", async () => {
    const a = signingLine((await cli(["keygen"])).stdout).publicKey;
    const b = signingLine((await cli(["keygen"])).stdout).publicKey;
    expect(a).not.toBe(b);
  });
});

describe("mint", () => {
  const dir = makeTempDir();
  const seed = new Uint8Array(32).fill(7);
  const keyFile = join(dir, "seed.key");
  writeFileSync(keyFile, `${Buffer.from(seed).toString("base64url")}\n`, { mode: 0o600 });

  test("mint is deterministic and matches the library's mint; a different tenant gives a different token", async () => {
    const args = ["mint", "--kid", "3", "--key-file", keyFile, "--tenant", "18446744073709551615", "--vpc", "12"];
    const a = await cli(args);
    const b = await cli(args);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.stdout.trim()).toBe(b.stdout.trim());
    expect(a.stdout.trim()).toBe(mint(3, seed, 18446744073709551615n, 12n));

    const c = await cli(["mint", "--kid", "3", "--key-file", keyFile, "--tenant", "18446744073709551614", "--vpc", "12"]);
    expect(c.code).toBe(0);
    expect(c.stdout.trim()).not.toBe(a.stdout.trim());
    expect(c.stdout.trim()).toMatch(/^bai_v1\.3\./);
  });

  for (const tenant of ["-1", "18446744073709551616", "abc"]) {
    test(`mint with --tenant ${tenant} fails with a message naming the tenant, no stack trace`, async () => {
      const r = await cli(["mint", "--kid", "1", "--key-file", keyFile, "--tenant", tenant, "--vpc", "1"]);
      expectCleanFailure(r);
      expect(r.stdout).toBe("");
      expect(r.stderr.toLowerCase()).toContain("tenant");
    });
  }

  test("mint without --key-file fails naming --key-file, no stack trace", async () => {
    const r = await cli(["mint", "--kid", "1", "--tenant", "1", "--vpc", "1"]);
    expectCleanFailure(r);
    expect(r.stderr).toContain("--key-file");
  });

  test("mint with a --key-file that does not exist fails with the path in the message, no stack trace", async () => {
    const missing = join(dir, "nope.key");
    const r = await cli(["mint", "--kid", "1", "--key-file", missing, "--tenant", "1", "--vpc", "1"]);
    expectCleanFailure(r);
    expect(r.stderr).toContain(missing);
  });

  test("mint reads the prefixed key file keygen writes, and signs the same token as from the legacy bare seed file", async () => {
    const prefixed = join(dir, "prefixed.key");
    writeFileSync(prefixed, formatPrivateKey(seed), { mode: 0o600 });
    const a = await cli(["mint", "--kid", "3", "--key-file", prefixed, "--tenant", "1", "--vpc", "2"]);
    const b = await cli(["mint", "--kid", "3", "--key-file", keyFile, "--tenant", "1", "--vpc", "2"]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.stdout.trim()).toBe(mint(3, seed, 1n, 2n));
    expect(b.stdout.trim()).toBe(a.stdout.trim());
  });

  const publicB64 = Buffer.from(publicKeyFromSeed(seed)).toString("base64");
  const publicFiles: Array<[string, string]> = [
    ["the public key as keygen prints it (base64, padded)", `${publicB64}\n`],
    ["the whole [signing_keys] line", `3 = "${publicB64}"\n`],
  ];
  for (const [what, content] of publicFiles) {
    test(`mint refuses a key file holding ${what}: exit 2, says it is a public key, no token`, async () => {
      const f = join(makeTempDir(), "public.key");
      writeFileSync(f, content);
      const r = await cli(["mint", "--kid", "3", "--key-file", f, "--tenant", "1", "--vpc", "2"]);
      expectCleanFailure(r);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/public key/);
      expect(r.stderr).toContain("--key-file");
    });
  }

  test("mint refuses a bare base64url public key when the config it sees lists it under [signing_keys]", async () => {
    const f = join(makeTempDir(), "public-url.key");
    writeFileSync(f, `${Buffer.from(publicKeyFromSeed(seed)).toString("base64url")}\n`);
    const cfg = writeTempConfig(`[signing_keys]\n3 = "${publicB64}"\n`);
    const r = await cli(["mint", "--kid", "3", "--key-file", f, "--tenant", "1", "--vpc", "2", "--config", cfg]);
    expectCleanFailure(r);
    expect(r.stderr).toContain("public key of [signing_keys] kid 3");
  });

  describe("mint checks the key against the config it can see", () => {
    const otherPublic = Buffer.from(publicKeyFromSeed(new Uint8Array(32).fill(9))).toString("base64");
    const args = (kid: string) => ["mint", "--kid", kid, "--key-file", keyFile, "--tenant", "1", "--vpc", "2"];

    test("no warning when [signing_keys] has the key's public half under --kid (--config, $AI_CONFIG_PATH, ./config.toml)", async () => {
      const cfg = writeTempConfig(`[signing_keys]\n3 = "${publicB64}"\n`);
      for (const r of [await cli([...args("3"), "--config", cfg]), await cli(args("3"), { AI_CONFIG_PATH: cfg })]) {
        expect(r.code).toBe(0);
        expect(r.stderr).toBe("");
        expect(r.stdout.trim()).toBe(mint(3, seed, 1n, 2n));
      }
    });

    const mismatches: Array<[string, string, string, RegExp]> = [
      ["the key is configured under another kid", `[signing_keys]\n3 = "${publicB64}"`, "4", /kid 3 there, not kid 4/],
      ["--kid holds a different public key", `[signing_keys]\n3 = "${otherPublic}"`, "3", /kid 3 .* is a different public key/],
      ["the config has no such kid", `[signing_keys]\n8 = "${otherPublic}"`, "3", /no \[signing_keys\] kid 3/],
      ["the config has no [signing_keys] at all", `rate_limit_rps = 5`, "3", /no \[signing_keys\] kid 3/],
    ];
    for (const [what, toml, kid, why] of mismatches) {
      test(`a warning on stderr, and still the token, when ${what}`, async () => {
        const cfg = writeTempConfig(`${toml}\n`);
        const r = await cli([...args(kid), "--config", cfg]);
        expect(r.code).toBe(0);
        expect(r.stdout.trim()).toBe(mint(Number(kid), seed, 1n, 2n));
        expect(r.stderr).toMatch(/^beyond-ai: warning: .*refuse the minted key/);
        expect(r.stderr).toMatch(why);
        expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      });
    }

    test("./config.toml in the working directory is the config mint checks against, as for serve", async () => {
      const cwd = makeTempDir();
      writeFileSync(join(cwd, "config.toml"), `[signing_keys]\n3 = "${otherPublic}"\n`);
      const proc = Bun.spawn([process.execPath, join(REPO_ROOT, "src", "main.ts"), ...args("3")], {
        cwd,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      expect(await proc.exited).toBe(0);
      expect(out.trim()).toBe(mint(3, seed, 1n, 2n));
      expect(err).toMatch(/warning: .*different public key/);
    });

    test("an explicit --config that does not load is a bad config: exit 2, no token", async () => {
      const missing = join(makeTempDir(), "missing.toml");
      const r = await cli([...args("3"), "--config", missing]);
      expectCleanFailure(r);
      expect(r.stderr).toContain(missing);
    });
  });

  test("mint with a key file that is not a 32-byte seed fails without echoing the file", async () => {
    const bad = join(dir, "bad.key");
    writeFileSync(bad, "c2VjcmV0LWJ1dC1zaG9ydA\n");
    const r = await cli(["mint", "--kid", "1", "--key-file", bad, "--tenant", "1", "--vpc", "1"]);
    expectCleanFailure(r);
    expect(r.stderr).not.toContain("c2VjcmV0LWJ1dC1zaG9ydA");
  });
});

describe("check-config", () => {
  const POOL_OPENAI = "sk-check-config-openai-secret";
  const POOL_ANTHROPIC = "sk-ant-check-config-secret";
  const POOL_ENV = "sk-env-groq-check-secret";
  const NATS_CREDS = Buffer.from("-----BEGIN NATS USER JWT-----\ncheck-config-creds-secret\n").toString("base64");

  const POOL_OPENAI_2 = "sk-check-config-openai-second";
  const POOL_ENV_2 = "sk-env-groq-check-second";

  test("prints the effective config with every pool key (one *** per key, so the count shows) and nats_creds as *** and exits 0", async () => {
    const path = writeTempConfig(
      [
        `listen = "127.0.0.1:18080"`,
        `nats_creds = "${NATS_CREDS}"`,
        `rate_limit_rps = 5`,
        "",
        "[pool_keys]",
        `openai = ["${POOL_OPENAI}", "${POOL_OPENAI_2}"]`,
        `anthropic = "${POOL_ANTHROPIC}"`,
      ].join("\n"),
    );
    const r = await cli(["check-config", "--config", path], { AI_POOL_KEY_GROQ: `${POOL_ENV},${POOL_ENV_2}` });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { source: string; config: Record<string, unknown> };
    expect(out.source).toBe(path);
    expect(out.config["listen"]).toBe("127.0.0.1:18080");
    expect(out.config["rate_limit_rps"]).toBe(5);
    expect(out.config["nats_creds"]).toBe("***");
    expect(out.config["pool_keys"]).toEqual({ openai: ["***", "***"], anthropic: ["***"], groq: ["***", "***"] });
    for (const secret of [POOL_OPENAI, POOL_OPENAI_2, POOL_ANTHROPIC, POOL_ENV, POOL_ENV_2, NATS_CREDS, "check-config-creds-secret"]) {
      expect(r.stdout).not.toContain(secret);
      expect(r.stderr).not.toContain(secret);
    }
  });

  test("prints [key_pool] and [retry] with every value, the file's and the environment's merged over the defaults", async () => {
    const path = writeTempConfig(`[key_pool]\nselection = "round_robin"\ncooldown_ms = 1000\n\n[retry]\nmax_attempts = 3\njitter = "none"\n`);
    const r = await cli(["check-config", "--config", path], { AI_RETRY__BUDGET_RATIO: "0.5", AI_KEY_POOL__DEAD_KEY_MS: "60000" });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { config: Record<string, unknown> };
    expect(out.config["key_pool"]).toEqual({ selection: "round_robin", cooldown_ms: 1000, cooldown_max_ms: 60000, dead_key_ms: 60000 });
    expect(out.config["retry"]).toEqual({
      max_attempts: 3,
      initial_backoff_ms: 200,
      multiplier: 1.5,
      max_backoff_ms: 10000,
      jitter: "none",
      max_retry_after_ms: 10000,
      deadline_ms: 30000,
      budget_ratio: 0.5,
      budget_min_per_sec: 5,
      max_replay_bytes: 1048576,
      replay_pool_bytes: 134217728,
      commit_hold_ms: 1500,
      commit_hold_bytes: 16384,
    });
  });

  test("nats_creds from the environment is redacted too", async () => {
    const path = writeTempConfig(`listen = "127.0.0.1:18081"\n`);
    const r = await cli(["check-config", "--config", path], { AI_NATS_CREDS: NATS_CREDS });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { config: Record<string, unknown> };
    expect(out.config["nats_creds"]).toBe("***");
    expect(r.stdout + r.stderr).not.toContain(NATS_CREDS);
  });

  const badConfigs: Array<[string, string, string]> = [
    ["wrong type", `rate_limit_rps = "fast"`, "rate_limit_rps"],
    ["unknown top-level key", `rate_limt_rps = 5`, "rate_limt_rps"],
    ["zero connect timeout", `connect_timeout_secs = 0`, "connect_timeout_secs"],
    ["signing key that is not 32 bytes", `[signing_keys]\n1 = "c2hvcnQ="`, "signing_keys"],
    ["provider dialect outside openai|anthropic", `[provider_authorities]\nacme = "127.0.0.1:9"\n\n[provider_dialects]\nacme = "gemini"`, "provider_dialects"],
    ["retry jitter outside full|none", `[retry]\njitter = "some"`, 'retry.jitter: "some" is not one of full, none'],
    ["unknown key inside [key_pool]", `[key_pool]\nstrategy = "affinity"`, "key_pool.strategy: unknown key in [key_pool]"],
  ];
  for (const [what, toml, key] of badConfigs) {
    test(`bad config (${what}) exits 2 (as serve does) with one line naming ${key}, and no secret`, async () => {
      // Every bad config also carries a pool key, which must not leak into the error.
      const path = writeTempConfig(`${toml}\n\n[pool_keys]\nopenai = "${POOL_OPENAI}"\n`);
      const r = await cli(["check-config", "--config", path]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(key);
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(r.stderr).not.toMatch(/^\s+at\s/m);
      expect(r.stdout + r.stderr).not.toContain(POOL_OPENAI);
    });
  }

  test("check-config with a config path that does not exist exits 2 naming the path", async () => {
    const missing = join(makeTempDir(), "missing.toml");
    const r = await cli(["check-config", "--config", missing]);
    expectCleanFailure(r);
    expect(r.stderr).toContain(missing);
  });

  test("a private key pasted into [signing_keys] is refused as a private key (exit 2), without printing it", async () => {
    const priv = formatPrivateKey(new Uint8Array(32).fill(5)).trim();
    const path = writeTempConfig(`[signing_keys]\n1 = "${priv}"\n`);
    const r = await cli(["check-config", "--config", path]);
    expectCleanFailure(r);
    expect(r.stderr).toContain("signing_keys.1");
    expect(r.stderr).toMatch(/private key/);
    expect(r.stderr).not.toContain(priv.slice(PRIVATE_KEY_PREFIX.length));
  });
});

describe("doctor", () => {
  test("doctor with a bad config exits 2 (a bad config everywhere), one line naming the key", async () => {
    const r = await cli(["doctor", "--config", writeTempConfig(`rate_limit_rps = "fast"\n`)]);
    expectCleanFailure(r);
    expect(r.stderr).toContain("rate_limit_rps");
  });
});

describe("strict command lines: unknown flags and stray arguments are errors, never ignored", () => {
  const cases: Array<[string[], RegExp]> = [
    [["serve", "--port", "9000"], /serve: unknown flag --port \(usage: beyond-ai \[serve\] \[--config PATH\]\)/],
    [["--port=9000"], /serve: unknown flag --port/],
    [["check-config", "--verbose"], /check-config: unknown flag --verbose \(usage: beyond-ai check-config/],
    [["check-config", "extra.toml"], /check-config: unexpected argument "extra.toml" \(usage: /],
    [["doctor", "--out", "x"], /doctor: unknown flag --out \(usage: beyond-ai doctor/],
    [["keygen", "--kid"], /keygen: --kid needs a value \(usage: beyond-ai keygen/],
    [["keygen", "--out", "--force"], /keygen: --out needs a value/],
    [["keygen", "--force"], /keygen: --force only applies with --out/],
    [["keygen", "--force=yes", "--out", "x.key"], /keygen: --force takes no value/],
    [["keygen", "--tenant", "1"], /keygen: unknown flag --tenant/],
    [["mint", "--kid", "1", "--kid", "2"], /mint: --kid given twice/],
    [["mint", "--kid", "1", "--tenant", "1", "--vpc", "1"], /mint: --key-file is required \(usage: beyond-ai mint --kid N --key-file FILE/],
    [["serve", "serve"], /serve: unexpected argument "serve"/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["keygen", "--kid", "abc"], /keygen: --kid: invalid kid "abc"/],
  ];
  for (const [args, message] of cases) {
    test(`${args.join(" ")} → exit 2, one line: ${message.source.slice(0, 60)}`, async () => {
      const cwd = makeTempDir();
      const proc = Bun.spawn([process.execPath, join(REPO_ROOT, "src", "main.ts"), ...args], {
        cwd,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
        stdout: "pipe",
        stderr: "pipe",
      });
      const killer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      await proc.exited;
      clearTimeout(killer);
      const r = { code: proc.exitCode, stdout, stderr };
      expectCleanFailure(r);
      expect(r.stderr).toMatch(message);
      // Nothing ran: no gateway started, no key file written.
      expect(r.stdout).not.toContain('"listening"');
      expect(readdirSync(cwd)).toEqual([]);
    });
  }

  test("flags may come before the command and as --flag=value", async () => {
    const path = writeTempConfig(`rate_limit_rps = 7\n`);
    for (const args of [["--config", path, "check-config"], ["check-config", `--config=${path}`], ["check-config", "-c", path]]) {
      const r = await cli(args);
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { config: Record<string, unknown> }).config["rate_limit_rps"]).toBe(7);
    }
  });
});

describe("serve: a listen address that cannot be bound", () => {
  let blocker: Server;
  let taken = "";
  const servers: Server[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });

  for (const key of ["listen", "metrics_listen"] as const) {
    test(`${key} on a port in use: exit 2, one line naming ${key} and the address`, async () => {
      blocker = createServer();
      servers.push(blocker);
      await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
      const addr = blocker.address();
      if (addr === null || typeof addr === "string") throw new Error("no port");
      taken = `127.0.0.1:${addr.port}`;
      const config = baseConfig().replace(new RegExp(`^${key} = .*$`, "m"), `${key} = "${taken}"`);
      expect(config).toContain(`${key} = "${taken}"`);
      const r = await runGatewayExpectExit({ config });
      expect(r.code).toBe(2);
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`${key} = "${taken}"`);
      expect(lines[0]).toMatch(/^beyond-ai: cannot start: .*already in use/);
      expect(r.stdout).not.toContain('"listening"');
    });
  }
});

describe("--version and --help", () => {
  test("--version prints the package.json version and exits 0", async () => {
    const r = await cli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split(/\s+/)).toContain(pkg.version);
  });

  test("--help prints usage naming every command and exits 0", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/usage/i);
    for (const cmd of ["serve", "keygen", "mint", "check-config", "--config", "--version"]) expect(r.stdout).toContain(cmd);
  });
});
