#!/usr/bin/env bash
# Test dependencies of the alert engine (tests/alert_*.rs): a real
# redis-server and Python aiosmtpd for the SMTP sink. Idempotent: checks
# first, installs only what is missing, so it is quick when all is present.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    echo "install-alert-deps: installing redis-server (apt-get)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server
    # The tests start their own servers; a system service is not needed.
    if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "install-alert-deps: python3 is required for the SMTP sink" >&2
    exit 1
fi

if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    echo "install-alert-deps: installing aiosmtpd (pip)"
    python3 -m pip install --quiet --disable-pip-version-check aiosmtpd \
        || python3 -m pip install --quiet --disable-pip-version-check --user aiosmtpd \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd
fi

echo "install-alert-deps: redis-server $(redis-server --version | awk '{print $3}'), aiosmtpd $(python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)')"
