// End to end, invariant 1 (issue 12 items 2 and 6): a `bai_` token never reaches a provider, whatever header or
// combination of headers carries it. A real gateway process, a recording mock provider per dialect, raw sockets for
// repeated headers (Bun joins them with ", "), fetch for the rest. For each case, in both dialects: the status, the
// gateway's error body in the caller's dialect, nothing forwarded for a refused request, no `bai_` in any header
// the provider received for a BYO one, and only the pool key for a managed one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { b64urlDecodeStrict, b64urlEncode, keygen, mint } from "../src/controls/keys.ts";
import { type Gateway, type ManagedPair, rawHttp, startManagedPair } from "./helpers/gateway.ts";
import { type MockProvider, type RecordedRequest } from "./helpers/mock-provider.ts";
import { type Dialect, expectGatewayError, toReply } from "./helpers/replies.ts";

const KID = 7;
const key = keygen();
const VALID = mint(KID, key.seed, 4242n, 99n);
const VALID_2 = mint(KID, key.seed, 4243n, 99n);
/** Well-formed, trusted kid, canonical S, wrong signature: fails only the signature check. */
const FORGED = (() => {
  const [p, k, pay, sig] = VALID.split(".");
  const bytes = b64urlDecodeStrict(sig!)!;
  bytes[0]! ^= 1;
  return `${p}.${k}.${pay}.${b64urlEncode(bytes)}`;
})();
const BYO = "sk-byo-user-key-123";
const OPENAI_POOL = "sk-pool-openai-creds";
const ANTHROPIC_POOL = "sk-pool-anthropic-creds";

const OPENAI_CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
const ANTHROPIC_MSG = JSON.stringify({ model: "claude-test", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });

let openaiMock: MockProvider;
let anthropicMock: MockProvider;
let gw: Gateway;
let pair: ManagedPair;

beforeAll(async () => {
  pair = await startManagedPair({ openaiPool: OPENAI_POOL, anthropicPool: ANTHROPIC_POOL, publicKey: key.publicKey, kid: KID });
  ({ gw, openaiMock, anthropicMock } = pair);
});

afterAll(() => pair?.stop());

const DIALECTS: { dialect: Dialect; path: string; body: string; extra: [string, string][]; pool: [string, string] }[] = [
  { dialect: "openai", path: "/v1/chat/completions", body: OPENAI_CHAT, extra: [], pool: ["authorization", `Bearer ${OPENAI_POOL}`] },
  { dialect: "anthropic", path: "/v1/messages", body: ANTHROPIC_MSG, extra: [["anthropic-version", "2023-06-01"]], pool: ["x-api-key", ANTHROPIC_POOL] },
];

const mockOf = (d: Dialect): MockProvider => (d === "openai" ? openaiMock : anthropicMock);
const received = (): number => openaiMock.requests.length + anthropicMock.requests.length;

interface Answer {
  status: number;
  headers: Record<string, string>;
  json: unknown;
}

/** Sends `headers` exactly as listed (repeated names stay separate lines) over a raw socket. */
async function send(path: string, body: string, headers: [string, string][]): Promise<Answer> {
  const lines = [`POST ${path} HTTP/1.1`, `host: ${gw.host}:${gw.port}`, "content-type: application/json", `content-length: ${Buffer.byteLength(body)}`, "connection: close"];
  for (const [n, v] of headers) lines.push(`${n}: ${v}`);
  const res = await rawHttp(gw.host, gw.port, `${lines.join("\r\n")}\r\n\r\n${body}`);
  let json: unknown;
  try {
    json = JSON.parse(res.text());
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json };
}

function expectError(a: Answer, dialect: Dialect, status: number, type: string, message: string): void {
  expectGatewayError({ status: a.status, headers: new Headers(a.headers), text: "", json: a.json }, dialect, status, type, message);
}

/** No header name or value the provider received holds a managed key (every key in this file starts `bai_v`). */
function expectNoBai(r: RecordedRequest): void {
  for (const [name, value] of Object.entries(r.headers)) {
    expect(name).not.toContain("bai_v");
    expect(value).not.toContain("bai_v");
  }
}

/** A managed request that went through: the provider saw the pool key in its own header and no other credential. */
function expectPoolOnly(r: RecordedRequest, pool: [string, string]): void {
  expectNoBai(r);
  expect(r.headers[pool[0]]).toBe(pool[1]);
  for (const h of ["authorization", "x-api-key", "api-key", "proxy-authorization"]) if (h !== pool[0]) expect(r.headers[h]).toBeUndefined();
}

type Case = { name: string; headers: [string, string][] };

