import { afterAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { MAIN_TS, makeTempDir, REPO_ROOT, writeTempConfig } from "./helpers/gateway.ts";
import { freePort, NATS_SERVER } from "./helpers/nats.ts";

const LOOPBACK_AUTHORITIES = ["openai", "anthropic", "openrouter", "fireworks", "groq", "deepseek", "together", "cerebras", "mistral", "xai"]
  .map((n) => `${n} = "127.0.0.1:9"`)
  .join("\n");

async function doctor(configToml: string): Promise<{ code: number; out: string }> {
  const path = writeTempConfig(configToml);
  const p = Bun.spawn([process.execPath, MAIN_TS, "doctor", "--config", path], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const out = (await new Response(p.stdout).text()) + (await new Response(p.stderr).text());
  return { code: await p.exited, out };
}

let nats: ReturnType<typeof Bun.spawn> | undefined;
afterAll(() => nats?.kill());

test("doctor fails with a hint when NATS is unreachable and no signing keys exist, and never prints a pool key", async () => {
  const r = await doctor(`nats_url = "nats://127.0.0.1:1"\nupstream_tls = false\n[provider_authorities]\n${LOOPBACK_AUTHORITIES}\n[pool_keys]\nopenai = "sk-doctor-secret"\n`);
  expect(r.code).toBe(1);
  expect(r.out).toContain("== beyond-ai doctor ==");
  expect(r.out).toMatch(/\[FAIL\] nats: cannot reach/);
  expect(r.out).toMatch(/\[FAIL\] signing_keys: no \[signing_keys\]\n\s+hint: every bai_ managed key will get 401/);
  expect(r.out).toContain("[ok] dns openai: 127.0.0.1");
  expect(r.out).not.toContain("sk-doctor-secret");
});

test("doctor passes every check with NATS up, a signing key and a pool key", async () => {
  const port = await freePort();
  nats = Bun.spawn([NATS_SERVER, "-a", "127.0.0.1", "-p", String(port)], { stdout: "ignore", stderr: "ignore" });
  const { keygen } = await import("../src/controls/keys.ts");
  const key = keygen().publicKey;
  const toml = `nats_url = "nats://127.0.0.1:${port}"\nupstream_tls = false\n[provider_authorities]\n${LOOPBACK_AUTHORITIES}\n[pool_keys]\nopenai = "sk-doctor-secret"\n[signing_keys]\n1 = "${Buffer.from(key).toString("base64")}"\n`;
  let r = await doctor(toml);
  for (let i = 0; i < 20 && r.out.includes("[FAIL] nats"); i++) {
    await Bun.sleep(100); // nats-server may still be starting
    r = await doctor(toml);
  }
  expect(r.out).not.toContain("[FAIL]");
  expect(r.out).toContain("[ok] signing_keys: 1 key(s): kid 1");
  expect(r.out).toContain("[ok] pool_keys: pool keys for: openai (1 key)");
  expect(r.code).toBe(0);
}, 20000);

async function doctorWithEnv(configToml: string, env: Record<string, string>): Promise<{ code: number; out: string }> {
  const path = writeTempConfig(configToml);
  const p = Bun.spawn([process.execPath, MAIN_TS, "doctor", "--config", path], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "", ...env } });
  const out = (await new Response(p.stdout).text()) + (await new Response(p.stderr).text());
  return { code: await p.exited, out };
}

const BASE = `upstream_tls = false\n[provider_authorities]\n${LOOPBACK_AUTHORITIES}\n`;

test("doctor redacts the password and the token inside nats_url, whatever characters the password has", async () => {
  for (const url of ["nats://gw:doctor-pass-77@127.0.0.1:1", "nats://doctor-token-91@127.0.0.1:1", "gw:doctor-pass-77#/x@127.0.0.1:1"]) {
    const r = await doctor(`nats_url = ${JSON.stringify(url)}\n${BASE}`);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\[FAIL\] nats: cannot reach (nats:\/\/)?\*\*\*@127\.0\.0\.1:1/);
    expect(r.out).not.toContain("doctor-pass-77");
    expect(r.out).not.toContain("doctor-token-91");
  }
});

test('doctor reports nats_url = "" as NATS disabled, not as a failure', async () => {
  const r = await doctor(`nats_url = ""\n${BASE}`);
  expect(r.out).toContain('[ok] nats: disabled (nats_url = "")');
  expect(r.out).not.toContain("[FAIL] nats");
});

test("doctor fails the snapshot check when snapshot_path's directory does not exist, and passes it once it does", async () => {
  const dir = makeTempDir();
  const path = join(dir, "missing-dir", "deny.snap");
  const r = await doctor(`nats_url = ""\nsnapshot_path = ${JSON.stringify(path)}\n${BASE}`);
  expect(r.code).toBe(1);
  expect(r.out).toContain(`[FAIL] snapshot_path: directory ${join(dir, "missing-dir")} does not exist`);
  expect(r.out).toMatch(/hint: create it \(mkdir -p .*\); until then the deny-set snapshot is never written/);

  mkdirSync(join(dir, "missing-dir"));
  const ok = await doctor(`nats_url = ""\nsnapshot_path = ${JSON.stringify(path)}\n${BASE}`);
  expect(ok.out).toContain(`[ok] snapshot_path: ${path}: no snapshot yet`);
});

test("doctor lists an AI_* variable that looks like a typo as a failed check naming the intended variable", async () => {
  const r = await doctorWithEnv(`nats_url = ""\n${BASE}`, { AI_RATE_LIMT_RPS: "5" });
  expect(r.code).toBe(1);
  expect(r.out).toContain("[FAIL] env: unknown environment variable AI_RATE_LIMT_RPS is ignored: did you mean AI_RATE_LIMIT_RPS?");
});

test("doctor's pool_keys line says how many keys each provider has, and never prints one", async () => {
  const r = await doctorWithEnv(`nats_url = ""\n${BASE}[pool_keys]\nopenai = ["sk-doctor-pool-1", "sk-doctor-pool-2", "sk-doctor-pool-3"]\n`, {
    AI_POOL_KEY_ANTHROPIC: "sk-doctor-ant-1,sk-doctor-ant-2",
  });
  expect(r.out).toContain("[ok] pool_keys: pool keys for: openai (3 keys), anthropic (2 keys)");
  expect(r.out).not.toContain("sk-doctor-");
});

test("doctor lists each virtual model with its targets and strategy", async () => {
  const r = await doctor(
    `nats_url = ""\nupstream_tls = false\n[provider_authorities]\n${LOOPBACK_AUTHORITIES}\n[pool_keys]\ngroq = "sk-doctor-secret"\ncerebras = "sk-doctor-c"\n[models.smart]\ntargets = ["groq/llama-3.3-70b-versatile", "cerebras/llama-3.3-70b"]\nstrategy = "latency"\n`,
  );
  expect(r.out).toContain("[ok] models: 1 virtual model(s): smart → groq/llama-3.3-70b-versatile, cerebras/llama-3.3-70b (latency)");
  expect(r.out).not.toContain("sk-doctor-secret");
});
