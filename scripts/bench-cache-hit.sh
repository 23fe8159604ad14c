#!/usr/bin/env bash
# Figure 1 of docs/performance.md: cache-hit throughput and latency of a 50-transaction page,
# next to, in the same run and on the same bytes: a minimal actix-web server, nginx serving the
# file, nginx's proxy_cache hit and Varnish's hit (both in front of the actix-web server).
#
# Needs wrk and taskset (Debian: apt-get install wrk util-linux); nginx and varnishd when present
# (Debian: nginx-light, varnish; skipped, and said so, when missing). Servers run on core 0, wrk
# on core 1, one worker each, no access logs, loopback only; every run is bounded by DURATION.
# Each run also prints the server's CPU time per request (user + system of all its processes,
# from /proc) and, for the gateway, its ratio to each baseline.
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
NGINX_STATIC_PORT=${NGINX_STATIC_PORT:-18483}
NGINX_CACHE_PORT=${NGINX_CACHE_PORT:-18484}
VARNISH_PORT=${VARNISH_PORT:-18485}
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

nginx_pids=""
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx-cache" "$work/nginx-tmp"
  # nginx's workers drop to an unprivileged user: let them read the page and write the cache.
  chmod 755 "$work" && chmod 644 "$work/page.json" && chmod 777 "$work/nginx-cache" "$work/nginx-tmp"
  cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx-tmp;
  proxy_temp_path $work/nginx-tmp;
  fastcgi_temp_path $work/nginx-tmp;
  uwsgi_temp_path $work/nginx-tmp;
  scgi_temp_path $work/nginx-tmp;
  proxy_cache_path $work/nginx-cache levels=1 keys_zone=hits:10m max_size=64m;
  upstream actix { server 127.0.0.1:$STATIC_PORT; keepalive 8; }
  server {
    listen 127.0.0.1:$NGINX_STATIC_PORT;
    location / { default_type application/json; root $work; try_files /page.json =404; }
  }
  server {
    listen 127.0.0.1:$NGINX_CACHE_PORT;
    location / {
      proxy_pass http://actix;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache hits;
      proxy_cache_valid 200 10m;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
NGINX
  taskset -c 0 nginx -c "$work/nginx.conf" &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NGINX_CACHE_PORT/" -o /dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$NGINX_CACHE_PORT/" -D - -o /dev/null | grep -qi "x-cache: HIT" ||
    curl -sf "http://127.0.0.1:$NGINX_CACHE_PORT/" -o /dev/null
  nginx_pids=$(pgrep -d, -f "nginx -c $work/nginx.conf" || true)
  nginx_pids="$nginx_pids,$(pgrep -d, -P "${nginx_pids%%,*}" || true)"
else
  echo "bench: nginx not installed (apt-get install nginx-light): its baselines are skipped"
fi

varnish_pids=""
if command -v varnishd >/dev/null; then
  taskset -c 0 varnishd -F -j none -n "$work/varnish" -a "127.0.0.1:$VARNISH_PORT" \
    -b "127.0.0.1:$STATIC_PORT" -s malloc,64m -p thread_pools=1 -p thread_pool_min=8 \
    >"$work/varnish.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$VARNISH_PORT/" -o /dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$VARNISH_PORT/" -o /dev/null
  # The manager and its child (the cache process, which serves the hits).
  varnish_pids="${pids[-1]},$(pgrep -d, -P "${pids[-1]}" || true)"
else
  echo "bench: varnishd not installed (apt-get install varnish): its baseline is skipped"
fi

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

# CPU ticks of a comma-separated list of pids: "user system".
cpu_ticks() {
  local user=0 system=0 pid
  for pid in ${1//,/ }; do
    [ -r "/proc/$pid/stat" ] || continue
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
    user=$((user + u))
    system=$((system + s))
  done
  echo "$user $system"
}

declare -A per_request split_of
run() {
  local name=$1 pid=$2; shift 2
  echo "== $name"
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  after=$(cpu_ticks "$pid")
  echo "$out" | grep -E "Requests/sec|Latency|50%|99%|requests in|Non-2xx"
  local requests us split
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  # Total, and its user / kernel parts (the kernel's is the socket work, about the same for
  # every server sending these bytes).
  read -r us split < <(python3 -c "
import os, sys
t = os.sysconf('SC_CLK_TCK')
(bu, bs), (au, as_), n = map(int, sys.argv[1].split()), map(int, sys.argv[2].split()), int(sys.argv[3])
per = lambda ticks: ticks / t / n * 1e6
print(f'{per(au - bu + as_ - bs):.1f} user={per(au - bu):.1f}/kernel={per(as_ - bs):.1f}')" \
    "$before" "$after" "$requests")
  echo "  server CPU per request: $us us ($split us)"
  per_request[$name]="${per_request[$name]:-} $us"
  split_of[$name]="${split_of[$name]:-} $split"
}

round() {
  run "static actix-web" "$static_pid" "http://127.0.0.1:$STATIC_PORT/"
  if [ -n "$nginx_pids" ]; then
    run "nginx static file" "$nginx_pids" "http://127.0.0.1:$NGINX_STATIC_PORT/"
    run "nginx proxy_cache hit" "$nginx_pids" "http://127.0.0.1:$NGINX_CACHE_PORT/"
  fi
  if [ -n "$varnish_pids" ]; then
    run "varnish hit" "$varnish_pids" "http://127.0.0.1:$VARNISH_PORT/"
  fi
  run "gateway cache hit" "$gw_pid" -H "Authorization: Bearer $KEY" "$url"
  if [ -n "$REDIS_URL" ]; then
    run "gateway cache hit, [redis] configured" "$redis_gw_pid" -H "Authorization: Bearer $KEY" "$redis_url_page"
  fi
}
round
round

echo "== server CPU per request (us), both rounds, and the gateway's ratio to each (best of each)"
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" $1; }
gw=$(best "${per_request[gateway cache hit]}")
for name in "static actix-web" "nginx static file" "nginx proxy_cache hit" "varnish hit" \
  "gateway cache hit" "gateway cache hit, [redis] configured"; do
  [ -n "${per_request[$name]:-}" ] || continue
  b=$(best "${per_request[$name]}")
  printf '  %-40s %-14s gateway / this: %s   (user/kernel:%s)\n' "$name" "${per_request[$name]}" \
    "$(python3 -c "print(f'{$gw / $b:.2f}')")" "${split_of[$name]}"
done
