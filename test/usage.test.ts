import { describe, expect, test } from "bun:test";
import {
  UsageAccumulator,
  anthropicUsage,
  openaiUsage,
  usageFromJsonBody,
  usageFromSseData,
  usageFromTail,
} from "../src/metering/usage.ts";
import type { Dialect, Usage } from "../src/metering/usage.ts";

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);

function sse(dialect: Dialect, lines: string[]): UsageAccumulator {
  const acc = new UsageAccumulator();
  for (const l of lines) usageFromSseData(dialect, l, acc);
  return acc;
}

describe("reference §11.2 usage tests (disjoint buckets)", () => {
  test("openai_nonstreaming: prompt 12 with 4 cached, completion 34 → input 8, output 34, cacheRead 4, cacheWrite 0", () => {
    const body = bytes(
      JSON.stringify({
        id: "chatcmpl-1",
        object: "chat.completion",
        model: "gpt-4o",
        choices: [{ index: 0, message: { role: "assistant", content: "hi" } }],
        usage: { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46, prompt_tokens_details: { cached_tokens: 4 } },
      }),
    );
    expect(usageFromJsonBody("openai", body)).toEqual({ input: 8, output: 34, cacheRead: 4, cacheWrite: 0 });
  });

  test("anthropic_nonstreaming: 100/50/10/7", () => {
    const body = bytes(
      JSON.stringify({
        id: "msg_1",
        type: "message",
        model: "claude-sonnet-4-5",
        content: [{ type: "text", text: "hi" }],
        usage: { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 10, cache_creation_input_tokens: 7 },
      }),
    );
    expect(usageFromJsonBody("anthropic", body)).toEqual({ input: 100, output: 50, cacheRead: 10, cacheWrite: 7 });
  });

  test("openai_streaming_terminal_usage: the usage chunk gives 5/9", () => {
    const acc = sse("openai", [
      '{"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}',
      '{"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}',
      "[DONE]",
    ]);
    expect(acc.result()).toEqual({ input: 5, output: 9, cacheRead: 0, cacheWrite: 0 });
    expect(acc.complete).toBe(true);
  });

  test("anthropic_streaming_accumulates: message_start input 20, message_delta output 15", () => {
    const acc = sse("anthropic", [
      '{"type":"message_start","message":{"id":"m","model":"claude-haiku-4-5","content":[],"usage":{"input_tokens":20,"output_tokens":1}}}',
      '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}',
      '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}',
      '{"type":"message_stop"}',
    ]);
    expect(acc.result()).toEqual({ input: 20, output: 15, cacheRead: 0, cacheWrite: 0 });
  });

  test("anthropic_streaming_includes_cache_tokens: 20/15/12/8", () => {
    const acc = sse("anthropic", [
      '{"type":"message_start","message":{"id":"m","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":20,"cache_read_input_tokens":12,"cache_creation_input_tokens":8,"output_tokens":1}}}',
      '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}',
    ]);
    expect(acc.result()).toEqual({ input: 20, output: 15, cacheRead: 12, cacheWrite: 8 });
  });

  test("tolerates_extra_leading_spaces_after_data_colon", () => {
    const acc = new UsageAccumulator();
    usageFromSseData("openai", 'data:      {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}', acc);
    expect(acc.result()).toEqual({ input: 5, output: 9, cacheRead: 0, cacheWrite: 0 });
  });

  test("tolerates_crlf_line_endings", () => {
    const acc = new UsageAccumulator();
    usageFromSseData("openai", bytes('data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}\r'), acc);
    usageFromSseData("openai", bytes("data: [DONE]\r"), acc);
    expect(acc.result()).toEqual({ input: 5, output: 9, cacheRead: 0, cacheWrite: 0 });
  });

  test("no_usage_returns_none: missing, null or broken usage is undefined, never zeros", () => {
    for (const d of ["openai", "anthropic"] as const) {
      expect(usageFromJsonBody(d, bytes('{"id":"x","model":"m","choices":[]}'))).toBeUndefined();
      expect(usageFromJsonBody(d, bytes('{"id":"x","usage":null}'))).toBeUndefined();
      expect(usageFromJsonBody(d, bytes('{"id":"x","usage":{}}'))).toBeUndefined();
      expect(usageFromJsonBody(d, bytes('{"id":"x","usage":{"prompt_tok'))).toBeUndefined();
      expect(usageFromJsonBody(d, bytes("not json at all"))).toBeUndefined();
      expect(usageFromJsonBody(d, bytes(""))).toBeUndefined();
      const acc = sse(d, ['{"choices":[{"delta":{"content":"x"}}]}', "{broken", "[DONE]", '{"type":"ping"}']);
      expect(acc.result()).toBeUndefined();
      expect(acc.complete).toBe(false);
    }
  });
});

