// End to end, issue 12 items 3, 4 and 7 and issue 13 item 11, against the real gateway process and the recording
// mock provider, with raw sockets where a client must misbehave:
//   - a client that stops sending its body (small, chunked, declared over 64 KiB; OpenAI and Anthropic dialects,
//     BYO and managed) gets 408 in its dialect after idle_timeout_secs and its connection closes (SPEC §5);
//   - such clients never count against the provider's breaker, never hold the half-open probe, and a probe that is
//     abandoned hands its permit back; the breaker's 503 carries Retry-After;
//   - the attack shape at a modest scale: 150 stalled uploads at once, a normal request served meanwhile, everything
//     released (descriptors, ai_requests_in_flight); a silent keep-alive connection is closed once its request is over;
//   - the provider's read timeout counts only time spent waiting on the provider (slow uploads are not 504s);
//   - TRACE and CONNECT are refused with 405 and nothing is forwarded;
//   - a provider that refuses or does not resolve is named (host:port) in the gateway's log lines.
//
// The stalls take idle_timeout_secs (8 s, the configurable minimum) each, so every scenario is started at once in
// beforeAll and each test awaits its own; the whole file runs in about 10 s.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, type LogLine, metricValue, rawHttp, startGateway } from "./helpers/gateway.ts";
import { closedPort, type MockProvider, startMockProvider } from "./helpers/mock-provider.ts";
import { type Dialect, expectGatewayError, type Reply, toReply } from "./helpers/replies.ts";

const IDLE_SECS = 8;
const OPENAI_POOL = "sk-hardening-openai-pool-0123456789";
const ANTHROPIC_POOL = "sk-hardening-anthropic-pool-0123456789";
const REFUSED_POOL = "sk-hardening-refused-pool-0123456789";
const NXDOMAIN_POOL = "sk-hardening-nxdomain-pool-0123456789";
const NXDOMAIN_AUTHORITY = "does-not-exist.invalid:80";

const signer = keygen();
const PUB = Buffer.from(signer.publicKey).toString("base64");
const MANAGED = mint(1, signer.seed, 4242n, 7n);

