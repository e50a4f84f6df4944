#!/usr/bin/env bash
# Before/after for a change to the pipeline's own JavaScript, without sockets: the real handler of another checkout
# (A) and of this one (B), each driven in-process by bench/load/pipeline-loop.ts (stub transport, as
# bench/pipeline.bench.ts), one process per round, alternating which goes first. Prints each round's best batch in µs
# per request and B/A as the ratio of the two sides' best rounds and the median of paired rounds. Far steadier than a
# socket A/B on a shared machine (no kernel, no load generator), so it shows changes of a few percent; what it leaves
# out (Bun.serve, the transport's socket work) is the same on both sides. The other checkout needs this checkout's
# bench/load/inprocess.ts (copy it over: the loop passes SDK to its request()).
# Usage: bash bench/pipeline-ab.sh OTHER_CHECKOUT   env: ROUNDS=5 N=60000 SDK=
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
other=$(cd "${1:?usage: bash bench/pipeline-ab.sh OTHER_CHECKOUT}" && pwd)
bun="$here/node_modules/.bin/bun"
loop="$here/bench/load/pipeline-loop.ts"
ROUNDS=${ROUNDS:-5}
out=$(mktemp)
printf "%-6s %10s %10s\n" round "A us/req" "B us/req"
for i in $(seq "$ROUNDS"); do
  if [ $((i % 2)) = 1 ]; then a=$("$bun" "$loop" "$other"); b=$("$bun" "$loop" "$here")
  else b=$("$bun" "$loop" "$here"); a=$("$bun" "$loop" "$other"); fi
  printf "%-6s %10s %10s\n" "$i" "$a" "$b"
  echo "$a $b" >> "$out"
done
awk '{r[NR]=$2/$1; if (NR==1 || $1<ma) ma=$1; if (NR==1 || $2<mb) mb=$2}
  END {n=NR; for (x=1;x<=n;x++) for (y=x+1;y<=n;y++) if (r[y]<r[x]) {t=r[x]; r[x]=r[y]; r[y]=t}
    printf "B/A best rounds: %.3f (%.2f -> %.2f us)\nB/A median of %d paired rounds: %.3f\n", mb/ma, ma, mb, n, (n%2 ? r[(n+1)/2] : (r[n/2]+r[n/2+1])/2)}' "$out"
rm -f "$out"
