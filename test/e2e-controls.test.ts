// End to end, the gateway's controls (SPEC §2, §4, §7, §8, §9): a real gateway process, a real nats-server
// with JetStream (started, killed and restarted here on a loopback port with its own store directory) and the
// recording mock provider. Pins the deny-set (402/403 in both dialects, applied within 1 s, delete/purge restore,
// nothing forwarded), fail-open when NATS dies or is absent, gap-free catch-up after a reconnect, the on-disk
// snapshot across a restart with NATS down, the two rate-limit tiers, the per-provider circuit breaker and the
// request-body cap (declared and streamed).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type KV, type NatsConnection } from "nats";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSnapshot } from "../src/controls/denyset.ts";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, makeTempDir, metricValue, rawHttp } from "./helpers/gateway.ts";
import { type MockProvider } from "./helpers/mock-provider.ts";
import { NatsServer, waitFor } from "./helpers/nats.ts";
import { tracked } from "./helpers/tracked.ts";
import { type Dialect, expectGatewayError, type Reply, toReply } from "./helpers/replies.ts";

const BUCKET = "ai-gateway";
const OPENAI_POOL = "sk-controls-openai-pool";
const ANTHROPIC_POOL = "sk-controls-anthropic-pool";
const DENIED_MSG = "tenant is over limit or suspended";

const signer = keygen();
const PUB = Buffer.from(signer.publicKey).toString("base64");
const managed = (tenant: number | bigint, vpc = 7n): string => mint(1, signer.seed, BigInt(tenant), vpc);

const OPENAI_CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const ANTHROPIC_MSG = JSON.stringify({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A separate connection, the way the control plane writes holds. */
class Admin {
  private constructor(
    readonly nc: NatsConnection,
    readonly kv: KV,
  ) {}

  static async open(url: string): Promise<Admin> {
    const nc = await connect({ servers: url, reconnect: false });
    const kv = await nc.jetstream().views.kv(BUCKET, { history: 1 });
    return new Admin(nc, kv);
  }

  put(tenant: number, value: string | Uint8Array): Promise<number> {
    return this.kv.put(`blackhole.${tenant}`, typeof value === "string" ? new TextEncoder().encode(value) : value);
  }

  del(tenant: number): Promise<void> {
    return this.kv.delete(`blackhole.${tenant}`);
  }

  purge(tenant: number): Promise<void> {
    return this.kv.purge(`blackhole.${tenant}`);
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => {});
  }
}

/** One chat request with `token`: OpenAI dialect (Bearer on /v1/chat/completions) or Anthropic (x-api-key on /v1/messages). */
async function call(g: Gateway, token: string, dialect: Dialect = "openai", extra: Record<string, string> = {}): Promise<Reply> {
  const res =
    dialect === "openai"
      ? await fetch(`${g.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...extra },
          body: OPENAI_CHAT,
        })
      : await fetch(`${g.url}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": token, "anthropic-version": "2023-06-01", ...extra },
          body: ANTHROPIC_MSG,
        });
  return toReply(res);
}

async function post(g: Gateway, path: string, headers: Record<string, string>, body: string = OPENAI_CHAT): Promise<Reply> {
  return toReply(await fetch(g.url + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body }));
}

/** Repeats `attempt` until it answers `want` or `timeoutMs` passes; returns the last reply. */
async function pollStatus(attempt: () => Promise<Reply>, want: number, timeoutMs: number, everyMs = 25): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await attempt();
    if (r.status === want || Date.now() > deadline) return r;
    await sleep(everyMs);
  }
}

