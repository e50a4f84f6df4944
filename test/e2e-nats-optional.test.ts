// End-to-end: NATS is optional for a first run. With NATS down the gateway says so once (warn, with what it means),
// keeps quiet about identical retries (debug), and says at info when NATS comes back; `nats_url = ""` turns NATS
// off: no connection attempts, and /readyz reports it. The real gateway process, a real nats-server, the mock.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { baseConfig, startGateway, type Gateway, type LogLine } from "./helpers/gateway.ts";
import { startMockProvider, type MockProvider } from "./helpers/mock-provider.ts";
import { freePort, NatsServer, waitFor } from "./helpers/nats.ts";

const BYO = "sk-byo-nats-optional-0123456789";
const CHAT_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });

let mock: MockProvider;
beforeAll(() => {
  mock = startMockProvider();
});
afterAll(async () => {
  await mock?.stop();
});

function config(natsUrl: string): string {
  return baseConfig({ authorities: { openai: mock.authority } }).replace('nats_url = "nats://127.0.0.1:1"', `nats_url = ${JSON.stringify(natsUrl)}`);
}

async function readyz(gw: Gateway): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.metricsUrl}/readyz`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function expectByoServed(gw: Gateway): Promise<void> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${BYO}` }, body: CHAT_BODY });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

const natsLines = (gw: Gateway): LogLine[] => gw.logs().filter((l) => String(l["msg"]).includes("NATS"));

describe("NATS down, then up", () => {
  let dir: string;
  let nats: NatsServer;
  let gw: Gateway;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "bai-nats-optional-"));
    nats = new NatsServer(await freePort(), dir);
    gw = await startGateway({ config: config(nats.url), env: { AI_LOG_LEVEL: "debug" } });
  });
  afterAll(async () => {
    await gw?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the first failed connect is one warn line saying updates are paused and the gateway fails open; retries are debug; no error line", async () => {
    // The first retry comes 1 s after the first attempt (SPEC §7's backoff).
    await gw.waitForLog((l) => l["level"] === "debug" && String(l["msg"]).startsWith("deny-set NATS connect failed"), 5000);
    const failed = natsLines(gw).filter((l) => String(l["msg"]).startsWith("deny-set NATS connect failed"));
    expect(failed[0]?.["level"]).toBe("warn");
    expect(String(failed[0]?.["msg"])).toContain("deny-set updates paused");
    expect(String(failed[0]?.["msg"])).toContain("fail-open");
    expect(failed.filter((l) => l["level"] === "warn").length).toBe(1);
    expect(gw.logs().filter((l) => l["level"] === "error")).toEqual([]);
    expect(await readyz(gw)).toMatchObject({ status: "degraded", nats: "disconnected" });
    await expectByoServed(gw);
  });

  test("when NATS comes up the recovery is one info line, and /readyz is ok with nats connected", async () => {
    await nats.start();
    const up = await gw.waitForLog((l) => l["msg"] === "deny-set NATS connected", 10_000);
    expect(up["level"]).toBe("info");
    expect(Number(up["recovered_after_failed_attempts"])).toBeGreaterThanOrEqual(2);
    await waitFor("readyz ok", async () => (await readyz(gw))["status"] === "ok", 5000, 50);
    expect(await readyz(gw)).toMatchObject({ status: "ok", nats: "connected" });
    expect(gw.logs().filter((l) => l["level"] === "error")).toEqual([]);
  }, 15_000);
});

describe('nats_url = ""', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startGateway({ config: config(""), env: { AI_LOG_LEVEL: "debug" } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  test("/readyz is 200, status ok, nats disabled", async () => {
    expect(await readyz(gw)).toMatchObject({ status: "ok", nats: "disabled" });
  });

  test("boot logs once at info that NATS is off, and no connection is attempted (even at debug)", async () => {
    const off = await gw.waitForLog((l) => String(l["msg"]).startsWith("NATS disabled"));
    expect(off["level"]).toBe("info");
    await expectByoServed(gw);
    // A running loop makes its first attempt at boot and retries after 1 s: wait past that.
    await Bun.sleep(1500);
    expect(natsLines(gw).map((l) => l["msg"])).toEqual([off["msg"]]);
  });
});
