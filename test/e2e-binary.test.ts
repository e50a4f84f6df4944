// End to end, the compiled binary (SPEC §1: `bun build --compile` makes a binary that needs nothing else on the
// host, NATS client included). The binary is built once, copied alone into an empty temp folder, and run from
// there with no node_modules within reach; the shared harness runs it instead of `bun src/main.ts` while
// BEYOND_AI_BIN is set. Covers --version, config discovery next to the binary, the OpenAI and Anthropic SDK
// round trips (BYO), a managed key swapped for the pool key (and metered), and the deny-set against a real
// nats-server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import { connect, type KV, type NatsConnection } from "nats";
import OpenAI from "openai";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, parse as parsePath } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, buildBinary, type Gateway, gatewayBinary, runGatewayExpectExit, startGateway } from "./helpers/gateway.ts";
import { MOCK_TEXT, type MockProvider, startMockProvider } from "./helpers/mock-provider.ts";
import { NatsServer, waitFor } from "./helpers/nats.ts";
import { collectChatStream } from "./helpers/sdk.ts";

const BUCKET = "ai-gateway";
const OPENAI_BYO = "sk-byo-binary-openai";
const ANTHROPIC_BYO = "sk-ant-byo-binary";
const OPENAI_POOL = "sk-binary-pool-openai";
const TENANT = 5150n;
const signer = keygen();
const PUB = Buffer.from(signer.publicKey).toString("base64");
const MANAGED = mint(1, signer.seed, TENANT, 3n);

let bin: string;
let binDir: string;
let previousBin: string | undefined;
let openaiMock: MockProvider;
let anthropicMock: MockProvider;
const started: Gateway[] = [];

async function launch(config: string, env?: Record<string, string>): Promise<Gateway> {
  const g = await startGateway({ config, env });
  started.push(g);
  return g;
}

beforeAll(async () => {
  bin = await buildBinary();
  binDir = dirname(bin);
  previousBin = process.env["BEYOND_AI_BIN"];
  process.env["BEYOND_AI_BIN"] = bin;
  openaiMock = startMockProvider();
  anthropicMock = startMockProvider();
}, 120_000);

afterAll(async () => {
  await Promise.all(started.map((g) => g.stop()));
  await openaiMock?.stop();
  await anthropicMock?.stop();
  if (previousBin === undefined) delete process.env["BEYOND_AI_BIN"];
  else process.env["BEYOND_AI_BIN"] = previousBin;
});

