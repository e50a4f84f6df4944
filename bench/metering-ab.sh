#!/usr/bin/env bash
# What metering costs, measured directly: the same managed request through two gateways from this tree, one metering
# (the default) and one with usage_metering = false, in alternating rounds of compare.sh's load (wrk -t1, POST of a
# small chat completion to the same canned nginx mock). Alternation spreads machine drift over both. PIN=1 puts the
# gateways on CPU 0 and wrk plus the mock on CPU 1, which steadies the figures on a busy 2-core box.
# Prints each round (req/s and the gateway's CPU µs per request, all threads, from /proc), then metering-on/off
# throughput as the ratio of sums and the median of paired rounds, and the CPU per request the same two ways. When the
# gateway is CPU-bound, CPU per request is the steadier figure on a noisy machine: throughput also moves with whatever
# else the machine runs.
# Usage: bash bench/metering-ab.sh   env: ROUNDS=10 SECS=3 CONNS=64 PIN=0
source "$(dirname "$0")/lib.sh"
ab_setup metering
start_gateway on 18087 "usage_metering = true" "${pin_gw[@]}"; gw_pid[18087]=$gateway_pid
start_gateway off 18088 "usage_metering = false" "${pin_gw[@]}"; gw_pid[18088]=$gateway_pid
sleep 2
# Off is A, on is B, so the summary's B/A reads metering on/off.
ab_rounds off 18088 "${gw_pid[18088]}" on 18087 "${gw_pid[18087]}"
lines=$(grep -c '"target":"ai.usage"' "$work/on.log" || true); off_lines=$(grep -c '"target":"ai.usage"' "$work/off.log" || true)
echo "ai.usage lines written: metering on $lines, metering off $off_lines"
# The A/B is meaningless unless the "on" gateway metered and the "off" one did not.
if [ "$lines" -eq 0 ] || [ "$off_lines" -ne 0 ]; then
  echo "FAILED: expected ai.usage lines from the metering gateway only (on: $lines, off: $off_lines); gateway log tails:"
  tail -n 3 "$work/on.log" "$work/off.log"
  exit 1
fi
ab_summary "metering on/off"
