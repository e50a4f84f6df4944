#!/usr/bin/env bash
# The scheduler's view of a lone client's requests: a gateway from this tree and the nginx mock, one connection from
# one-conn (bench/load/one-conn.c; CLIENT=wrk for wrk -c1), while `perf sched record -a` records every context switch
# for SECS. bench/load/sched-cycles.ts rebuilds each request's cycle from the trace and says, per band of cycle length,
# how long the gateway's request thread ran inside it and which of its other threads (collector helpers, JIT, the
# allocator's scavenger) ran there. With CLIENT=wrk a second run times each request from wrk's own write and read
# system calls (`perf trace`, bench/load/syscall-latency.ts), to check wrk's reported percentiles. Needs perf with permission to trace the scheduler (root, or
# kernel.perf_event_paranoid <= 1) and cc. Usage: bash bench/sched-cycles.sh   env: SECS=4 CLIENT=one-conn EXTRA_TOML=""
source "$(dirname "$0")/lib.sh"
require sched-cycles nginx wrk node cc perf
SECS=${SECS:-4}; CLIENT=${CLIENT:-one-conn}
build_one_conn
mint_key
start_mock
start_gateway sched 18090 "${EXTRA_TOML:-}"
gw=$(pgrep -f "src/main.ts --config $work/sched.toml" | head -1)
drive() {
  if [ "$CLIENT" = wrk ]; then
    AUTH="Bearer $token" wrk -t1 -c1 -d"${1}s" --latency -s "$load/post.lua" http://127.0.0.1:18090/v1/chat/completions |
      awk '/ 50%/{a=$2} / 90%/{b=$2} / 99%/{c=$2} END{print "wrk says: p50 " a " p90 " b " p99 " c}'
  else
    "$one_conn" 18090 "$1" "Bearer $token" | awk '{print "one-conn says: " $1 " requests, p50 " $2 " us p90 " $3 " p99 " $4 " p99.9 " $5}'
  fi
}
drive 3 >/dev/null
perf sched record -a -o "$work/perf.data" -- sleep "$((SECS + 1))" >/dev/null 2>&1 & rec=$!
sleep 0.5
drive "$SECS"
wait "$rec" || { echo "FAILED: perf sched record did not run (permissions? kernel.perf_event_paranoid)"; exit 1; }
perf sched timehist -i "$work/perf.data" 2>/dev/null | "$bun" "$load/sched-cycles.ts" "$([ "$CLIENT" = wrk ] && echo wrk || echo one-conn)" "$gw"
if [ "$CLIENT" = wrk ]; then
  echo "second run: wrk's write/read system calls traced for $SECS s"
  AUTH="Bearer $token" wrk -t1 -c1 -d"$((SECS + 2))s" --latency -s "$load/post.lua" http://127.0.0.1:18090/v1/chat/completions > "$work/wrk.out" & wrk_pid=$!
  sleep 0.5
  timeout "$SECS" perf trace -p "$(pgrep -n -x wrk)" -e write,read 2> "$work/trace.txt" >/dev/null || true
  wait "$wrk_pid"
  awk '/ 50%/{a=$2} / 90%/{b=$2} / 99%/{c=$2} END{print "wrk says: p50 " a " p90 " b " p99 " c}' "$work/wrk.out"
  "$bun" "$load/syscall-latency.ts" < "$work/trace.txt"
fi
