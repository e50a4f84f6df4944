// Helpers for reading what the official SDKs return, shared by the end-to-end suites.

/** The part of an OpenAI SDK chat chunk these helpers read. */
interface ChatChunkLike {
  choices: Array<{ delta?: { content?: string | null } | undefined }>;
}

/** Reads an OpenAI SDK chat stream to its end: every chunk in order, and the concatenated delta text. */
export async function collectChatStream<C extends ChatChunkLike>(stream: AsyncIterable<C>): Promise<{ chunks: C[]; text: string }> {
  const chunks: C[] = [];
  let text = "";
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  return { chunks, text };
}