describe("the compiled binary, alone in an empty folder", () => {
  test("the folder holds only the binary, and no node_modules is within reach of it", () => {
    expect(readdirSync(binDir)).toEqual(["beyond-ai"]);
    // Module resolution walks up from the cwd: no ancestor of the folder may offer node_modules.
    for (let d = binDir; ; d = dirname(d)) {
      expect({ dir: d, nodeModules: existsSync(join(d, "node_modules")) }).toEqual({ dir: d, nodeModules: false });
      if (d === parsePath(d).root) break;
    }
    expect(gatewayBinary()).toBe(bin);
  });

  test("--version prints the package version", async () => {
    const direct = Bun.spawnSync([bin, "--version"], { cwd: binDir, env: { PATH: "/usr/bin:/bin" } });
    expect(direct.exitCode).toBe(0);
    expect(direct.stdout.toString()).toBe(`beyond-ai ${pkg.version}\n`);
    // The harness runs the same binary while BEYOND_AI_BIN is set.
    const viaHarness = await runGatewayExpectExit({ args: ["--version"] });
    expect(viaHarness.code).toBe(0);
    expect(viaHarness.stdout).toBe(`beyond-ai ${pkg.version}\n`);
  });

  test(
    "started from its folder with no arguments, it reads ./config.toml there and serves BYO traffic",
    async () => {
      const cfgPath = join(binDir, "config.toml");
      writeFileSync(cfgPath, baseConfig({ authorities: { openai: openaiMock.authority } }));
      try {
        expect(readdirSync(binDir).sort()).toEqual(["beyond-ai", "config.toml"]);
        const g = await startGateway({ args: [] });
        started.push(g);
        expect(g.logs().find((l) => l["msg"] === "listening")?.["config"]).toContain("config.toml");
        const client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: OPENAI_BYO, maxRetries: 0 });
        const completion = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
        expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
        expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${OPENAI_BYO}`);
        await g.stop();
      } finally {
        rmSync(cfgPath, { force: true });
      }
      expect(readdirSync(binDir)).toEqual(["beyond-ai"]);
    },
    20_000,
  );
});

describe("CLI errors from the binary: one line on stderr, no stack, no minified source", () => {
  const cases: Array<[string[], string]> = [
    [["keygen", "--kid", "abc"], 'beyond-ai: keygen: --kid: invalid kid "abc": expected a decimal integer from 0 to 4294967295'],
    [["serve", "--port", "9000"], "beyond-ai: serve: unknown flag --port (usage: beyond-ai [serve] [--config PATH])"],
    [["check-config", "--verbose"], "beyond-ai: check-config: unknown flag --verbose (usage: beyond-ai check-config [--config PATH])"],
    [["mint", "--kid", "1", "--key-file", "missing.key", "--tenant", "1", "--vpc", "1"], "beyond-ai: mint: --key-file: file not found: missing.key"],
  ];
  for (const [args, line] of cases) {
    test(`${args.join(" ")}: exit 2 and exactly ${JSON.stringify(line)}`, () => {
      const r = Bun.spawnSync([bin, ...args], { cwd: binDir, env: { PATH: "/usr/bin:/bin" } });
      expect(r.exitCode).toBe(2);
      expect(r.stderr.toString()).toBe(`${line}\n`);
      expect(r.stdout.toString()).toBe("");
      expect(readdirSync(binDir)).toEqual(["beyond-ai"]);
    });
  }

  test("a port in use: exit 2, one line naming the listener and the address", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      const r = await runGatewayExpectExit({ config: baseConfig().replace(/^metrics_listen = .*$/m, `metrics_listen = "127.0.0.1:${port}"`) });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^beyond-ai: cannot start: metrics_listen = "127\\.0\\.0\\.1:${port}": address already in use[^\n]*\n$`));
    } finally {
      blocker.close();
    }
  });
});

