// A gateway answer read once (status, headers, text, parsed JSON when it parses), and the check that it is one of the
// gateway's own errors in the caller's dialect (SPEC §8): shared by the end-to-end suites that assert on error bodies.
import { expect } from "bun:test";

export type Dialect = "openai" | "anthropic";

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

export async function toReply(res: Response): Promise<Reply> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** The gateway's own error: status, request id, JSON, and the dialect's error shape with this type and message. */
export function expectGatewayError(reply: Reply, dialect: Dialect, status: number, type: string, message: string): void {
  expect(reply.status).toBe(status);
  expect(reply.headers.get("x-beyond-request-id")).toBeTruthy();
  expect(reply.headers.get("content-type") ?? "").toContain("application/json");
  if (dialect === "openai") {
    expect(reply.json).toMatchObject({ error: { message, type } });
    expect(typeof (reply.json as { error: { code?: unknown } }).error.code).toBe("string");
  } else {
    expect(reply.json).toMatchObject({ type: "error", error: { type, message } });
  }
}
