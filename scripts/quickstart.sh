#!/bin/sh
# Install gflow into ./.venv, start the daemon, submit a demo job and show the queue.
set -eu
cd "$(dirname "$0")/.."
. scripts/venv.sh
"$VENV/bin/pip" install -q -e .
export PATH="$PWD/.venv/bin:$PATH"
gflowd start
gbatch --name demo bash -c 'echo "hello from job $GFLOW_JOB_ID"; sleep 5'
gqueue
echo
echo "gflow is running. Put it on your PATH with:  export PATH=\"$PWD/.venv/bin:\$PATH\""
