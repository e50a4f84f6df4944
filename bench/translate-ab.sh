#!/usr/bin/env bash
# What dialect translation costs on its happy path: the same OpenAI Chat Completions request (compare.sh's load: wrk
# -t1, a small non-stream chat completion whose body says "model":"gpt-4o-mini") through two gateways from this tree in
# alternating rounds. A routes it through a one-target virtual model to an OpenAI-dialect target (no translation: the
# model value is spliced, the bytes relayed); B through a one-target virtual model to an Anthropic-dialect target on
# the same nginx mock (/v1/messages), so the body is parsed and translated and the answer parsed and translated back.
# Prints B/A throughput and CPU per request.
# Usage: bash bench/translate-ab.sh   env: ROUNDS=10 SECS=3 CONNS=64 PIN=0
source "$(dirname "$0")/lib.sh"
ab_setup translate
start_gateway untranslated 18087 '[models."gpt-4o-mini"]
targets = ["openai/gpt-4o-mini"]' "${pin_gw[@]}"; gw_pid[18087]=$gateway_pid
# The Anthropic target lives on the same mock; its authority and pool key come from the environment.
start_gateway translated 18088 '[models."gpt-4o-mini"]
targets = ["anthropic/claude-haiku-4-5"]' env AI_PROVIDER_AUTHORITIES__ANTHROPIC="${UPSTREAM:-127.0.0.1:18080}" AI_POOL_KEY_ANTHROPIC=sk-pool "${pin_gw[@]}"; gw_pid[18088]=$gateway_pid
sleep 2
# One request each first: the translated answer must really be an OpenAI chat completion built from the mock's Anthropic message.
probe=$(curl -s "http://127.0.0.1:18088/v1/chat/completions" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}')
case "$probe" in *'"object":"chat.completion"'*'"content":"Hello there"'*) ;; *) echo "FAILED: the translated gateway answered: $probe"; tail -n 3 "$work/translated.log"; exit 1 ;; esac
ab_rounds untranslated 18087 "${gw_pid[18087]}" translated 18088 "${gw_pid[18088]}"
n=$(grep -c '"translated":true' "$work/translated.log" || true)
echo "ai.usage lines with translated:true: $n"
if [ "$n" -eq 0 ]; then echo "FAILED: nothing was translated"; exit 1; fi
ab_summary "translated/untranslated"
