// SSE mock provider for streams.sh: every request gets 20 chat-completion chunks, one each 50 ms, then [DONE].
// Env: PORT (default 18090).
const enc = new TextEncoder();
Bun.serve({
  port: Number(process.env["PORT"] ?? 18090),
  hostname: "127.0.0.1",
  idleTimeout: 0,
  fetch() {
    let i = 0;
    let t: Timer | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        t = setInterval(() => {
          if (i++ >= 20) {
            c.enqueue(enc.encode("data: [DONE]\n\n"));
            c.close();
            clearInterval(t);
            return;
          }
          c.enqueue(enc.encode(`data: {"choices":[{"delta":{"content":"tok${i}"}}]}\n\n`));
        }, 50);
      },
      cancel() {
        clearInterval(t);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  },
});
