#!/usr/bin/env bash
# Tools the ops tests (tests/ops/) need on a fresh Debian machine:
# systemd-analyze, cargo-deb, kubernetes-validate, podman + runc.
#
# Idempotent and fast when everything is present: each step checks first.
# Everything that is not a Debian package lives under $LOGSHIP_CI_CACHE
# (default $HOME/.cache/logship-ci) so later runs reuse it:
#   bin/cargo-deb           cargo-deb, built from crates.io (once: ~1-2 min on 2 cores)
#   venv/bin/kubernetes-validate   the Kubernetes schema validator from PyPI (schemas bundled)
# Tests find them through the same variable; see tests/ops/ops_support.rs.
# A warm run takes about a second.
set -euo pipefail

CACHE="${LOGSHIP_CI_CACHE:-$HOME/.cache/logship-ci}"
mkdir -p "$CACHE"
CARGO_DEB_VERSION="${CARGO_DEB_VERSION:-3.8.0}"
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"

step() { printf '[install-ops-deps] %s\n' "$*" >&2; }

# 1. Debian tools: systemd-analyze (unit verification), dpkg-deb (package
#    inspection), strip (smaller test .deb), python3-venv (for the validator). Only apt-get when missing.
need_apt=()
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
command -v strip >/dev/null || need_apt+=(binutils) # cargo-deb --strip
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
    step "apt-get install ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
else
    step "debian tools present"
fi
# podman builds and runs the container image (tests/ops/ops_container.rs);
# runc because crun refuses these machines' hybrid cgroup v1 layout.
need_ctr=()
command -v podman >/dev/null || need_ctr+=(podman)
command -v runc >/dev/null || need_ctr+=(runc)
if ((${#need_ctr[@]})); then
    step "apt-get install ${need_ctr[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_ctr[@]}"
fi

# 2. cargo-deb, pinned, into the cache (its own target dir so it does not
#    touch the project's build).
# (Versions are captured before matching: with pipefail, `cmd | grep -q`
# fails when grep exits early and cmd gets SIGPIPE.)
have_deb="$("$CACHE/bin/cargo-deb" --version 2>/dev/null || true)"
if [[ "$have_deb" == *"$CARGO_DEB_VERSION"* ]]; then
    step "cargo-deb $CARGO_DEB_VERSION present"
else
    step "cargo install cargo-deb $CARGO_DEB_VERSION (one-time, a few minutes)"
    CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" CARGO_TARGET_DIR="$CACHE/cargo-deb-target" \
        cargo install --locked --root "$CACHE" --version "$CARGO_DEB_VERSION" cargo-deb
    rm -rf "$CACHE/cargo-deb-target"
fi

# 3. kubernetes-validate in a private venv (no system site-packages touched).
have_kv="$("$CACHE/venv/bin/pip" show kubernetes-validate 2>/dev/null || true)"
if [ -x "$CACHE/venv/bin/kubernetes-validate" ] && [[ "$have_kv" == *"Version: $KUBERNETES_VALIDATE_VERSION"* ]]; then
    step "kubernetes-validate $KUBERNETES_VALIDATE_VERSION present"
else
    step "pip install kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
step "done"
