// What run and serve share: the tools for the workspace, the system prompt, the transport (gateway or direct, the
// dialect chosen per request from the request's model so a model switch can change dialect), the Agent, and the
// session (from a session file or fresh).

import { existsSync, statSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import type { StreamEvent } from "./core/events.ts";
import { GatewayTransport } from "./core/gateway-transport.ts";
import { Agent, appendMessage, type Session, userMessage } from "./core/loop.ts";
import type { Tool } from "./core/tool.ts";
import type { ModelRequest, ModelTransport } from "./core/transport.ts";
import type { ImageSource, Message } from "./core/types.ts";
import { type AgentConfig, AGENT_NAME, UsageError } from "./config.ts";
import { dialectFor } from "./core/dialects/index.ts";
import { newSessionId, SessionFile, totalsOf } from "./session-file.ts";
import { buildSystemPrompt, resolvePromptArg } from "./system-prompt.ts";
import { defaultTools, filterTools } from "./tools/index.ts";
import { Workspace } from "./tools/workspace.ts";

const DIRECT_DEFAULT_BASE = { anthropic: "https://api.anthropic.com", openai: "https://api.openai.com" } as const;

/** Picks the GatewayTransport of the request's dialect, so `switch_model` to a model of the other dialect works. */
export class DialectRouter implements ModelTransport {
  private readonly byDialect = new Map<"anthropic" | "openai", ModelTransport>();
  constructor(private readonly cfg: AgentConfig) {}

  stream(req: ModelRequest, signal: AbortSignal): AsyncIterable<StreamEvent> {
    const dialect = dialectFor(req.model, this.cfg.dialect);
    let t = this.byDialect.get(dialect);
    if (t === undefined) {
      t = this.make(dialect);
      this.byDialect.set(dialect, t);
    }
    return t.stream(req, signal);
  }

  private make(dialect: "anthropic" | "openai"): ModelTransport {
    const c = this.cfg;
    const key = c.direct ? (c.key ?? c.directKeys?.[dialect] ?? "") : (c.key ?? "");
    const baseUrl = c.baseUrl ?? (c.direct ? DIRECT_DEFAULT_BASE[dialect] : "");
    return new GatewayTransport({ baseUrl, key, dialect, direct: c.direct, userAgent: AGENT_NAME });
  }
}

export interface Runtime {
  cfg: AgentConfig;
  workspace: Workspace;
  tools: Tool[];
  agent: Agent;
  session: Session;
  sessionFile?: SessionFile;
  /** The model the next turn uses. */
  model: string;
}

/** The workspace root; a missing or non-directory --cwd is a usage error. */
export function openWorkspace(cfg: AgentConfig): Workspace {
  const dir = resolvePath(cfg.cwd);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--cwd: not a directory: ${cfg.cwd}`);
  return new Workspace(dir, { allowOutside: cfg.allowOutsideWorkspace });
}

export function toolsFor(cfg: AgentConfig, workspace: Workspace): Tool[] {
  const all = defaultTools({ workspace, bashTimeoutSecs: cfg.bashTimeoutSecs });
  const known = new Set(all.map((t) => t.name));
  for (const n of [...(cfg.tools ?? []), ...(cfg.excludeTools ?? [])]) {
    if (!known.has(n)) throw new UsageError(`unknown tool ${JSON.stringify(n)} (tools: ${[...known].sort().join(", ")})`);
  }
  return filterTools(all, { tools: cfg.tools, exclude: cfg.excludeTools, none: cfg.noTools });
}

/** Builds everything a run or serve needs. Throws UsageError (bad flags, --cwd) or SessionFileError (exit 2). */
export function buildRuntime(cfg: AgentConfig): Runtime {
  const workspace = openWorkspace(cfg);
  const tools = toolsFor(cfg, workspace);
  let base: string | undefined;
  if (cfg.systemPrompt !== undefined) {
    try {
      base = resolvePromptArg(cfg.systemPrompt, process.cwd());
    } catch {
      throw new UsageError(`--system-prompt: cannot read ${cfg.systemPrompt.slice(1)}`);
    }
  }
  const sorted = [...tools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const system = buildSystemPrompt({ root: workspace.root, tools: sorted, base, append: cfg.appendSystemPrompt, noContextFiles: cfg.noContextFiles });

  let sessionFile: SessionFile | undefined;
  let model = cfg.model;
  let messages: Message[] = [];
  let id = newSessionId();
  if (cfg.sessionFile !== undefined) {
    sessionFile = SessionFile.open(resolvePath(cfg.sessionFile), { cwd: workspace.root, model: cfg.model, agent: AGENT_NAME });
    id = sessionFile.id;
    messages = sessionFile.messages.slice();
    // The session's model applies unless --model was given (reference §B.10).
    if (!cfg.modelExplicit && sessionFile.model !== "") model = sessionFile.model;
  }
  const totals = totalsOf(messages);
  const session: Session = { id, messages, steps: totals.steps, usage: totals.usage };
  if (sessionFile !== undefined) {
    const f = sessionFile;
    session.onAppend = (m: Message) => f.appendMessage(m);
  }
  const agent = new Agent({
    transport: new DialectRouter(cfg),
    model,
    system,
    tools,
    maxSteps: cfg.maxSteps,
    maxTokens: cfg.maxTokens,
    temperature: cfg.temperature,
    thinkingBudget: cfg.thinking,
    sequentialTools: cfg.sequentialTools,
  });
  return { cfg, workspace, tools, agent, session, sessionFile, model };
}

/** Commits a user prompt to the session (and, through onAppend, its file) before a run. */
export function pushUser(session: Session, text: string, images?: ImageSource[]): void {
  appendMessage(session, userMessage([images === undefined ? { text } : { text, images }]));
}