const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A gateway config: baseConfig with these settings replacing its own lines for the same keys. */
function config(authorities: Record<string, string>, settings: Record<string, number>, tables: string): string {
  let text = baseConfig({ authorities, tables });
  for (const [k, v] of Object.entries(settings)) {
    const re = new RegExp(`^${k} = .*$`, "m");
    text = re.test(text) ? text.replace(re, `${k} = ${v}`) : text.replace("\n", `\n${k} = ${v}\n`);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// A client that sends a request head and part of its body, then nothing.

interface Stalled {
  /** Status of the answer, undefined when none came. */
  status: number | undefined;
  headers: Record<string, string>;
  json: unknown;
  /** The gateway closed the connection (the client never does, except at the safety limit). */
  closedByGateway: boolean;
}

interface StalledUpload {
  done: Promise<Stalled>;
  /** True while the connection is open and unanswered. */
  pending(): boolean;
  /** Close from the client side (an abandoned request). */
  abandon(): void;
}

/** Writes `request` (head and a partial body) and waits, up to `limitMs`, for the gateway to answer and close. */
function stalledUpload(g: Gateway, request: string, limitMs = 25_000): StalledUpload {
  let buf = "";
  let settled = false;
  let sock: { end(): void } | undefined;
  let resolveDone!: (s: Stalled) => void;
  const done = new Promise<Stalled>((r) => (resolveDone = r));
  const finish = (closedByGateway: boolean): void => {
    if (settled) return;
    settled = true;
    clearTimeout(limit);
    const headEnd = buf.indexOf("\r\n\r\n");
    const head = headEnd < 0 ? buf : buf.slice(0, headEnd);
    const [statusLine = "", ...lines] = head.split("\r\n");
    const m = /^HTTP\/1\.1 (\d{3})/.exec(statusLine);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const c = l.indexOf(":");
      if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    let json: unknown;
    try {
      json = headEnd < 0 ? undefined : JSON.parse(buf.slice(headEnd + 4));
    } catch {
      json = undefined;
    }
    resolveDone({ status: m ? Number(m[1]) : undefined, headers, json, closedByGateway });
  };
  const limit = setTimeout(() => {
    finish(false);
    sock?.end();
  }, limitMs);
  void Bun.connect({
    hostname: g.host,
    port: g.port,
    socket: {
      open(s) {
        sock = s;
        s.write(request);
      },
      data(_s, d) {
        buf += d.toString("latin1");
      },
      close() {
        finish(true);
      },
      error() {
        finish(true);
      },
    },
  }).catch(() => finish(false));
  return {
    done,
    pending: () => !settled && buf.length === 0,
    abandon: () => {
      finish(false);
      sock?.end();
    },
  };
}

const head = (path: string, headers: Record<string, string>): string =>
  `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
  Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("") +
  "\r\n";
/** `content-length: 10`, 5 bytes sent: a small body, read whole before forwarding. */
const smallStall = (path: string, headers: Record<string, string>): string => head(path, { ...headers, "content-length": "10" }) + "12345";
/** Chunked, one 5-byte chunk sent: streamed upstream. */
const chunkedStall = (path: string, headers: Record<string, string>): string => head(path, { ...headers, "transfer-encoding": "chunked" }) + "5\r\n12345\r\n";
/** `content-length: 100000`, 1000 bytes sent: declared over 64 KiB, so streamed upstream. */
const largeStall = (path: string, headers: Record<string, string>): string => head(path, { ...headers, "content-length": "100000" }) + "x".repeat(1000);

/** The gateway's 408 for a stalled upload: in dialect, with its request id, and the connection closed. */
function expect408(s: Stalled, dialect: Dialect): string {
  expect(s.status).toBe(408);
  expect(s.closedByGateway).toBe(true);
  expect(s.headers["connection"]).toBe("close");
  expect(s.headers["content-type"] ?? "").toContain("application/json");
  const id = s.headers["x-beyond-request-id"];
  expect(id).toBeTruthy();
  if (dialect === "openai") expect(s.json).toEqual({ error: { message: "request body timed out", type: "invalid_request_error", code: "request_timeout" } });
  else expect(s.json).toEqual({ type: "error", error: { type: "invalid_request_error", message: "request body timed out" } });
  return id as string;
}

/** Exactly one ai.access line for the request id, with this status and error. */
async function expectOneAccessLine(g: Gateway, id: string, status: number, error: string): Promise<LogLine> {
  const line = await g.accessLog(id);
  expect(line["status"]).toBe(status);
  expect(line["error"]).toBe(error);
  expect(g.logs().filter((l) => l["target"] === "ai.access" && l["request_id"] === id).length).toBe(1);
  return line;
}

async function post(g: Gateway, path: string, headers: Record<string, string>, body = CHAT): Promise<Reply> {
  return toReply(await fetch(g.url + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body }));
}

const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

// ---------------------------------------------------------------------------------------------
// Gateway 1: breaker threshold 3 with a 30 s reset, so a stall counted as a provider failure would keep it open for
// the rest of the file. Gateway 2: the same threshold with a 1 s reset, for the half-open probe scenarios, plus the
// TRACE/CONNECT and unreachable-provider checks.

let mock1: MockProvider;
let mock2: MockProvider;
let gw1: Gateway;
let gw2: Gateway;
let refusedPort = 0;

const BYO = { authorization: "Bearer sk-byo-hardening" };
const ANTHROPIC_BYO = { "x-api-key": "sk-ant-byo-hardening", "anthropic-version": "2023-06-01" };

interface Scenarios {
  smallOpenai: StalledUpload;
  smallAnthropic: StalledUpload;
  smallManaged: StalledUpload;
  chunked: StalledUpload[];
  large: StalledUpload;
  attack: StalledUpload[];
  /** A normal request 1 s into the attack, and the in-flight gauge then. */
  duringAttack: Promise<{ reply: Reply; inFlight: number }>;
  fdsBefore: number;
  /** A keep-alive client that got its answer and then stays silent. */
  idleKeepAlive: StalledUpload;
  smallProbe: Promise<SmallProbe>;
  streamedProbe: Promise<StreamedProbe>;
  slowSteady: Promise<Reply>;
  slowProvider: Promise<{ timedOut: Reply[]; after: Reply }>;
}
let sc: Scenarios;

interface SmallProbe {
  opening: number[];
  open503: Reply;
  probe: Reply;
  stallPendingAtProbe: boolean;
  stall: Stalled;
  upstreamAfterOpen: number;
  upstreamAtEnd: number;
}

interface StreamedProbe {
  opening: number[];
  whileProbeHeld: Reply;
  stall: Stalled;
  after: number[];
}

/** Opens gateway 2's breaker for `provider` (3 × 500 on `upPath`), then waits out the 1 s reset. */
async function openBreaker(provider: string, upPath: string): Promise<number[]> {
  mock2.setMode({ kind: "status", status: 500 }, upPath);
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await post(gw2, `/${provider}${upPath}`, BYO)).status);
  return statuses;
}

/** 3b: a small body that never finishes must not take the half-open probe. */
async function smallProbeScenario(): Promise<SmallProbe> {
  const upPath = "/probe/small";
  const count = (): number => mock2.requests.filter((r) => r.path === upPath).length;
  const opening = await openBreaker("deepseek", upPath);
  const open503 = await post(gw2, `/deepseek${upPath}`, BYO);
  const upstreamAfterOpen = count();
  await sleep(1100);
  // Reset time over: the next request may probe. A client sends half of a small body and stops.
  const stall = stalledUpload(gw2, smallStall(`/deepseek${upPath}`, BYO));
  await sleep(300);
  mock2.setMode(null, upPath);
  const probe = await post(gw2, `/deepseek${upPath}`, BYO);
  const stallPendingAtProbe = stall.pending();
  return { opening, open503, probe, stallPendingAtProbe, stall: await stall.done, upstreamAfterOpen, upstreamAtEnd: count() };
}

/** 3b: a streamed probe whose client stalls holds the single permit until its 408, then hands it back. */
async function streamedProbeScenario(): Promise<StreamedProbe> {
  const upPath = "/probe/streamed";
  const opening = await openBreaker("together", upPath);
  await sleep(1100);
  // This one is sent upstream at once (a chunked body streams): it takes the probe, then its client stops sending.
  const stall = stalledUpload(gw2, chunkedStall(`/together${upPath}`, { ...BYO, "x-mock-mode": "stream-in" }));
  await sleep(300);
  const whileProbeHeld = await post(gw2, `/together${upPath}`, BYO);
  const stalled = await stall.done;
  mock2.setMode(null, upPath);
  const after: number[] = [];
  for (let i = 0; i < 2; i++) after.push((await post(gw2, `/together${upPath}`, BYO)).status);
  return { opening, whileProbeHeld, stall: stalled, after };
}

/** A chunked upload of 7 × 5 bytes, 500 ms apart: 3 s in all, longer than read_timeout_secs (2 s), never silent. */
async function slowSteadyUpload(): Promise<Reply> {
  let n = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        if (n === 7) return c.close();
        if (n > 0) await sleep(500);
        c.enqueue(new TextEncoder().encode("hello"));
        n++;
      },
    },
    { highWaterMark: 0 },
  );
  const res = await fetch(`${gw2.url}/openai/v1/files`, {
    method: "POST",
    headers: { ...BYO, "content-type": "application/octet-stream", "x-mock-mode": "stream-in" },
    body,
    duplex: "half",
  } as RequestInit);
  return toReply(res);
}

/** Three streamed uploads that complete at once, to a provider that then takes 3 s to answer (read_timeout 2 s);
 * then one more request. */
async function slowProviderScenario(): Promise<{ timedOut: Reply[]; after: Reply }> {
  const once = async (): Promise<Reply> => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(CHAT));
        c.close();
      },
    });
    const res = await fetch(`${gw2.url}/fireworks/v1/chat/completions`, {
      method: "POST",
      headers: { ...BYO, "content-type": "application/json", "x-mock-mode": "delay:3000" },
      body,
      duplex: "half",
    } as RequestInit);
    return toReply(res);
  };
  const timedOut = await Promise.all([once(), once(), once()]);
  return { timedOut, after: await post(gw2, "/fireworks/v1/chat/completions", BYO) };
}

beforeAll(async () => {
  mock1 = startMockProvider();
  mock2 = startMockProvider();
  refusedPort = closedPort();
  const timeouts = { idle_timeout_secs: IDLE_SECS, read_timeout_secs: 2, circuit_breaker_threshold: 3, circuit_breaker_window_secs: 60 };
  const keys = (pools: Record<string, string>): string =>
    ["[pool_keys]", ...Object.entries(pools).map(([k, v]) => `${k} = "${v}"`), "", "[signing_keys]", `1 = "${PUB}"`].join("\n");
  [gw1, gw2] = await Promise.all([
    startGateway({
      config: config(
        { openai: mock1.authority, anthropic: mock1.authority, groq: mock1.authority },
        { ...timeouts, circuit_breaker_reset_secs: 30 },
        keys({ openai: OPENAI_POOL, anthropic: ANTHROPIC_POOL }),
      ),
    }),
    startGateway({
      config: config(
        {
          openai: mock2.authority,
          anthropic: mock2.authority,
          deepseek: mock2.authority,
          together: mock2.authority,
          fireworks: mock2.authority,
          refused: `127.0.0.1:${refusedPort}`,
          nxdomain: NXDOMAIN_AUTHORITY,
        },
        { ...timeouts, circuit_breaker_reset_secs: 1 },
        keys({ openai: OPENAI_POOL, anthropic: ANTHROPIC_POOL, refused: REFUSED_POOL, nxdomain: NXDOMAIN_POOL }),
      ),
    }),
  ]);
  const fdsBefore = fds(gw1.proc.pid);
  const attack = [
    ...Array.from({ length: 100 }, () => stalledUpload(gw1, smallStall("/groq/openai/v1/chat/completions", BYO))),
    ...Array.from({ length: 50 }, () => stalledUpload(gw1, chunkedStall("/groq/openai/v1/chat/completions", BYO))),
  ];
  sc = {
    smallOpenai: stalledUpload(gw1, smallStall("/openai/v1/chat/completions", BYO)),
    smallAnthropic: stalledUpload(gw1, smallStall("/v1/messages", ANTHROPIC_BYO)),
    smallManaged: stalledUpload(gw1, smallStall("/openai/v1/chat/completions", { authorization: `Bearer ${MANAGED}` })),
    chunked: Array.from({ length: 5 }, () => stalledUpload(gw1, chunkedStall("/openai/v1/chat/completions", BYO))),
    large: stalledUpload(gw1, largeStall("/openai/v1/chat/completions", BYO)),
    attack,
    duringAttack: (async () => {
      await sleep(1000);
      const reply = await post(gw1, "/groq/openai/v1/chat/completions", { authorization: "Bearer sk-byo-normal" });
      return { reply, inFlight: await metricValue(gw1.metricsUrl, "ai_requests_in_flight") };
    })(),
    fdsBefore,
    // The helper suits any client that sends a request and then nothing: here a complete one.
    idleKeepAlive: stalledUpload(gw1, "GET /groq/openai/v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer sk-byo-keepalive\r\n\r\n"),
    smallProbe: smallProbeScenario(),
    streamedProbe: streamedProbeScenario(),
    slowSteady: slowSteadyUpload(),
    slowProvider: slowProviderScenario(),
  };
  // A scenario that throws must fail its test, not the process.
  sc.smallProbe.catch(() => {});
  sc.streamedProbe.catch(() => {});
  sc.duringAttack.catch(() => {});
  sc.slowSteady.catch(() => {});
  sc.slowProvider.catch(() => {});
});

afterAll(async () => {
  await Promise.all([gw1?.stop(), gw2?.stop()]);
  await Promise.all([mock1?.stop(), mock2?.stop()]);
});

// ---------------------------------------------------------------------------------------------

describe("stalled uploads get 408 after idle_timeout_secs (issue 12 item 4)", () => {
  test(
    "a small-body upload that stops (content-length 10, 5 bytes) gets 408 in the OpenAI dialect, one access line, the connection closes, nothing is forwarded",
    async () => {
      const s = await sc.smallOpenai.done;
      const id = expect408(s, "openai");
      const line = await expectOneAccessLine(gw1, id, 408, "client_timeout");
      expect(line["provider"]).toBe("openai");
      // A body that never arrived whole is never forwarded.
      expect(mock1.requests.filter((r) => r.headers["content-length"] === "10").length).toBe(0);
    },
    30_000,
  );

  test(
    "on /v1/messages the 408 is in the Anthropic dialect",
    async () => {
      const id = expect408(await sc.smallAnthropic.done, "anthropic");
      expect((await expectOneAccessLine(gw1, id, 408, "client_timeout"))["provider"]).toBe("anthropic");
    },
    30_000,
  );

  test(
    "a managed upload that stops gets 408 and is not billed: no ai.usage line",
    async () => {
      const id = expect408(await sc.smallManaged.done, "openai");
      const line = await expectOneAccessLine(gw1, id, 408, "client_timeout");
      expect(line["managed"]).toBe(true);
      await sleep(100); // the log is flushed in batches; the access line above came in the same one
      expect(gw1.logs().some((l) => l["target"] === "ai.usage" && l["request_id"] === id)).toBe(false);
    },
    30_000,
  );

  test(
    "streamed uploads that stop (chunked, and declared over 64 KiB) get 408, not 504, and never open the provider's breaker: managed traffic is still served",
    async () => {
      const all = await Promise.all([...sc.chunked.map((c) => c.done), sc.large.done]);
      for (const s of all) await expectOneAccessLine(gw1, expect408(s, "openai"), 408, "client_timeout");
      // Six stalls against a threshold of 3 with a 30 s reset: had they counted, openai would answer 503 now.
      const client = new OpenAI({ baseURL: `${gw1.url}/openai/v1`, apiKey: MANAGED, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
      expect(completion.choices[0]?.message.content).toBeTruthy();
      expect(mock1.last().headers["authorization"]).toBe(`Bearer ${OPENAI_POOL}`);
      expect(await metricValue(gw1.metricsUrl, "ai_rejections_total", { reason: "circuit_open" })).toBe(0);
    },
    30_000,
  );

  test(
    "attack shape: 150 stalled uploads (100 small, 50 chunked) all get 408 and are closed, a normal request is served meanwhile, descriptors are released",
    async () => {
      const during = await sc.duringAttack;
      expect(during.reply.status).toBe(200);
      // They were all held at that moment (plus the scrape's own request at most): the 408s below are not early.
      expect(during.inFlight).toBeGreaterThanOrEqual(150);
      const results = await Promise.all(sc.attack.map((a) => a.done));
      const statuses = new Map<string, number>();
      for (const r of results) statuses.set(`${r.status}/${r.closedByGateway ? "closed" : "open"}`, (statuses.get(`${r.status}/${r.closedByGateway ? "closed" : "open"}`) ?? 0) + 1);
      expect(Object.fromEntries(statuses)).toEqual({ "408/closed": 150 });
      for (const r of results.slice(0, 3)) expect408(r, "openai");
      // Every other stall on this gateway is over too; what it holds now is back to its idle set (a pooled upstream
      // connection or two), not one descriptor per stalled client.
      await Promise.all([sc.smallOpenai.done, sc.smallAnthropic.done, sc.smallManaged.done, sc.large.done, ...sc.chunked.map((c) => c.done)]);
      await sleep(200);
      expect(fds(gw1.proc.pid)).toBeLessThanOrEqual(sc.fdsBefore + 10);
    },
    30_000,
  );

  test(
    "a keep-alive connection whose request is over is closed after idle_timeout_secs of silence, like any idle one",
    async () => {
      const s = await sc.idleKeepAlive.done;
      expect(s.status).toBe(200);
      expect(s.headers["connection"]).not.toBe("close");
      expect(s.closedByGateway).toBe(true);
    },
    30_000,
  );

  test(
    "once every stalled client has its 408, ai_requests_in_flight is back to 0",
    async () => {
      const all = await Promise.all([...sc.attack.map((a) => a.done), sc.smallOpenai.done, sc.smallAnthropic.done, sc.smallManaged.done, sc.large.done, ...sc.chunked.map((c) => c.done)]);
      // Ended by the gateway, not by the client giving up (which would bring the gauge down as well).
      expect(all.filter((s) => !s.closedByGateway).length).toBe(0);
      const deadline = Date.now() + 3000;
      let inFlight = await metricValue(gw1.metricsUrl, "ai_requests_in_flight");
      while (inFlight !== 0 && Date.now() < deadline) {
        await sleep(50);
        inFlight = await metricValue(gw1.metricsUrl, "ai_requests_in_flight");
      }
      expect(inFlight).toBe(0);
    },
    30_000,
  );
});

describe("the provider's timeout counts only time spent waiting on the provider (issue 12 item 3a)", () => {
  test(
    "a slow but steady upload that takes longer than read_timeout_secs is not cut: it reaches the provider whole and gets its answer",
    async () => {
      const r = await sc.slowSteady;
      expect(r.status).toBe(200);
      expect((r.json as { size: number }).size).toBe(35);
    },
    30_000,
  );

  test(
    "a streamed upload that completes, then no response head within read_timeout_secs: 504 upstream timed out, a provider failure (three open its breaker)",
    async () => {
      const r = await sc.slowProvider;
      for (const t of r.timedOut) {
        expectGatewayError(t, "openai", 504, "api_error", "upstream timed out");
        await expectOneAccessLine(gw2, t.headers.get("x-beyond-request-id") as string, 504, "upstream_timeout");
      }
      expectGatewayError(r.after, "openai", 503, "api_error", "provider temporarily unavailable");
      expect(Number(r.after.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    },
    30_000,
  );
});

describe("the breaker's half-open probe (issue 12 item 3b)", () => {
  test(
    "a small-body request that never finishes its body does not take the probe: the next request probes and closes the breaker; the open breaker's 503 has Retry-After",
    async () => {
      const r = await sc.smallProbe;
      expect(r.opening).toEqual([500, 500, 500]);
      expectGatewayError(r.open503, "openai", 503, "api_error", "provider temporarily unavailable");
      // Reset 1 s: whole seconds until the probe, at least 1.
      expect(r.open503.headers.get("retry-after")).toBe("1");
      expect(r.upstreamAfterOpen).toBe(3);
      // The stalled client was still waiting when the next request came, and that one was let through as the probe.
      expect(r.stallPendingAtProbe).toBe(true);
      expect(r.probe.status).toBe(200);
      expect(r.upstreamAtEnd).toBe(4);
      expect408(r.stall, "openai");
    },
    30_000,
  );

  test(
    "a streamed probe whose client stalls holds the only permit until its 408, then hands it back: the next request probes and closes the breaker",
    async () => {
      const r = await sc.streamedProbe;
      expect(r.opening).toEqual([500, 500, 500]);
      // One probe at a time: while the stalled one holds it, others are refused, with Retry-After.
      expectGatewayError(r.whileProbeHeld, "openai", 503, "api_error", "provider temporarily unavailable");
      expect(Number(r.whileProbeHeld.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const id = expect408(r.stall, "openai");
      await expectOneAccessLine(gw2, id, 408, "client_timeout");
      // Its permit came back (a client stall says nothing about the provider): the next request probed, succeeded,
      // and closed the breaker.
      expect(r.after).toEqual([200, 200]);
    },
    30_000,
  );
});

// ---------------------------------------------------------------------------------------------

describe("TRACE and CONNECT are refused with 405, nothing forwarded (issue 12 item 7)", () => {
  const MARK = "x-hardening-method-test";
  const forwarded = (): number => mock2.requests.filter((r) => r.headers[MARK] !== undefined || r.method === "TRACE" || r.method === "CONNECT").length;

  async function expect405(raw: string, dialect: Dialect, managed: boolean): Promise<void> {
    const res = await rawHttp(gw2.host, gw2.port, raw);
    const reply: Reply = { status: res.status, headers: new Headers(res.headers), text: res.text(), json: JSON.parse(res.text()) };
    expectGatewayError(reply, dialect, 405, "invalid_request_error", "method not allowed");
    const allow = (reply.headers.get("allow") ?? "").split(",").map((m) => m.trim());
    expect(allow).toContain("POST");
    expect(allow).not.toContain("TRACE");
    expect(allow).not.toContain("CONNECT");
    const line = await expectOneAccessLine(gw2, reply.headers.get("x-beyond-request-id") as string, 405, "method_not_allowed");
    expect(line["managed"]).toBe(false); // refused before the key is even looked at
    // Neither the pool key nor the client's key can come back: nothing was sent anywhere.
    expect(reply.text).not.toContain(OPENAI_POOL);
    expect(reply.text).not.toContain(managed ? MANAGED : "sk-byo");
    expect(forwarded()).toBe(0);
  }

  test("TRACE with a BYO key, OpenAI dialect", async () => {
    await expect405(`TRACE /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-byo-trace\r\n${MARK}: 1\r\n\r\n`, "openai", false);
  });

  test("TRACE with a managed key on /v1/messages, Anthropic dialect", async () => {
    await expect405(`TRACE /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: ${MANAGED}\r\n${MARK}: 1\r\n\r\n`, "anthropic", true);
  });

  test("CONNECT with a path, managed key", async () => {
    await expect405(`CONNECT /openai/v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${MANAGED}\r\n${MARK}: 1\r\n\r\n`, "openai", true);
  });

  test("CONNECT in authority form, BYO key", async () => {
    await expect405(`CONNECT api.openai.com:443 HTTP/1.1\r\nhost: api.openai.com:443\r\nauthorization: Bearer sk-byo-connect\r\n${MARK}: 1\r\n\r\n`, "openai", false);
  });

  test("other methods still pass: OPTIONS and DELETE reach the provider", async () => {
    for (const method of ["OPTIONS", "DELETE"]) {
      const res = await fetch(`${gw2.url}/openai/v1/files/file-1`, { method, headers: { authorization: "Bearer sk-byo-methods" } });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      expect(mock2.last().method).toBe(method);
    }
  });
});

describe("an unreachable provider is named in the log (issue 13 item 11)", () => {
  const linesFor = (id: string, msg: string): LogLine[] => gw2.logs().filter((l) => l["request_id"] === id && l["msg"] === msg);

  async function unreachable(provider: string, authority: string, pool: string): Promise<{ retries: LogLine[]; failed: LogLine }> {
    const r = await post(gw2, `/${provider}/v1/chat/completions`, { authorization: `Bearer ${MANAGED}` });
    expectGatewayError(r, "openai", 502, "api_error", "upstream unreachable");
    const id = r.headers.get("x-beyond-request-id") as string;
    await expectOneAccessLine(gw2, id, 502, "upstream_unreachable");
    const retries = linesFor(id, "upstream connect failed, retrying");
    const failed = linesFor(id, "upstream request failed");
    // Managed: §5's two connect retries within each attempt, and §10's attempts after backoff; one final line.
    const attempts = linesFor(id, "upstream attempt failed, retrying");
    expect(retries.length).toBe(2 * (attempts.length + 1));
    expect(failed.length).toBe(1);
    for (const l of attempts) expect(String(l["error"])).toMatch(new RegExp(`^upstream_unreachable: [A-Za-z_]+ ${authority.replace(/\./g, "\\.")}$`));
    for (const l of retries) expect(String(l["error"])).toMatch(new RegExp(`^[A-Za-z_]+ ${authority.replace(/\./g, "\\.")}$`));
    expect(String(failed[0]?.["error"])).toMatch(new RegExp(`^upstream_unreachable: [A-Za-z_]+ ${authority.replace(/\./g, "\\.")}$`));
    // The host is there, the pool key (and the client's key) never.
    expect(gw2.stdout()).not.toContain(pool);
    expect(gw2.stdout()).not.toContain(MANAGED);
    return { retries, failed: failed[0] as LogLine };
  }

  test("a provider that refuses connections: the lines carry the error code and 127.0.0.1:port", async () => {
    const { failed } = await unreachable("refused", `127.0.0.1:${refusedPort}`, REFUSED_POOL);
    expect(String(failed["error"])).not.toContain("ENOTFOUND");
  });

  test("a provider host that does not resolve: the lines carry the DNS error and the host", async () => {
    const { failed } = await unreachable("nxdomain", NXDOMAIN_AUTHORITY, NXDOMAIN_POOL);
    expect(String(failed["error"])).toMatch(/ENOTFOUND|EAI_AGAIN|DNS/);
  });
});
