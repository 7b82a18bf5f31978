#!/usr/bin/env bash
# What the read-side tests (tests/read/) and bench/query.py need beyond
# Garage: DuckDB's Python package from PyPI, for the worked example of
# reading the bucket layout without logship (README "Reading the bucket
# with DuckDB"). Installed into a private venv under $LOGSHIP_CI_CACHE
# (default $HOME/.cache/logship-ci/read-venv); skipped when present, so a
# warm run takes about a second. The tests find it at the same path
# (tests/support/read.rs::duckdb_python).
set -euo pipefail

CACHE="${LOGSHIP_CI_CACHE:-$HOME/.cache/logship-ci}"
DUCKDB_VERSION="${DUCKDB_VERSION:-1.4.2}"
VENV="$CACHE/read-venv"
step() { printf '[install-read-deps] %s\n' "$*" >&2; }

mkdir -p "$CACHE"
if "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    step "duckdb $DUCKDB_VERSION present"
else
    python3 -c 'import venv, ensurepip' 2>/dev/null || {
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv
    }
    step "pip install duckdb==$DUCKDB_VERSION"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
fi
step "done"