const CONFLICTING: Case[] = [
  { name: "x-api-key BYO + Authorization: Bearer valid bai_", headers: [["x-api-key", BYO], ["authorization", `Bearer ${VALID}`]] },
  { name: "x-api-key BYO + Authorization: Bearer forged bai_", headers: [["x-api-key", BYO], ["authorization", `Bearer ${FORGED}`]] },
  { name: "Authorization: Bearer BYO + api-key valid bai_", headers: [["authorization", `Bearer ${BYO}`], ["api-key", VALID]] },
  { name: "two x-api-key headers: BYO, then valid bai_", headers: [["x-api-key", BYO], ["x-api-key", VALID]] },
  { name: "two x-api-key headers: valid bai_, then BYO", headers: [["x-api-key", VALID], ["x-api-key", BYO]] },
  { name: "two Authorization headers: Bearer BYO, Bearer valid bai_", headers: [["authorization", `Bearer ${BYO}`], ["authorization", `Bearer ${VALID}`]] },
  { name: "two Authorization headers: two different valid bai_ keys", headers: [["authorization", `Bearer ${VALID}`], ["authorization", `Bearer ${VALID_2}`]] },
  { name: "valid and forged bai_ in x-api-key and Authorization", headers: [["x-api-key", VALID], ["authorization", `Bearer ${FORGED}`]] },
  { name: "one header, comma-joined: BYO, valid bai_", headers: [["x-api-key", `${BYO}, ${VALID}`]] },
  { name: "Proxy-Authorization valid bai_ + x-api-key BYO", headers: [["proxy-authorization", `Bearer ${VALID}`], ["x-api-key", BYO]] },
  { name: "Authorization: Basic (non-bai) + x-api-key valid bai_", headers: [["authorization", "Basic dXNlcjpwYXNz"], ["x-api-key", VALID]] },
];

const MISPLACED: Case[] = [
  { name: "valid bai_ in a custom header beside a BYO key", headers: [["authorization", `Bearer ${BYO}`], ["x-custom-key", VALID]] },
  { name: "forged bai_ in a custom header beside a BYO key", headers: [["x-api-key", BYO], ["x-forwarded-key", FORGED]] },
  { name: "valid bai_ in a custom header beside the same valid managed key", headers: [["authorization", `Bearer ${VALID}`], ["x-note", `key=${VALID}`]] },
  { name: "bai_ in a cookie beside a BYO key", headers: [["x-api-key", BYO], ["cookie", `session=abc; k=${VALID}`]] },
  // The head is read into a plain object: names that are also Object.prototype's, and set-cookie's separate lines.
  { name: "bai_ in a header named __proto__ beside a BYO key", headers: [["x-api-key", BYO], ["__proto__", VALID]] },
  { name: "bai_ in a header named constructor beside a BYO key", headers: [["x-api-key", BYO], ["constructor", VALID]] },
  { name: "bai_ in the second of two set-cookie lines beside a BYO key", headers: [["x-api-key", BYO], ["set-cookie", "a=1"], ["set-cookie", `k=${VALID}`]] },
];

const INVALID: Case[] = [
  { name: "Authorization: Bearer forged bai_", headers: [["authorization", `Bearer ${FORGED}`]] },
  { name: "Authorization: Token forged bai_", headers: [["authorization", `Token ${FORGED}`]] },
  { name: "api-key: forged bai_", headers: [["api-key", FORGED]] },
  { name: "Proxy-Authorization: Bearer forged bai_ alone", headers: [["proxy-authorization", `Bearer ${FORGED}`]] },
  { name: "x-api-key: quoted valid bai_", headers: [["x-api-key", `"${VALID}"`]] },
  { name: "two Authorization headers with the same forged bai_", headers: [["authorization", `Bearer ${FORGED}`], ["authorization", `Bearer ${FORGED}`]] },
  { name: "bai_v2 token", headers: [["x-api-key", `bai_v2${VALID.slice(6)}`]] },
];

const MANAGED_OK: Case[] = [
  { name: "Authorization: Bearer valid", headers: [["authorization", `Bearer ${VALID}`]] },
  { name: "Authorization: Token valid (any scheme)", headers: [["authorization", `Token ${VALID}`]] },
  { name: "Authorization: valid without a scheme", headers: [["authorization", VALID]] },
  { name: "api-key: valid", headers: [["api-key", VALID]] },
  { name: "x-api-key and Authorization: Bearer holding the same valid key", headers: [["x-api-key", VALID], ["authorization", `Bearer ${VALID}`]] },
  { name: "two x-api-key headers with the same valid key", headers: [["x-api-key", VALID], ["x-api-key", VALID]] },
  { name: "Proxy-Authorization: Bearer valid alone", headers: [["proxy-authorization", `Bearer ${VALID}`]] },
  { name: "valid key beside a blank x-api-key", headers: [["x-api-key", ""], ["authorization", `Bearer ${VALID}`]] },
  { name: "valid key beside a header holding bai_ inside another word", headers: [["authorization", `Bearer ${VALID}`], ["x-trace", "kubai_trace"]] },
];

