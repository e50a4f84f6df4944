// The headers the official OpenAI Node SDK (v5, stainless) sends through a keep-alive agent besides content-type,
// content-length and its credential, as Bun's server exposes them: the benches' "SDK" request heads (the gateway's
// header work grows with their number, and wrk's request carries only four).
export const OPENAI_SDK_HEADERS: Readonly<Record<string, string>> = {
  host: "127.0.0.1:8080",
  connection: "keep-alive",
  accept: "application/json",
  "user-agent": "OpenAI/JS 5.10.1",
  "x-stainless-lang": "js",
  "x-stainless-package-version": "5.10.1",
  "x-stainless-os": "Linux",
  "x-stainless-arch": "x64",
  "x-stainless-runtime": "node",
  "x-stainless-runtime-version": "v22.11.0",
  "x-stainless-retry-count": "0",
  "x-stainless-timeout": "600",
  "accept-encoding": "gzip, deflate",
};
