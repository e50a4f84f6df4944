#!/usr/bin/env bash
# What a virtual model costs on its happy path: the same managed request (compare.sh's load: wrk -t1, a small chat
# completion whose body says "model":"gpt-4o-mini") through two gateways from this tree in alternating rounds. A is
# the direct route (/v1 → openai); B defines a virtual model named "gpt-4o-mini" with one target,
# "openai/gpt-4o-mini", so the very same request goes through the alias: the body scan for the alias, the target
# order, the model rewrite (same length) and the exact content-length. Prints B/A throughput and CPU per request.
# SWAP=1 makes the alias gateway A (and prints direct/alias). Rounds alternate which gateway goes first (ab_rounds):
# on a small machine the two slots of a round differ by a few per cent on their own.
# Usage: bash bench/alias-ab.sh   env: ROUNDS=10 SECS=3 CONNS=64 PIN=0 SWAP=0
source "$(dirname "$0")/lib.sh"
ab_setup alias
start_gateway direct 18087 "" "${pin_gw[@]}"; gw_pid[18087]=$gateway_pid
start_gateway alias 18088 '[models."gpt-4o-mini"]
targets = ["openai/gpt-4o-mini"]' "${pin_gw[@]}"; gw_pid[18088]=$gateway_pid
sleep 2
if [ "${SWAP:-0}" = 1 ]; then ab_rounds alias 18088 "${gw_pid[18088]}" direct 18087 "${gw_pid[18087]}"
else ab_rounds direct 18087 "${gw_pid[18087]}" alias 18088 "${gw_pid[18088]}"; fi
routed=$(grep -c '"route":"gpt-4o-mini"' "$work/alias.log" || true)
echo "ai.usage lines through the alias: $routed"
if [ "$routed" -eq 0 ]; then echo "FAILED: the alias gateway routed nothing through the virtual model"; tail -n 3 "$work/alias.log"; exit 1; fi
if [ "${SWAP:-0}" = 1 ]; then ab_summary "direct/alias"; else ab_summary "alias/direct"; fi
