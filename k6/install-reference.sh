#!/usr/bin/env bash
# Builds arrow-go's example Flight SQL server (SQLite behind it), the reference the point-query
# load test (`k6/run.sh --point`) and `pond bench flight` measure Pond against in the same run,
# into ~/go/bin, where both look for it. Does nothing when it is already on PATH or there. A
# Go program; the Go module proxy serves it like any module.
set -euo pipefail
bin="$HOME/go/bin/sqlite_flightsql_server"
[ -x "$bin" ] && exit 0
command -v sqlite_flightsql_server >/dev/null && exit 0
command -v go >/dev/null || { echo "Go is needed to build the reference Flight SQL server" >&2; exit 1; }
mkdir -p "$HOME/.cache"
work="$(mktemp -d "$HOME/.cache/pond-reference-build.XXXXXX")"
# Go may leave read-only directories behind; a failed cleanup must not fail a good build.
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work" || true' EXIT
# Its modules and build cache live and go with the work directory: only the binary stays.
export GOMODCACHE="$work/mod" GOCACHE="$work/cache" GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
mkdir -p "$(dirname "$bin")"
GOBIN="$work/bin" go install -ldflags='-s -w' \
  github.com/apache/arrow-go/v18/arrow/flight/flightsql/example/cmd/sqlite_flightsql_server@v18.9.0 \
  2>"$work/install.log" || { cat "$work/install.log" >&2; exit 1; }
mv "$work/bin/sqlite_flightsql_server" "$bin.tmp"
mv "$bin.tmp" "$bin"
