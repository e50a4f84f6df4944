// The agent CLI's pure parts: argv + env → AgentConfig (flags, precedence, every usage error), serve's line splitter
// (LF only, CR stripped, UTF-8 split across chunks, U+2028 kept inside a line) and frame writer (order, escaping).
import { describe, expect, test } from "bun:test";
import { DEFAULT_GATEWAY_URL, DEFAULT_MODEL, MISSING_KEY_MESSAGE, parseConfig, UsageError } from "../../src/agent/config.ts";
import { FrameWriter, jsonLines, LINE_TOO_LONG } from "../../src/agent/serve.ts";

const KEY = "bai_v1.1.AAAA.BBBB";
const env = { AI_AGENT_KEY: KEY };

function usageError(argv: string[], e: Record<string, string> = env): string {
  try {
    parseConfig(argv, e, "/w");
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`expected a usage error for ${JSON.stringify(argv)}`);
}

describe("agent config", () => {
  test("defaults: seed model, gateway URL, 50 steps, 4096 tokens, 1800 s bash, cwd from the process", () => {
    const c = parseConfig(["run", "task"], env, "/w");
    expect(c).toMatchObject({
      command: "run",
      task: "task",
      model: DEFAULT_MODEL,
      modelExplicit: false,
      dialect: "auto",
      direct: false,
      baseUrl: DEFAULT_GATEWAY_URL,
      key: KEY,
      maxSteps: 50,
      maxTokens: 4096,
      bashTimeoutSecs: 1800,
      cwd: "/w",
      json: false,
    });
  });

  test("flags win over the environment, --flag=value works, and the gateway URL keeps its prefix without a trailing slash", () => {
    const c = parseConfig(["run", "--model=gpt-4o", "--gateway-url", "http://gw:8080/groq/openai/", "--key", "bai_v1.2.C.D", "--max-steps", "0", "--json", "t"], { ...env, AI_AGENT_MODEL: "claude-x", AI_GATEWAY_URL: "http://other" }, "/w");
    expect(c).toMatchObject({ model: "gpt-4o", modelExplicit: true, baseUrl: "http://gw:8080/groq/openai", key: "bai_v1.2.C.D", maxSteps: 0, json: true });
    expect(parseConfig(["serve"], { ...env, AI_AGENT_MODEL: "claude-x" }, "/w").model).toBe("claude-x");
  });

  test("direct mode takes AI_BASE_URL and AI_API_KEY, or the per-provider keys, and needs no AI_AGENT_KEY", () => {
    const c = parseConfig(["run", "t"], { AI_DIRECT: "1", AI_BASE_URL: "http://p/", ANTHROPIC_API_KEY: "sk-ant" }, "/w");
    expect(c).toMatchObject({ direct: true, baseUrl: "http://p", key: undefined, directKeys: { anthropic: "sk-ant", openai: undefined } });
    expect(usageError(["run", "t"], { AI_DIRECT: "1" })).toContain("AI_API_KEY");
  });

  test("every usage error names its problem", () => {
    expect(usageError(["run", "t"], {})).toBe(MISSING_KEY_MESSAGE);
    expect(usageError(["run", "t"], { AI_AGENT_KEY: "" })).toContain("AI_AGENT_KEY");
    expect(usageError([])).toContain("missing command");
    expect(usageError(["fly"])).toContain('unknown command "fly"');
    expect(usageError(["run"])).toContain("missing the task");
    expect(usageError(["run", "a", "b"])).toContain('unexpected argument "b"');
    expect(usageError(["run", "--bogus", "t"])).toBe("unknown flag --bogus");
    expect(usageError(["run", "--model"])).toBe("--model needs a value");
    expect(usageError(["run", "--model", "--json", "t"])).toBe("--model needs a value");
    expect(usageError(["run", "--json", "--json", "t"])).toBe("--json given twice");
    expect(usageError(["run", "--json=yes", "t"])).toBe("--json takes no value");
    expect(usageError(["serve", "--json"])).toBe("--json only applies to run");
    expect(usageError(["tools", "--model", "x"])).toBe("--model does not apply to tools");
    expect(usageError(["run", "--max-tokens", "0", "t"])).toContain("--max-tokens: must be between 1");
    expect(usageError(["run", "--bash-timeout", "9999999", "t"])).toContain("--bash-timeout: must be between 1 and 2147483");
    expect(usageError(["run", "--temperature", "hot", "t"])).toContain("--temperature");
    expect(usageError(["run", "--no-tools", "--tools", "ls", "t"])).toContain("--no-tools cannot be combined");
    expect(usageError(["run", "--gateway-url", "ftp://x", "t"])).toContain("expected http or https");
    expect(usageError(["run", "--gateway-url", "not a url", "t"])).toContain("not a URL");
    // The key never appears in a message.
    expect(usageError(["run", "--key", "bai_v1.9.SECRET.SIG", "--gateway-url", "nope", "t"])).not.toContain("SECRET");
  });

  test("--version and --help win over everything else, tools needs no key, -- ends the flags", () => {
    expect(parseConfig(["run", "--version"], {}, "/w").command).toBe("version");
    expect(parseConfig(["--help"], {}, "/w").command).toBe("help");
    expect(parseConfig(["tools", "--no-tools"], {}, "/w")).toMatchObject({ command: "tools", noTools: true });
    expect(parseConfig(["run", "--", "--not-a-flag"], env, "/w").task).toBe("--not-a-flag");
    expect(parseConfig(["run", "-"], env, "/w").task).toBe("-");
    expect(parseConfig(["run", "--tools", "read, ls,", "t"], env, "/w").tools).toEqual(["read", "ls"]);
  });
});

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(x);
      c.close();
    },
  });
}

