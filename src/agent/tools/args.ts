// Argument readers shared by the tools. The loop validates and coerces arguments against each tool's schema before
// execute, but a tool may also be called directly (tests, other hosts), so each reads its arguments defensively and
// fails with a message the model can act on.

import { ToolError } from "../core/tool.ts";

export type Args = Record<string, unknown>;

export function str(args: Args, key: string): string {
  const v = args[key];
  if (typeof v !== "string") throw new ToolError(`Invalid arguments: ${key} must be a string`);
  return v;
}

export function optStr(args: Args, key: string): string | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new ToolError(`Invalid arguments: ${key} must be a string`);
  return v;
}

export function optBool(args: Args, key: string): boolean | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new ToolError(`Invalid arguments: ${key} must be a boolean`);
}

function num(args: Args, key: string): number | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) throw new ToolError(`Invalid arguments: ${key} must be a number`);
  return n;
}

export function optNum(args: Args, key: string): number | undefined {
  return num(args, key);
}

/** An optional integer ≥ min (and ≤ max when given). */
export function optInt(args: Args, key: string, min: number, max?: number): number | undefined {
  const n = num(args, key);
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < min || (max !== undefined && n > max)) {
    const range = max === undefined ? `≥ ${min}` : `between ${min} and ${max}`;
    throw new ToolError(`Invalid arguments: ${key} must be an integer ${range}`);
  }
  return n;
}
