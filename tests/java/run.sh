#!/usr/bin/env bash
# Runs the JDBC end-to-end suite (tests/java) against the real `pond` binary.
# POND_BIN selects the binary; it defaults to $CARGO_TARGET_DIR/release/pond
# (CARGO_TARGET_DIR defaults to $HOME/.cache/pond-target). Exits with Maven's exit code.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export POND_BIN="${POND_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/pond-target}/release/pond}"
cd "$here"
exec mvn -B -ntp test "$@"
