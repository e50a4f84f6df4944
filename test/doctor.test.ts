import { afterAll, expect, test } from "bun:test";
import { MAIN_TS, REPO_ROOT, writeTempConfig } from "./helpers/gateway.ts";
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
  const { keygen } = await import("../src/keys.ts");
  const key = keygen().publicKey;
  const toml = `nats_url = "nats://127.0.0.1:${port}"\nupstream_tls = false\n[provider_authorities]\n${LOOPBACK_AUTHORITIES}\n[pool_keys]\nopenai = "sk-doctor-secret"\n[signing_keys]\n1 = "${Buffer.from(key).toString("base64")}"\n`;
  let r = await doctor(toml);
  for (let i = 0; i < 20 && r.out.includes("[FAIL] nats"); i++) {
    await Bun.sleep(100); // nats-server may still be starting
    r = await doctor(toml);
  }
  expect(r.out).not.toContain("[FAIL]");
  expect(r.out).toContain("[ok] signing_keys: 1 key(s): kid 1");
  expect(r.out).toContain("[ok] pool_keys: pool keys for: openai");
  expect(r.code).toBe(0);
}, 20000);
