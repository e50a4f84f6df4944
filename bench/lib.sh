# Common setup of the load scripts (compare.sh, streams.sh, ab-pinned.sh, metering-ab.sh, profile.sh), sourced, not
# run. Everything they start listens on 127.0.0.1 (fixed ports 18080-18099: run one load script at a time) and is
# killed on exit.
# Provides: $load (bench/load: the nginx mock provider and proxy configs, post.lua, mint.mjs, the thin Bun proxy, the
# SSE mock and client), $proj (this checkout), $bun, $work (a temp dir, removed on exit), and the functions below.
# A missing tool is never skipped silently: `require` prints "NOT RUN: …" naming it and exits 3 (bench/run.ts reports
# the step as NOT RUN and fails the run).
set -euo pipefail
# Debian installs nginx in /usr/sbin, which a non-root PATH usually lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/local/sbin:/usr/sbin" ;; esac
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
load="$bench_dir/load"
proj=$(cd "$bench_dir/.." && pwd)
bun="$proj/node_modules/.bin/bun"
NOT_RUN_EXIT=3
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# require STEP TOOL...: every TOOL must be on PATH, else "NOT RUN" with the Debian packages that provide them, exit 3.
require() {
  local step=$1 t missing=() pkgs=(); shift
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 && continue
    missing+=("$t")
    case $t in nginx) pkgs+=(nginx-light) ;; cc) pkgs+=(gcc) ;; perf) pkgs+=(linux-perf) ;; taskset) pkgs+=(util-linux) ;; node) pkgs+=(nodejs) ;; *) pkgs+=("$t") ;; esac
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local names; printf -v names '%s, ' "${missing[@]}"
    echo "NOT RUN: $step needs ${names%, } (not found on PATH; Debian/Ubuntu: apt-get install ${pkgs[*]})"
    exit "$NOT_RUN_EXIT"
  fi
  if [ ! -x "$bun" ]; then
    echo "NOT RUN: $step needs $bun: run npm ci in $proj first"
    exit "$NOT_RUN_EXIT"
  fi
}

