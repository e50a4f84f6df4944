#!/usr/bin/env bash
# What `auto` costs on its happy path: compare.sh's managed load (wrk -t1, a small chat completion) through two
# gateways from this tree in alternating rounds. A sends it to a one-target virtual model ("gpt-4o-mini" →
# openai/gpt-4o-mini, named by the body); B sends it with "model":"auto" to a gateway whose [auto] tiers all resolve
# to that same target, so B pays exactly what auto adds to a virtual model: the x-beyond-tier lookup, the
# classifier's pass over the body, the decision metric, the x-beyond-route header and the tier fields of ai.usage.
# Prints B/A throughput and CPU per request. SWAP=1 makes the auto gateway A (and prints alias/auto);
# rounds alternate which gateway goes first.
# Usage: bash bench/auto-ab.sh   env: ROUNDS=10 SECS=3 CONNS=64 PIN=0 SWAP=0
source "$(dirname "$0")/lib.sh"
ab_setup auto
start_gateway alias 18087 '[models."gpt-4o-mini"]
targets = ["openai/gpt-4o-mini"]' "${pin_gw[@]}"; gw_pid[18087]=$gateway_pid
start_gateway auto 18088 '[auto]
tiers = { simple = "openai/gpt-4o-mini" }' "${pin_gw[@]}"; gw_pid[18088]=$gateway_pid
load_model[18088]=auto
sleep 2
probe=$(curl -s -D - -o /dev/null "http://127.0.0.1:18088/v1/chat/completions" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"model":"auto","messages":[{"role":"user","content":"hi"}]}')
case "$probe" in *"x-beyond-route: simple; openai/gpt-4o-mini"*) ;; *) echo "FAILED: the auto gateway answered: $probe"; tail -n 3 "$work/auto.log"; exit 1 ;; esac
if [ "${SWAP:-0}" = 1 ]; then ab_rounds auto 18088 "${gw_pid[18088]}" alias 18087 "${gw_pid[18087]}"
else ab_rounds alias 18087 "${gw_pid[18087]}" auto 18088 "${gw_pid[18088]}"; fi
n=$(grep -c '"route":"auto"' "$work/auto.log" || true)
echo "ai.usage lines with route auto: $n"
if [ "$n" -eq 0 ]; then echo "FAILED: nothing was routed through auto"; exit 1; fi
if [ "${SWAP:-0}" = 1 ]; then ab_summary "alias/auto"; else ab_summary "auto/alias"; fi
