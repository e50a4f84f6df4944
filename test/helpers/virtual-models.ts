// Shared setup of the virtual-model end-to-end suites (SPEC §11: test/e2e-models.test.ts and
// test/e2e-models-strategies.test.ts): one OpenAI-wire mock standing in for every OpenAI-dialect provider and one
// Anthropic mock for the Anthropic-dialect ones, each provider with its own pool key, so what the mock recorded says
// which target a request reached (path = base path + rest, body model = the target's model, credential = its pool key).
// Every request a test sends carries its own `x-test-id`, which the gateway forwards like any other header, so a test
// picks out its own upstream requests from the shared mocks.
import { randomUUID } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { Gateway } from "./gateway.ts";
import { keyOf, type MockProvider, modelOf, type RecordedRequest } from "./mock-provider.ts";

/** OpenAI-dialect built-ins and where their API sits (SPEC §11 "Target path"). */
export const OPENAI_BASE_PATHS = {
  openai: "/v1",
  groq: "/openai/v1",
  fireworks: "/inference/v1",
  openrouter: "/api/v1",
  together: "/v1",
  cerebras: "/v1",
  mistral: "/v1",
  deepseek: "/v1",
  xai: "/v1",
} as const;

/** The pool key of a provider in these suites (a normal key: the mock answers it normally). */
export function poolKeyOf(provider: string): string {
  return `sk-ok-vm-${provider}-0001`;
}

/** A fresh id for one test request; the mock's recorded requests carrying it are that request's attempts. */
export function newTestId(): string {
  return randomUUID();
}

/** The upstream requests (attempts) one client request caused, in arrival order, from any of the mocks. */
export function attemptsOf(id: string, ...mocks: MockProvider[]): RecordedRequest[] {
  const out: RecordedRequest[] = [];
  for (const m of mocks) for (const r of m.requests) if (r.headers["x-test-id"] === id) out.push(r);
  return out.sort((a, b) => a.arrival - b.arrival);
}

/** What a test reads off one recorded upstream request. */
export function seen(r: RecordedRequest): { path: string; model: string | undefined; key: string | undefined } {
  return { path: r.path, model: modelOf(r), key: keyOf(r) };
}

/** `[section]` lines for a TOML table of string values. */
export function tomlStrings(section: string, entries: Record<string, string>): string {
  return [`[${section}]`, ...Object.entries(entries).map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`)].join("\n");
}

/** `[models.<alias>]` (and its `.retry`) as TOML. */
export function modelTable(alias: string, o: { targets: string[]; strategy?: string; weights?: number[]; retry?: Record<string, number | string> }): string {
  const lines = [`[models.${JSON.stringify(alias)}]`, `targets = [${o.targets.map((t) => JSON.stringify(t)).join(", ")}]`];
  if (o.strategy !== undefined) lines.push(`strategy = ${JSON.stringify(o.strategy)}`);
  if (o.weights !== undefined) lines.push(`weights = [${o.weights.join(", ")}]`);
  if (o.retry !== undefined) {
    lines.push(`[models.${JSON.stringify(alias)}.retry]`);
    for (const [k, v] of Object.entries(o.retry)) lines.push(`${k} = ${typeof v === "number" ? v : JSON.stringify(v)}`);
  }
  return lines.join("\n");
}

/** `[prices."provider/model"]` as TOML. */
export function priceTable(id: string, p: { input: number; output: number }): string {
  return `[prices.${JSON.stringify(id)}]\ninput = ${p.input}\noutput = ${p.output}`;
}

/** An OpenAI SDK client (maxRetries 0) at `gw/v1` (body alias) or `gw/<alias>/v1` (path alias). */
export function openaiClient(gw: Gateway, apiKey: string, pathAlias?: string): OpenAI {
  const baseURL = pathAlias === undefined ? `${gw.url}/v1` : `${gw.url}/${pathAlias}/v1`;
  return new OpenAI({ apiKey, baseURL, organization: null, project: null, maxRetries: 0 });
}

/** An Anthropic SDK client (maxRetries 0) at `gw` (body alias: `/v1/messages`) or `gw/<alias>` (path alias). */
export function anthropicClient(gw: Gateway, apiKey: string, pathAlias?: string): Anthropic {
  return new Anthropic({ apiKey, baseURL: pathAlias === undefined ? gw.url : `${gw.url}/${pathAlias}`, maxRetries: 0 });
}

/** Micro-USD for `input`/`output` tokens at USD-per-million prices, rounded once (a half up), as SPEC §11 bills. */
export function expectedMicros(tokens: { input: number; output: number }, price: { input: number; output: number }): number {
  return Math.floor(tokens.input * price.input + tokens.output * price.output + 0.5);
}
