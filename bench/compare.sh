#!/usr/bin/env bash
# Side-by-side load benchmark, one run: the same mock provider (nginx returning a canned chat completion) behind
#   nginx proxy_pass (the C floor) | the thinnest Bun proxy (Bun.serve + fetch) | beyond-ai from this checkout with a
#   managed key (verify, swap, meter).
# Rounds alternate so machine drift hits all three alike. Prints req/s, p50, p99 and non-2xx per round, then the
# gateway/nginx and gateway/thin-Bun throughput ratios (ratio of sums). Quote ratios, not absolute figures: on a
# busy machine the absolute numbers move with everything else it runs.
# Needs nginx, wrk and node (NOT RUN, exit 3, naming what is missing). Everything runs on 127.0.0.1:18080-18092.
# thinpool is Bun.serve plus the gateway's pooled transport and no pipeline: gateway/thin-pool is the pipeline's share.
# Usage: bash bench/compare.sh   env: ROUNDS=3 DURATION=6s CONNS=64
source "$(dirname "$0")/lib.sh"
require compare nginx wrk node
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-6s}; CONNS=${CONNS:-64}
mint_key
start_mock
start_nginx_proxy
start_thin_proxy 18083 http://127.0.0.1:18080
start_thin_pool 18084 127.0.0.1:18080
start_gateway gw 18082 ""
# name, port, credential: the four servers every round loads, in this order.
servers=("nginx 18081 Bearer sk-byo" "thinbun 18083 Bearer sk-byo" "thinpool 18084 Bearer sk-byo" "gateway 18082 Bearer $token")
run() { AUTH="$2" wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$load/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 |
  awk '/Requests\/sec/{r=$2} / 50%/{p50=$2} / 99%/{p99=$2} /Non-2xx/{bad=$NF} END{printf "%s %s %s %s\n", r, p50, p99, bad+0}'; }
printf "%-6s %-10s %10s %10s %10s %8s\n" round proxy req/s p50 p99 non2xx
declare -A sum bad
for i in $(seq "$ROUNDS"); do
  for pair in "${servers[@]}"; do
    set -- $pair; read -r rps p50 p99 n < <(run "$2" "$3 $4")
    printf "%-6s %-10s %10s %10s %10s %8s\n" "$i" "$1" "$rps" "$p50" "$p99" "$n"
    sum[$1]=$(awk -v a="${sum[$1]:-0}" -v b="${rps:-0}" 'BEGIN{print a+b}')
    bad[$1]=$(( ${bad[$1]:-0} + ${n:-0} ))
  done
done
# A proxy that answered errors is fast for the wrong reason: its ratio would mislead.
for p in nginx thinbun thinpool gateway; do
  if [ "${bad[$p]}" -gt 0 ] || awk -v s="${sum[$p]}" 'BEGIN{exit !(s <= 0)}'; then
    echo "FAILED: $p answered ${bad[$p]} non-2xx responses (or none at all): ratios not printed; gateway log tail:"
    tail -n 5 "$work/gw.log"
    exit 1
  fi
done
awk -v g="${sum[gateway]}" -v n="${sum[nginx]}" -v t="${sum[thinbun]}" -v p="${sum[thinpool]}" 'BEGIN{printf "gateway/nginx throughput ratio: %.3f\ngateway/thin-bun throughput ratio: %.3f\nthin-pool/nginx throughput ratio: %.3f\ngateway/thin-pool throughput ratio: %.3f\n", g/n, g/t, p/n, g/p}'
# One connection: wrk -c1's p99 against Bun servers runs several times what the client's own system calls and the
# scheduler show (bench/sched-cycles.sh CLIENT=wrk), so the lone-client tail is also measured with one-conn
# (bench/load/one-conn.c, needs cc), in alternating rounds, with each server's p99/p50 and its p99 minus nginx's.
if [ "$CONNS" = 1 ]; then
  if ! command -v cc >/dev/null 2>&1; then echo "one-conn: NOT RUN (needs cc; Debian/Ubuntu: apt-get install gcc)"; exit 0; fi
  build_one_conn
  secs=${DURATION%s}
  echo "one connection, measured by one-conn (p50 p99 p99.9 in µs; added = p99 minus nginx's p99 in the same round):"
  printf "%-6s %-10s %8s %8s %8s %8s %9s\n" round proxy p50 p99 p99.9 p99/p50 added
  for i in $(seq "$ROUNDS"); do
    for pair in "${servers[@]}"; do
      set -- $pair; read -r _ p50 _ p99 p999 _ < <("$one_conn" "$2" "$secs" "$3 $4")
      [ "$1" = nginx ] && nginx_p99=$p99
      printf "%-6s %-10s %8s %8s %8s %8s %9s\n" "$i" "$1" "$p50" "$p99" "$p999" "$(awk -v a="$p99" -v b="$p50" 'BEGIN{printf "%.2f", a/b}')" "$((p99 - nginx_p99))"
    done
  done
fi
