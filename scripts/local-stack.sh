#!/usr/bin/env bash
# The docker-compose.yml topology as local processes, for machines without a Docker engine:
# redis-server, the sandbox (both providers), three gateway replicas, nginx in front.
#
#   scripts/local-stack.sh up      build, start everything on free ports, wait until ready
#   scripts/local-stack.sh check   requests through nginx: every replica must answer
#   scripts/local-stack.sh status  what runs where
#   scripts/local-stack.sh down    stop everything it started (by pid), keep the logs
#
# Needs: cargo, redis-server, nginx (Debian: nginx-light), curl, python3.
# State (configs, logs, pids): $LOCAL_STACK_DIR (default /tmp/gateway-local-stack).
# PROFILE=release builds and runs release binaries (default: the dev profile).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${LOCAL_STACK_DIR:-/tmp/gateway-local-stack}
PROFILE=${PROFILE:-dev}
REPLICAS=3
DEMO_KEY=demo-key-sandbox-only

die() { echo "local-stack: $*" >&2; exit 1; }
log() { echo "local-stack: $*" >&2; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required ($2)"; }

# A port free now and not handed out before in this run: the ports are all chosen before any
# server binds, so the kernel may offer the same one twice (it did: a gateway's metrics port
# was the sandbox's).
free_port() {
  local port
  while :; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if ! grep -qx "$port" "$STATE"/*port 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits until $1 answers 2xx (at most $2 seconds).
wait_http() {
  local url=$1 limit=${2:-60} i
  for ((i = 0; i < limit * 10; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

bin_dir() {
  local target=${CARGO_TARGET_DIR:-target}
  if [ "$PROFILE" = release ]; then echo "$target/release"; else echo "$target/debug"; fi
}

gateway_config() { # replica port metrics_port with_redis
  local i=$1 port=$2 metrics=$3 redis=$4
  cat <<EOF
[server]
bind = "127.0.0.1:$port"
workers = 2
public_url = "http://127.0.0.1:$port"
shutdown_grace_secs = 10

[metrics]
bind = "127.0.0.1:$metrics"

[log]
format = "json"

[clients.demo]
api_key = { env = "DEMO_API_KEY" }

[providers.okra]
kind = "okra"
base_url = "http://127.0.0.1:$(cat "$STATE/sandbox.port")/v2"
secret_key = { env = "OKRA_SECRET_KEY" }
requests_per_minute = 600
burst = 60

[providers.mono]
kind = "mono"
base_url = "http://127.0.0.1:$(cat "$STATE/sandbox.port")"
secret_key = { env = "MONO_SECRET_KEY" }
app_id = { env = "MONO_APP_ID" }
requests_per_minute = 600
burst = 60

[routing]
default = "okra"
EOF
  if [ "$redis" = yes ]; then
    printf '\n[redis]\nurl = "redis://127.0.0.1:%s"\nkey_prefix = "gw"\n' "$(cat "$STATE/redis.port")"
  fi
}

start_gateway() { # replica with_redis
  local i=$1 redis=$2 port metrics
  port=$(cat "$STATE/gateway-$i.port")
  metrics=$(cat "$STATE/gateway-$i.metrics-port")
  gateway_config "$i" "$port" "$metrics" "$redis" >"$STATE/gateway-$i.toml"
  DEMO_API_KEY=$DEMO_KEY OKRA_SECRET_KEY=okra_test_secret MONO_SECRET_KEY=test_mono_secret \
    MONO_APP_ID=mono_test_app LOG_FORMAT=json \
    "$(bin_dir)/gateway" --config "$STATE/gateway-$i.toml" \
    >"$STATE/gateway-$i.log" 2>&1 </dev/null &
  echo $! >"$STATE/gateway-$i.pid"
}

nginx_config() {
  local i
  cat <<EOF
worker_processes 1;
pid $STATE/nginx.pid;
error_log $STATE/nginx-error.log;
events { worker_connections 256; }
http {
    access_log $STATE/nginx-access.log;
    client_body_temp_path $STATE/nginx-tmp/body;
    proxy_temp_path $STATE/nginx-tmp/proxy;
    fastcgi_temp_path $STATE/nginx-tmp/fastcgi;
    uwsgi_temp_path $STATE/nginx-tmp/uwsgi;
    scgi_temp_path $STATE/nginx-tmp/scgi;
    upstream gateways {
EOF
  for ((i = 1; i <= REPLICAS; i++)); do
    echo "        server 127.0.0.1:$(cat "$STATE/gateway-$i.port") max_fails=2 fail_timeout=10s;"
  done
  cat <<EOF
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$(cat "$STATE/nginx.port");
        location = /metrics { return 404; }
        location / {
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 3;
            add_header X-Upstream \$upstream_addr always;
        }
    }
}
EOF
}

up() {
  need cargo "a Rust toolchain"
  need redis-server "apt-get install redis-server"
  need nginx "apt-get install nginx-light"
  need curl "apt-get install curl"
  need python3 "apt-get install python3"
  if pid_alive "$STATE/nginx.pid" || pid_alive "$STATE/sandbox.pid"; then
    die "already up (scripts/local-stack.sh down first)"
  fi
  mkdir -p "$STATE/nginx-tmp"
  chmod 755 "$STATE" "$STATE/nginx-tmp"
  rm -f "$STATE"/*.pid

  log "building gateway and sandbox ($PROFILE)"
  if [ "$PROFILE" = release ]; then
    cargo build --release -p gateway -p sandbox >&2
  else
    cargo build -p gateway -p sandbox >&2
  fi

  free_port >"$STATE/redis.port"
  free_port >"$STATE/sandbox.port"
  free_port >"$STATE/nginx.port"
  for ((i = 1; i <= REPLICAS; i++)); do
    free_port >"$STATE/gateway-$i.port"
    free_port >"$STATE/gateway-$i.metrics-port"
  done

  redis-server --port "$(cat "$STATE/redis.port")" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize no >"$STATE/redis.log" 2>&1 </dev/null &
  echo $! >"$STATE/redis.pid"
  "$(bin_dir)/sandbox" --bind "127.0.0.1:$(cat "$STATE/sandbox.port")" --seed 42 \
    >"$STATE/sandbox.log" 2>&1 </dev/null &
  echo $! >"$STATE/sandbox.pid"
  wait_http "http://127.0.0.1:$(cat "$STATE/sandbox.port")/_sandbox/stats" 30 ||
    die "the sandbox did not start: $STATE/sandbox.log"

  # The replicas share Redis ([redis]): quotas, snapshots, cursors and jobs.
  local redis=yes
  start_gateway 1 yes
  wait_http "http://127.0.0.1:$(cat "$STATE/gateway-1.port")/healthz" 30 ||
    die "gateway-1 did not start: $STATE/gateway-1.log"
  echo "$redis" >"$STATE/redis.used"
  for ((i = 2; i <= REPLICAS; i++)); do start_gateway "$i" "$redis"; done
  for ((i = 1; i <= REPLICAS; i++)); do
    wait_http "http://127.0.0.1:$(cat "$STATE/gateway-$i.port")/readyz" 60 ||
      die "gateway-$i is not ready: $STATE/gateway-$i.log"
  done

  nginx_config >"$STATE/nginx.conf"
  nginx -c "$STATE/nginx.conf" -p "$STATE" -e "$STATE/nginx-error.log" -g 'daemon off;' \
    >"$STATE/nginx.log" 2>&1 </dev/null &
  echo $! >"$STATE/nginx.master.pid"
  wait_http "http://127.0.0.1:$(cat "$STATE/nginx.port")/healthz" 30 ||
    die "nginx did not start: $STATE/nginx-error.log"
  status
}

status() {
  local name
  for name in redis sandbox gateway-1 gateway-2 gateway-3 nginx.master; do
    if pid_alive "$STATE/$name.pid"; then
      printf '%-12s pid %-7s up\n' "$name" "$(cat "$STATE/$name.pid")"
    else
      printf '%-12s down\n' "$name"
    fi
  done
  [ -f "$STATE/nginx.port" ] || return 0
  echo "load balancer: http://127.0.0.1:$(cat "$STATE/nginx.port")  (API key $DEMO_KEY)"
  echo "sandbox:       http://127.0.0.1:$(cat "$STATE/sandbox.port")/_sandbox/accounts"
  for ((i = 1; i <= REPLICAS; i++)); do
    [ -f "$STATE/gateway-$i.port" ] &&
      echo "gateway-$i:     http://127.0.0.1:$(cat "$STATE/gateway-$i.port")  metrics http://127.0.0.1:$(cat "$STATE/gateway-$i.metrics-port")/metrics"
  done
  [ -f "$STATE/redis.used" ] && echo "shared redis:  $(cat "$STATE/redis.used") (port $(cat "$STATE/redis.port"))"
  return 0
}

check() {
  [ -f "$STATE/nginx.port" ] || die "not up"
  local lb="http://127.0.0.1:$(cat "$STATE/nginx.port")" account seen="" upstream code n
  account=$(curl -fsS "http://127.0.0.1:$(cat "$STATE/sandbox.port")/_sandbox/accounts" |
    python3 -c 'import json, sys
d = json.load(sys.stdin)
print(next(a["okra_account_id"] for c in d["customers"] for a in c["accounts"] if a["transaction_count"] > 0))')
  for ((n = 0; n < 3 * REPLICAS; n++)); do
    upstream=$(curl -sS -o "$STATE/check-body.json" -w '%{http_code} %header{x-upstream}' \
      -H "Authorization: Bearer $DEMO_KEY" "$lb/v1/accounts/$account/transactions?limit=2")
    code=${upstream%% *}
    upstream=${upstream#* }
    [ "$code" = 200 ] || die "request $n through nginx: HTTP $code ($(cat "$STATE/check-body.json"))"
    case " $seen " in *" $upstream "*) ;; *) seen="$seen $upstream" ;; esac
  done
  for ((i = 1; i <= REPLICAS; i++)); do
    case " $seen " in
      *" 127.0.0.1:$(cat "$STATE/gateway-$i.port") "*) ;;
      *) die "gateway-$i never answered through nginx (seen:$seen)" ;;
    esac
  done
  curl -fsS -o /dev/null "$lb/readyz" || die "/readyz through nginx failed"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$lb/metrics")" = 404 ] || die "nginx exposes /metrics"
  for ((i = 1; i <= REPLICAS; i++)); do
    # The whole body first: `grep -q` stopping early would fail curl's write (and pipefail).
    local metrics
    metrics=$(curl -fsS "http://127.0.0.1:$(cat "$STATE/gateway-$i.metrics-port")/metrics") ||
      die "gateway-$i: /metrics failed"
    grep -q '^gateway_build_info' <<<"$metrics" || die "gateway-$i serves no metrics"
  done
  echo "local-stack: ok: $((3 * REPLICAS)) requests through nginx, answered by every replica:$seen"
}

stop_pid() { # name signal
  local file="$STATE/$1.pid" pid n
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid" 2>/dev/null || true
    for ((n = 0; n < 150; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 (pid $pid) ignored SIG$2: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

down() {
  stop_pid nginx.master QUIT
  for ((i = 1; i <= REPLICAS; i++)); do stop_pid "gateway-$i" TERM; done
  stop_pid sandbox TERM
  stop_pid redis TERM
  rm -f "$STATE/nginx.pid"
  log "down (logs kept in $STATE)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  status) status ;;
  *) echo "usage: $0 up|check|status|down" >&2; exit 2 ;;
esac
