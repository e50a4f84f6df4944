// A tool is data plus one function: name, description, JSON-schema parameters, execute(). The loop validates and
// coerces arguments against `parameters` before execute (runSchemaValidation, in this file), so tools receive typed
// arguments. execute() signals failure by throwing: the message becomes the tool_result text with is_error: true.

import type { ImageSource, JsonSchema } from "./types.ts";

export interface ToolOutput {
  text: string;
  images?: ImageSource[];
  details?: unknown;
  /** Every call of the batch returning terminate ends the run with status "terminated". */
  terminate?: boolean;
}

export interface Tool<A = Record<string, unknown>> {
  name: string;
  description: string;
  /** Advertised as input_schema / parameters. */
  parameters: JsonSchema;
  /** The canonical absolute path this call writes: calls on the same path run one after another, in call order. */
  writeTarget?(args: A): string | undefined;
  /** True for bash: a batch holding it runs one call at a time. */
  exclusive?: boolean;
  execute(args: A, signal: AbortSignal, onProgress: (snapshot: string, details?: unknown) => void): Promise<ToolOutput>;
}

/** A failure whose message is meant for the model as it is. */
export class ToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ToolError";
  }
}

/** The result of runSchemaValidation: the coerced arguments, or one "<path>: <message>" line per problem. */
export type ValidationResult = { ok: true; value: Record<string, unknown> } | { ok: false; errors: string[] };

/**
 * Checks `args` against the JSON-schema subset of JsonSchema and coerces what a model commonly gets wrong (as AJV's
 * coerceTypes does for pi): "5" → 5, "true" → true, 5 → "5", null → "" / 0 / false, and (ours) a JSON string where
 * an array or object is expected is parsed ("edits" sent as a string). Never mutates `args`: a coerced container is
 * a copy. Paths are AJV-style ("edits/0/oldText"; "root" for the value itself). Defaults are not applied: tools read
 * their own defaults, so a tool behaves the same whether or not the loop validated its call.
 */
export function runSchemaValidation(schema: JsonSchema, args: unknown): ValidationResult {
  const errors: string[] = [];
  const value = check(schema, args, "", errors);
  if (errors.length > 0) return { ok: false, errors };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, errors: ["root: must be object"] };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** The loop's text for a failed validation (pi's format, without the echo of the arguments). */
export function formatValidationErrors(toolName: string, errors: readonly string[]): string {
  return `Validation failed for tool "${toolName}":\n${errors.map((e) => `  - ${e}`).join("\n")}`;
}

type JsonType = "object" | "string" | "number" | "integer" | "boolean" | "array" | "null";

function typeOf(v: unknown): JsonType | "other" {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  switch (typeof v) {
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    case "number":
      return Number.isInteger(v) ? "integer" : "number";
    case "object":
      return "object";
    default:
      return "other";
  }
}

function matches(t: JsonType, v: unknown): boolean {
  const actual = typeOf(v);
  if (t === "number") return actual === "number" || actual === "integer";
  return actual === t;
}

/** One coercion attempt towards `t`; undefined when none applies. */
function coerceTo(t: JsonType, v: unknown): { v: unknown } | undefined {
  const actual = typeOf(v);
  switch (t) {
    case "number":
    case "integer": {
      if (actual === "string") {
        const s = (v as string).trim();
        if (s === "" || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
        const n = Number(s);
        if (!Number.isFinite(n) || (t === "integer" && !Number.isInteger(n))) return undefined;
        return { v: n };
      }
      if (actual === "boolean") return { v: v ? 1 : 0 };
      if (actual === "null") return { v: 0 };
      return undefined;
    }
    case "boolean":
      if (v === "true" || v === 1) return { v: true };
      if (v === "false" || v === 0 || v === null) return { v: false };
      return undefined;
    case "string":
      if (actual === "number" || actual === "integer" || actual === "boolean") return { v: String(v) };
      if (actual === "null") return { v: "" };
      return undefined;
    case "null":
      if (v === "" || v === 0 || v === false) return { v: null };
      return undefined;
    case "array":
    case "object": {
      if (actual !== "string") return undefined;
      const s = (v as string).trim();
      if (!(t === "array" ? s.startsWith("[") : s.startsWith("{"))) return undefined;
      try {
        const parsed: unknown = JSON.parse(s);
        return matches(t, parsed) ? { v: parsed } : undefined;
      } catch {
        return undefined;
      }
    }
  }
}

function label(path: string): string {
  return path === "" ? "root" : path;
}

function check(schema: JsonSchema, input: unknown, path: string, errors: string[]): unknown {
  let v = input;
  if (schema.anyOf !== undefined && schema.anyOf.length > 0) {
    for (const alt of schema.anyOf) {
      const sub: string[] = [];
      const out = check(alt, v, path, sub);
      if (sub.length === 0) {
        v = out;
        return checkOwn(schema, v, path, errors);
      }
    }
    errors.push(`${label(path)}: must match a schema in anyOf`);
    return v;
  }
  return checkOwn(schema, v, path, errors);
}

function checkOwn(schema: JsonSchema, input: unknown, path: string, errors: string[]): unknown {
  let v = input;
  if (schema.type !== undefined) {
    const types = (typeof schema.type === "string" ? [schema.type] : schema.type) as readonly JsonType[];
    if (!types.some((t) => matches(t, v))) {
      let coerced: { v: unknown } | undefined;
      for (const t of types) {
        coerced = coerceTo(t, v);
        if (coerced !== undefined) break;
      }
      if (coerced === undefined) {
        errors.push(`${label(path)}: must be ${types.join(",")}`);
        return v;
      }
      v = coerced.v;
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => e === v)) {
    errors.push(`${label(path)}: must be equal to one of the allowed values (${schema.enum.map((e) => JSON.stringify(e)).join(", ")})`);
    return v;
  }
  if (typeof v === "number") {
    if (schema.minimum !== undefined && v < schema.minimum) errors.push(`${label(path)}: must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && v > schema.maximum) errors.push(`${label(path)}: must be <= ${schema.maximum}`);
    return v;
  }
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) {
      errors.push(`${label(path)}: must NOT have fewer than ${schema.minItems} items`);
    }
    const items = schema.items;
    if (items === undefined) return v;
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const item: unknown = v[i];
      const next = check(items, item, `${path === "" ? "" : `${path}/`}${i}`, errors);
      if (next !== item) {
        out ??= v.slice();
        out[i] = next;
      }
    }
    return out ?? v;
  }
  if (v !== null && typeof v === "object") {
    const obj = v as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    for (const name of schema.required ?? []) {
      if (!Object.hasOwn(obj, name) || obj[name] === undefined) {
        errors.push(`${path === "" ? name : `${path}/${name}`}: must have required property '${name}'`);
      }
    }
    const props = schema.properties ?? {};
    for (const key of Object.keys(obj)) {
      const sub = Object.hasOwn(props, key) ? props[key] : undefined;
      const childPath = path === "" ? key : `${path}/${key}`;
      let next: unknown = obj[key];
      if (sub !== undefined) {
        next = check(sub, obj[key], childPath, errors);
      } else if (schema.additionalProperties === false) {
        errors.push(`${label(path)}: must NOT have additional property '${key}'`);
      } else if (typeof schema.additionalProperties === "object") {
        next = check(schema.additionalProperties, obj[key], childPath, errors);
      }
      if (next !== obj[key]) {
        out ??= { ...obj };
        out[key] = next;
      }
    }
    return out ?? v;
  }
  return v;
}
