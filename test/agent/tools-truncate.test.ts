// Truncation (pi's truncate.ts, reference §B.6) and the bash output accumulator: line and byte caps, the first line
// over the cap, a partial last line, multi-byte characters at the boundary (never split), and the accumulator's
// line count, rolling tail and spill file.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { OutputAccumulator } from "../../src/agent/tools/output-accumulator.ts";
import { formatSize, headBytes, tailBytes, truncateHead, truncateTail } from "../../src/agent/tools/truncate.ts";
import { makeTempDir } from "../helpers/gateway.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s).length;
const lines = (n: number, from = 1) => Array.from({ length: n }, (_, i) => String(from + i)).join("\n");

describe("formatSize", () => {
  test("B under 1024, then one-decimal KB, then MB", () => {
    expect(formatSize(0)).toBe("0B");
    expect(formatSize(1023)).toBe("1023B");
    expect(formatSize(1024)).toBe("1.0KB");
    expect(formatSize(51_200)).toBe("50.0KB");
    expect(formatSize(1024 * 1024)).toBe("1.0MB");
    expect(formatSize(4_718_592)).toBe("4.5MB");
  });
});

describe("truncateHead", () => {
  test("under both caps nothing is cut; a final newline ends the last line", () => {
    const t = truncateHead("a\nb\n");
    expect(t).toMatchObject({ content: "a\nb", truncated: false, truncatedBy: null, totalLines: 2, outputLines: 2 });
  });

  test("2000 lines at most, whole lines from the start", () => {
    const t = truncateHead(lines(2500));
    expect(t).toMatchObject({ truncated: true, truncatedBy: "lines", totalLines: 2500, outputLines: 2000 });
    expect(t.content).toBe(lines(2000));
  });

  test("51,200 bytes at most, never a partial line", () => {
    const line = "x".repeat(99); // 100 bytes with its newline
    const t = truncateHead(Array(600).fill(line).join("\n"));
    expect(t).toMatchObject({ truncated: true, truncatedBy: "bytes", outputLines: 512 });
    expect(t.outputBytes).toBe(512 * 100 - 1);
    expect(t.content.endsWith(line)).toBe(true);
  });

  test("exactly at the byte cap is not truncated; one byte over cuts the last line", () => {
    const exact = "y".repeat(51_200);
    expect(truncateHead(exact, { maxBytes: 51_200 }).truncated).toBe(false);
    const over = "a\n" + "y".repeat(51_199);
    const t = truncateHead(over);
    expect(t).toMatchObject({ truncated: true, truncatedBy: "bytes", content: "a", outputLines: 1 });
  });

  test("a first line over the cap keeps nothing and says so", () => {
    const t = truncateHead("z".repeat(60_000) + "\nshort");
    expect(t).toMatchObject({ content: "", truncated: true, truncatedBy: "bytes", firstLineExceedsLimit: true, outputLines: 0 });
  });

  test("multi-byte characters count as their UTF-8 bytes", () => {
    const line = "é".repeat(50); // 100 bytes
    const t = truncateHead(Array(10).fill(line).join("\n"), { maxBytes: 350 });
    expect(t.outputLines).toBe(3); // 100 + 1 + 100 + 1 + 100 = 302; a fourth would be 403
    expect(t.outputBytes).toBe(302);
  });
});

describe("truncateTail", () => {
  test("keeps the last 2000 lines", () => {
    const t = truncateTail(lines(5000) + "\n");
    expect(t).toMatchObject({ truncatedBy: "lines", totalLines: 5000, outputLines: 2000 });
    expect(t.content).toBe(lines(2000, 3001));
  });

  test("keeps whole lines from the end within the byte cap", () => {
    const t = truncateTail(["first", "x".repeat(30_000), "y".repeat(30_000), "last"].join("\n"));
    expect(t).toMatchObject({ truncatedBy: "bytes", outputLines: 2, lastLinePartial: false });
    expect(t.content).toBe("y".repeat(30_000) + "\nlast");
  });

  test("a last line over the cap is kept partially: its last bytes (lastLinePartial)", () => {
    const t = truncateTail("head\n" + "a".repeat(10) + "b".repeat(60_000));
    expect(t).toMatchObject({ truncated: true, truncatedBy: "bytes", lastLinePartial: true, outputLines: 1 });
    expect(t.content).toBe("b".repeat(51_200));
  });

  test("the partial last line never starts inside a multi-byte character", () => {
    // "€" is 3 bytes; 51,200 is not a multiple of 3, so a byte cut would land mid-character.
    const t = truncateTail("€".repeat(20_000));
    expect(t.lastLinePartial).toBe(true);
    expect(t.content).toBe("€".repeat(17_066)); // floor(51,200 / 3): the partial first character is dropped
    expect(t.content.includes("\uFFFD")).toBe(false);
    expect(bytes(t.content)).toBeLessThanOrEqual(51_200);
  });
});

