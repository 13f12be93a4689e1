#!/usr/bin/env bash
# Runs every test suite: formatting and lints, the Rust unit and end-to-end tests, the Python
# ADBC suite, a k6 load-test smoke run and the Java JDBC suite, all against the real `pond`
# binary on loopback.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pond-target}"
export POND_BIN="$CARGO_TARGET_DIR/release/pond"

step() { printf '\n== %s ==\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo build (release)"
cargo build --release --workspace --all-targets

step "cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets -- -D warnings

step "PostgreSQL for the catalog tests"
source tests/postgres.sh

step "Rust tests"
cargo test --release --workspace

if [ -x tests/python/run.sh ]; then
  step "Python ADBC suite"
  tests/python/run.sh
fi

step "k6 Flight SQL load test (30-second smoke, then 10 seconds of point queries)"
k6/run.sh --smoke
# The point queries' reference server; without it (no Go module proxy) they run without ratios.
tests/go-tool.sh sqlite_flightsql_server \
  github.com/apache/arrow-go/v18/arrow/flight/flightsql/example/cmd/sqlite_flightsql_server@v18.9.0 \
  || echo "the reference Flight SQL server could not be built: no ratios"
k6/run.sh --point --smoke

step "Helm chart (lint, template, Kubernetes schema validation)"
tests/helm/validate.sh

if [ -x tests/java/run.sh ]; then
  step "Java JDBC suite"
  tests/java/run.sh
fi

step "all suites passed"
