#!/usr/bin/env bash
# What the viewer's browser test (tests/read/viewer.rs) needs on a fresh
# Debian machine:
#   /usr/bin/chromium          Debian's package (Playwright downloads no browser)
#   $CACHE/viewer-node/node_modules/playwright-core
#                              pinned by tests/viewer/package-lock.json, installed
#                              with `npm ci` into the cache, never into the repo
# Idempotent and fast when everything is present: each step checks first.
# The test finds node_modules through the same $LOGSHIP_CI_CACHE
# (default $HOME/.cache/logship-ci).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${LOGSHIP_CI_CACHE:-$HOME/.cache/logship-ci}"
NODE_DIR="$CACHE/viewer-node"
mkdir -p "$CACHE"

step() { printf '[install-viewer-deps] %s\n' "$*" >&2; }

# 1. Debian packages: chromium (the browser), nodejs + npm (the driver).
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# Chromium needs a font to render text in screenshots.
fonts="$(fc-list 2>/dev/null || true)"
[ -n "$fonts" ] || need_apt+=(fonts-dejavu-core)
if ((${#need_apt[@]})); then
    step "apt-get install ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
else
    step "chromium and node present"
fi

# 2. playwright-core, exactly as the committed lock file says. A copy of the
#    lock file written after `npm ci` succeeded marks a complete install, so
#    an interrupted install or a changed pin installs again.
if [ -d "$NODE_DIR/node_modules/playwright-core" ] \
    && cmp -s tests/viewer/package-lock.json "$NODE_DIR/installed.lock"; then
    step "playwright-core present in $NODE_DIR"
else
    step "npm ci playwright-core into $NODE_DIR"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp tests/viewer/package.json tests/viewer/package-lock.json "$NODE_DIR/"
    (cd "$NODE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts)
    cp tests/viewer/package-lock.json "$NODE_DIR/installed.lock"
fi
step "done"
