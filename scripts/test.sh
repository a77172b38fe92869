#!/bin/sh
# Install the test dependencies into ./.venv and run every check CI runs:
# ruff (lint + format), mypy on src/, and the whole pytest suite.
set -eu
cd "$(dirname "$0")/.."
. scripts/venv.sh
"$VENV/bin/pip" install -q -e '.[test]'
export PATH="$VENV/bin:$PATH"
# The dashboard's browser tests drive Debian's chromium and firefox-esr (root only; else they skip).
sh scripts/install-browsers.sh
# Slurm for tests/slurm (root only; otherwise those tests skip and say why).
scripts/install-slurm.sh || echo "could not install Slurm: the Slurm tests will skip" >&2
ruff check src tests bench
ruff format --check src tests bench
mypy
# pytest exits 5 when it collected no tests: that is a failure, not a pass.
status=0
pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$status"
