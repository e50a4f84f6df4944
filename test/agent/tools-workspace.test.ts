// Workspace confinement (reference §B.7, §C.2 #10) on real directories and symlinks: a path that leaves the root
// (`../x`, an absolute path, a symlink pointing out, a dangling one included) is refused with the exact text and
// nothing is written; the path forms a model sends (@-prefix, Unicode spaces, ~) are understood; the bash
// environment loses the keys.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultTools } from "../../src/agent/tools/index.ts";
import { scrubbedEnv, Workspace } from "../../src/agent/tools/workspace.ts";
import { makeTempDir } from "../helpers/gateway.ts";

const never = new AbortController().signal;

function setup() {
  const root = makeTempDir();
  const outside = makeTempDir();
  mkdirSync(join(root, "sub"));
  writeFileSync(join(root, "a.txt"), "hello\nworld\n");
  writeFileSync(join(outside, "secret.txt"), "outside\n");
  const ws = new Workspace(root);
  const tools = Object.fromEntries(defaultTools({ workspace: ws, tmpDir: outside }).map((t) => [t.name, t]));
  const call = async (name: string, args: Record<string, unknown>) => {
    try {
      return { ok: true, text: (await tools[name]!.execute(args, never, () => {})).text };
    } catch (e) {
      return { ok: false, text: (e as Error).message };
    }
  };
  return { root: ws.root, outside, ws, tools, call };
}

describe("Workspace.resolve", () => {
  test("the root is the realpath of the cwd", () => {
    const dir = makeTempDir();
    mkdirSync(join(dir, "real"));
    symlinkSync(join(dir, "real"), join(dir, "link"));
    expect(new Workspace(join(dir, "link")).root).toBe(join(dir, "real"));
  });

  test("relative paths resolve against the root; the root itself and paths below it are inside", () => {
    const { ws, root } = setup();
    expect(ws.resolve("a.txt")).toBe(join(root, "a.txt"));
    expect(ws.resolve(".")).toBe(root);
    expect(ws.resolve("sub/../a.txt")).toBe(join(root, "a.txt"));
    expect(ws.resolve(join(root, "sub", "new", "deep.txt"))).toBe(join(root, "sub", "new", "deep.txt"));
  });

  test("a leading @ is stripped and Unicode spaces fold to a plain space", () => {
    const { ws, root } = setup();
    writeFileSync(join(root, "my file.txt"), "x");
    expect(ws.resolve("@a.txt")).toBe(join(root, "a.txt"));
    expect(ws.resolve("my\u00A0file.txt")).toBe(join(root, "my file.txt"));
    expect(ws.resolve("my\u202Ffile.txt")).toBe(join(root, "my file.txt"));
  });

  test("~ and ~/ expand to HOME", () => {
    const { root } = setup();
    const ws = new Workspace(root, { home: root });
    expect(ws.resolve("~")).toBe(root);
    expect(ws.resolve("~/a.txt")).toBe(join(root, "a.txt"));
    const elsewhere = new Workspace(root, { home: "/nonexistent-home" });
    expect(() => elsewhere.resolve("~/a.txt")).toThrow("Path outside workspace: ~/a.txt (workspace: " + root + ")");
  });

  test("../x, an absolute path outside and a prefix look-alike are refused with the exact text", () => {
    const { ws, root } = setup();
    expect(() => ws.resolve("../x")).toThrow(`Path outside workspace: ../x (workspace: ${root})`);
    expect(() => ws.resolve("/etc/x")).toThrow(`Path outside workspace: /etc/x (workspace: ${root})`);
    // `${root}-other` starts with the root's characters but is not below it.
    expect(() => ws.resolve(`${root}-other/f`)).toThrow(`Path outside workspace: ${root}-other/f (workspace: ${root})`);
  });

  test("a symlink pointing out is refused, directly, as a parent, and when dangling", () => {
    const { ws, root, outside } = setup();
    symlinkSync(join(outside, "secret.txt"), join(root, "file-link"));
    symlinkSync(outside, join(root, "dir-link"));
    symlinkSync(join(outside, "not-yet.txt"), join(root, "dangling"));
    for (const p of ["file-link", "dir-link/secret.txt", "dir-link/new.txt", "dangling"]) {
      expect(() => ws.resolve(p)).toThrow(`Path outside workspace: ${p} (workspace: ${root})`);
    }
  });

  test("a symlink pointing inside resolves to its target", () => {
    const { ws, root } = setup();
    symlinkSync(join(root, "a.txt"), join(root, "in-link"));
    symlinkSync("sub", join(root, "sub-link"));
    expect(ws.resolve("in-link")).toBe(join(root, "a.txt"));
    expect(ws.resolve("sub-link/x.txt")).toBe(join(root, "sub", "x.txt"));
  });

  test("allowOutside canonicalises without refusing", () => {
    const { root, outside } = setup();
    const ws = new Workspace(root, { allowOutside: true });
    expect(ws.resolve(join(outside, "secret.txt"))).toBe(join(outside, "secret.txt"));
    expect(ws.resolve("../x")).toBe(join(root, "..", "x"));
  });
});

