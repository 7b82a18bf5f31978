#!/usr/bin/env bash
# Test dependencies of the alert engine (tests/alert/): a real
# redis-server, Python aiosmtpd for the SMTP sink, openssl for its test CA.
# Idempotent: checks first, installs only what is missing, so it is quick
# when all is present.
set -euo pipefail

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=""
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    missing="redis-server"
fi
# openssl makes the throwaway CA for the STARTTLS test.
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ]; then
    echo "install-alert-deps: installing$missing (apt-get)"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
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