describe("SDK round trips through the binary", () => {
  let gw: Gateway;

  beforeAll(async () => {
    gw = await launch(
      baseConfig({
        authorities: { openai: openaiMock.authority, anthropic: anthropicMock.authority },
        tables: ["[pool_keys]", `openai = "${OPENAI_POOL}"`, "", "[signing_keys]", `1 = "${PUB}"`].join("\n"),
      }),
    );
  });

  test("the gateway process is the compiled binary, run from its own folder", () => {
    expect(gw.proc.pid).toBeGreaterThan(0);
    const exe = Bun.spawnSync(["readlink", `/proc/${gw.proc.pid}/exe`]).stdout.toString().trim();
    expect(exe).toBe(bin);
    const cwd = Bun.spawnSync(["readlink", `/proc/${gw.proc.pid}/cwd`]).stdout.toString().trim();
    expect(cwd).toBe(binDir);
  });

  test("OpenAI SDK, BYO, JSON: the answer arrives and the provider sees the caller's key untouched", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: OPENAI_BYO, maxRetries: 0 });
    const before = openaiMock.requests.length;
    const completion = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    expect(completion.choices[0]?.message.content).toBe(MOCK_TEXT);
    expect(completion.usage?.prompt_tokens).toBe(11);
    expect(openaiMock.requests.length).toBe(before + 1);
    expect(openaiMock.last().path).toBe("/v1/chat/completions");
    expect(openaiMock.last().headers["authorization"]).toBe(`Bearer ${OPENAI_BYO}`);
  });

  test("OpenAI SDK, BYO, streaming: every delta arrives in order", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: OPENAI_BYO, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true });
    const { chunks, text } = await collectChatStream(stream);
    expect(chunks.length).toBeGreaterThan(1);
    expect(text).toBe(MOCK_TEXT);
    // BYO: the body is forwarded as sent (no stream_options injection).
    expect((openaiMock.last().json as Record<string, unknown>)["stream_options"]).toBeUndefined();
  });

  test("Anthropic SDK, BYO, JSON and streaming round trips", async () => {
    const client = new Anthropic({ baseURL: gw.url, apiKey: ANTHROPIC_BYO, maxRetries: 0 });
    const msg = await client.messages.create({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
    const first = msg.content[0];
    expect(first?.type === "text" ? first.text : undefined).toBe(MOCK_TEXT);
    expect(anthropicMock.last().path).toBe("/v1/messages");
    // @anthropic-ai/sdk 1.x sends apiKey as `Authorization: Bearer` (0.x as x-api-key): whichever it used arrives untouched.
    const seen = anthropicMock.last().headers;
    expect([ANTHROPIC_BYO, `Bearer ${ANTHROPIC_BYO}`]).toContain(seen["x-api-key"] ?? seen["authorization"] ?? "none");

    const stream = client.messages.stream({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
    let text = "";
    stream.on("text", (t) => {
      text += t;
    });
    const final = await stream.finalMessage();
    expect(text).toBe(MOCK_TEXT);
    expect(final.usage.output_tokens).toBe(7);
  });

  test("a managed key: the provider sees only the pool key, and the request is metered", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MANAGED, maxRetries: 0 });
    const { data, response } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(MOCK_TEXT);
    const r = openaiMock.last();
    expect(r.headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
    for (const v of Object.values(r.headers)) expect(v).not.toContain("bai_");
    const id = response.headers.get("x-beyond-request-id");
    expect(id).toBeTruthy();
    const usage = await gw.waitForLog((l) => l["target"] === "ai.usage" && l["request_id"] === id);
    expect(usage).toMatchObject({ tenant_id: Number(TENANT), vpc_id: 3, provider: "openai", input_tokens: 11, output_tokens: 7, complete: true });
  });
});

describe("deny-set through the binary, against a real nats-server", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let gw: Gateway;

  beforeAll(async () => {
    nats = await NatsServer.launch({ storeDir: mkdtempSync(join(tmpdir(), "bai-binary-nats-")), readyPollMs: 20, removeStoreOnStop: true });
    gw = await launch(
      baseConfig({
        authorities: { openai: openaiMock.authority },
        tables: ["[pool_keys]", `openai = "${OPENAI_POOL}"`, "", "[signing_keys]", `1 = "${PUB}"`].join("\n"),
      }),
      // baseConfig points NATS at a dead port; env wins over the file (SPEC §2).
      { AI_NATS_URL: nats.url },
    );
    nc = await connect({ servers: nats.url, reconnect: false });
    kv = await nc.jetstream().views.kv(BUCKET, { history: 1 });
    // The binary's NATS client (bundled into it) reports connected on /readyz.
    await waitFor(
      "/readyz status ok",
      async () => ((await (await fetch(`${gw.metricsUrl}/readyz`)).json()) as Record<string, unknown>)["status"] === "ok",
      10_000,
      20,
    );
  }, 30_000);

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  async function managedStatus(): Promise<number> {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${MANAGED}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
    });
    await res.arrayBuffer();
    return res.status;
  }

  /** Polls until the managed request gets `status`, for at most `ms` (SPEC §7: updates apply within 1 s). */
  async function statusWithin(status: number, ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    let last = await managedStatus();
    while (last !== status && Date.now() < deadline) {
      await Bun.sleep(25);
      last = await managedStatus();
    }
    return last;
  }

  test(
    "blackhole.<tenant> = spend gives 402 within 1 s, and deleting it gives 200 again",
    async () => {
      expect(await managedStatus()).toBe(200);
      await kv.put(`blackhole.${TENANT}`, new TextEncoder().encode("spend"));
      expect(await statusWithin(402, 1000)).toBe(402);
      await kv.delete(`blackhole.${TENANT}`);
      expect(await statusWithin(200, 1000)).toBe(200);
    },
    15_000,
  );
});
