// End to end, operations (SPEC §1 signals, §9 admin listener): /metrics read the way a Prometheus scraper
// reads it (strict parser in helpers/prometheus.ts), every series SPEC §9 names present, counters moving with
// traffic, no secret in the scrape; /livez, /readyz and unknown admin paths; graceful shutdown on SIGTERM
// (an in-flight stream finishes, new connections are refused, exit 0), the grace period cutting a stream
// that never ends, and a second signal exiting at once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pkg from "../package.json" with { type: "json" };
import { b64urlEncode, keygen, mint } from "../src/controls/keys.ts";
import { baseConfig, type Gateway, startGateway } from "./helpers/gateway.ts";
import { closedPort, createGate, type Gate, type MockProvider, startMockProvider } from "./helpers/mock-provider.ts";
import { checkExposition, histogramCount, parsePrometheus, PrometheusParseError, sampleValue, scrape } from "./helpers/prometheus.ts";

const POOL_KEY = "sk-ops-pool-secret-7f3a";
const BYO_KEY = "sk-byo-ops-client-key";
const signer = keygen();
const PUB = Buffer.from(signer.publicKey).toString("base64");
const SEED_FORMS = [b64urlEncode(signer.seed), Buffer.from(signer.seed).toString("base64")];
const MANAGED = mint(1, signer.seed, 4242n, 9n);

const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });

/** SPEC §9, in its order. */
const SPEC_SERIES = [
  "ai_requests_total",
  "ai_rejections_total",
  "ai_upstream_responses_total",
  "ai_connect_retries_total",
  "ai_tokens_total",
  "ai_ttft_seconds",
  "ai_upstream_latency_seconds",
  "ai_active_streams",
  "ai_requests_in_flight",
  "ai_deny_set_size",
  "ai_nats_connected",
  "ai_gateway_overhead_seconds",
  "ai_deny_set_revision",
  "ai_usage_parse_errors_total",
] as const;
const HISTOGRAMS: ReadonlySet<string> = new Set(["ai_ttft_seconds", "ai_upstream_latency_seconds", "ai_gateway_overhead_seconds"]);
const GAUGES: ReadonlySet<string> = new Set(["ai_active_streams", "ai_requests_in_flight", "ai_deny_set_size", "ai_nats_connected", "ai_deny_set_revision"]);
const UNLABELLED = ["ai_requests_total", "ai_usage_parse_errors_total", "ai_active_streams", "ai_requests_in_flight", "ai_deny_set_size", "ai_nats_connected", "ai_deny_set_revision"];

