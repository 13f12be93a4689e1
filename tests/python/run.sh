#!/usr/bin/env bash
# Runs the Python ADBC end-to-end suite (tests/python) against the real `pond` binary.
# POND_BIN selects the binary; it defaults to $CARGO_TARGET_DIR/release/pond
# (CARGO_TARGET_DIR defaults to $HOME/.cache/pond-target). The virtualenv lives in
# ${POND_VENV:-$HOME/.cache/pond-venv} and is created on first run. Extra arguments go to
# pytest, which runs from tests/python (so file arguments are relative to it), e.g.
# `tests/python/run.sh -k sandbox -x` or `tests/python/run.sh test_auth.py`.
# Exits with pytest's exit code.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export POND_BIN="${POND_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/pond-target}/release/pond}"
venv="${POND_VENV:-$HOME/.cache/pond-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Reinstall only when requirements.txt changed since the last successful install.
stamp="$venv/.pond-requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

# The collector the tracing tests export to.
"$here/install-jaeger.sh"

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
set +e
"$venv/bin/python" -m pytest -q --timeout=120 "$@"
code=$?
set -e
exit "$code"
