#!/usr/bin/env bash
# Where the gateway's time goes under compare.sh's load: one gateway from this tree under Bun's sampling profiler
# (--cpu-prof, plus its markdown summary) while wrk POSTs compare.sh's small chat completion with a managed key.
# Writes gateway.cpuprofile (open in Chrome DevTools or speedscope) and gateway.md into OUT_DIR, then prints the
# request thread's samples by pipeline phase (bench/profile-phases.ts). Sampling overstates syscalls (a sample that
# lands in a write often also carries the wake-up of the peer it woke): confirm a finding with an A/B run.
# Usage: bash bench/profile.sh   env: SECS=10 CONNS=64 OUT_DIR=./profile EXTRA_TOML="usage_metering = false" INTERVAL_US=200 MODEL=gpt-4o-mini
source "$(dirname "$0")/lib.sh"
require profile nginx wrk node
mint_key
SECS=${SECS:-10}; CONNS=${CONNS:-64}; OUT_DIR=${OUT_DIR:-$proj/profile}; INTERVAL_US=${INTERVAL_US:-200}
mkdir -p "$OUT_DIR"; OUT_DIR=$(cd "$OUT_DIR" && pwd)
start_mock
GATEWAY_BUN_FLAGS="--cpu-prof --cpu-prof-md --cpu-prof-interval=$INTERVAL_US --cpu-prof-dir=$OUT_DIR --cpu-prof-name=gateway" \
  start_gateway prof 18089 "${EXTRA_TOML:-}"
sleep 2
AUTH="Bearer $token" MODEL="${MODEL:-gpt-4o-mini}" wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$load/post.lua" "http://127.0.0.1:18089/v1/chat/completions" | grep -E "Requests/sec|Latency"
kill -TERM "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
echo "profile: $OUT_DIR/gateway.cpuprofile, summary: $OUT_DIR/gateway.md"
"$bun" "$proj/bench/profile-phases.ts" "$OUT_DIR/gateway.cpuprofile"
