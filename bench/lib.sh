# Shared setup of the paired-round load scripts (ab-pinned.sh, metering-ab.sh), sourced, not run.
# Provides: $here (../shared/bench: mock config, post.lua, mint.mjs), $proj, $bun, $work (removed on exit), $pub and
# $token (a fresh signing key and a managed key minted with it), and the functions below. Everything started is
# killed on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/../../shared/bench" 2>/dev/null && pwd) || { echo "needs ../shared/bench (the mock and mint.mjs)" >&2; exit 1; }
proj=$(cd "$(dirname "$0")/.." && pwd); bun="$proj/node_modules/.bin/bun"
for t in nginx wrk taskset; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
read -r pub token < <(node "$here/mint.mjs")

# start_mock [pin command...]: the canned nginx provider on 127.0.0.1:18080.
start_mock() {
  "$@" nginx -c "$here/upstream.nginx.conf" -p "$work" -g "pid $work/up.pid; error_log $work/up.err;" & pids+=($!)
}

# start_gateway NAME PORT EXTRA_TOML [pin command...]: a gateway from this tree with compare.sh's config plus
# EXTRA_TOML (bun's own flags, such as the profiler's, from $GATEWAY_BUN_FLAGS); its output goes to $work/NAME.log
# and its pid to $gateway_pid.
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
openai = "127.0.0.1:18080"
[signing_keys]
1 = "$pub"
TOML
  (cd "$proj" && AI_POOL_KEY_OPENAI=sk-pool exec "$@" "$bun" ${GATEWAY_BUN_FLAGS:-} src/main.ts --config "$work/$name.toml" >"$work/$name.log" 2>&1) & gateway_pid=$!
  pids+=($gateway_pid)
}

# cpu_ticks PID: user+system CPU of the process, all threads, in clock ticks (1/100 s).
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
