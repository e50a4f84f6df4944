// Credential extraction on the hot path (issue 12 item 2): what the `bai_` scan of every header value adds to an
// ordinary BYO request, against the extraction it replaced (three header reads, no scan).
// Run: node_modules/.bin/bun bench/credentials.bench.ts
// Headers are those the official OpenAI SDK sends (its x-stainless-* set), built as a Request's headers, like the
// server's. "now" includes the one read of the head into plain fields (toJSON) that the pipeline does in phase 2 and
// every later phase reuses.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { extractCredential } from "../src/pipeline/authenticate.ts";
import type { HeaderFields } from "../src/transport/transport.ts";
import { OPENAI_SDK_HEADERS } from "./load/sdk-headers.ts";

const fields = (h: Headers): HeaderFields => h.toJSON() as HeaderFields;

const SDK_HEADERS: Record<string, string> = { ...OPENAI_SDK_HEADERS, "content-type": "application/json", "content-length": "93" };
const BYO = `sk-proj-${"a".repeat(48)}`;
const MANAGED = `bai_v1.1.${"A".repeat(22)}.${"B".repeat(86)}`;

const headersOf = (extra: Record<string, string>): Headers =>
  new Request("http://127.0.0.1/v1/chat/completions", { method: "POST", headers: { ...SDK_HEADERS, ...extra } }).headers;
const byo = headersOf({ authorization: `Bearer ${BYO}` });
const managed = headersOf({ authorization: `Bearer ${MANAGED}` });
const mixed = headersOf({ authorization: `Bearer ${MANAGED}`, "x-api-key": BYO });

const BEARER = /^\s*bearer\s+/i;
/** The extraction before issue 12 (no scan), for comparison. */
function before(headers: Headers): { token: string; managed: boolean } | undefined {
  let token = headers.get("x-api-key")?.trim();
  if (!token) {
    const auth = headers.get("authorization");
    if (auth !== null) {
      const m = BEARER.exec(auth);
      if (m !== null) token = auth.slice(m[0].length).trim();
    }
  }
  if (!token) token = headers.get("api-key")?.trim();
  if (!token) return undefined;
  return { token, managed: token.startsWith("bai_") };
}

for (const [h, want] of [
  [byo, false],
  [managed, true],
] as const) {
  const c = extractCredential(fields(h));
  if (c === undefined || "error" in c || c.managed !== want) throw new Error("unexpected credential");
}
const c = extractCredential(fields(mixed));
if (c === undefined || !("error" in c)) throw new Error("mixed credentials must be refused");

summary(() => {
  group("BYO request, 16 SDK headers", () => {
    bench("before: three header reads", () => do_not_optimize(before(byo)));
    bench("now: the head read (toJSON), bai_ scan of every value, three reads", () => do_not_optimize(extractCredential(fields(byo))));
  });
});
summary(() => {
  group("managed request, 16 SDK headers", () => {
    bench("before: three header reads", () => do_not_optimize(before(managed)));
    bench("now: the head read (toJSON), scan, then the managed rules", () => do_not_optimize(extractCredential(fields(managed))));
  });
});
bench("refused: bai_ beside a BYO x-api-key (400)", () => do_not_optimize(extractCredential(fields(mixed))));

await run();
