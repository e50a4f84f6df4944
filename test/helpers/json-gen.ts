/**
 * Random JSON request bodies for property tests (the model scanner's, the usage injector's, the model rewriter's):
 * documents with decoy nested "model"/"stream" keys, serialised with random whitespace and random (always valid)
 * escapes, and random chunkings of the bytes. Driven by a seeded PRNG (helpers/random.ts) so a failure replays.
 */

export function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }

  private static readonly PIECES = [
    "a", "b", "z", "0", "9", " ", "-", "/", ".", "_", ":", ",", "{", "}", "[", "]",
    '"', "\\", "\n", "\t", "\r", "\u0000", "\u001f", "\u007f", "é", "中", "😀", "\u2028",
    "model", '"model":"evil"', "stream", "stream_options", "true",
  ] as const;

  str(maxPieces: number): string {
    let s = "";
    const n = this.int(maxPieces + 1);
    for (let i = 0; i < n; i++) s += this.pick(Gen.PIECES);
    return s;
  }

  /** A model id-like string, sometimes loggable, sometimes not, sometimes long. */
  modelValue(): Json {
    switch (this.int(12)) {
      case 0:
        return this.pick(["gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet-4-5", "openrouter/meta-llama/llama-3.1"]);
      case 1:
        return "m".repeat(250 + this.int(12)); // straddles the 256-byte cap
      case 2:
        return "é".repeat(126 + this.int(4)); // multi-byte straddling the cap
      case 3:
        return "x".repeat(300 + this.int(3000));
      case 4:
        return this.int(1000);
      case 5:
        return null;
      case 6:
        return this.chance(0.5);
      case 7:
        return { id: "gpt-4o" };
      case 8:
        return ["gpt-4o"];
      case 9:
        return "bad\ud83d"; // lone surrogate (serialised escaped)
      default:
        return "gpt-" + this.str(6);
    }
  }

  value(depth: number): Json {
    const k = this.int(depth > 3 ? 6 : 9);
    switch (k) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 3.25, 1e21, -2.5e-7, 123456789]);
      case 3:
      case 4:
      case 5:
        return this.str(8);
      case 6:
      case 7: {
        const o: { [k: string]: Json } = {};
        const n = this.int(5);
        for (let i = 0; i < n; i++) o[this.pick(["model", "stream", "stream_options", "a", "content", this.str(3) || "k"])] = this.value(depth + 1);
        return o;
      }
      default: {
        const n = this.int(5);
        return Array.from({ length: n }, () => this.value(depth + 1));
      }
    }
  }

  root(): Json {
    const k = this.int(20);
    if (k === 0) return this.value(4); // scalar or shallow root
    if (k === 1) return [this.rootObject()];
    return this.rootObject();
  }

  rootObject(): { [k: string]: Json } {
    const entries: [string, Json][] = [];
    if (this.chance(0.85)) entries.push(["model", this.modelValue()]);
    if (this.chance(0.8)) entries.push(["stream", this.pick<Json>([true, true, false, "true", null, 1, { v: true }])]);
    if (this.chance(0.25)) entries.push(["stream_options", this.pick<Json>([{ include_usage: false }, {}, null])]);
    const messages: Json[] = [];
    const nm = this.int(4);
    for (let i = 0; i < nm; i++) {
      const m: { [k: string]: Json } = { role: this.pick(["user", "assistant", "system"]), content: this.str(20) };
      if (this.chance(0.4)) m.model = this.modelValue(); // decoy
      if (this.chance(0.2)) m.stream = true; // decoy
      messages.push(m);
    }
    entries.push(["messages", messages]);
    if (this.chance(0.4)) entries.push(["tools", [{ type: "function", function: { name: "f", model: "decoy", parameters: this.value(2) } }]]);
    if (this.chance(0.4)) entries.push(["metadata", { model: "decoy", stream_options: { include_usage: true }, x: this.value(2) }]);
    if (this.chance(0.5)) entries.push(["temperature", this.pick([0, 0.7, 1, 2e-3])]);
    const extra = this.int(3);
    for (let i = 0; i < extra; i++) {
      const key = "x_" + this.str(3);
      if (!entries.some(([k]) => k === key)) entries.push([key, this.value(1)]);
    }
    const o: { [k: string]: Json } = {};
    for (const [k, v] of this.shuffle(entries)) o[k] = v;
    return o;
  }

  ws(): string {
    if (this.chance(0.6)) return "";
    let s = "";
    const n = 1 + this.int(3);
    for (let i = 0; i < n; i++) s += this.pick([" ", "\n", "\t", "\r\n", "  "]);
    return s;
  }

  /** JSON string literal with randomly chosen (but always valid) escapes. */
  quote(s: string): string {
    let out = '"';
    for (let i = 0; i < s.length; i++) {
      const cu = s.charCodeAt(i);
      const hex = () => "\\u" + (this.chance(0.5) ? cu.toString(16).padStart(4, "0") : cu.toString(16).padStart(4, "0").toUpperCase());
      if (cu >= 0xd800 && cu <= 0xdbff) {
        const lo = s.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          // A well-formed pair: raw (4-byte UTF-8) or as two escapes.
          if (this.chance(0.5)) out += s[i]! + s[i + 1]!;
          else out += hex() + "\\u" + lo.toString(16).padStart(4, "0");
          i++;
          continue;
        }
        out += hex();
        continue;
      }
      if (cu >= 0xdc00 && cu <= 0xdfff) {
        out += hex();
        continue;
      }
      if (cu === 0x22) out += this.chance(0.7) ? '\\"' : hex();
      else if (cu === 0x5c) out += this.chance(0.7) ? "\\\\" : hex();
      else if (cu === 0x0a) out += this.chance(0.7) ? "\\n" : hex();
      else if (cu === 0x09) out += this.chance(0.7) ? "\\t" : hex();
      else if (cu < 0x20) out += hex();
      else if (cu === 0x2f) out += this.chance(0.3) ? "\\/" : "/";
      else out += this.chance(0.08) ? hex() : s[i]!;
    }
    return out + '"';
  }

  serialise(v: Json): string {
    if (v === null) return "null";
    if (typeof v === "boolean" || typeof v === "number") return JSON.stringify(v);
    if (typeof v === "string") return this.quote(v);
    if (Array.isArray(v)) return "[" + this.ws() + v.map((x) => this.serialise(x)).join(this.ws() + "," + this.ws()) + this.ws() + "]";
    const parts = Object.entries(v).map(([k, x]) => this.quote(k) + this.ws() + ":" + this.ws() + this.serialise(x));
    return "{" + this.ws() + parts.join(this.ws() + "," + this.ws()) + this.ws() + "}";
  }

  chunkings(bytes: Uint8Array): Uint8Array[][] {
    const random: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + this.int(this.chance(0.5) ? 4 : 64);
      random.push(bytes.subarray(i, i + n));
      i += n;
    }
    return [[bytes], chunked(bytes, 1), random];
  }
}

export function isPlainObject(v: Json): v is { [k: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
