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
    case $t in nginx) pkgs+=(nginx-light) ;; taskset) pkgs+=(util-linux) ;; node) pkgs+=(nodejs) ;; *) pkgs+=("$t") ;; esac
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
