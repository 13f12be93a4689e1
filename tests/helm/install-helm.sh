#!/usr/bin/env bash
# Builds Helm (the chart tests' renderer and linter) once: into $HELM_BIN (default
# ~/go/bin/helm). Helm is a Go program; the Go module proxy serves it like any module.
# Does nothing when helm is already on PATH or at $HELM_BIN.
set -euo pipefail
bin="${HELM_BIN:-$HOME/go/bin/helm}"
[ -x "$bin" ] && exit 0
command -v helm >/dev/null && exit 0
command -v go >/dev/null || { echo "Go is needed to build Helm for the chart tests" >&2; exit 1; }
mkdir -p "$HOME/.cache"
work="$(mktemp -d "$HOME/.cache/pond-helm-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Its modules and build cache live and go with the work directory: only the binary stays.
export GOMODCACHE="$work/mod" GOCACHE="$work/cache" GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
mkdir -p "$(dirname "$bin")"
GOBIN="$work/bin" go install -ldflags='-s -w' helm.sh/helm/v4/cmd/helm@v4.3.2 2>"$work/install.log" \
  || { cat "$work/install.log" >&2; exit 1; }
mv "$work/bin/helm" "$bin.tmp"
mv "$bin.tmp" "$bin"
