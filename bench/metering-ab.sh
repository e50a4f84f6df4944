#!/usr/bin/env bash
# Issue 4's target, measured directly: the same managed request through two gateways from this tree, one metering
# (the default) and one with usage_metering = false, in alternating rounds of compare.sh's load (wrk -t1, POST of a
# small chat completion to the same canned nginx mock). Alternation spreads machine drift over both. PIN=1 puts the
# gateways on CPU 0 and wrk plus the mock on CPU 1, which steadies the figures on a shared 2-core box.
# Prints each round, then metering-on/off throughput as the ratio of sums and the median of paired rounds.
# Usage: bash bench/metering-ab.sh   env: ROUNDS=10 SECS=3 CONNS=64 PIN=0
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-10}; SECS=${SECS:-3}; CONNS=${CONNS:-64}
pin_gw=(); pin_load=()
if [ "${PIN:-0}" = 1 ]; then pin_gw=(taskset -c 0); pin_load=(taskset -c 1); fi
start_mock "${pin_load[@]}"
start_gateway on 18087 "usage_metering = true" "${pin_gw[@]}"
start_gateway off 18088 "usage_metering = false" "${pin_gw[@]}"
sleep 2
load() { AUTH="Bearer $token" "${pin_load[@]}" wrk -t1 -c"$CONNS" -d"$2" -s "$here/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1; }
load 18087 2s >/dev/null; load 18088 2s >/dev/null # warm both (JIT, pooled sockets)
out="$work/rounds.txt"
printf "%-6s %-12s %10s\n" round metering req/s
for i in $(seq "$ROUNDS"); do
  for pair in "on 18087" "off 18088"; do set -- $pair
    rps=$(load "$2" "${SECS}s" | awk '/Requests\/sec/{print $2}')
    printf "%-6s %-12s %10s\n" "$i" "$1" "$rps" | tee -a "$out"
  done
done
lines=$(grep -c '"target":"ai.usage"' "$work/on.log" || true); off_lines=$(grep -c '"target":"ai.usage"' "$work/off.log" || true)
echo "ai.usage lines written: metering on $lines, metering off $off_lines"
awk '$2=="on"{on+=$3; o=$3} $2=="off"{off+=$3; print o/$3 > "/dev/stderr"} END{printf "metering on/off throughput (ratio of sums): %.3f\n", on/off}' "$out" 2> "$work/pairs.txt"
sort -n "$work/pairs.txt" | awk '{v[NR]=$1} END{printf "metering on/off throughput (median of %d paired rounds): %.3f\n", NR, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