function chat(g: Gateway, headers: Record<string, string>, path = "/v1/chat/completions", body = CHAT): Promise<Response> {
  return fetch(g.url + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

describe("prometheus parser (the checker itself)", () => {
  test("parses labels with escaped quotes, backslashes and newlines", () => {
    const exp = parsePrometheus('# HELP x_total A "help" line\\nwith escapes\n# TYPE x_total counter\nx_total{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3 1700000000000\n');
    expect(sampleValue(exp, "x_total", { a: 'q"uote', b: "back\\slash", c: "new\nline" })).toBe(3);
    expect(exp.families.get("x_total")?.type).toBe("counter");
    expect(exp.families.get("x_total")?.help).toBe('A "help" line\nwith escapes');
  });

  test("rejects a malformed sample line", () => {
    expect(() => parsePrometheus('# TYPE x gauge\nx{a="unterminated} 1\n')).toThrow(PrometheusParseError);
    expect(() => parsePrometheus("# TYPE x gauge\nx one\n")).toThrow(PrometheusParseError);
    expect(() => parsePrometheus('# TYPE x gauge\nx{a="b" c="d"} 1\n')).toThrow(PrometheusParseError);
  });

  test("flags a sample without TYPE, a non-cumulative histogram and an +Inf bucket that disagrees with _count", () => {
    expect(checkExposition("y 1\n")).toEqual([expect.stringContaining("no TYPE")]);
    const bad = [
      "# TYPE h histogram",
      'h_bucket{le="0.1"} 5',
      'h_bucket{le="1"} 3',
      'h_bucket{le="+Inf"} 6',
      "h_sum 1.5",
      "h_count 7",
      "",
    ].join("\n");
    const problems = checkExposition(bad);
    expect(problems.some((p) => p.includes("not cumulative"))).toBe(true);
    expect(problems.some((p) => p.includes("_count is 7"))).toBe(true);
    const good = ["# TYPE h histogram", 'h_bucket{p="a",le="0.1"} 1', 'h_bucket{p="a",le="+Inf"} 2', 'h_sum{p="a"} 0.3', 'h_count{p="a"} 2', ""].join("\n");
    expect(checkExposition(good)).toEqual([]);
    expect(histogramCount(parsePrometheus(good), "h", { p: "a" })).toBe(2);
  });
});

describe("admin listener", () => {
  let mock: MockProvider;
  let gw: Gateway;
  let fresh: { text: string };

  beforeAll(async () => {
    mock = startMockProvider();
    gw = await startGateway({
      config: baseConfig({
        // `deadprov` points at a closed port, to produce connect retries.
        authorities: { openai: mock.authority, anthropic: mock.authority, deadprov: `127.0.0.1:${closedPort()}` },
        tables: ["[pool_keys]", `openai = "${POOL_KEY}"`, "", "[signing_keys]", `1 = "${PUB}"`].join("\n"),
      }),
    });
    // Scraped before any traffic, for the boot-state test.
    fresh = { text: await (await fetch(`${gw.metricsUrl}/metrics`)).text() };
  });

  afterAll(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test("/livez is 200 with status ok and the package version", async () => {
    const res = await fetch(`${gw.metricsUrl}/livez`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toEqual({ status: "ok", version: pkg.version });
  });

  test("/readyz is 200 with status degraded while NATS is unreachable", async () => {
    const res = await fetch(`${gw.metricsUrl}/readyz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body["status"]).toBe("degraded");
    expect(body["version"]).toBe(pkg.version);
  });

  test("an unknown admin path is 404 with status not_found", async () => {
    for (const path of ["/nope", "/health", "/metrics/extra"]) {
      const res = await fetch(`${gw.metricsUrl}${path}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as Record<string, unknown>)["status"]).toBe("not_found");
    }
  });

  test("/metrics at boot parses, and every unlabelled series already has a sample (counters at 0)", () => {
    expect(checkExposition(fresh.text)).toEqual([]);
    const exp = parsePrometheus(fresh.text);
    for (const name of UNLABELLED) {
      expect({ name, value: sampleValue(exp, name) }).toEqual({ name, value: expect.any(Number) });
    }
    expect(sampleValue(exp, "ai_requests_total")).toBe(0);
    expect(sampleValue(exp, "ai_usage_parse_errors_total")).toBe(0);
  });

  test("/metrics after mixed traffic parses as Prometheus text and carries every series SPEC §9 names", async () => {
    // One request of each kind, so every labelled family has at least one sample.
    expect((await chat(gw, { authorization: "Bearer bai_v1.1.nonsense.sig" })).status).toBe(401); // ai_rejections_total{reason="auth"}
    const managed = await chat(gw, { authorization: `Bearer ${MANAGED}` }); // ai_tokens_total{kind}
    expect(managed.status).toBe(200);
    await managed.text();
    const noUsage = await chat(gw, { authorization: `Bearer ${MANAGED}`, "x-mock-mode": "bytes:32" }); // ai_usage_parse_errors_total
    expect(noUsage.status).toBe(200);
    await noUsage.arrayBuffer();
    const byo = await chat(gw, { authorization: `Bearer ${BYO_KEY}` }); // upstream responses, ttft, overhead
    expect(byo.status).toBe(200);
    await byo.text();
    const dead = await chat(gw, { authorization: `Bearer ${BYO_KEY}` }, "/deadprov/v1/chat/completions"); // ai_connect_retries_total
    expect(dead.status).toBe(502);
    await dead.text();

    // The latency histogram is observed when the body has been relayed; poll briefly for it.
    let s = await scrape(gw.metricsUrl);
    for (let i = 0; i < 50 && histogramCount(s.exp, "ai_upstream_latency_seconds", { provider: "openai" }) < 3; i++) {
      await Bun.sleep(20);
      s = await scrape(gw.metricsUrl);
    }
    expect(s.contentType).toContain("text/plain");
    expect(s.contentType).toContain("version=0.0.4");
    expect(checkExposition(s.text)).toEqual([]);
    for (const name of SPEC_SERIES) {
      const fam = s.exp.families.get(name);
      const want = HISTOGRAMS.has(name) ? "histogram" : GAUGES.has(name) ? "gauge" : "counter";
      expect({ name, type: fam?.type }).toEqual({ name, type: want });
      expect({ name, samples: (fam?.samples.length ?? 0) > 0 }).toEqual({ name, samples: true });
    }
    const exp = s.exp;
    expect(sampleValue(exp, "ai_rejections_total", { reason: "auth" })).toBe(1);
    expect(sampleValue(exp, "ai_connect_retries_total", { provider: "deadprov" })).toBe(2);
    expect(sampleValue(exp, "ai_usage_parse_errors_total")).toBe(1);
    for (const kind of ["input", "output", "cache_read", "cache_write"]) {
      expect({ kind, v: sampleValue(exp, "ai_tokens_total", { kind }) }).toEqual({ kind, v: expect.any(Number) });
    }
    // The managed chat reported 11 prompt and 7 completion tokens (mock), the no-usage reply adds only estimates.
    expect(sampleValue(exp, "ai_tokens_total", { kind: "input" })).toBeGreaterThanOrEqual(11);
    expect(sampleValue(exp, "ai_tokens_total", { kind: "output" })).toBeGreaterThanOrEqual(7);
    expect(sampleValue(exp, "ai_upstream_responses_total", { provider: "openai", status: "2xx" })).toBe(3);
    expect(histogramCount(exp, "ai_ttft_seconds", { provider: "openai" })).toBe(3);
    expect(histogramCount(exp, "ai_upstream_latency_seconds", { provider: "openai" })).toBe(3);
    expect(histogramCount(exp, "ai_gateway_overhead_seconds")).toBe(3);
    expect(sampleValue(exp, "ai_requests_in_flight")).toBe(0);
    expect(sampleValue(exp, "ai_active_streams")).toBe(0);
    expect(sampleValue(exp, "ai_nats_connected")).toBe(0);
    expect(sampleValue(exp, "ai_deny_set_size")).toBe(0);
  });

  test("counters move by exactly the requests that passed", async () => {
    const N = 3;
    const before = (await scrape(gw.metricsUrl)).exp;
    for (let i = 0; i < N; i++) {
      const res = await chat(gw, { authorization: `Bearer ${BYO_KEY}` });
      expect(res.status).toBe(200);
      await res.text();
    }
    const streamed = await chat(gw, { authorization: `Bearer ${BYO_KEY}` }, "/v1/chat/completions", JSON.stringify({ model: "m", stream: true, messages: [] }));
    expect(streamed.headers.get("content-type")).toContain("text/event-stream");
    await streamed.text();
    const after = (await scrape(gw.metricsUrl)).exp;
    const d = (name: string, labels?: Record<string, string>) => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    expect(d("ai_requests_total")).toBe(N + 1);
    expect(d("ai_upstream_responses_total", { provider: "openai", status: "2xx" })).toBe(N + 1);
    expect(histogramCount(after, "ai_ttft_seconds", { provider: "openai" }) - histogramCount(before, "ai_ttft_seconds", { provider: "openai" })).toBe(N + 1);
    expect(histogramCount(after, "ai_gateway_overhead_seconds") - histogramCount(before, "ai_gateway_overhead_seconds")).toBe(N + 1);
    expect(d("ai_rejections_total", { reason: "auth" })).toBe(0);
    // BYO traffic is never metered (SPEC §4): token counters stay put.
    expect(d("ai_tokens_total", { kind: "input" })).toBe(0);
  });

  test("a rejected request counts in ai_requests_total and its rejection reason, not in upstream responses", async () => {
    const before = (await scrape(gw.metricsUrl)).exp;
    expect((await chat(gw, {})).status).toBe(401); // missing key
    expect((await chat(gw, { authorization: "Bearer bai_v2.x.y.z" })).status).toBe(401);
    const after = (await scrape(gw.metricsUrl)).exp;
    expect((sampleValue(after, "ai_requests_total") ?? 0) - (sampleValue(before, "ai_requests_total") ?? 0)).toBe(2);
    expect((sampleValue(after, "ai_rejections_total", { reason: "auth" }) ?? 0) - (sampleValue(before, "ai_rejections_total", { reason: "auth" }) ?? 0)).toBe(1);
    expect(sampleValue(after, "ai_upstream_responses_total", { provider: "openai", status: "2xx" })).toBe(sampleValue(before, "ai_upstream_responses_total", { provider: "openai", status: "2xx" }));
  });

  test("/metrics never contains a pool key, the signing seed or a client key", async () => {
    const res = await chat(gw, { authorization: `Bearer ${MANAGED}` });
    await res.text();
    expect(mock.last().headers["authorization"]).toBe(`Bearer ${POOL_KEY}`);
    const { text } = await scrape(gw.metricsUrl);
    for (const secret of [POOL_KEY, ...SEED_FORMS, MANAGED, BYO_KEY, "bai_v1"]) expect(text).not.toContain(secret);
  });
});

// ---------------------------------------------------------------------------------------------
// Graceful shutdown. Each test owns its gateway, since each ends it.

/** Resolves "connected" if a TCP connection to host:port opens, else rejects with the socket error. */
function tcpConnect(host: string, port: number): Promise<"connected"> {
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open(socket) {
          socket.end();
          resolve("connected");
        },
        data() {},
        connectError(_s, e) {
          reject(e);
        },
        error(_s, e) {
          reject(e);
        },
      },
    }).catch(reject);
  });
}