describe("confinement through the tools", () => {
  test("read ../x, write /etc/x and every tool on a path outside: 'Path outside workspace: …', nothing written", async () => {
    const { call, root, outside } = setup();
    const msg = (p: string) => `Path outside workspace: ${p} (workspace: ${root})`;
    expect(await call("read", { path: "../x" })).toEqual({ ok: false, text: msg("../x") });
    expect(await call("write", { path: "/etc/x", content: "pwned" })).toEqual({ ok: false, text: msg("/etc/x") });
    expect(existsSync("/etc/x")).toBe(false);
    const secret = join(outside, "secret.txt");
    expect(await call("read", { path: secret })).toEqual({ ok: false, text: msg(secret) });
    expect(await call("edit", { path: secret, oldText: "outside", newText: "pwned" })).toEqual({ ok: false, text: msg(secret) });
    expect(await call("ls", { path: outside })).toEqual({ ok: false, text: msg(outside) });
    expect(await call("grep", { pattern: "outside", path: outside })).toEqual({ ok: false, text: msg(outside) });
    expect(await call("find", { pattern: "*", path: outside })).toEqual({ ok: false, text: msg(outside) });
    expect(readFileSync(secret, "utf8")).toBe("outside\n");
  });

  test("write and edit through a symlink pointing out are refused and the target is untouched", async () => {
    const { call, root, outside } = setup();
    symlinkSync(join(outside, "secret.txt"), join(root, "link.txt"));
    symlinkSync(outside, join(root, "out"));
    symlinkSync(join(outside, "created.txt"), join(root, "dangling.txt"));
    const msg = (p: string) => `Path outside workspace: ${p} (workspace: ${root})`;
    expect(await call("write", { path: "link.txt", content: "pwned" })).toEqual({ ok: false, text: msg("link.txt") });
    expect(await call("edit", { path: "link.txt", oldText: "outside", newText: "pwned" })).toEqual({ ok: false, text: msg("link.txt") });
    expect(await call("write", { path: "out/new.txt", content: "pwned" })).toEqual({ ok: false, text: msg("out/new.txt") });
    expect(await call("write", { path: "dangling.txt", content: "pwned" })).toEqual({ ok: false, text: msg("dangling.txt") });
    expect(readFileSync(join(outside, "secret.txt"), "utf8")).toBe("outside\n");
    expect(existsSync(join(outside, "new.txt"))).toBe(false);
    expect(existsSync(join(outside, "created.txt"))).toBe(false);
  });

  test("grep does not follow a symlink in the tree that points out of the workspace", async () => {
    const { call, root, outside } = setup();
    symlinkSync(join(outside, "secret.txt"), join(root, "leak.txt"));
    expect(await call("grep", { pattern: "outside" })).toEqual({ ok: true, text: "No matches found" });
  });
});

describe("scrubbedEnv", () => {
  test("removes AI_AGENT_KEY, AI_API_KEY, ANTHROPIC_API_KEY, OPENAI_API_KEY and AI_POOL_KEY_*, keeps the rest", () => {
    const env = scrubbedEnv({
      PATH: "/bin",
      HOME: "/h",
      AI_AGENT_KEY: "bai_v1.x",
      AI_API_KEY: "sk-a",
      ANTHROPIC_API_KEY: "sk-b",
      OPENAI_API_KEY: "sk-c",
      AI_POOL_KEY_OPENAI: "sk-d",
      AI_POOL_KEY_ANTHROPIC_2: "sk-e",
      AI_GATEWAY_URL: "http://gw",
      UNSET: undefined,
    });
    expect(env).toEqual({ PATH: "/bin", HOME: "/h", AI_GATEWAY_URL: "http://gw" });
  });
});
