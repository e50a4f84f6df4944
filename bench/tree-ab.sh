#!/usr/bin/env bash
# Before/after for a change on the request path: the same managed request (compare.sh's load: wrk -t1, a small chat
# completion POSTed to the canned nginx mock) through a gateway from another checkout (A, e.g. the commit before the
# change: `git worktree add /tmp/base <rev>` plus `ln -s $PWD/node_modules /tmp/base/`) and one from this checkout (B),
# in alternating rounds so machine drift hits both alike. Prints each round (req/s and the gateway's CPU µs per request,
# all threads, from /proc), then B/A throughput and CPU per request as the ratio of sums and the median of paired
# rounds. PIN=1 puts both gateways on CPU 0 and wrk plus the mock on CPU 1. Extra TOML for both: EXTRA_TOML.
# Usage: bash bench/tree-ab.sh OTHER_CHECKOUT   env: ROUNDS=8 SECS=3 CONNS=64 PIN=0 EXTRA_TOML=
source "$(dirname "$0")/lib.sh"
other=${1:?usage: bash bench/tree-ab.sh OTHER_CHECKOUT}
other=$(cd "$other" && pwd)
ab_setup tree-ab 8
proj=$other start_gateway A 18087 "${EXTRA_TOML:-}" "${pin_gw[@]}"; gw_pid[18087]=$gateway_pid
start_gateway B 18088 "${EXTRA_TOML:-}" "${pin_gw[@]}"; gw_pid[18088]=$gateway_pid
sleep 2
ab_rounds A 18087 "${gw_pid[18087]}" B 18088 "${gw_pid[18088]}"
ab_summary B/A
