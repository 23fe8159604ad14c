#!/usr/bin/env bash
# Figure 1 of docs/performance.md: cache-hit throughput and latency of a 50-transaction page,
# next to a minimal actix-web server returning the same bytes, in the same run.
#
# Needs wrk and taskset (Debian: apt-get install wrk util-linux). Servers run on core 0, wrk on
# core 1, one worker each, loopback only; every run is bounded by DURATION. Each run also prints
# the server's CPU time per request (user + system, from /proc).
#
# REDIS_URL=redis://127.0.0.1:6379 adds a third server: the gateway with [redis] configured
# (client quotas in Redis, snapshots behind the local tier), measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
GW_PORT=${GW_PORT:-18480}
STATIC_PORT=${STATIC_PORT:-18481}
GW_REDIS_PORT=${GW_REDIS_PORT:-18482}
REDIS_URL=${REDIS_URL:-}
KEY=demo-key-sandbox-only

for tool in wrk taskset curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

cargo build --release -q -p gateway -p bench
work=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT

# One client key hammers the gateway: lift its inbound quota, or wrk would measure 429s.
GATEWAY_SERVER__WORKERS=1 GATEWAY_RATE_LIMITS__REQUESTS_PER_MINUTE=1000000000 \
  GATEWAY_RATE_LIMITS__BURST=1000000000 RUST_LOG=warn GATEWAY_AUDIT__PATH=/dev/null \
  taskset -c 0 target/release/gateway --bind "127.0.0.1:$GW_PORT" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && break; sleep 0.1; done

# A real sandbox account: the example Swagger UI is prefilled with.
account=$(curl -sf "http://127.0.0.1:$GW_PORT/openapi.json" | python3 -c '
import json, sys
spec = json.load(sys.stdin)
params = spec["paths"]["/v1/accounts/{account_id}/transactions"]["get"]["parameters"]
print(next(p["example"] for p in params if p["name"] == "account_id"))')
url="http://127.0.0.1:$GW_PORT/v1/accounts/$account/transactions?limit=50"
curl -sf -H "Authorization: Bearer $KEY" "$url" -o "$work/page.json"   # warms the cache
echo "page: $(wc -c < "$work/page.json") bytes, $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$work/page.json") transactions"

taskset -c 0 target/release/static-server --bind "127.0.0.1:$STATIC_PORT" --file "$work/page.json" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$STATIC_PORT/" >/dev/null && break; sleep 0.1; done

static_pid=${pids[-1]}
gw_pid=${pids[0]}

if [ -n "$REDIS_URL" ]; then
  GATEWAY_SERVER__WORKERS=1 GATEWAY_RATE_LIMITS__REQUESTS_PER_MINUTE=1000000000 \
    GATEWAY_RATE_LIMITS__BURST=1000000000 RUST_LOG=warn GATEWAY_AUDIT__PATH=/dev/null \
    GATEWAY_REDIS__URL="$REDIS_URL" GATEWAY_REDIS__KEY_PREFIX="bench-hit-$$" \
    taskset -c 0 target/release/gateway --bind "127.0.0.1:$GW_REDIS_PORT" &
  pids+=($!)
  redis_gw_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW_REDIS_PORT/healthz" >/dev/null && break; sleep 0.1; done
  # The embedded sandbox of this process has the same seed: the same account and bytes.
  redis_url_page="http://127.0.0.1:$GW_REDIS_PORT/v1/accounts/$account/transactions?limit=50"
  curl -sf -H "Authorization: Bearer $KEY" "$redis_url_page" -o /dev/null
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
  local name=$1 pid=$2; shift 2
  echo "== $name"
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  after=$(cpu_ticks "$pid")
  echo "$out" | grep -E "Requests/sec|Latency|50%|99%|requests in"
  local requests
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  python3 -c "import os,sys; t=os.sysconf('SC_CLK_TCK'); print(f'  server CPU per request: {(int(sys.argv[2]) - int(sys.argv[1])) / t / int(sys.argv[3]) * 1e6:.1f} us')" \
    "$before" "$after" "$requests"
}
run "static actix-web, same bytes" "$static_pid" "http://127.0.0.1:$STATIC_PORT/"
run "gateway cache hit" "$gw_pid" -H "Authorization: Bearer $KEY" "$url"
if [ -n "$REDIS_URL" ]; then
  run "gateway cache hit, [redis] configured" "$redis_gw_pid" -H "Authorization: Bearer $KEY" "$redis_url_page"
fi
run "static actix-web, same bytes (again)" "$static_pid" "http://127.0.0.1:$STATIC_PORT/"
run "gateway cache hit (again)" "$gw_pid" -H "Authorization: Bearer $KEY" "$url"
if [ -n "$REDIS_URL" ]; then
  run "gateway cache hit, [redis] configured (again)" "$redis_gw_pid" -H "Authorization: Bearer $KEY" "$redis_url_page"
fi
