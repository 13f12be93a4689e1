#!/usr/bin/env bash
# Builds a Go program the test command needs, once: tests/go-tool.sh NAME PACKAGE@VERSION [DEST]
# puts PACKAGE's binary at DEST (default ~/go/bin/NAME). Does nothing when NAME is already on
# PATH or at DEST. The Go module proxy serves these like any module. Used for Helm (the chart
# tests) and arrow-go's reference Flight SQL server (the point-query load test).
set -euo pipefail
name="$1"
package="$2"
bin="${3:-$HOME/go/bin/$name}"
[ -x "$bin" ] && exit 0
command -v "$name" >/dev/null && exit 0
command -v go >/dev/null || { echo "Go is needed to build $name" >&2; exit 1; }
mkdir -p "$HOME/.cache"
work="$(mktemp -d "$HOME/.cache/pond-go-build.XXXXXX")"
# Go may leave read-only directories behind; a failed cleanup must not fail a good build.
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work" || true' EXIT
# Its modules and build cache live and go with the work directory: only the binary stays.
export GOMODCACHE="$work/mod" GOCACHE="$work/cache" GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
mkdir -p "$(dirname "$bin")"
GOBIN="$work/bin" go install -ldflags='-s -w' "$package" 2>"$work/install.log" \
  || { cat "$work/install.log" >&2; exit 1; }
mv "$work/bin/$(basename "${package%@*}")" "$bin.tmp"
mv "$bin.tmp" "$bin"
