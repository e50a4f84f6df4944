#!/usr/bin/env bash
# Before/after for a change on the request path: the same managed request (compare.sh's load: wrk -t1, a small chat
# completion POSTed to the canned nginx mock) through a gateway from another checkout (A, e.g. the commit before the
# change: `git worktree add /tmp/base <rev>` plus `ln -s $PWD/node_modules /tmp/base/`) and one from this checkout (B),
# in alternating rounds so machine drift hits both alike. Prints each round (req/s and the gateway's CPU µs per request,
# all threads, from /proc), then B/A throughput and CPU per request as the ratio of sums and the median of paired
# rounds. PIN=1 puts both gateways on CPU 0 and wrk plus the mock on CPU 1. Extra TOML for both: EXTRA_TOML.
# Usage: bash bench/tree-ab.sh OTHER_CHECKOUT   env: ROUNDS=8 SECS=3 CONNS=64 PIN=0 EXTRA_TOML=
source "$(dirname "$0")/lib.sh"
other=${1:?usage: bash bench/tree-ab.sh OTHER_CHECKOUT}
other=$(cd "$other" && pwd)
require tree-ab nginx wrk node
if [ "${PIN:-0}" = 1 ]; then require tree-ab taskset; fi
mint_key
ROUNDS=${ROUNDS:-8}; SECS=${SECS:-3}; CONNS=${CONNS:-64}
pin_gw=(); pin_load=()
if [ "${PIN:-0}" = 1 ]; then pin_gw=(taskset -c 0); pin_load=(taskset -c 1); fi
start_mock "${pin_load[@]}"
declare -A gw_pid
proj=$other start_gateway A 18087 "${EXTRA_TOML:-}" "${pin_gw[@]}"; gw_pid[18087]=$gateway_pid
start_gateway B 18088 "${EXTRA_TOML:-}" "${pin_gw[@]}"; gw_pid[18088]=$gateway_pid
sleep 2
load() { AUTH="Bearer $token" "${pin_load[@]}" wrk -t1 -c"$CONNS" -d"$2" -s "$load/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1; }
load 18087 2s >/dev/null; load 18088 2s >/dev/null # warm both (JIT, pooled sockets)
out="$work/rounds.txt"
printf "%-6s %-5s %10s %13s %8s\n" round tree req/s "cpu/req (us)" non2xx
for i in $(seq "$ROUNDS"); do
  for pair in "A 18087" "B 18088"; do set -- $pair
    c0=$(cpu_ticks "${gw_pid[$2]}"); res=$(load "$2" "${SECS}s"); c1=$(cpu_ticks "${gw_pid[$2]}")
    echo "$res" | awk -v r="$i" -v m="$1" -v d=$((c1 - c0)) '/requests in/{n=$1} /Requests\/sec/{s=$2} /Non-2xx/{bad=$NF} END{printf "%-6s %-5s %10s %13.1f %8d\n", r, m, s, d*10000/n, bad+0}' | tee -a "$out"
  done
done
# A gateway that answered errors is fast for the wrong reason.
if awk '$5 > 0 {bad=1} END{exit !bad}' "$out"; then
  echo "FAILED: a gateway answered non-2xx responses; log tails:"; tail -n 3 "$work/A.log" "$work/B.log"; exit 1
fi
awk '$2=="A"{a+=$3; x=$3} $2=="B"{b+=$3; print $3/x > "/dev/stderr"} END{printf "B/A throughput (ratio of sums): %.3f\n", b/a}' "$out" 2> "$work/pairs.txt"
median() { sort -n | awk -v what="$1" '{v[NR]=$1} END{printf "%s (median of %d paired rounds): %.3f\n", what, NR, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
median "B/A throughput" < "$work/pairs.txt"
awk '$2=="A"{a+=$4; x=$4} $2=="B"{b+=$4; print $4/x > "/dev/stderr"} END{printf "B/A CPU per request (ratio of sums): %.3f\n", b/a}' "$out" 2> "$work/cpupairs.txt"
median "B/A CPU per request" < "$work/cpupairs.txt"
