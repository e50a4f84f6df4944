#!/usr/bin/env bash
# Worker scaling (the `workers` setting): the gateway from this checkout with workers = 1, 2, 4, 8, each run pinned to
# its own W cores (taskset -c 0..W-1: the main thread shares them, so a figure is per core given), wrk and the nginx
# mock provider pinned to the cores after the largest W. A managed key (verify, swap, meter), rate limits off.
# Prints req/s, p50, p99, non-2xx and the gateway's CPU use per worker count, then each count's throughput ratio to
# the first count (workers = 1). Target on a machine with the cores for it: 8 workers ≥ 6× one worker.
# Each gateway is checked to really run W workers (its /metrics ai_workers); a gateway without workers fails the
# run rather than print a flat line that looks like a result.
# With too few cores for separate gateway and load cores the load shares the last core and the script says the
# figures are not a scaling measurement (it then only shows that the script runs); with a single load core it warns
# that the load may be the bottleneck.
# Needs nginx, wrk, node, taskset and curl (NOT RUN, exit 3, naming what is missing). Ports 127.0.0.1:18097 (its own mock) and 18098
# (the gateway), used by no other load script, so a compare.sh or ab-pinned.sh running beside it cannot answer for it.
# Usage: bash bench/scaling.sh   env: WORKERS="1 2 4 8" DURATION=10s WARMUP=2s ROUNDS=1 CONNS=256
#        LOAD_CPUS=<list for wrk and the mock, default the cores after the largest W> MOCK_PROCS=<nginx workers>
source "$(dirname "$0")/lib.sh"
require scaling nginx wrk node taskset curl
WORKERS=${WORKERS:-"1 2 4 8"}; DURATION=${DURATION:-10s}; WARMUP=${WARMUP:-2s}; ROUNDS=${ROUNDS:-1}; CONNS=${CONNS:-256}
PORT=18098
MOCK_PORT=18097
export UPSTREAM=127.0.0.1:$MOCK_PORT
ncpu=$(nproc)
maxw=0; for w in $WORKERS; do [ "$w" -gt "$maxw" ] && maxw=$w; done
# shared: the load runs on a core the gateway also uses; cramped: the load has a single core of its own.
shared=0; cramped=0
if [ -z "${LOAD_CPUS:-}" ]; then
  if [ $((maxw + 2)) -le "$ncpu" ]; then LOAD_CPUS="$maxw-$((ncpu - 1))"
  elif [ $((maxw + 1)) -eq "$ncpu" ]; then LOAD_CPUS=$maxw; cramped=1
  else LOAD_CPUS=$((ncpu - 1)); shared=1; fi
fi
if [ "$maxw" -gt "$ncpu" ]; then
  echo "NOT RUN: scaling needs at least $maxw cores for workers = $maxw (this machine has $ncpu): set WORKERS"
  exit "$NOT_RUN_EXIT"
fi
nload=$(taskset -c "$LOAD_CPUS" nproc)
wrk_threads=$(( nload > 1 ? nload / 2 : 1 ))
MOCK_PROCS=${MOCK_PROCS:-$(( nload > 1 ? nload - wrk_threads : 1 ))}
echo "machine: $ncpu cores; gateway on cores 0..W-1; wrk ($wrk_threads threads, $CONNS connections) and the mock ($MOCK_PROCS nginx workers) on cores $LOAD_CPUS"
if [ "$shared" = 1 ]; then
  echo "WARNING: $ncpu cores cannot give the gateway (up to $maxw) and the load their own cores: the load shares core $LOAD_CPUS with the gateway. The figures below only show the script runs; they are not a scaling measurement."
elif [ "$cramped" = 1 ]; then
  echo "WARNING: wrk and the mock share one core ($LOAD_CPUS): they may be the bottleneck, so the ratios can understate the gateway's scaling."
fi

mint_key
# The canned nginx provider with as many workers as the load cores allow (the stock config has one, which would cap
# eight gateway workers).
for p in "$MOCK_PORT" "$PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "FAILED: 127.0.0.1:$p is already in use (another scaling.sh?)"; exit 1; fi
done
sed -e "s/^worker_processes .*/worker_processes $MOCK_PROCS;/" -e "s/listen 127.0.0.1:18080;/listen 127.0.0.1:$MOCK_PORT;/" "$load/upstream.nginx.conf" > "$work/upstream.nginx.conf"
taskset -c "$LOAD_CPUS" nginx -c "$work/upstream.nginx.conf" -p "$work" -g "pid $work/up.pid; error_log $work/up.err;" & mock_pid=$!; pids+=($mock_pid)
wait_port "$MOCK_PORT" "the nginx mock provider"
kill -0 "$mock_pid" 2>/dev/null || { echo "FAILED: the nginx mock exited:"; cat "$work/up.err"; exit 1; }