/** Reads an SSE body to its end, handing each `data:` payload to `onEvent`; resolves how it ended. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (data: string) => void): Promise<"done" | "error"> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "done";
      buf += dec.decode(value, { stream: true });
      let sep: number;
      while ((sep = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        for (const line of ev.split("\n")) if (line.startsWith("data: ")) onEvent(line.slice(6));
      }
    }
  } catch {
    return "error";
  }
}

/** Waits for the process to exit; the exit code, or "running" if it is still up after `ms`. */
async function exitWithin(g: Gateway, ms: number): Promise<number | null | "running"> {
  const exited = await Promise.race([g.proc.exited.then(() => true), Bun.sleep(ms).then(() => false)]);
  return exited ? g.proc.exitCode : "running";
}

function streamRequest(g: Gateway, extra: Record<string, string> = {}): Promise<Response> {
  return chat(g, { authorization: `Bearer ${BYO_KEY}`, ...extra }, "/v1/chat/completions", JSON.stringify({ model: "m", stream: true, messages: [] }));
}

describe("graceful shutdown", () => {
  let mock: MockProvider;
  const started: Gateway[] = [];

  beforeAll(() => {
    mock = startMockProvider();
  });

  afterAll(async () => {
    await Promise.all(started.map((g) => g.stop()));
    await mock?.stop();
  });

  async function launch(graceSecs: number): Promise<Gateway> {
    const g = await startGateway({
      config: baseConfig({ authorities: { openai: mock.authority } }),
      env: { AI_SHUTDOWN_GRACE_PERIOD_SECS: String(graceSecs) },
    });
    started.push(g);
    return g;
  }

  test(
    "SIGTERM during a slow stream: the stream completes with every event, new connections are refused, exit code 0",
    async () => {
      const gw = await launch(30);
      const EVENTS = 7;
      const events = Array.from({ length: EVENTS }, (_, i) => `data: {"n":${i}}\n\n`);
      const gates: Gate[] = events.map(() => createGate());
      mock.queue({ kind: "sse", events, gates: gates.map((g) => g.promise) });
      // The first event goes out with the head (the mock sends the head with its first chunk).
      gates[0]!.open();

      const res = await streamRequest(gw);
      expect(res.status).toBe(200);
      const got: string[] = [];
      let firstSeen!: () => void;
      const first = new Promise<void>((r) => (firstSeen = r));
      const ended = readEvents(res.body!, (d) => {
        got.push(d);
        firstSeen();
      });
      // The provider drips one event every ~300 ms (≈2 s in all).
      const pacing = (async () => {
        for (let i = 1; i < EVENTS; i++) {
          await Bun.sleep(300);
          gates[i]!.open();
        }
      })();
      await first;

      gw.proc.kill("SIGTERM");
      await gw.waitForLog((l) => typeof l["msg"] === "string" && (l["msg"] as string).startsWith("shutting down"), 3000);
      // Listener closed: a new connection attempt is refused while the stream is still running.
      const attempt = await tcpConnect(gw.host, gw.port).then(
        () => "connected",
        (e: unknown) => String((e as { code?: string }).code ?? e),
      );
      expect(attempt).toContain("ECONNREFUSED");
      expect(got.length).toBeLessThan(EVENTS);
      expect(gw.proc.exitCode).toBeNull();

      await pacing;
      expect(await ended).toBe("done");
      expect(got).toEqual(events.map((_, i) => `{"n":${i}}`));
      expect(await exitWithin(gw, 8000)).toBe(0);
      await gw.waitForLog((l) => l["msg"] === "stopped", 1000);
    },
    20_000,
  );

  test(
    "grace period over: a never-ending stream is cut and the process still exits 0",
    async () => {
      const gw = await launch(1);
      const seqFrom = mock.requests.length;
      const res = await streamRequest(gw, { "x-mock-mode": "drip:100" });
      expect(res.status).toBe(200);
      let n = 0;
      let firstSeen!: () => void;
      const first = new Promise<void>((r) => (firstSeen = r));
      const ended = readEvents(res.body!, () => {
        n++;
        firstSeen();
      });
      await first;
      gw.proc.kill("SIGTERM");
      // grace (1 s) plus a margin for teardown; with no grace enforcement it would never exit.
      expect(await exitWithin(gw, 6000)).toBe(0);
      expect(["done", "error"]).toContain(await Promise.race([ended, Bun.sleep(3000).then(() => "still streaming" as const)]));
      expect(n).toBeGreaterThan(1);
      // The mock saw the gateway go away mid-stream.
      const r = await mock.waitForRequest((x) => x.seq >= seqFrom && x.closedEarlyAt !== null, 3000);
      expect(r.closedEarlyAt).not.toBeNull();
    },
    20_000,
  );

  test(
    "a second signal exits at once, without waiting for the in-flight stream",
    async () => {
      const gw = await launch(600);
      const res = await streamRequest(gw, { "x-mock-mode": "drip:100" });
      expect(res.status).toBe(200);
      let firstSeen!: () => void;
      const first = new Promise<void>((r) => (firstSeen = r));
      const ended = readEvents(res.body!, () => firstSeen());
      await first;
      gw.proc.kill("SIGTERM");
      await gw.waitForLog((l) => typeof l["msg"] === "string" && (l["msg"] as string).startsWith("shutting down"), 3000);
      // Draining: the first signal alone does not end a process with a live stream and a 600 s grace.
      expect(await exitWithin(gw, 500)).toBe("running");
      gw.proc.kill("SIGINT");
      expect(await exitWithin(gw, 3000)).toBe(0);
      expect(gw.proc.signalCode).toBeNull();
      expect(["done", "error"]).toContain(await Promise.race([ended, Bun.sleep(3000).then(() => "still streaming" as const)]));
    },
    20_000,
  );
});
