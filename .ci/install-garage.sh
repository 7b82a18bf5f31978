#!/usr/bin/env bash
# Install the Garage S3 server used by the tests/ship/ integration tests.
#
# Garage is AGPL: it is only ever run as a separate process, never linked.
# It is built from crates.io (the only registry reachable here), with a low
# optimisation level to keep the ~5 min build short on 2 cores, into a cache
# directory that survives between runs. Does nothing if already installed.
#
# Usage:   bash .ci/install-garage.sh [ROOT]
#   ROOT defaults to $LOGSHIP_CI_CACHE/garage, where LOGSHIP_CI_CACHE defaults
#   to $HOME/.cache/logship-ci. The binary ends up at ROOT/bin/garage, which is
#   where the tests look unless LOGSHIP_GARAGE points elsewhere.
set -euo pipefail

GARAGE_VERSION="2.5.0"
ROOT="${1:-${LOGSHIP_CI_CACHE:-$HOME/.cache/logship-ci}/garage}"
BIN="$ROOT/bin/garage"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -qF "$GARAGE_VERSION"; then
    echo "garage $GARAGE_VERSION already installed at $BIN"
    exit 0
fi

echo "installing garage $GARAGE_VERSION into $ROOT (takes several minutes)"
CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" \
    cargo install "garage@$GARAGE_VERSION" --locked \
        --no-default-features --features bundled-libs,sqlite \
        --root "$ROOT"
"$BIN" --version