# wrk against the gateway: "req/s p50 p99 non2xx".
load_run() { AUTH="Bearer $token" taskset -c "$LOAD_CPUS" wrk -t"$wrk_threads" -c"$CONNS" -d"$1" --latency -s "$load/post.lua" "http://127.0.0.1:$PORT/v1/chat/completions" 2>&1 |
  awk '/Requests\/sec/{r=$2} / 50%/{p50=$2} / 99%/{p99=$2} /Non-2xx/{bad=$NF} END{printf "%s %s %s %s\n", r+0, p50, p99, bad+0}'; }

# One gateway run with W workers on cores 0..W-1; sets m_rps m_p50 m_p99 m_bad m_cpu (run in this shell, not a
# subshell, so the gateway is in $pids and a failure here still stops it).
measure() {
  local w=$1 log metrics got c0 c1 t0 t1
  AI_WORKERS=$w start_gateway "gw-w$w" "$PORT" "byo_rate_limit_rps = 0" taskset -c "0-$((w - 1))"
  log="$work/gw-w$w.log"
  for _ in $(seq 50); do grep -q '"msg":"listening"' "$log" && break; sleep 0.1; done
  metrics=$(grep -m1 '"msg":"listening"' "$log" | sed -n 's/.*"metrics_addr":"\([^"]*\)".*/\1/p')
  got=$(curl -s "http://$metrics/metrics" | awk '$1=="ai_workers"{print $2}')
  if [ "$got" != "$w" ]; then
    echo "FAILED: the gateway started with AI_WORKERS=$w reports ai_workers=${got:-<none>} (a gateway without workers?); log tail:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
  load_run "$WARMUP" >/dev/null
  c0=$(cpu_ticks "$gateway_pid"); t0=$(date +%s%N)
  read -r m_rps m_p50 m_p99 m_bad < <(load_run "$DURATION")
  c1=$(cpu_ticks "$gateway_pid"); t1=$(date +%s%N)
  kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
  # CPU% of one core: ticks are 1/100 s.
  m_cpu=$(awk -v d=$((c1 - c0)) -v ns=$((t1 - t0)) 'BEGIN{printf "%.0f", d * 1e9 / ns}')
  # Its access and usage lines are not needed past this point (a long run at 8 workers writes gigabytes).
  rm -f "$log"
}

printf "%-6s %-8s %10s %10s %10s %8s %10s\n" round workers req/s p50 p99 non2xx gw-cpu%
declare -A sum bad
for r in $(seq "$ROUNDS"); do
  for w in $WORKERS; do
    measure "$w"
    printf "%-6s %-8s %10s %10s %10s %8s %10s\n" "$r" "$w" "$m_rps" "$m_p50" "$m_p99" "$m_bad" "$m_cpu"
    sum[$w]=$(awk -v a="${sum[$w]:-0}" -v b="$m_rps" 'BEGIN{print a + b}')
    bad[$w]=$(( ${bad[$w]:-0} + m_bad ))
  done
done
first=${WORKERS%% *}
for w in $WORKERS; do
  # A gateway that answered errors is fast for the wrong reason: its ratio would mislead.
  if [ "${bad[$w]}" -gt 0 ] || awk -v s="${sum[$w]}" 'BEGIN{exit !(s <= 0)}'; then
    echo "FAILED: workers = $w answered ${bad[$w]} non-2xx responses (or none at all): ratios not printed"
    exit 1
  fi
done
echo "throughput (mean req/s over $ROUNDS round(s)) and ratio to workers = $first:"
for w in $WORKERS; do
  awk -v w="$w" -v s="${sum[$w]}" -v b="${sum[$first]}" -v n="$ROUNDS" 'BEGIN{printf "  workers = %-3s %10.0f req/s  %.2fx\n", w, s / n, s / b}'
done
if [ -n "${sum[8]:-}" ] && [ "$first" = 1 ]; then
  awk -v r="$(awk -v a="${sum[8]}" -v b="${sum[1]}" 'BEGIN{print a / b}')" -v sh="$shared" 'BEGIN{printf "target 8 workers >= 6x one worker: %s (%.2fx)%s\n", (r >= 6 ? "met" : "NOT met"), r, (sh ? " [shared cores: not a measurement]" : "")}'
fi
