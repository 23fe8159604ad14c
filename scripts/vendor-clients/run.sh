#!/usr/bin/env bash
# issue 14: the vendors' published client libraries against the sandbox, with only the base URL
# changed: Okra's Node client (npm okra-node@0.2.0), Mono's Node client (npm mono-node@1.0.3),
# Okra's Python client (okra-py-official==1.1) and Dojah's two Python clients (dojahcore==0.0.5, dojah-python-sdk==4.0.0), one call of each
# kind of transactions call. Installs them into a throwaway directory (npm and pip reach their
# registries), starts the sandbox on a free port, runs both checks, stops the sandbox.
# Needs: cargo, node >= 18 with npm, python3 with venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
sandbox_pid=""
cleanup() {
  if [ -n "$sandbox_pid" ]; then kill "$sandbox_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== vendor clients: installing into $work"
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent okra-node@0.2.0 mono-node@1.0.3)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet okra-py-official==1.1 dojahcore==0.0.5 dojah-python-sdk==4.0.0

echo "== vendor clients: starting the sandbox"
(cd "$root" && cargo build --quiet -p sandbox)
target="${CARGO_TARGET_DIR:-$root/target}"
"$target/debug/sandbox" --bind 127.0.0.1:0 >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/^sandbox ready on \(http:[^ ]*\).*/\1/p' "$work/sandbox.log")"
  if [ -n "$base" ]; then break; fi
  if ! kill -0 "$sandbox_pid" 2>/dev/null; then cat "$work/sandbox.log" >&2; exit 1; fi
  sleep 0.1
done
if [ -z "$base" ]; then echo "sandbox did not start" >&2; cat "$work/sandbox.log" >&2; exit 1; fi
echo "sandbox on $base"

cp "$here/okra_node_check.mjs" "$here/mono_node_check.mjs" "$work/"
(cd "$work" && node okra_node_check.mjs "$base")
(cd "$work" && node mono_node_check.mjs "$base")
"$work/venv/bin/python" "$here/python_check.py" "$base"
echo "== vendor clients: all passed"
