#!/usr/bin/env bash
# Before/after for a change aimed at a lone client's tail: the same managed request through a gateway from another
# checkout (A, e.g. `git archive REV | tar -x -C /tmp/base` plus `ln -s $PWD/node_modules /tmp/base/`) and one from
# this checkout (B), one connection from one-conn (bench/load/one-conn.c), in alternating rounds. Prints each round's
# p50/p90/p99/p99.9 and, at the end, B/A for each percentile as the median of the paired rounds' ratios. Odd rounds
# run A first, even rounds B first, so a slot's own bias cancels. OTHER_CHECKOUT "." compares this checkout with
# itself, for an environment change: A_ENV and B_ENV (space-separated VAR=value) go to each gateway's environment.
# Usage: bash bench/tail-ab.sh OTHER_CHECKOUT   env: ROUNDS=8 SECS=4 EXTRA_TOML= A_ENV= B_ENV=
source "$(dirname "$0")/lib.sh"
other=${1:?usage: bash bench/tail-ab.sh OTHER_CHECKOUT}
other=$(cd "$other" && pwd)
require tail-ab nginx node cc
ROUNDS=${ROUNDS:-8}; SECS=${SECS:-4}
build_one_conn
mint_key
start_mock
# shellcheck disable=SC2086
proj=$other start_gateway A 18087 "${EXTRA_TOML:-}" env ${A_ENV:-}
# shellcheck disable=SC2086
start_gateway B 18088 "${EXTRA_TOML:-}" env ${B_ENV:-}
for p in 18087 18088; do "$one_conn" "$p" 2 "Bearer $token" >/dev/null; done
printf "%-6s %-3s %8s %7s %7s %7s %8s\n" round gw requests p50 p90 p99 p99.9
: > "$work/ab"
for i in $(seq "$ROUNDS"); do
  order=("A 18087" "B 18088"); [ $((i % 2)) = 0 ] && order=("B 18088" "A 18087")
  for g in "${order[@]}"; do
    set -- $g
    read -r n p50 p90 p99 p999 _ < <("$one_conn" "$2" "$SECS" "Bearer $token")
    printf "%-6s %-3s %8s %6sus %6sus %6sus %7sus\n" "$i" "$1" "$n" "$p50" "$p90" "$p99" "$p999"
    echo "$i $1 $p50 $p90 $p99 $p999" >> "$work/ab"
  done
done
# B/A per round, then the median over rounds, per percentile.
awk '{k=$1; if ($2=="A") {for (j=3;j<=6;j++) a[k,j]=$j} else {for (j=3;j<=6;j++) b[k,j]=$j}; r[k]=1}
  END {
    split("p50 p90 p99 p99.9", name, " ")
    n=0; for (k in r) keys[++n]=k
    for (j=3;j<=6;j++) {
      m=0; for (i=1;i<=n;i++) v[++m]=b[keys[i],j]/a[keys[i],j]
      for (x=1;x<=m;x++) for (y=x+1;y<=m;y++) if (v[y]<v[x]) {t=v[x]; v[x]=v[y]; v[y]=t}
      med = (m%2) ? v[(m+1)/2] : (v[m/2]+v[m/2+1])/2
      printf "B/A %-6s median of %d paired rounds: %.3f\n", name[j-2], m, med
    }
  }' "$work/ab"
