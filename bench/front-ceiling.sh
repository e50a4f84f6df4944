#!/usr/bin/env bash
# How much a raw HTTP/1.1 front (Bun.listen) could gain over Bun.serve at most: three servers that read compare.sh's
# small POST and answer a canned chat completion at once (bench/load/front-ceiling.ts: FRONT=serve | raw | raw-req),
# loaded in alternating rounds with wrk (CONNS connections). Prints req/s and CPU µs per request for each, then
# raw/serve and raw-req/serve. "raw" is the least parsing that works for this load, so its ratio is an upper bound
# for any strict parser; "raw-req" builds the Request/Response objects the pipeline works with, the cost of a raw
# front that feeds the existing pipeline unchanged.
# Usage: bash bench/front-ceiling.sh   env: ROUNDS=5 SECS=3 CONNS=64
source "$(dirname "$0")/lib.sh"
require front-ceiling wrk node
ROUNDS=${ROUNDS:-5}; SECS=${SECS:-3}; CONNS=${CONNS:-64}
declare -A fpid
for f in "serve 18095" "raw 18096" "raw-req 18097"; do set -- $f
  FRONT=$1 PORT=$2 "$bun" "$load/front-ceiling.ts" >"$work/$1.log" 2>&1 & fpid[$1]=$!; pids+=($!)
  wait_port "$2" "the $1 front"
done
one() { AUTH="Bearer x" wrk -t1 -c"$CONNS" -d"$2" -s "$load/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1; }
for p in 18095 18096 18097; do one $p 2s >/dev/null; done
printf "%-6s %-8s %10s %13s %8s\n" round front req/s "cpu/req (us)" non2xx
for i in $(seq "$ROUNDS"); do
  for f in "serve 18095" "raw 18096" "raw-req 18097"; do set -- $f
    c0=$(cpu_ticks "${fpid[$1]}"); res=$(one "$2" "${SECS}s"); c1=$(cpu_ticks "${fpid[$1]}")
    echo "$res" | awk -v r="$i" -v m="$1" -v d=$((c1 - c0)) '/requests in/{n=$1} /Requests\/sec/{s=$2} /Non-2xx/{bad=$NF} END{printf "%-6s %-8s %10s %13.1f %8d\n", r, m, s, d*10000/n, bad+0}' | tee -a "$work/rounds.txt"
  done
done
awk '{s[$2]+=$3; c[$2]+=$4; n[$2]++} END{printf "raw/serve throughput %.3f, CPU per request %.3f\nraw-req/serve throughput %.3f, CPU per request %.3f\n", s["raw"]/s["serve"], c["raw"]/c["serve"], s["raw-req"]/s["serve"], c["raw-req"]/c["serve"]}' "$work/rounds.txt"
