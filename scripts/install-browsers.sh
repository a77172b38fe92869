#!/bin/sh
# Debian's chromium and firefox-esr for the dashboard's browser tests (tests/browser/):
# playwright drives /usr/bin/chromium, and tests/browser/bidi.py drives firefox-esr over
# WebDriver BiDi: no browser download. Installed only when running as root and missing;
# otherwise nothing happens and the browser tests skip, saying why.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
[ -x /usr/bin/firefox-esr ] || missing="$missing firefox-esr"
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browsers: not root; the browser tests will skip (apt-get install$missing)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browsers: no apt-get; the browser tests will skip" >&2
    exit 0
fi
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