describe("dialect mismatch guard", () => {
  const anthropicBody = bytes('{"usage":{"input_tokens":100,"output_tokens":50,"cache_read_input_tokens":10,"cache_creation_input_tokens":7}}');
  const anthropicPlain = bytes('{"usage":{"input_tokens":100,"output_tokens":50}}');
  const openaiBody = bytes('{"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}');

  test("the OpenAI parser given Anthropic usage returns undefined, not zeros", () => {
    expect(usageFromJsonBody("openai", anthropicBody)).toBeUndefined();
    expect(usageFromJsonBody("openai", anthropicPlain)).toBeUndefined();
  });

  test("the Anthropic parser given OpenAI usage returns undefined, not zeros", () => {
    expect(usageFromJsonBody("anthropic", openaiBody)).toBeUndefined();
    expect(usageFromJsonBody("anthropic", bytes('{"usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}'))).toBeUndefined();
  });

  test("mismatched SSE usage is ignored and flagged on the accumulator", () => {
    const a = sse("openai", ['{"type":"message_delta","usage":{"output_tokens":15}}']);
    expect(a.result()).toBeUndefined();
    expect(a.mismatched).toBe(true);
    const b = sse("anthropic", ['{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}']);
    expect(b.result()).toBeUndefined();
    expect(b.mismatched).toBe(true);
  });

  test("a cut tail in the wrong dialect is undefined too", () => {
    const tail = bytes('ent":"xyz"}],"usage":{"prompt_tokens":12,"completion_tokens":34}}');
    expect(usageFromTail("anthropic", tail)).toBeUndefined();
    expect(usageFromTail("openai", tail)).toEqual({ input: 12, output: 34, cacheRead: 0, cacheWrite: 0 });
  });
});

describe("OpenAI Responses API", () => {
  const respUsage = {
    input_tokens: 36,
    input_tokens_details: { cached_tokens: 6 },
    output_tokens: 87,
    output_tokens_details: { reasoning_tokens: 10 },
    total_tokens: 123,
  };
  const expected: Usage = { input: 30, output: 87, cacheRead: 6, cacheWrite: 0, reasoning: 10 };

  test("JSON body usage with input/output/total tokens maps cached and reasoning", () => {
    const body = bytes(JSON.stringify({ id: "resp_1", object: "response", model: "gpt-4.1", output: [], usage: respUsage }));
    expect(usageFromJsonBody("openai", body)).toEqual(expected);
  });

  test("SSE response.completed carries response.usage; response.created's null usage is skipped", () => {
    const acc = sse("openai", [
      JSON.stringify({ type: "response.created", response: { id: "resp_1", model: "gpt-4.1-2025-04-14", usage: null } }),
      JSON.stringify({ type: "response.output_text.delta", delta: "Hi" }),
      JSON.stringify({ type: "response.completed", response: { id: "resp_1", model: "gpt-4.1-2025-04-14", usage: respUsage } }),
    ]);
    expect(acc.result()).toEqual(expected);
    expect(acc.model).toBe("gpt-4.1-2025-04-14");
    expect(acc.complete).toBe(true);
  });
});

describe("vendor fields", () => {
  test("OpenAI chat reasoning comes from completion_tokens_details.reasoning_tokens; 0 is kept as 0", () => {
    expect(openaiUsage({ prompt_tokens: 10, completion_tokens: 40, completion_tokens_details: { reasoning_tokens: 32 } })).toEqual({
      input: 10,
      output: 40,
      cacheRead: 0,
      cacheWrite: 0,
      reasoning: 32,
    });
    expect(openaiUsage({ prompt_tokens: 1, completion_tokens: 2, completion_tokens_details: { reasoning_tokens: 0 } })?.reasoning).toBe(0);
    expect(openaiUsage({ prompt_tokens: 1, completion_tokens: 2 })).not.toHaveProperty("reasoning");
  });

  test("DeepSeek prompt_cache_hit_tokens is the fallback for cached_tokens", () => {
    expect(openaiUsage({ prompt_tokens: 100, completion_tokens: 5, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36 })).toEqual({
      input: 36,
      output: 5,
      cacheRead: 64,
      cacheWrite: 0,
    });
    // cached_tokens wins when both are present.
    expect(openaiUsage({ prompt_tokens: 100, completion_tokens: 5, prompt_cache_hit_tokens: 64, prompt_tokens_details: { cached_tokens: 60 } })?.cacheRead).toBe(60);
  });

  test("OpenRouter cache_write_tokens becomes cacheWrite and leaves input disjoint", () => {
    expect(
      openaiUsage({ prompt_tokens: 194, completion_tokens: 2, total_tokens: 196, prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 100 } }),
    ).toEqual({ input: 94, output: 2, cacheRead: 0, cacheWrite: 100 });
  });

  test("malformed counts (negative, strings) count as 0 and input never goes negative", () => {
    expect(openaiUsage({ prompt_tokens: 3, completion_tokens: "9", prompt_tokens_details: { cached_tokens: 7 } })).toEqual({
      input: 0,
      output: 0,
      cacheRead: 7,
      cacheWrite: 0,
    });
    expect(anthropicUsage({ input_tokens: -5, output_tokens: 4 })).toEqual({ input: 0, output: 4, cacheRead: 0, cacheWrite: 0 });
  });
});

