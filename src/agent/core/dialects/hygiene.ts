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
 * (the slot is kept so roles still alternate); every tool_use gets its result in the very next user message, in call
 * order (a synthetic error result when none was recorded; a user message is inserted when none follows), and a
 * tool_result whose call is not in the turn before it (its turn was blanked, or the history was edited) becomes
 * text, since both providers reject such a result. Messages that need no change are shared, not copied.
 */
export function prepareMessages(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  /** The tool_use ids of the assistant turn just emitted, waiting for their results. */
  let uses: string[] | undefined;
  for (const raw of messages) {
    if (raw.role === "assistant") {
      if (uses !== undefined) out.push({ role: "user", content: uses.map(synthetic), ts: raw.ts });
      const blank = raw.aborted === true || raw.error_message !== undefined || !meaningful(raw.content);
      const m = blank ? { ...raw, content: NO_CONTENT.slice() } : raw;
      out.push(m);
      uses = undefined;
      for (const b of m.content) if (b.type === "tool_use") (uses ??= []).push(b.id);
      continue;
    }
    out.push(fixUser(raw, uses));
    uses = undefined;
  }
  if (uses !== undefined) out.push({ role: "user", content: uses.map(synthetic), ts: out[out.length - 1]!.ts });
  return out;
}

function synthetic(id: string): ContentBlock {
  return { type: "tool_result", tool_use_id: id, content: NO_RESULT_TEXT, is_error: true };
}

function fixUser(m: Message, uses: readonly string[] | undefined): Message {
  let hasResults = false;
  for (const b of m.content) if (b.type === "tool_result") hasResults = true;
  if (uses === undefined && !hasResults) return meaningful(m.content) ? m : { ...m, content: NO_CONTENT.slice() };
  const byId = new Map<string, ContentBlock>();
  const rest: ContentBlock[] = [];
  for (const b of m.content) {
    if (b.type === "tool_result") {
      if (uses !== undefined && uses.includes(b.tool_use_id) && !byId.has(b.tool_use_id)) byId.set(b.tool_use_id, b);
      else rest.push({ type: "text", text: `(result of an earlier tool call ${b.tool_use_id}${b.is_error ? ", an error" : ""})\n${b.content}` });
    } else if (b.type !== "text" || b.text !== "") {
      rest.push(b);
    }
  }
  const content: ContentBlock[] = [];
  for (const id of uses ?? []) content.push(byId.get(id) ?? synthetic(id));
  for (const b of rest) content.push(b);
  if (content.length === 0) return { ...m, content: NO_CONTENT.slice() };
  if (content.length === m.content.length && content.every((b, i) => b === m.content[i])) return m;
  return { ...m, content };
}