async function readyz(g: Gateway): Promise<{ status: number; body: { status?: string } }> {
  const res = await fetch(`${g.metricsUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as { status?: string } };
}

const metric = (g: Gateway, name: string, labels: Record<string, string> = {}): Promise<number> => metricValue(g.metricsUrl, name, labels);
const rejections = (g: Gateway, reason: string): Promise<number> => metric(g, "ai_rejections_total", { reason });

async function waitReady(g: Gateway, timeoutMs = 10_000): Promise<void> {
  await waitFor("gateway /readyz ok (NATS connected)", async () => (await readyz(g)).body.status === "ok", timeoutMs, 50);
}

function keysTables(): string {
  return ["[pool_keys]", `openai = "${OPENAI_POOL}"`, `anthropic = "${ANTHROPIC_POOL}"`, "", "[signing_keys]", `1 = "${PUB}"`].join("\n");
}

/** The settings as TOML lines appended through `extra`, with baseConfig's own line for the same key dropped
 * (TOML forbids a second definition; baseConfig's lines come first, before `extra`). */
function withSettings(base: (extra: string) => string, settings: Record<string, string | number>): string {
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`);
  let text = base(lines.join("\n"));
  for (const key of Object.keys(settings)) {
    const re = new RegExp(`^${key} = .*\n`, "gm");
    const first = re.exec(text);
    if (first !== null && re.exec(text) !== null) text = text.slice(0, first.index) + text.slice(first.index + first[0].length);
  }
  return text;
}

function gatewayConfig(mock: MockProvider, settings: Record<string, string | number> = {}): string {
  return withSettings((extra) => baseConfig({ authorities: { openai: mock.authority, anthropic: mock.authority }, extra, tables: keysTables() }), settings);
}

const { launch, newMock, newNats } = tracked();

// ---------------------------------------------------------------------------------------------

