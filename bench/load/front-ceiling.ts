// The ceiling of each client-side HTTP front, with no gateway behind it: a server that reads a small POST and answers
// the mock's canned chat completion at once. Issue "speed, part two" asks whether a raw HTTP/1.1 front on Bun.listen
// could replace Bun.serve; before writing a strict parser, this measures the most such a front could gain.
// FRONT selects:
//   serve      Bun.serve: req.bytes(), then a Response with the canned body (what the gateway's front costs at least)
//   raw        Bun.listen with the least parsing that works for this load (head end, content-length) and one write
//              of a prebuilt answer: the upper bound of any raw front (a strict parser only adds to it)
//   raw-req    raw, but building the Request and Response objects the pipeline takes and returns (new Request with
//              the parsed head and body, a Response read back to bytes): a raw front that feeds the existing
//              pipeline unchanged
// Env: PORT (default 18095), FRONT (default serve).
export {};

const port = Number(process.env["PORT"] ?? 18095);
const front = process.env["FRONT"] ?? "serve";
const BODY =
  '{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}';
const enc = new TextEncoder();
const bodyBytes = enc.encode(BODY);

if (front === "serve") {
  Bun.serve({
    port,
    hostname: "127.0.0.1",
    async fetch(req) {
      await req.bytes();
      return new Response(bodyBytes, { status: 200, headers: { "content-type": "application/json", "x-beyond-request-id": "0-1" } });
    },
  });
} else {
  const answer = enc.encode(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-beyond-request-id: 0-1\r\ncontent-length: ${bodyBytes.length}\r\n\r\n${BODY}`);
  const dec = new TextDecoder();
  interface Conn {
    buf: Uint8Array;
  }
  const headEnd = (b: Uint8Array): number => {
    for (let i = 3; i < b.length; i++) if (b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13) return i + 1;
    return -1;
  };
  const contentLength = (head: string): number => {
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    return m === null ? 0 : Number(m[1]);
  };
  const answerFor = async (head: string, body: Uint8Array): Promise<Uint8Array> => {
    if (front !== "raw-req") return answer;
    const lines = head.split("\r\n");
    const [method, target] = (lines[0] ?? "").split(" ");
    const headers = new Headers();
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i] as string;
      const c = l.indexOf(":");
      if (c > 0) headers.append(l.slice(0, c), l.slice(c + 1).trim());
    }
    const req = new Request(`http://127.0.0.1:${port}${target}`, { method, headers, body });
    await req.bytes();
    const res = new Response(bodyBytes, { status: 200, headers: { "content-type": "application/json", "x-beyond-request-id": "0-1" } });
    const out = new Uint8Array(await res.arrayBuffer());
    let h = `HTTP/1.1 ${res.status} OK\r\n`;
    res.headers.forEach((v, k) => {
      h += `${k}: ${v}\r\n`;
    });
    h += `content-length: ${out.length}\r\n\r\n`;
    const bytes = enc.encode(h);
    const all = new Uint8Array(bytes.length + out.length);
    all.set(bytes);
    all.set(out, bytes.length);
    return all;
  };
  Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(s) {
        s.data = { buf: new Uint8Array(0) };
      },
      async data(s, chunk) {
        let b = s.data.buf.length === 0 ? chunk : Buffer.concat([s.data.buf, chunk]);
        for (;;) {
          const he = headEnd(b);
          if (he < 0) break;
          const head = dec.decode(b.subarray(0, he));
          const n = contentLength(head);
          if (b.length < he + n) break;
          const body = b.subarray(he, he + n);
          b = b.subarray(he + n);
          s.write(await answerFor(head, body));
        }
        s.data.buf = b.length === 0 ? new Uint8Array(0) : new Uint8Array(b);
      },
    },
  });
}
