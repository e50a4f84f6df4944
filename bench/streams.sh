#!/usr/bin/env bash
# Concurrent SSE streams side by side, one run: N clients each hold a stream of 20 events (50 ms apart) from the same
# mock (bench/load/stream-mock.ts), directly | through nginx | through the thinnest Bun proxy | through beyond-ai from
# this checkout with a managed key. A perfect relay finishes in about the direct time and loses no event.
# Prints completion time, lost events, failed streams and each proxy's peak RSS; a proxy that lost events or failed
# streams is reported as FAILED and the script exits 1. (bench/streams.ts measures the gateway alone in more detail:
# stalls, CPU, descriptors, memory per stream.)
# Needs nginx and node (NOT RUN, exit 3, naming what is missing). Everything runs on 127.0.0.1:18090-18096.
# Usage: bash bench/streams.sh   env: N=2000 (each stream costs a proxy two file descriptors: keep N under half of
# `ulimit -n`, or the run measures the limit, not the proxy)
source "$(dirname "$0")/lib.sh"
require streams nginx node
N=${N:-2000}
mint_key
PORT=18090 "$bun" "$load/stream-mock.ts" >"$work/mock.log" 2>&1 & pids+=($!)
wait_port 18090 "the SSE mock"
sed 's/127.0.0.1:18080/127.0.0.1:18090/; s/listen 127.0.0.1:18081/listen 127.0.0.1:18094/' "$load/proxy.nginx.conf" > "$work/ngx.conf"
nginx -c "$work/ngx.conf" -p "$work" -g "pid $work/px.pid; error_log $work/px.err;" & pids+=($!)
wait_port 18094 "the nginx proxy"
start_thin_proxy 18093 http://127.0.0.1:18090
UPSTREAM=127.0.0.1:18090 start_gateway gw 18095 ""
peak() { local pid=$1 m=0 r; while kill -0 "$pid" 2>/dev/null; do r=$(ps -o rss= -p "$2" 2>/dev/null || echo 0); [ "${r:-0}" -gt "$m" ] && m=$r; sleep 0.2; done; echo $((m/1024)); }
printf "%-9s %8s %8s %8s %10s\n" path ms lost failed peakMiB
failed=()
for t in direct:18090: nginx:18094: thinbun:18093:$thin_pid gateway:18095:$gateway_pid; do
  IFS=: read -r name port pp <<<"$t"; auth="Bearer sk-byo"; [ "$name" = gateway ] && auth="Bearer $token"
  AUTH="$auth" node "$load/stream-clients.mjs" "http://127.0.0.1:$port/v1/chat/completions" "$N" > "$work/out.json" & cp=$!
  mem=0; [ -n "$pp" ] && mem=$(peak $cp "$pp")
  wait $cp || true
  line=$(node -e 'const r=require(process.argv[1]); console.log([process.argv[2].padEnd(9), String(r.ms).padStart(8), String(r.expected-r.events).padStart(8), String(r.failed).padStart(8), String(process.argv[3]).padStart(10)].join(" "))' "$work/out.json" "$name" "$mem")
  echo "$line"
  read -r _ _ lost nfail _ <<<"$line"
  if [ "$lost" != 0 ] || [ "$nfail" != 0 ]; then failed+=("$name: $lost events lost, $nfail streams failed"); fi
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all $N streams complete on every path, no event lost"
