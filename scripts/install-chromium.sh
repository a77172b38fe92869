#!/bin/sh
# Debian's chromium for the dashboard's browser tests (tests/browser/), which playwright
# drives at /usr/bin/chromium: no browser download. Installed only when running as root
# and missing; otherwise nothing happens and the browser tests skip, saying why.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: not root; the browser tests will skip (apt-get install chromium)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get; the browser tests will skip" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