describe("a bai_ key beside another credential is refused with 400, nothing forwarded", () => {
  for (const d of DIALECTS) {
    for (const c of CONFLICTING) {
      test(`${d.dialect}: ${c.name} → 400 conflicting credentials`, async () => {
        const before = received();
        const a = await send(d.path, d.body, [...d.extra, ...c.headers]);
        expectError(a, d.dialect, 400, "invalid_request_error", "conflicting credentials");
        expect(received()).toBe(before);
        const line = await gw.accessLog(a.headers["x-beyond-request-id"]!);
        expect(line["status"]).toBe(400);
        expect(line["error"]).toBe("conflicting_credentials");
      });
    }
  }
});

describe("a bai_ key outside the credential headers is refused with 400, nothing forwarded", () => {
  for (const d of DIALECTS) {
    for (const c of MISPLACED) {
      test(`${d.dialect}: ${c.name} → 400`, async () => {
        const before = received();
        const a = await send(d.path, d.body, [...d.extra, ...c.headers]);
        expectError(a, d.dialect, 400, "invalid_request_error", "managed API key outside a credential header");
        expect(received()).toBe(before);
      });
    }
  }
});

describe("a bai_ key that does not verify is 401 wherever it sits, nothing forwarded", () => {
  for (const d of DIALECTS) {
    for (const c of INVALID) {
      test(`${d.dialect}: ${c.name} → 401`, async () => {
        const before = received();
        const a = await send(d.path, d.body, [...d.extra, ...c.headers]);
        expectError(a, d.dialect, 401, "authentication_error", "invalid API key");
        expect(received()).toBe(before);
      });
    }
  }
});

describe("a valid bai_ key in any credential header is managed: the provider gets only the pool key", () => {
  for (const d of DIALECTS) {
    for (const c of MANAGED_OK) {
      test(`${d.dialect}: ${c.name} → 200, pool key only`, async () => {
        const before = mockOf(d.dialect).requests.length;
        const a = await send(d.path, d.body, [...d.extra, ...c.headers]);
        expect(a.status).toBe(200);
        expect(mockOf(d.dialect).requests.length).toBe(before + 1);
        expectPoolOnly(mockOf(d.dialect).last(), d.pool);
      });
    }
  }
});

describe("BYO requests carry no bai_ upstream and are otherwise untouched", () => {
  for (const d of DIALECTS) {
    test(`${d.dialect}: bai_ inside another token (not at a token start) stays BYO, every header forwarded as sent`, async () => {
      const a = await send(d.path, d.body, [...d.extra, ["x-api-key", BYO], ["authorization", `Bearer ${BYO}`], ["x-trace", "kubai_trace sk-bai_x"]]);
      expect(a.status).toBe(200);
      const r = mockOf(d.dialect).last();
      expect(r.headers["x-api-key"]).toBe(BYO);
      expect(r.headers["authorization"]).toBe(`Bearer ${BYO}`);
      expect(r.headers["x-trace"]).toBe("kubai_trace sk-bai_x");
    });

    test(`${d.dialect}: two different BYO keys in x-api-key stay BYO and are forwarded as the client sent them`, async () => {
      const a = await send(d.path, d.body, [...d.extra, ["x-api-key", BYO], ["x-api-key", "sk-other"]]);
      expect(a.status).toBe(200);
      const r = mockOf(d.dialect).last();
      expect(r.headers["x-api-key"]).toBe(`${BYO}, sk-other`);
      expectNoBai(r);
    });
  }

  test("the official OpenAI SDK with a BYO key and a bai_ key in defaultHeaders gets 400 in the OpenAI shape", async () => {
    const before = received();
    const client = new OpenAI({ apiKey: BYO, baseURL: `${gw.url}/v1`, maxRetries: 0, defaultHeaders: { "x-api-key": VALID } });
    let status = 0;
    let message = "";
    try {
      await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    } catch (e) {
      status = (e as { status: number }).status;
      message = (e as { error?: { message?: string } }).error?.message ?? "";
    }
    expect(status).toBe(400);
    expect(message).toBe("conflicting credentials");
    expect(received()).toBe(before);
  });
});

describe("managed keys need the canonical decimal kid (SPEC §4)", () => {
  const [pfx, kid, payload, sig] = VALID.split(".") as [string, string, string, string];
  for (const d of DIALECTS) {
    for (const spelled of ["07", "+7", "007", "+07"]) {
      test(`${d.dialect}: kid spelled ${spelled} under a valid signature → 401, nothing forwarded`, async () => {
        expect(kid).toBe("7");
        const before = received();
        const res = await fetch(gw.url + d.path, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${pfx}.${spelled}.${payload}.${sig}`, ...Object.fromEntries(d.extra) },
          body: d.body,
        });
        expectGatewayError(await toReply(res), d.dialect, 401, "authentication_error", "invalid API key");
        expect(received()).toBe(before);
      });
    }
    test(`${d.dialect}: the canonical spelling of the same key → 200`, async () => {
      const res = await fetch(gw.url + d.path, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${VALID}`, ...Object.fromEntries(d.extra) },
        body: d.body,
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    });
  }
});
