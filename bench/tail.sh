#!/usr/bin/env bash
# Where a lone client's tail comes from: one connection (wrk -c1, compare.sh's managed request) against nginx, the
# thinnest Bun proxy and a gateway from this tree, in alternating rounds. For the gateway it also reads, over the same
# window: the time each request spent inside the handler (ai.access duration_ms: arrival to the answer handed to
# Bun.serve), every garbage collection with its pause (the gateway runs with BUN_JSC_logGC=1, which prints one line
# per collection to stderr), and the CPU each of its threads used. If the client's p99 is far above the handler's,
# the tail is outside our code (scheduling, Bun.serve, the socket path); the GC lines say how many requests a
# collection can have delayed.
# Usage: bash bench/tail.sh   env: ROUNDS=3 SECS=5 EXTRA_TOML=""
source "$(dirname "$0")/lib.sh"
require tail nginx wrk node
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-5}
mint_key
start_mock
start_nginx_proxy
start_thin_proxy 18083 http://127.0.0.1:18080
start_gateway tail 18090 "${EXTRA_TOML:-}" env BUN_JSC_logGC=1
gw=$(pgrep -f "src/main.ts --config $work/tail.toml" | head -1)
lat() { AUTH="$2" wrk -t1 -c1 -d"$3" --latency -s "$load/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 |
  awk '/Requests\/sec/{r=$2} / 50%/{p50=$2} / 90%/{p90=$2} / 99%/{p99=$2} END{printf "%10s %9s %9s %9s", r, p50, p90, p99}'; }
threads() { for t in /proc/"$gw"/task/*; do echo "$(basename "$t") $(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done | sort; }
for p in "18081 Bearer sk-byo" "18083 Bearer sk-byo" "18090 Bearer $token"; do set -- $p; lat "$1" "$2 $3" 2s >/dev/null; done
printf "%-6s %-8s %10s %9s %9s %9s | %s\n" round proxy req/s p50 p90 p99 "gateway: handler p50/p99/p99.9 (ms), collections (pause p50/max ms), thread CPU (ticks)"
for i in $(seq "$ROUNDS"); do
  printf "%-6s %-8s %s\n" "$i" nginx "$(lat 18081 "Bearer sk-byo" "${SECS}s")"
  printf "%-6s %-8s %s\n" "$i" thinbun "$(lat 18083 "Bearer sk-byo" "${SECS}s")"
  from=$(wc -l < "$work/tail.log"); threads > "$work/t0"
  res=$(lat 18090 "Bearer $token" "${SECS}s")
  sleep 0.1; threads > "$work/t1"; tail -n +"$((from + 1))" "$work/tail.log" > "$work/window.log"
  handler=$(grep -o '"target":"ai.access".*"duration_ms":[0-9.]*' "$work/window.log" | grep -o '[0-9.]*$' | sort -n |
    awk '{a[NR]=$1} END{if (NR) printf "%s/%s/%s", a[int(NR*0.5)+1], a[int(NR*0.99)+1], a[int(NR*0.999)+1]}')
  gc=$(grep -o '^\[GC<[^]]*END\]' "$work/window.log" | grep -o 'p=[0-9.]*ms' | tr -d 'pm=s' | sort -n |
    awk '{a[NR]=$1} END{if (NR) printf "%d (%.2f/%.2f)", NR, a[int(NR*0.5)+1], a[NR]; else printf "0"}')
  cpu=$(join "$work/t0" "$work/t1" | awk '{d=$5-$3; if (d>0) printf "%s=%d ", $2, d}')
  printf "%-6s %-8s %s | %s, %s, %s\n" "$i" gateway "$res" "$handler" "$gc" "$cpu"
done
