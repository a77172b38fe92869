#!/bin/sh
# The Slurm tests (tests/slurm) start a one-node cluster from Debian's packages. As root,
# with sbatch missing, install them (munge comes as their dependency); otherwise do
# nothing: the tests then skip and say why. Called by scripts/test.sh.
set -eu
if command -v sbatch >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-slurm: not root (or no apt-get): the Slurm tests will skip" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