async function collect(chunks: Uint8Array[], max?: number): Promise<Array<string | typeof LINE_TOO_LONG>> {
  const out: Array<string | typeof LINE_TOO_LONG> = [];
  for await (const l of jsonLines(streamOf(chunks), max)) out.push(l);
  return out;
}

describe("serve framing", () => {
  test("lines split on LF only: CR stripped, U+2028 and U+2029 kept, a multi-byte character split across chunks intact", async () => {
    const text = '{"a":"x\u2028y\u2029z"}\r\n{"b":"é😀"}\n\n{"c":1}';
    const bytes = new TextEncoder().encode(text);
    const expected = ['{"a":"x\u2028y\u2029z"}', '{"b":"é😀"}', "", '{"c":1}'];
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(await collect([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(expected);
    }
    expect(await collect(Array.from(bytes, (b) => new Uint8Array([b])))).toEqual(expected);
  });

  test("a line over the cap is reported once and skipped to its LF, whole or arriving in pieces", async () => {
    const enc = new TextEncoder();
    expect(await collect([enc.encode('{"a":1}\n' + "x".repeat(20) + '\n{"b":2}\n')], 10)).toEqual(['{"a":1}', LINE_TOO_LONG, '{"b":2}']);
    const pieces = [enc.encode('{"a":1}\nxxxxxxxx'), enc.encode("xxxxxxxx"), enc.encode("xxxxxxxx"), enc.encode('xx\n{"b":2}\n')];
    expect(await collect(pieces, 10)).toEqual(['{"a":1}', LINE_TOO_LONG, '{"b":2}']);
    expect(await collect([enc.encode("0123456789\n")], 10)).toEqual(["0123456789"]);
  });

  test("frames keep their order and escape U+2028/U+2029 so every line reader splits them right", async () => {
    const lines: string[] = [];
    const w = new FrameWriter(async (l) => {
      await Bun.sleep(lines.length % 2 === 0 ? 5 : 0);
      lines.push(l);
    });
    void w.write({ type: "event", n: 1, text: "a\u2028b" });
    void w.write({ type: "event", n: 2 });
    await w.write({ type: "response", n: 3, text: "c\u2029d" });
    expect(lines.map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([1, 2, 3]);
    expect(lines[0]).toBe('{"type":"event","n":1,"text":"a\\u2028b"}\n');
    expect((JSON.parse(lines[0] as string) as { text: string }).text).toBe("a\u2028b");
    expect(lines[2]).not.toContain("\u2029");
  });
});