describe("deny-set over a live NATS", () => {
  const T = 1001; // the tenant that gets denied, allowed again, denied again
  const OTHER = 1002; // never denied
  const HELD = 1003; // denied before NATS dies: must stay denied while it is down
  const OLD = 1004; // denied before NATS dies, deleted while the gateway is away
  const NEW = [1005, 1006, 1007] as const; // written while the gateway is away
  const BYO = "sk-byo-controls-deny";

  let nats: NatsServer;
  let admin: Admin;
  let mock: MockProvider;
  let gw: Gateway;

  beforeAll(async () => {
    nats = await newNats();
    mock = newMock();
    gw = await launch(gatewayConfig(mock, { nats_url: nats.url }));
    await waitReady(gw);
    admin = await Admin.open(nats.url);
  }, 25_000);

  afterAll(async () => {
    await admin?.close();
  });

  /** Other tenants and BYO traffic still reach the provider. */
  async function expectOthersServed(): Promise<void> {
    expect((await call(gw, managed(OTHER))).status).toBe(200);
    expect((await call(gw, managed(OTHER), "anthropic")).status).toBe(200);
    expect((await call(gw, BYO)).status).toBe(200);
  }

  test("NATS connected: /readyz ok, ai_nats_connected 1, empty deny-set, managed traffic flows", async () => {
    const r = await readyz(gw);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("ok");
    expect(await metric(gw, "ai_nats_connected")).toBe(1);
    expect(await metric(gw, "ai_deny_set_size")).toBe(0);
    expect((await call(gw, managed(T))).status).toBe(200);
    await expectOthersServed();
  });

  test("blackhole.<tenant> = spend: 402 access_denied in both dialects within 1 s, nothing forwarded", async () => {
    const spendBefore = await rejections(gw, "deny_spend");
    await admin.put(T, "spend");
    const first = await pollStatus(() => call(gw, managed(T)), 402, 1000);
    expectGatewayError(first, "openai", 402, "access_denied", DENIED_MSG);
    expect((first.json as { error: { code: string } }).error.code).toBe("access_denied");

    const seen = mock.requests.length;
    expectGatewayError(await call(gw, managed(T)), "openai", 402, "access_denied", DENIED_MSG);
    expectGatewayError(await call(gw, managed(T), "anthropic"), "anthropic", 402, "access_denied", DENIED_MSG);
    // Another VPC of the same tenant is the same tenant.
    expectGatewayError(await call(gw, managed(T, 99n)), "openai", 402, "access_denied", DENIED_MSG);
    expect(mock.requests.length).toBe(seen);

    expect(await rejections(gw, "deny_spend")).toBeGreaterThanOrEqual(spendBefore + 4);
    expect(await metric(gw, "ai_deny_set_size")).toBe(1);
    expect(await metric(gw, "ai_nats_connected")).toBe(1);
    expect((await readyz(gw)).body.status).toBe("ok");
    await expectOthersServed();
  });

  test("fraud → 403 access_denied in both dialects; deny_fraud counted", async () => {
    const before = await rejections(gw, "deny_fraud");
    await admin.put(T, "fraud");
    const r = await pollStatus(() => call(gw, managed(T)), 403, 1000);
    expectGatewayError(r, "openai", 403, "access_denied", DENIED_MSG);
    const seen = mock.requests.length;
    expectGatewayError(await call(gw, managed(T), "anthropic"), "anthropic", 403, "access_denied", DENIED_MSG);
    expect(mock.requests.length).toBe(seen);
    expect(await rejections(gw, "deny_fraud")).toBeGreaterThanOrEqual(before + 2);
    // Same tenant, new reason: still one entry.
    expect(await metric(gw, "ai_deny_set_size")).toBe(1);
    await expectOthersServed();
  });

  test('JSON value {"reason":"spend","exp":123} → 402', async () => {
    await admin.put(T, JSON.stringify({ reason: "spend", exp: 123 }));
    const r = await pollStatus(() => call(gw, managed(T)), 402, 1000);
    expectGatewayError(r, "openai", 402, "access_denied", DENIED_MSG);
    expectGatewayError(await call(gw, managed(T), "anthropic"), "anthropic", 402, "access_denied", DENIED_MSG);
    await expectOthersServed();
  });

  test("junk value still denies: 403, counted as deny_unknown", async () => {
    const before = await rejections(gw, "deny_unknown");
    await admin.put(T, "banana \u0000 not-a-reason");
    const r = await pollStatus(() => call(gw, managed(T)), 403, 1000);
    expectGatewayError(r, "openai", 403, "access_denied", DENIED_MSG);
    const seen = mock.requests.length;
    expectGatewayError(await call(gw, managed(T), "anthropic"), "anthropic", 403, "access_denied", DENIED_MSG);
    expect(mock.requests.length).toBe(seen);
    expect(await rejections(gw, "deny_unknown")).toBeGreaterThanOrEqual(before + 2);
    await expectOthersServed();
  });

  test("delete restores the tenant (200 again, deny-set empty)", async () => {
    await admin.del(T);
    const r = await pollStatus(() => call(gw, managed(T)), 200, 1000);
    expect(r.status).toBe(200);
    expect((await call(gw, managed(T), "anthropic")).status).toBe(200);
    expect(await metric(gw, "ai_deny_set_size")).toBe(0);
    await expectOthersServed();
  });

  test("purge restores the tenant too", async () => {
    await admin.put(T, "spend");
    expect((await pollStatus(() => call(gw, managed(T)), 402, 1000)).status).toBe(402);
    expect(await metric(gw, "ai_deny_set_size")).toBe(1);
    await admin.purge(T);
    expect((await pollStatus(() => call(gw, managed(T)), 200, 1000)).status).toBe(200);
    expect(await metric(gw, "ai_deny_set_size")).toBe(0);
    await expectOthersServed();
  });

  test(
    "fail-open: NATS killed → traffic flows, denials hold, /readyz degraded; after restart every write made meanwhile applies",
    async () => {
      await admin.put(HELD, "spend");
      await admin.put(OLD, "fraud");
      expect((await pollStatus(() => call(gw, managed(HELD)), 402, 1000)).status).toBe(402);
      expect((await pollStatus(() => call(gw, managed(OLD)), 403, 1000)).status).toBe(403);
      expect(await metric(gw, "ai_deny_set_size")).toBe(2);
      await admin.close();

      await nats.stop();
      await waitFor("ai_nats_connected 0", async () => (await metric(gw, "ai_nats_connected")) === 0, 5000, 50);

      // NATS down: allowed tenants and BYO still served, existing denials still enforced, never a 5xx.
      expect((await call(gw, managed(OTHER))).status).toBe(200);
      expect((await call(gw, managed(T), "anthropic")).status).toBe(200);
      expect((await call(gw, BYO)).status).toBe(200);
      const seen = mock.requests.length;
      expectGatewayError(await call(gw, managed(HELD)), "openai", 402, "access_denied", DENIED_MSG);
      expectGatewayError(await call(gw, managed(OLD), "anthropic"), "anthropic", 403, "access_denied", DENIED_MSG);
      expect(mock.requests.length).toBe(seen);
      const r = await readyz(gw);
      expect(r.status).toBe(200);
      expect(r.body.status).toBe("degraded");
      expect(await metric(gw, "ai_deny_set_size")).toBe(2);

      // Restart on the same port and store; write through a separate admin connection, most likely before the
      // gateway's backoff (1 s doubling) has brought it back.
      await nats.start();
      admin = await Admin.open(nats.url);
      await admin.put(NEW[0], "spend");
      await admin.put(NEW[1], "fraud");
      await admin.put(NEW[2], "garbage");
      await admin.del(OLD);

      const expected: ReadonlyArray<readonly [number, number]> = [
        [HELD, 402],
        [OLD, 200],
        [NEW[0], 402],
        [NEW[1], 403],
        [NEW[2], 403],
        [OTHER, 200],
      ];
      let last: number[] = [];
      await waitFor(
        "every write made while the gateway was disconnected to apply",
        async () => {
          last = await Promise.all(expected.map(async ([t]) => (await call(gw, managed(t))).status));
          return last.every((s, i) => s === expected[i]![1]);
        },
        35_000,
        100,
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}; last statuses ${JSON.stringify(last)} for tenants ${JSON.stringify(expected.map((e) => e[0]))}`);
      });
      expect(await metric(gw, "ai_nats_connected")).toBe(1);
      expect(await metric(gw, "ai_deny_set_size")).toBe(4);
      const back = await readyz(gw);
      expect(back.status).toBe(200);
      expect(back.body.status).toBe("ok");
      // And the live watch works again after the reconnect.
      await admin.del(HELD);
      expect((await pollStatus(() => call(gw, managed(HELD)), 200, 1000)).status).toBe(200);
      expect(await metric(gw, "ai_deny_set_size")).toBe(3);
    },
    50_000,
  );
});

describe("NATS absent at boot", () => {
  test("gateway starts, serves managed traffic (fail-open) and reports /readyz degraded", async () => {
    const mock = newMock();
    // baseConfig points nats_url at 127.0.0.1:1, where nothing listens.
    const gw = await launch(gatewayConfig(mock));
    const r = await call(gw, managed(3001));
    expect(r.status).toBe(200);
    expect(mock.requests.length).toBe(1);
    expect(mock.last().headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    expect((await call(gw, managed(3001), "anthropic")).status).toBe(200);
    const ready = await readyz(gw);
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe("degraded");
    expect(await metric(gw, "ai_nats_connected")).toBe(0);
    expect(await metric(gw, "ai_deny_set_size")).toBe(0);
  });
});

describe("deny-set snapshot", () => {
  test(
    "a fraud hold survives a gateway restart with NATS down: 403 on the very first request",
    async () => {
      const DENIED = 2001;
      const ALLOWED = 2002;
      const nats = await newNats();
      const mock = newMock();
      const snapshot = join(makeTempDir(), "deny.snap");
      const config = gatewayConfig(mock, { nats_url: nats.url, snapshot_path: snapshot });

      const g1 = await launch(config);
      await waitReady(g1);
      const admin = await Admin.open(nats.url);
      await admin.put(DENIED, "fraud");
      await admin.close();
      expectGatewayError(await pollStatus(() => call(g1, managed(DENIED)), 403, 1000), "openai", 403, "access_denied", DENIED_MSG);
      expect(await g1.stop()).toBe(0);

      const snap = await loadSnapshot(snapshot);
      if (!("entries" in snap)) throw new Error(`snapshot not written: ${JSON.stringify(snap)}`);
      expect(snap.entries).toContainEqual([String(DENIED), "fraud"]);

      await nats.stop();
      const g2 = await launch(config);
      const seen = mock.requests.length;
      expectGatewayError(await call(g2, managed(DENIED)), "openai", 403, "access_denied", DENIED_MSG);
      expect(mock.requests.length).toBe(seen);
      expect((await call(g2, managed(ALLOWED))).status).toBe(200);
      expectGatewayError(await call(g2, managed(DENIED), "anthropic"), "anthropic", 403, "access_denied", DENIED_MSG);
      expect((await readyz(g2)).body.status).toBe("degraded");
      expect(await metric(g2, "ai_deny_set_size")).toBe(1);
    },
    30_000,
  );

  test("a corrupt snapshot file is logged and ignored: the gateway starts and serves", async () => {
    const mock = newMock();
    const snapshot = join(makeTempDir(), "deny.snap");
    writeFileSync(snapshot, crypto.getRandomValues(new Uint8Array(4096)));
    const gw = await launch(gatewayConfig(mock, { snapshot_path: snapshot }));
    expect((await call(gw, managed(2101))).status).toBe(200);
    const line = await gw.waitForLog((l) => l["level"] === "warn" && String(l["msg"] ?? "").includes("snapshot"));
    expect(String(line["msg"])).toContain("ignored");
    expect(gw.proc.exitCode).toBeNull();
    expect(await metric(gw, "ai_deny_set_size")).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe("rate limits", () => {
  function expect429(r: Reply, dialect: Dialect): void {
    expectGatewayError(r, dialect, 429, "rate_limit_error", "rate limit exceeded");
    const ra = r.headers.get("retry-after");
    expect(ra).toMatch(/^\d+$/);
    expect(Number(ra)).toBeGreaterThanOrEqual(1);
  }

  test("per-credential ceiling (rate_limit_rps = 5): a burst on one BYO token gets 200s and 429s, another token is unaffected", async () => {
    const mock = newMock();
    const gw = await launch(gatewayConfig(mock, { rate_limit_rps: 5, byo_rate_limit_rps: 0 }));
    const before = await rejections(gw, "rate_limit");
    const burst = Array.from({ length: 30 }, () => call(gw, "sk-byo-burst-one"));
    const other = call(gw, "sk-byo-bystander");
    const replies = await Promise.all(burst);
    const ok = replies.filter((r) => r.status === 200);
    const limited = replies.filter((r) => r.status === 429);
    expect(ok.length + limited.length).toBe(30);
    expect(ok.length).toBeGreaterThan(0);
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) expect429(r, "openai");
    expect((await other).status).toBe(200);
    // Only admitted requests reached the provider.
    expect(mock.requests.filter((q) => q.headers["authorization"] === "Bearer sk-byo-burst-one").length).toBe(ok.length);
    expect(await rejections(gw, "rate_limit")).toBe(before + limited.length);
  });

  test("a managed key has its own ceiling (429 in the Anthropic dialect on /v1/messages)", async () => {
    const mock = newMock();
    const gw = await launch(gatewayConfig(mock, { rate_limit_rps: 5, byo_rate_limit_rps: 0 }));
    const key = managed(4001);
    const burst = Array.from({ length: 30 }, () => call(gw, key, "anthropic"));
    const neighbour = call(gw, managed(4002), "anthropic");
    const replies = await Promise.all(burst);
    const statuses = new Set(replies.map((r) => r.status));
    expect([...statuses].sort()).toEqual([200, 429]);
    for (const r of replies) if (r.status === 429) expect429(r, "anthropic");
    expect((await neighbour).status).toBe(200);
    expect(await rejections(gw, "rate_limit")).toBeGreaterThan(0);
  });

  test("BYO global tier (byo_rate_limit_rps = 3): 30 distinct BYO tokens get 200s and 429s; managed traffic is exempt", async () => {
    const mock = newMock();
    const gw = await launch(gatewayConfig(mock, { rate_limit_rps: 0, byo_rate_limit_rps: 3 }));
    const byo = Array.from({ length: 30 }, (_, i) => call(gw, `sk-byo-distinct-${i}`));
    // More managed requests than the BYO bucket could let through in the couple of windows this burst spans.
    const mgd = Array.from({ length: 12 }, (_, i) => call(gw, managed(5000 + (i % 2)), i % 2 === 0 ? "openai" : "anthropic"));
    const byoReplies = await Promise.all(byo);
    const mgdReplies = await Promise.all(mgd);
    const byoStatuses = new Set(byoReplies.map((r) => r.status));
    expect([...byoStatuses].sort()).toEqual([200, 429]);
    for (const r of byoReplies) if (r.status === 429) expect429(r, "openai");
    expect(mgdReplies.map((r) => r.status)).toEqual(Array.from({ length: 12 }, () => 200));
    expect(await rejections(gw, "rate_limit_byo_global")).toBe(byoReplies.filter((r) => r.status === 429).length);
    expect(await rejections(gw, "rate_limit")).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe("circuit breaker (threshold 3, window 60 s, reset 1 s)", () => {
  let mock: MockProvider;
  let gw: Gateway;
  const BYO = "sk-byo-breaker";
  // What the mock sees for each provider: openai → /v1/chat/completions, groq → /openai/v1/chat/completions.
  const OPENAI_UP = "/v1/chat/completions";
  const GROQ_UP = "/openai/v1/chat/completions";
  const upstreamCount = (path: string): number => mock.requests.filter((r) => r.path === path).length;
  // The breaker records an outcome when the relayed body ends; a short pause after each reply keeps a sequential
  // test from racing that bookkeeping when the client already has every byte (content-length responses).
  const viaOpenai = async (): Promise<Reply> => {
    const r = await post(gw, "/openai/v1/chat/completions", { authorization: `Bearer ${BYO}` });
    await sleep(10);
    return r;
  };

  beforeAll(async () => {
    mock = newMock();
    gw = await launch(
      withSettings((extra) => baseConfig({ authorities: { openai: mock.authority, groq: mock.authority, deepseek: mock.authority }, extra }), {
        circuit_breaker_threshold: 3,
        circuit_breaker_window_secs: 60,
        circuit_breaker_reset_secs: 1,
      }),
    );
  });

  test(
    "provider 5xx opens the breaker: 503 without contacting the provider, other providers unaffected, probe after reset closes it",
    async () => {
      mock.setMode({ kind: "status", status: 500 }, OPENAI_UP);
      const openBefore = await rejections(gw, "circuit_open");

      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await viaOpenai();
        statuses.push(r.status);
        if (r.status === 503) expectGatewayError(r, "openai", 503, "api_error", "provider temporarily unavailable");
      }
      expect(statuses).toEqual([500, 500, 500, 503, 503, 503]);
      expect(upstreamCount(OPENAI_UP)).toBe(3);
      // Open: the count stops growing.
      for (let i = 0; i < 3; i++) expect((await viaOpenai()).status).toBe(503);
      expect(upstreamCount(OPENAI_UP)).toBe(3);
      expect(await rejections(gw, "circuit_open")).toBeGreaterThanOrEqual(openBefore + 6);

      // Another provider is unaffected while openai's breaker is open.
      const groq = await post(gw, "/groq/openai/v1/chat/completions", { authorization: `Bearer ${BYO}` });
      expect(groq.status).toBe(200);
      expect(upstreamCount(GROQ_UP)).toBe(1);

      // After the reset time one probe goes through; it fails, so the breaker opens again.
      await sleep(1100);
      expect((await viaOpenai()).status).toBe(500);
      expect(upstreamCount(OPENAI_UP)).toBe(4);
      expect((await viaOpenai()).status).toBe(503);
      expect(upstreamCount(OPENAI_UP)).toBe(4);

      // Provider recovers: the next probe succeeds and closes the breaker.
      await sleep(1100);
      mock.setMode(null, OPENAI_UP);
      expect((await viaOpenai()).status).toBe(200);
      expect(upstreamCount(OPENAI_UP)).toBe(5);
      for (let i = 0; i < 4; i++) expect((await viaOpenai()).status).toBe(200);
      expect(upstreamCount(OPENAI_UP)).toBe(9);
    },
    15_000,
  );

  test("provider 429s never open it: 10 in a row all reach the provider", async () => {
    const path = "/v1/embeddings"; // deepseek's upstream path here, used by nothing else
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await post(gw, `/deepseek${path}`, { authorization: `Bearer ${BYO}`, "x-mock-mode": "status:429" }, '{"model":"m","input":"x"}');
      statuses.push(r.status);
      // Relayed as is, the provider's own Retry-After included.
      expect(r.headers.get("retry-after")).toBe("7");
    }
    expect(statuses).toEqual(Array.from({ length: 10 }, () => 429));
    expect(mock.requests.filter((r) => r.path === path).length).toBe(10);
  });
});

// ---------------------------------------------------------------------------------------------

describe("request body cap (max_request_body_bytes = 1 MiB)", () => {
  const MiB = 1024 * 1024;
  let mock: MockProvider;
  let gw: Gateway;
  const BYO = "sk-byo-bodycap";

  beforeAll(async () => {
    mock = newMock();
    gw = await launch(gatewayConfig(mock, { max_request_body_bytes: MiB }));
  });

  test("declared content-length of 2 MiB → 413 JSON before any body byte is sent", async () => {
    const before = await rejections(gw, "body_too_large");
    // Head only: the gateway must answer without waiting for a body that never comes.
    const r = await rawHttp(
      gw.host,
      gw.port,
      `POST /v1/chat/completions HTTP/1.1\r\nhost: ${gw.host}:${gw.port}\r\nauthorization: Bearer ${BYO}\r\ncontent-type: application/json\r\ncontent-length: ${2 * MiB}\r\n\r\n`,
      3000,
    );
    expect(r.status).toBe(413);
    expect(r.headers["x-beyond-request-id"]).toBeTruthy();
    expect(JSON.parse(r.text())).toMatchObject({ error: { type: "invalid_request_error" } });
    // Managed keys and the Anthropic dialect get the same cap.
    const a = await rawHttp(
      gw.host,
      gw.port,
      `POST /v1/messages HTTP/1.1\r\nhost: ${gw.host}:${gw.port}\r\nx-api-key: ${managed(6001)}\r\nanthropic-version: 2023-06-01\r\ncontent-length: ${2 * MiB}\r\n\r\n`,
      3000,
    );
    expect(a.status).toBe(413);
    expect(JSON.parse(a.text())).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(mock.requests.length).toBe(0);
    expect(await rejections(gw, "body_too_large")).toBe(before + 2);
  });

  test(
    "a chunked 3 MiB body (no content-length) → 413; the provider never receives the whole body; the gateway keeps serving",
    async () => {
      const before = await rejections(gw, "body_too_large");
      const total = 3 * MiB;
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (sent >= total) {
            c.close();
            return;
          }
          sent += chunk.byteLength;
          c.enqueue(chunk);
          // Pace it a little, so the body is genuinely streamed rather than in the socket buffer at once.
          if (sent % (512 * 1024) === 0) await sleep(5);
        },
      });
      let reply: Reply | undefined;
      let fetchError: unknown;
      try {
        reply = await toReply(
          await fetch(`${gw.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${BYO}`, "x-mock-mode": "stream-in" },
            body,
            // The fetch spec requires `duplex` for a stream body; without content-length it goes out chunked.
            duplex: "half",
          }),
        );
      } catch (e) {
        fetchError = e;
      }
      if (reply === undefined) throw new Error(`expected a 413 response, fetch failed instead: ${String(fetchError)}`);
      expectGatewayError(reply, "openai", 413, "invalid_request_error", "request body too large");
      expect(await rejections(gw, "body_too_large")).toBe(before + 1);

      // Whatever reached the provider is an aborted, partial upload.
      await sleep(100);
      for (const r of mock.requests.filter((q) => q.headers["x-mock-mode"] === "stream-in")) {
        expect(r.finished).toBe(false);
        expect(r.bytesReceived).toBeLessThan(total);
      }

      // Still serving, at the cap and under it.
      expect((await call(gw, BYO)).status).toBe(200);
      const atCap = await post(gw, "/v1/chat/completions", { authorization: `Bearer ${BYO}`, "x-mock-mode": "echo-size" }, "x".repeat(MiB));
      expect(atCap.status).toBe(200);
      expect((atCap.json as { size: number }).size).toBe(MiB);
    },
    15_000,
  );
});
