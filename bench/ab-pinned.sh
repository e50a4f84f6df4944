#!/usr/bin/env bash
# Managed vs BYO on the same gateway, pinned: the gateway on CPU 0, wrk and the nginx mock provider on CPU 1, so the
# proxy's own cost is what differs between the two. Paired short rounds (BYO then managed) average out machine drift.
# Prints each round's req/s and gateway CPU µs per request, then the managed/BYO throughput ratio (mean and median).
# Usage: bash bench/ab-pinned.sh   env: ROUNDS=20 SECS=1 CONNS=32 TRANSPORT=pool
source "$(dirname "$0")/lib.sh"
require ab-pinned nginx wrk node taskset
mint_key
start_mock taskset -c 1
start_gateway gw 18086 "byo_rate_limit_rps = 0
upstream_transport = \"${TRANSPORT:-pool}\"" taskset -c 0
gw=$gateway_pid
sleep 1.5
cpu() { cpu_ticks "$gw"; }
AUTH="Bearer $token" taskset -c 1 wrk -t1 -c"${CONNS:-32}" -d2s -s "$load/post.lua" "http://127.0.0.1:18086/v1/chat/completions" >/dev/null 2>&1
out="$work/rounds.txt"
for i in $(seq "${ROUNDS:-20}"); do for a in "byo Bearer sk-byo" "managed Bearer $token"; do set -- $a
  c0=$(cpu); res=$(AUTH="$2 $3" taskset -c 1 wrk -t1 -c"${CONNS:-32}" -d"${SECS:-1}"s -s "$load/post.lua" "http://127.0.0.1:18086/v1/chat/completions" 2>&1); c1=$(cpu)
  req=$(echo "$res" | awk '/requests in/{print $1}'); rps=$(echo "$res" | awk '/Requests\/sec/{print $2}')
  awk -v n="$1" -v r="$req" -v d=$((c1-c0)) -v s="$rps" 'BEGIN{printf "%-8s rps %9s  cpu/req %6.1f us\n", n, s, d*10000/r}' | tee -a "$out"
done; done
awk 'NR%2==1{b=$3} NR%2==0{print $3/b}' "$out" | sort -n | awk '{a[NR]=$1; s+=$1} END{printf "managed/BYO throughput: mean %.3f median %.3f (%d paired rounds)\n", s/NR, a[int(NR/2)+1], NR}'
