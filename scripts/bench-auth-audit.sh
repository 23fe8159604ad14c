#!/usr/bin/env bash
# Figure 6 of docs/performance.md: CPU instructions per cache-hit request with the audit trail
# off and written to a file, counted by callgrind (repeatable on shared or PMU-less machines,
# unlike wall-clock timings).
#
# Needs valgrind, curl and python3. Each case runs the release gateway (embedded sandbox, one
# worker) under callgrind twice, with N1 and N2 sequential requests for the same 50-transaction
# page on one keep-alive connection; (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one request,
# start-up and the first (cold) read cancelled out. The count includes every thread, so the
# audit writer's work is in it.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-200}
N2=${N2:-5200}
for tool in valgrind curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
cargo build --release -q -p gateway
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/drive.py" <<'PY'
import http.client, json, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.5)
c.request("GET", "/openapi.json"); spec = json.loads(c.getresponse().read())
params = spec["paths"]["/v1/accounts/{account_id}/transactions"]["get"]["parameters"]
account = next(p["example"] for p in params if p["name"] == "account_id")
path = f"/v1/accounts/{account}/transactions?limit=50"
headers = {"Authorization": "Bearer demo-key-sandbox-only"}
# The first read fills the cache; its answer may come early, the fill going on: read until the
# page is a hit (its snapshot whole), so no run counts a fill the other does not.
for _ in range(200):
    c.request("GET", path, headers=headers); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
    if r.getheader("x-cache") == "hit":
        break
    time.sleep(0.05)
else:
    sys.exit("the page never became a cache hit")
for _ in range(n):
    c.request("GET", path, headers=headers); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY

# instructions NAME N ENV...: total instructions of a run serving N cache hits.
instructions() {
  local name=$1 n=$2; shift 2
  local port=$((18600 + RANDOM % 300))
  env "$@" GATEWAY_SERVER__WORKERS=1 GATEWAY_RATE_LIMITS__REQUESTS_PER_MINUTE=1000000000 \
    GATEWAY_RATE_LIMITS__BURST=1000000000 RUST_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$work/$name-$n.out" \
    "${CARGO_TARGET_DIR:-target}/release/gateway" --bind "127.0.0.1:$port" >/dev/null 2>"$work/$name-$n.err" &
  local pid=$!
  python3 "$work/drive.py" "$port" "$n"
  kill -INT "$pid"; wait "$pid" || true
  sed -n 's/.*Collected : //p' "$work/$name-$n.err"
}

for case in "audit off:GATEWAY_AUDIT__ENABLED=false" "audit to a file:GATEWAY_AUDIT__PATH=$work/audit.jsonl"; do
  name=${case%%:*}; setting=${case#*:}
  a=$(instructions x "$N1" "$setting"); b=$(instructions y "$N2" "$setting")
  echo "$name: $(( (b - a) / (N2 - N1) )) instructions per cache-hit request"
done
