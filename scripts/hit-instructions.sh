#!/usr/bin/env bash
# The cache-hit regression guard (issue 15): how many instructions one cache hit of the
# 50-transaction page costs, counted by valgrind's callgrind, against the committed baseline
# (docs/hit-instructions.baseline). A count, not a time: the same binary and inputs give the
# same count within a few tenths of a percent, whatever else the machine is doing.
#
#   bash scripts/hit-instructions.sh             # check: fails when a hit got > TOLERANCE % dearer
#   UPDATE=1 bash scripts/hit-instructions.sh    # write the measured figure as the new baseline
#   STATIC=1 bash scripts/hit-instructions.sh    # also count a bare actix-web server's answer
#
# The workload is `crates/bench/src/bin/hit-instructions.rs` (the gateway in-process, embedded
# sandbox, access log and audit trail on, one keep-alive client). It runs twice, with LOW and
# HIGH hits; (count(HIGH) - count(LOW)) / (HIGH - LOW) is the cost of one hit, start-up and
# warm-up cancelled out. The figure includes the client thread's few instructions, and no
# kernel time (callgrind counts user-space instructions). About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

LOW=${LOW:-200}
HIGH=${HIGH:-4200}
TOLERANCE=${TOLERANCE:-10}
BASELINE_FILE=docs/hit-instructions.baseline

command -v valgrind >/dev/null || {
  echo "hit-instructions: valgrind is required (Debian: apt-get install valgrind)" >&2
  exit 1
}
cargo build --release -q -p bench --bin hit-instructions
bin="${CARGO_TARGET_DIR:-target}/release/hit-instructions"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() {
  local hits=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$hits" --log-file="$work/vg.$hits" \
    "$bin" --hits "$hits" "$@" >"$work/out.$hits" 2>/dev/null || {
    echo "hit-instructions: the workload failed with --hits $hits" >&2
    cat "$work/out.$hits" "$work/vg.$hits" >&2
    exit 1
  }
  awk '/^summary:/ {print $2}' "$work/cg.$hits"
}

low=$(count "$LOW")
high=$(count "$HIGH")
per_hit=$(((high - low) / (HIGH - LOW)))
echo "instructions: $low with $LOW hits, $high with $HIGH hits: $per_hit per cache hit"
grep -h '^hits:' "$work/out.$HIGH"
if [ "${STATIC:-}" = 1 ]; then
  # The same bytes from a bare actix-web server in the same process: the floor.
  low=$(count "$LOW" --static)
  high=$(count "$HIGH" --static)
  floor=$(((high - low) / (HIGH - LOW)))
  echo "bare actix-web, same bytes: $floor per request; the gateway's hit:" \
    "$(python3 -c "print(f'{$per_hit / $floor:.2f}')")x"
fi

if [ "${UPDATE:-}" = 1 ]; then
  echo "$per_hit" >"$BASELINE_FILE"
  echo "baseline written: $BASELINE_FILE = $per_hit"
  exit 0
fi
baseline=$(tr -dc 0-9 <"$BASELINE_FILE")
limit=$((baseline * (100 + TOLERANCE) / 100))
echo "baseline: $baseline per hit; limit with $TOLERANCE % tolerance: $limit"
if [ "$per_hit" -gt "$limit" ]; then
  echo "hit-instructions: a cache hit costs $per_hit instructions, more than $limit" \
    "($BASELINE_FILE + $TOLERANCE %). Find the new per-request work (callgrind_annotate)," \
    "or, if it is worth its cost, say so in docs/performance.md and run UPDATE=1." >&2
  exit 1
fi
if [ "$per_hit" -lt "$((baseline * (100 - 2 * TOLERANCE) / 100))" ]; then
  echo "hit-instructions: a hit got much cheaper ($per_hit vs $baseline): record it with UPDATE=1"
fi
