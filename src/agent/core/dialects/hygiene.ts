// Wire hygiene applied to the session's messages before every request (reference §B.4), on a copy: the stored
// session is never changed. Providers reject a tool_use without its result and an empty or half-written turn, and a
// session may hold both after an abort, an error or a crash.

import type { ContentBlock, Message } from "../types.ts";

export const NO_RESULT_TEXT = "no result recorded for this tool call";
export const NO_CONTENT_TEXT = "(no content)";

const NO_CONTENT: readonly ContentBlock[] = [{ type: "text", text: NO_CONTENT_TEXT }];

/** The blocks that count as content: empty text is no content (providers reject empty text blocks). */
function meaningful(content: readonly ContentBlock[]): boolean {
  for (const b of content) {
    if (b.type !== "text" || b.text !== "") return true;
  }
  return false;
}

/**
 * A copy of `messages` fit to send: aborted or errored assistant turns and empty messages become "(no content)"
 * (the slot is kept so roles still alternate); every tool_use left without a result gets a synthetic error result,
 * in the next user message (at its front) or in a user message inserted for it. Messages that need no change are
 * shared, not copied.
 */
export function prepareMessages(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < messages.length; i++) {
    let m = messages[i]!;
    if (m.role === "assistant" && (m.aborted === true || m.error_message !== undefined || !meaningful(m.content))) {
      m = { ...m, content: NO_CONTENT.slice() };
    } else if (m.role === "user" && !meaningful(m.content)) {
      m = { ...m, content: NO_CONTENT.slice() };
    }
    out.push(m);
    if (m.role !== "assistant") continue;
    let ids: string[] | undefined;
    for (const b of m.content) if (b.type === "tool_use") (ids ??= []).push(b.id);
    if (ids === undefined) continue;
    const next = messages[i + 1];
    const answered = new Set<string>();
    if (next !== undefined && next.role === "user") {
      for (const b of next.content) if (b.type === "tool_result") answered.add(b.tool_use_id);
    }
    const missing: ContentBlock[] = [];
    for (const id of ids) {
      if (!answered.has(id)) missing.push({ type: "tool_result", tool_use_id: id, content: NO_RESULT_TEXT, is_error: true });
    }
    if (missing.length === 0) continue;
    if (next !== undefined && next.role === "user") {
      // Fold the synthetic results into the next user message, ahead of its own blocks.
      const base = meaningful(next.content) ? next.content : [];
      out.push({ ...next, content: [...missing, ...base] });
      i++;
    } else {
      out.push({ role: "user", content: missing, ts: m.ts });
    }
  }
  return out;
}
