#!/usr/bin/env bash
# What metering costs, measured directly: the same managed request through two gateways from this tree, one metering
# (the default) and one with usage_metering = false, in alternating rounds of compare.sh's load (wrk -t1, POST of a
# small chat completion to the same canned nginx mock). Alternation spreads machine drift over both. PIN=1 puts the
# gateways on CPU 0 and wrk plus the mock on CPU 1, which steadies the figures on a busy 2-core box.
# Prints each round (req/s and the gateway's CPU µs per request, all threads, from /proc), then metering-on/off
# throughput as the ratio of sums and the median of paired rounds, and the CPU per request the same two ways. When the
# gateway is CPU-bound, CPU per request is the steadier figure on a noisy machine: throughput also moves with whatever
# else the machine runs.
# Usage: bash bench/metering-ab.sh   env: ROUNDS=10 SECS=3 CONNS=64 PIN=0
source "$(dirname "$0")/lib.sh"
require metering nginx wrk node
if [ "${PIN:-0}" = 1 ]; then require metering taskset; fi
mint_key
ROUNDS=${ROUNDS:-10}; SECS=${SECS:-3}; CONNS=${CONNS:-64}
pin_gw=(); pin_load=()
if [ "${PIN:-0}" = 1 ]; then pin_gw=(taskset -c 0); pin_load=(taskset -c 1); fi
start_mock "${pin_load[@]}"
start_gateway on 18087 "usage_metering = true" "${pin_gw[@]}"; declare -A gw_pid; gw_pid[18087]=$gateway_pid
start_gateway off 18088 "usage_metering = false" "${pin_gw[@]}"; gw_pid[18088]=$gateway_pid
sleep 2
load() { AUTH="Bearer $token" "${pin_load[@]}" wrk -t1 -c"$CONNS" -d"$2" -s "$load/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1; }
load 18087 2s >/dev/null; load 18088 2s >/dev/null # warm both (JIT, pooled sockets)
out="$work/rounds.txt"
printf "%-6s %-9s %10s %13s\n" round metering req/s "cpu/req (us)"
for i in $(seq "$ROUNDS"); do
  for pair in "on 18087" "off 18088"; do set -- $pair
    c0=$(cpu_ticks "${gw_pid[$2]}"); res=$(load "$2" "${SECS}s"); c1=$(cpu_ticks "${gw_pid[$2]}")
    echo "$res" | awk -v r="$i" -v m="$1" -v d=$((c1 - c0)) '/requests in/{n=$1} /Requests\/sec/{s=$2} END{printf "%-6s %-9s %10s %13.1f\n", r, m, s, d*10000/n}' | tee -a "$out"
  done
done
lines=$(grep -c '"target":"ai.usage"' "$work/on.log" || true); off_lines=$(grep -c '"target":"ai.usage"' "$work/off.log" || true)
echo "ai.usage lines written: metering on $lines, metering off $off_lines"
# The A/B is meaningless unless the "on" gateway metered and the "off" one did not.
if [ "$lines" -eq 0 ] || [ "$off_lines" -ne 0 ]; then
  echo "FAILED: expected ai.usage lines from the metering gateway only (on: $lines, off: $off_lines); gateway log tails:"
  tail -n 3 "$work/on.log" "$work/off.log"
  exit 1
fi
awk '$2=="on"{on+=$3; o=$3} $2=="off"{off+=$3; print o/$3 > "/dev/stderr"} END{printf "metering on/off throughput (ratio of sums): %.3f\n", on/off}' "$out" 2> "$work/pairs.txt"
median() { sort -n | awk -v what="$1" '{v[NR]=$1} END{printf "%s (median of %d paired rounds): %.3f\n", what, NR, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
median "metering on/off throughput" < "$work/pairs.txt"
awk '$2=="on"{on+=$4; o=$4} $2=="off"{off+=$4; print o/$4 > "/dev/stderr"} END{printf "metering on/off CPU per request (ratio of sums): %.3f\n", on/off}' "$out" 2> "$work/cpupairs.txt"
median "metering on/off CPU per request" < "$work/cpupairs.txt"
