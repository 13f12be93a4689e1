#!/usr/bin/env bash
# Builds Jaeger v2 (an OpenTelemetry collector with in-memory storage and a query API), the
# collector the tracing tests export to, once: into $JAEGER_BIN (default ~/go/bin/jaeger).
# Jaeger is a Go program; the Go module proxy serves it like any module (about 4 minutes to
# build on 2 cores, once per machine).
set -euo pipefail
bin="${JAEGER_BIN:-$HOME/go/bin/jaeger}"
[ -x "$bin" ] && exit 0
command -v go >/dev/null || { echo "Go is needed to build Jaeger for the tracing tests" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Its modules and build cache (about 3 GB) live and go with the work directory: only the
# binary stays.
export GOMODCACHE="$work/mod" GOCACHE="$work/cache" GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
cd "$work"
go mod init pond.test/jaeger >/dev/null 2>&1
go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@v1.75.0 2>"$work/get.log" || { cat "$work/get.log" >&2; exit 1; }
mkdir -p "$(dirname "$bin")"
go build -ldflags='-s -w' -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$bin.tmp" "$bin"
