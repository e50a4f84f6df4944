#!/usr/bin/env bash
# Where a lone client's tail comes from: one connection (compare.sh's managed request) against nginx, the thinnest Bun
# proxy, Bun.serve with the gateway's pooled transport and no pipeline (thin-pool), and a gateway from this tree, in
# alternating rounds, each measured by two clients in turn: wrk -c1 (compare.sh's CONNS=1 figure) and one-conn, a
# minimal C client (bench/load/one-conn.c: blocking reads, nothing else in its loop). Against Bun servers on the
# 2-vCPU VMs measured here wrk reports a p99 several times one-conn's at the same p50, so both are printed.
# For the gateway it also reads, over its one-conn window: the time each request spent inside the handler (ai.access
# duration_ms: arrival to the answer handed to Bun.serve), every garbage collection with its pause (the gateway runs
# with BUN_JSC_logGC=1, which prints one line per collection to stderr), and the CPU each of its threads used.
# If the client's p99 is far above the handler's, the tail is outside our code (scheduling, Bun.serve, the socket
# path); the GC lines say how many requests a collection can have delayed. bench/machine-floor.sh gives the same
# percentiles for a fixed CPU loop, the machine's own floor.
# Usage: bash bench/tail.sh   env: ROUNDS=3 SECS=5 EXTRA_TOML=""
source "$(dirname "$0")/lib.sh"
require tail nginx wrk node cc
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-5}
build_one_conn
mint_key
start_mock
start_nginx_proxy
start_thin_proxy 18083 http://127.0.0.1:18080
start_thin_pool 18084 127.0.0.1:18080
start_gateway tail 18090 "${EXTRA_TOML:-}" env BUN_JSC_logGC=1
gw=$(pgrep -f "src/main.ts --config $work/tail.toml" | head -1)
lat() { AUTH="$2" wrk -t1 -c1 -d"$3" --latency -s "$load/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 |
  awk '/ 50%/{p50=$2} / 90%/{p90=$2} / 99%/{p99=$2} END{printf "%9s %9s %9s", p50, p90, p99}'; }
one() { "$one_conn" "$1" "$3" "$2" | awk '{printf "%7s %6dus %6dus %6dus %7dus", $1, $2, $3, $4, $5}'; }
threads() { for t in /proc/"$gw"/task/*; do echo "$(basename "$t") $(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done | sort; }
for p in "18081 Bearer sk-byo" "18083 Bearer sk-byo" "18084 Bearer sk-byo" "18090 Bearer $token"; do
  set -- $p; lat "$1" "$2 $3" 2s >/dev/null; "$one_conn" "$1" 1 "$2 $3" >/dev/null
done
printf "%-6s %-9s | %-29s | %-41s\n" round server "wrk -c1: p50 p90 p99" "one-conn: requests p50 p90 p99 p99.9"
for i in $(seq "$ROUNDS"); do
  for p in "nginx 18081 Bearer sk-byo" "thinbun 18083 Bearer sk-byo" "thinpool 18084 Bearer sk-byo" "gateway 18090 Bearer $token"; do
    set -- $p
    w=$(lat "$2" "$3 $4" "${SECS}s")
    if [ "$1" != gateway ]; then printf "%-6s %-9s | %s | %s\n" "$i" "$1" "$w" "$(one "$2" "$3 $4" "$SECS")"; continue; fi
    from=$(wc -l < "$work/tail.log"); threads > "$work/t0"
    o=$(one "$2" "$3 $4" "$SECS")
    sleep 0.1; threads > "$work/t1"; tail -n +"$((from + 1))" "$work/tail.log" > "$work/window.log"
    printf "%-6s %-9s | %s | %s\n" "$i" gateway "$w" "$o"
    handler=$(grep -o '"target":"ai.access".*"duration_ms":[0-9.]*' "$work/window.log" | grep -o '[0-9.]*$' | sort -n |
      awk '{a[NR]=$1} END{if (NR) printf "%s/%s/%s", a[int(NR*0.5)+1], a[int(NR*0.99)+1], a[int(NR*0.999)+1]}')
    gc=$(grep -o '^\[GC<[^]]*END\]' "$work/window.log" | grep -o 'p=[0-9.]*ms' | tr -d 'pm=s' | sort -n |
      awk '{a[NR]=$1} END{if (NR) printf "%d (%.2f/%.2f)", NR, a[int(NR*0.5)+1], a[NR]; else printf "0"}')
    cpu=$(join "$work/t0" "$work/t1" | awk '{d=$5-$3; if (d>0) printf "%s=%d ", $2, d}')
    printf "%-6s %-9s   over the one-conn window: handler p50/p99/p99.9 %s ms; collections %s (pause p50/max ms); thread CPU ticks %s\n" "" "" "$handler" "$gc" "$cpu"
  done
done