describe("headBytes / tailBytes", () => {
  test("cut on character boundaries at every offset", () => {
    const s = "a€b😀c"; // 1 + 3 + 1 + 4 + 1 bytes
    for (let n = 0; n <= 10; n++) {
      const h = headBytes(s, n);
      const t = tailBytes(s, n);
      expect(s.startsWith(h)).toBe(true);
      expect(s.endsWith(t)).toBe(true);
      expect(bytes(h)).toBeLessThanOrEqual(n);
      expect(bytes(t)).toBeLessThanOrEqual(n);
      expect(h.includes("\uFFFD") || t.includes("\uFFFD")).toBe(false);
    }
    expect(headBytes(s, 4)).toBe("a€");
    expect(headBytes(s, 3)).toBe("a");
    expect(tailBytes(s, 5)).toBe("😀c");
    expect(tailBytes(s, 4)).toBe("c");
  });
});

describe("OutputAccumulator", () => {
  test("counts LFs plus an open last line, across chunk boundaries", () => {
    const acc = new OutputAccumulator({ tmpDir: makeTempDir() });
    acc.push(enc.encode("a\nb"));
    expect(acc.totalLines).toBe(2);
    acc.push(enc.encode("c\n"));
    expect(acc.totalLines).toBe(2);
    acc.push(enc.encode("\n"));
    expect(acc.totalLines).toBe(3);
    expect(acc.snapshot()).toEqual({ text: "a\nbc\n" });
  });

  test("no spill file while the output is small", () => {
    const dir = makeTempDir();
    const acc = new OutputAccumulator({ tmpDir: dir });
    acc.push(enc.encode(lines(2000) + "\n"));
    expect(acc.fullOutputPath).toBeUndefined();
    expect(acc.snapshot().notice).toBeUndefined();
  });

  test("spills (0600) once over 2000 lines, with every byte from the start, then keeps appending", () => {
    const dir = makeTempDir();
    const acc = new OutputAccumulator({ tmpDir: dir });
    acc.push(enc.encode(lines(2000) + "\n"));
    acc.push(enc.encode("2001\n"));
    const path = acc.fullOutputPath!;
    expect(path.startsWith(dir + "/beyond-agent-bash-")).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    acc.push(enc.encode("2002\n"));
    acc.close();
    expect(readFileSync(path, "utf8")).toBe(lines(2002) + "\n");
    expect(acc.snapshot().notice).toBe(`[Showing lines 3-2002 of 2002. Full output: ${path}]`);
  });

  test("spills once over 102,400 bytes; the notice counts every line though only the tail is held", () => {
    const dir = makeTempDir();
    const acc = new OutputAccumulator({ tmpDir: dir });
    const line = "q".repeat(999) + "\n"; // 1000 bytes
    for (let i = 0; i < 300; i++) acc.push(enc.encode(line));
    expect(acc.totalBytes).toBe(300_000);
    const s = acc.snapshot();
    // 51 lines of 1000 bytes (less the last newline) fit in 51,200.
    expect(s.notice).toBe(`[Showing lines 250-300 of 300 (50.0KB limit). Full output: ${acc.fullOutputPath}]`);
    expect(s.text).toBe(Array(51).fill("q".repeat(999)).join("\n"));
    acc.close();
    expect(readFileSync(acc.fullOutputPath!).length).toBe(300_000);
  });

  test("a truncated output under the spill thresholds is spilled when first shown truncated", () => {
    const dir = makeTempDir();
    const acc = new OutputAccumulator({ tmpDir: dir });
    acc.push(enc.encode("w".repeat(60_000))); // over 51,200, under 102,400, one line
    expect(acc.fullOutputPath).toBeUndefined();
    const s = acc.snapshot();
    expect(s.notice).toBe(`[Showing last 50.0KB of line 1 (line is 58.6KB). Full output: ${s.fullOutputPath}]`);
    acc.push(enc.encode("w\n"));
    acc.close();
    expect(readFileSync(s.fullOutputPath!, "utf8")).toBe("w".repeat(60_001) + "\n");
  });

  test("a tail cut inside a multi-byte character decodes cleanly", () => {
    const acc = new OutputAccumulator({ tmpDir: makeTempDir() });
    const chunk = enc.encode("€".repeat(50_000)); // 150,000 bytes: the tail starts mid-character
    acc.push(chunk.subarray(0, 70_001));
    acc.push(chunk.subarray(70_001));
    const s = acc.snapshot();
    expect(s.text.includes("\uFFFD")).toBe(false);
    expect(/^€+$/.test(s.text)).toBe(true);
    expect(s.notice).toStartWith("[Showing last 50.0KB of line 1 (line is 146.5KB).");
    acc.close();
    expect(existsSync(acc.fullOutputPath!)).toBe(true);
  });
});
