#!/usr/bin/env bash
# What this machine alone does to a tail: the same fixed slice of CPU work (no allocation, no syscalls, no I/O), timed
# 100,000 times, in C and in Bun, at two sizes near a gateway request's own CPU (~20 µs and ~90 µs). Whatever p99/p50
# and p99.9/p50 these show is the floor any server's per-request percentiles sit on here: interrupts, the hypervisor
# taking the vCPU, other tenants. Compare with bench/tail.sh's one-conn figures before blaming the gateway for a ratio.
# Usage: bash bench/machine-floor.sh   env: ROUNDS=2
source "$(dirname "$0")/lib.sh"
require machine-floor cc
ROUNDS=${ROUNDS:-2}
cc -O1 -o "$work/floor" "$load/floor.c"
# Iterations per slice, found on the 2-vCPU VM this was written on; the printed p50 says what they are here.
show() { awk -v what="$1" '{printf "%-22s p50 %7.1f us  p90 %7.1f  p99 %7.1f  p99.9 %8.1f  max %8.1f | p99/p50 %.2f  p99.9/p50 %.2f\n", what, $2, $3, $4, $5, $6, $4/$2, $5/$2}'; }
for i in $(seq "$ROUNDS"); do
  echo "round $i"
  "$work/floor" 6000 | show "C, small slice"
  "$bun" "$load/floor.ts" 11000 | show "Bun, small slice"
  "$work/floor" 27000 | show "C, large slice"
  "$bun" "$load/floor.ts" 50000 | show "Bun, large slice"
done