describe("Anthropic stream field rules", () => {
  test("message_delta sets only non-zero fields: a later zero never erases message_start counts", () => {
    const acc = sse("anthropic", [
      '{"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":20,"cache_read_input_tokens":12,"cache_creation_input_tokens":8,"output_tokens":1}}}',
      '{"type":"message_delta","usage":{"output_tokens":7,"input_tokens":0,"cache_read_input_tokens":0}}',
      '{"type":"message_delta","usage":{"output_tokens":0}}',
    ]);
    expect(acc.result()).toEqual({ input: 20, output: 7, cacheRead: 12, cacheWrite: 8 });
  });

  test("message_delta's cumulative non-zero input and cache counts override message_start", () => {
    const acc = sse("anthropic", [
      '{"type":"message_start","message":{"usage":{"input_tokens":20,"output_tokens":1}}}',
      '{"type":"message_delta","usage":{"input_tokens":25,"cache_read_input_tokens":3,"output_tokens":15}}',
    ]);
    expect(acc.result()).toEqual({ input: 25, output: 15, cacheRead: 3, cacheWrite: 0 });
  });

  test("a stream cut after message_start has input and cache but is not complete", () => {
    const acc = sse("anthropic", ['{"type":"message_start","message":{"usage":{"input_tokens":20,"cache_read_input_tokens":12,"output_tokens":1}}}']);
    expect(acc.result()).toEqual({ input: 20, output: 0, cacheRead: 12, cacheWrite: 0 });
    expect(acc.complete).toBe(false);
  });

  test("the model comes from message_start.message.model", () => {
    const acc = sse("anthropic", ['{"type":"message_start","message":{"model":"claude-haiku-4-5-20251001","usage":{"input_tokens":1}}}']);
    expect(acc.model).toBe("claude-haiku-4-5-20251001");
  });
});

describe("OpenAI stream rules", () => {
  test("the last non-null usage wins and null usages are ignored", () => {
    const acc = sse("openai", [
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}',
      '{"choices":[{"delta":{"content":"x"}}],"usage":null}',
      '{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}',
      '{"choices":[{"delta":{}}],"usage":null}',
    ]);
    expect(acc.result()).toEqual({ input: 5, output: 9, cacheRead: 0, cacheWrite: 0 });
  });

  test("the first non-empty model wins (Azure's prompt-filter chunk has model \"\")", () => {
    const acc = sse("openai", ['{"choices":[],"model":"","prompt_filter_results":[]}', '{"model":"gpt-4o-2024-08-06","choices":[]}', '{"model":"other","choices":[]}']);
    expect(acc.model).toBe("gpt-4o-2024-08-06");
  });
});

describe("cut-off JSON bodies (tail recovery)", () => {
  const full = JSON.stringify({
    id: "chatcmpl-1",
    model: "gpt-4o",
    choices: [{ message: { content: 'x'.repeat(100_000) + ' says "usage": {"prompt_tokens": 999} ' } }],
    usage: { prompt_tokens: 12, completion_tokens: 34, prompt_tokens_details: { cached_tokens: 4 } },
    system_fingerprint: "fp_1",
  });

  test("a tail cut at the front still yields the usage after the last usage key", () => {
    const tail = bytes(full).subarray(bytes(full).length - 65536);
    expect(usageFromJsonBody("openai", tail)).toEqual({ input: 8, output: 34, cacheRead: 4, cacheWrite: 0 });
  });

  test("\"usage\" written inside a content string is not taken for the key", () => {
    const body = bytes('tent":"he said \\"usage\\": {\\"prompt_tokens\\": 999}"}]}');
    expect(usageFromTail("openai", body)).toBeUndefined();
  });

  test("a later non-usage value under a usage key (metadata) falls back to the earlier real usage", () => {
    const tail = bytes('xx"}],"usage":{"input_tokens":5,"output_tokens":6,"total_tokens":11},"metadata":{"usage":"internal"}}');
    expect(usageFromTail("openai", tail)).toEqual({ input: 5, output: 6, cacheRead: 0, cacheWrite: 0 });
  });

  test("a null last usage means no usage", () => {
    expect(usageFromTail("openai", bytes('abc"}],"usage":null}'))).toBeUndefined();
  });

  test("a usage object cut off before its end is undefined", () => {
    expect(usageFromTail("anthropic", bytes('abc"}],"usage":{"input_tokens":5,"output_tok'))).toBeUndefined();
  });

  test("Anthropic tails recover too", () => {
    const t = bytes('xt":"zzz"}],"stop_reason":"end_turn","usage":{"input_tokens":100,"cache_creation_input_tokens":7,"cache_read_input_tokens":10,"output_tokens":50}}');
    expect(usageFromJsonBody("anthropic", t)).toEqual({ input: 100, output: 50, cacheRead: 10, cacheWrite: 7 });
  });
});