# wait_port PORT [WHAT]: wait up to 10 s for something to listen on 127.0.0.1:PORT; fail loudly otherwise.
wait_port() {
  local i
  for i in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "FAILED: ${2:-a process} did not listen on 127.0.0.1:$1 within 10 s (port taken by another run?); logs in $work:" >&2
  tail -n 5 "$work"/*.log "$work"/*.err >&2 2>/dev/null || true
  exit 1
}

# mint_key: sets $pub (a fresh Ed25519 public key, base64) and $token (a bai_v1 key for kid 1, tenant 42, VPC 7 signed
# with it), minted with node:crypto, an Ed25519 implementation independent of the gateway's.
mint_key() { read -r pub token < <(node "$load/mint.mjs"); }

# start_mock [pin command...]: the canned nginx provider (OpenAI and Anthropic JSON and SSE) on 127.0.0.1:18080.
start_mock() {
  "$@" nginx -c "$load/upstream.nginx.conf" -p "$work" -g "pid $work/up.pid; error_log $work/up.err;" & pids+=($!)
  wait_port 18080 "the nginx mock provider"
}

# start_nginx_proxy: nginx proxy_pass (upstream keep-alive, no buffering), the C floor, on 127.0.0.1:18081 → 18080.
start_nginx_proxy() {
  nginx -c "$load/proxy.nginx.conf" -p "$work" -g "pid $work/px.pid; error_log $work/px.err;" & pids+=($!)
  wait_port 18081 "the nginx proxy"
}

# start_thin_proxy PORT UPSTREAM_URL: the thinnest Bun proxy (Bun.serve + fetch, no logic).
start_thin_proxy() {
  PORT=$1 UP=$2 "$bun" "$load/thin-bun-proxy.ts" >"$work/thin.log" 2>&1 & pids+=($!)
  thin_pid=$!
  wait_port "$1" "the thin Bun proxy"
}

# build_one_conn: compiles bench/load/one-conn.c (the minimal one-connection C client) to $one_conn. Needs cc.
build_one_conn() {
  one_conn="$work/one-conn"
  cc -O2 -o "$one_conn" "$load/one-conn.c"
}

# start_thin_pool PORT UPSTREAM_HOST_PORT: Bun.serve plus the gateway's pooled transport, no pipeline (the floor under
# the gateway's own work).
start_thin_pool() {
  PORT=$1 UP=$2 "$bun" "$load/thin-pool-proxy.ts" >"$work/thinpool.log" 2>&1 & pids+=($!)
  wait_port "$1" "the thin pool proxy"
}

# start_gateway NAME PORT EXTRA_TOML [pin command...]: a gateway from this checkout (bun src/main.ts) in front of the
# mock on UPSTREAM (default 127.0.0.1:18080), with signing key $pub and pool key sk-pool, plus EXTRA_TOML; bun's own
# flags (the profiler's) from $GATEWAY_BUN_FLAGS. Its output goes to $work/NAME.log, its pid to $gateway_pid.
start_gateway() {
  local name=$1 port=$2 extra=$3; shift 3
  cat > "$work/$name.toml" <<TOML
listen = "127.0.0.1:$port"
metrics_listen = "127.0.0.1:0"
upstream_tls = false
nats_url = "nats://127.0.0.1:1"
rate_limit_rps = 0
$extra
[provider_authorities]
openai = "${UPSTREAM:-127.0.0.1:18080}"
[signing_keys]
1 = "$pub"
TOML
  # AI_WORKERS=1: one worker, so a figure is per core like the single-worker nginx beside it (ignored by a gateway
  # without workers).
  (cd "$proj" && AI_WORKERS=${AI_WORKERS:-1} AI_POOL_KEY_OPENAI=sk-pool exec "$@" "$bun" ${GATEWAY_BUN_FLAGS:-} src/main.ts --config "$work/$name.toml" >"$work/$name.log" 2>&1) & gateway_pid=$!
  pids+=($gateway_pid)
  wait_port "$port" "the gateway ($name)"
}

# cpu_ticks PID: user+system CPU of the process, all threads, in clock ticks (1/100 s).
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# ab_setup NAME [DEFAULT_ROUNDS]: the common start of an A/B script: its tools checked (taskset too with PIN=1), a
# managed key minted, ROUNDS (default 10) / SECS (3) / CONNS (64) set, pin_gw / pin_load filled (PIN=1: the gateways
# on CPU 0, wrk and the mock on CPU 1), the nginx mock started, and gw_pid ready for the gateways' pids.
ab_setup() {
  require "$1" nginx wrk node
  if [ "${PIN:-0}" = 1 ]; then require "$1" taskset; fi
  mint_key
  ROUNDS=${ROUNDS:-${2:-10}}; SECS=${SECS:-3}; CONNS=${CONNS:-64}
  pin_gw=(); pin_load=()
  if [ "${PIN:-0}" = 1 ]; then pin_gw=(taskset -c 0); pin_load=(taskset -c 1); fi
  start_mock "${pin_load[@]}"
  declare -gA gw_pid
}

declare -A load_model

# ab_rounds NAME_A PORT_A PID_A NAME_B PORT_B PID_B: compare.sh's managed load (wrk -t1 -c$CONNS, $SECS s a round,
# $ROUNDS rounds, AUTH Bearer $token, wrk pinned by the array pin_load if set) on two gateways, alternating so machine
# drift hits both alike (and which goes first, so a slot's own bias cancels), after a 2 s warm-up of each. Prints and
# appends to $work/rounds.txt one line per run: round, name, req/s, gateway CPU µs per request (all threads, from
# /proc), non-2xx. Fails when either answered errors.
ab_rounds() {
  local i pair c0 c1 res a="$1 $2 $3" b="$4 $5 $6" order
  ab_names=("$1" "$4")
  # The body's model each port is loaded with: load_model[PORT] when the script set one (e.g. auto).
  ab_load() { AUTH="Bearer $token" MODEL="${load_model[$1]:-gpt-4o-mini}" "${pin_load[@]}" wrk -t1 -c"$CONNS" -d"$2" -s "$load/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1; }
  ab_load "$2" 2s >/dev/null; ab_load "$5" 2s >/dev/null # warm both (JIT, pooled sockets)
  printf "%-6s %-9s %10s %13s %8s\n" round gateway req/s "cpu/req (us)" non2xx
  for i in $(seq "$ROUNDS"); do
    # Odd rounds load A first, even rounds B first: on the VMs measured here the second slot of a round ran faster.
    order=("$a" "$b"); [ $((i % 2)) = 0 ] && order=("$b" "$a")
    for pair in "${order[@]}"; do set -- $pair
      c0=$(cpu_ticks "$3"); res=$(ab_load "$2" "${SECS}s"); c1=$(cpu_ticks "$3")
      echo "$res" | awk -v r="$i" -v m="$1" -v d=$((c1 - c0)) '/requests in/{n=$1} /Requests\/sec/{s=$2} /Non-2xx/{bad=$NF} END{printf "%-6s %-9s %10s %13.1f %8d\n", r, m, s, d*10000/n, bad+0}' | tee -a "$work/rounds.txt"
    done
  done
  # A gateway that answered errors is fast for the wrong reason.
  if awk '$5 > 0 {bad=1} END{exit !bad}' "$work/rounds.txt"; then
    echo "FAILED: a gateway answered non-2xx responses; gateway log tails:"; tail -n 3 "$work"/*.log; exit 1
  fi
}

# ab_summary WHAT: from $work/rounds.txt (ab_rounds: one line per gateway per round), B/A throughput and CPU per
# request as the ratio of sums and the median of paired rounds, each labelled "WHAT throughput" / "WHAT CPU per request".
ab_summary() {
  local f=$work/rounds.txt
  ab_median() { sort -n | awk -v what="$1" '{v[NR]=$1} END{printf "%s (median of %d paired rounds): %.3f\n", what, NR, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
  # Pairs by round and name (the order within a round alternates): column 3 is req/s, column 4 CPU µs per request.
  ab_pairs() { awk -v A="${ab_names[0]}" -v B="${ab_names[1]}" -v c="$1" '$2==A{a[$1]=$c} $2==B{b[$1]=$c} END{for (r in a) {sa+=a[r]; sb+=b[r]; print b[r]/a[r] > "/dev/stderr"} printf "%.3f\n", sb/sa}' "$f"; }
  printf "%s throughput (ratio of sums): %s\n" "$1" "$(ab_pairs 3 2> "$work/pairs.txt")"
  ab_median "$1 throughput" < "$work/pairs.txt"
  printf "%s CPU per request (ratio of sums): %s\n" "$1" "$(ab_pairs 4 2> "$work/cpupairs.txt")"
  ab_median "$1 CPU per request" < "$work/cpupairs.txt"
}
