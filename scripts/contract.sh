#!/usr/bin/env bash
# The API contract, checked (issue 19):
#   1. openapi/openapi.json passes openapi-spec-validator and Spectral's spectral:oas with no
#      warning;
#   2. schemathesis (all checks, fixed seed, bounded budget) against a gateway started on a free
#      port in its zero-configuration mode (embedded sandbox, demo key): any failure fails;
#   3. Swagger UI in Chromium (scripts/contract/swagger-ui.mjs): authorize with the demo key,
#      Try it out -> Execute on every operation as prefilled, each answer a 2xx.
# Tools are installed pinned (scripts/contract/requirements.txt, package-lock.json) into
# $CONTRACT_TOOLS (default: $TMPDIR/gateway-contract-tools), once per version set; Chromium is
# Debian's (apt-get install chromium when missing).
#
#   scripts/contract.sh            all three
#   scripts/contract.sh static     only 1
#   SCREENSHOTS=docs scripts/contract.sh ui   3, writing the README's screenshots into docs/
#
# Environment: CONTRACT_SEED (42), CONTRACT_MAX_EXAMPLES (per operation and phase, 8).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
tools="${CONTRACT_TOOLS:-${TMPDIR:-/tmp}/gateway-contract-tools}"
here=scripts/contract
mkdir -p "$tools"

apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install_tools() {
  local stamp
  stamp="$(cat "$here/requirements.txt" "$here/package-lock.json" | sha256sum | cut -c1-16)"
  if [ -f "$tools/.stamp" ] && [ "$(cat "$tools/.stamp")" = "$stamp" ]; then
    return
  fi
  echo "== contract: installing pinned tools into $tools"
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then apt_install python3-venv; fi
  if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
  rm -rf "$tools/venv" "$tools/node"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  mkdir -p "$tools/node"
  cp "$here/package.json" "$here/package-lock.json" "$tools/node/"
  (cd "$tools/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$stamp" >"$tools/.stamp"
}

static_checks() {
  echo "== contract: openapi-spec-validator openapi/openapi.json"
  "$tools/venv/bin/openapi-spec-validator" openapi/openapi.json
  echo "== contract: spectral lint (spectral:oas, failing on warnings)"
  "$tools/node/node_modules/.bin/spectral" lint --quiet --fail-severity warn \
    -r "$here/.spectral.yaml" openapi/openapi.json
}

gateway_pid=""
stop_gateway() {
  if [ -n "$gateway_pid" ]; then
    kill "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
    gateway_pid=""
  fi
}

# Starts the zero-configuration gateway on a free port; sets $base.
start_gateway() {
  local bin="${CARGO_TARGET_DIR:-target}/debug/gateway"
  cargo build -q -p gateway --bin gateway
  local log="$tools/gateway.log"
  GATEWAY_LOG__ACCESS_LOG=false LOG_FORMAT=text "$bin" --bind 127.0.0.1:0 >"$log" 2>&1 &
  gateway_pid=$!
  trap stop_gateway EXIT
  base=""
  for _ in $(seq 1 100); do
    base="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n1 | sed 's/listening on //' || true)"
    if [ -n "$base" ]; then break; fi
    if ! kill -0 "$gateway_pid" 2>/dev/null; then cat "$log" >&2; exit 1; fi
    sleep 0.1
  done
  if [ -z "$base" ]; then echo "contract: the gateway did not start" >&2; cat "$log" >&2; exit 1; fi
  echo "== contract: gateway (embedded sandbox) at $base"
}

demo_key() {
  grep -o 'demo API key "[^"]*"' "$tools/gateway.log" | head -n1 | sed 's/demo API key "\(.*\)"/\1/'
}

fuzz() {
  echo "== contract: schemathesis (all checks, seed ${CONTRACT_SEED:-42}) against $base/openapi.json"
  SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$here" "$tools/venv/bin/schemathesis" \
    --config-file "$here/schemathesis.toml" run \
    "$base/openapi.json" \
    --checks all \
    --seed "${CONTRACT_SEED:-42}" \
    --max-examples "${CONTRACT_MAX_EXAMPLES:-8}" \
    --request-timeout 10 \
    --no-color \
    -H "Authorization: Bearer $(demo_key)"
}

swagger_ui() {
  if ! [ -x /usr/bin/chromium ]; then
    echo "== contract: apt-get install chromium"
    apt_install chromium
  fi
  echo "== contract: Swagger UI in Chromium (every operation, Try it out -> Execute)"
  CONTRACT_NODE="$tools/node" node "$here/swagger-ui.mjs" "$base" "$(demo_key)" "${SCREENSHOTS:-}"
}

install_tools
case "$what" in
  static) static_checks ;;
  fuzz) start_gateway; fuzz ;;
  ui) start_gateway; swagger_ui ;;
  all) static_checks; start_gateway; fuzz; swagger_ui ;;
  *) echo "usage: scripts/contract.sh [all|static|fuzz|ui]" >&2; exit 2 ;;
esac
stop_gateway
echo "== contract: passed"
