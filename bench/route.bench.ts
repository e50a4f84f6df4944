// Phase 1 (route) costs: Router.route on the request targets the pipeline sees, for the built-in provider table
// plus one configured provider. Run: node_modules/.bin/bun bench/route.bench.ts
// "from URL" rows include requestTarget(req.url), as the pipeline pays it, so the target is a fresh string each call
// (the Map lookup has to hash a segment it has never seen); the plain rows reuse one target string, whose sliced
// segment is still a new string per call. The unknown row adds dialectForUnrouted, which only a miss pays.
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { requestTarget } from "../src/pipeline/context.ts";
import { BUILT_IN_PROVIDERS, buildProvider, type ProviderRow } from "../src/routing/providers.ts";
import { dialectForUnrouted, Router } from "../src/pipeline/route.ts";
import { Secret } from "../src/ops/secret.ts";

const rows: ProviderRow[] = [...BUILT_IN_PROVIDERS, { name: "myprov", authority: "llm.internal.example:8443", dialect: "openai", auth: "bearer" }];
const wrap = (s: string): Secret => new Secret(s);
const router = new Router(rows.map((r) => buildProvider(r, true, [new Secret("sk-pool-bench")], wrap)));

const ORIGIN = "http://127.0.0.1:8080";
const cases = [
  { name: "named /openai/v1/chat/completions", target: "/openai/v1/chat/completions", provider: "openai" },
  { name: "named /groq/openai/v1/chat/completions", target: "/groq/openai/v1/chat/completions", provider: "groq" },
  { name: "named, configured /myprov/v1/chat/completions", target: "/myprov/v1/chat/completions", provider: "myprov" },
  { name: "bare /v1/chat/completions", target: "/v1/chat/completions", provider: "openai" },
  { name: "bare /v1/responses?stream=true", target: "/v1/responses?stream=true", provider: "openai" },
  { name: "/v1/messages", target: "/v1/messages", provider: "anthropic" },
  { name: "/v1/messages/count_tokens?beta=true", target: "/v1/messages/count_tokens?beta=true", provider: "anthropic" },
  { name: "unknown /nope/v1/chat/completions", target: "/nope/v1/chat/completions", provider: undefined },
] as const;

// Sanity: every case routes where the pipeline would send it, so the bench measures the real branch.
for (const c of cases) {
  const got = router.route(c.target)?.provider.name;
  if (got !== c.provider) throw new Error(`${c.target} routed to ${got}, expected ${c.provider}`);
  if (requestTarget(ORIGIN + c.target) !== c.target) throw new Error(`requestTarget(${ORIGIN + c.target}) is wrong`);
}

summary(() => {
  group("Router.route(target)", () => {
    for (const c of cases) bench(c.name, () => do_not_optimize(router.route(c.target)));
  });
});

summary(() => {
  group("requestTarget(url) + Router.route (phase 1 as the pipeline runs it)", () => {
    for (const c of cases) {
      const url = ORIGIN + c.target;
      if (c.provider === undefined) {
        bench(`${c.name} (+ dialectForUnrouted)`, () => {
          const t = requestTarget(url);
          return do_not_optimize(router.route(t) ?? dialectForUnrouted(t));
        });
      } else {
        bench(c.name, () => do_not_optimize(router.route(requestTarget(url))));
      }
    }
    bench("baseline: requestTarget(url) alone", () => do_not_optimize(requestTarget(`${ORIGIN}/v1/chat/completions`)));
  });
});

await run();
