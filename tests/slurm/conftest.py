"""A one-node Slurm cluster for the whole session (tests/slurm/cluster.py), and for each
test its own gflow daemon with `executor = "slurm"` pointed at it. Where a cluster cannot
start here (Slurm not installed, not root), every test here skips and says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Gflow
from tests.slurm.cluster import Cluster, why_not

SLURM_CONFIG = '[daemon]\nexecutor = "slurm"\n'


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    reason = why_not()
    if reason:
        print(f"\nSlurm tests skipped: {reason}")
        pytest.skip(reason)
    made = Cluster()
    try:
        made.start()
    except (RuntimeError, OSError) as exc:
        made.stop()
        print(f"\nSlurm tests skipped: the cluster did not start: {exc}")
        pytest.skip(f"the Slurm cluster did not start: {exc}")
    try:
        yield made
    finally:
        made.stop()


class SlurmGflow(Gflow):
    """A gflow installation whose daemon hands its jobs to `cluster`."""

    def __init__(self, cluster: Cluster, config: str = "") -> None:
        super().__init__(config=SLURM_CONFIG + config)
        self.cluster = cluster
        self.env["SLURM_CONF"] = str(cluster.conf)

    def ours(self) -> list[str]:
        """Slurm ids (squeue, one line per array task) of the jobs this store submitted."""
        done = self.cluster.run("squeue", "-h", "-r", "-t", "all", "-o", "%i|%k")
        store_id = self.store_id()
        return sorted(
            line.split("|")[0]
            for line in done.stdout.splitlines()
            if line.split("|", 1)[1].startswith(f"gflow:{store_id}:")
        )

    def store_id(self) -> str:
        import sqlite3

        conn = sqlite3.connect(self.paths.database)
        try:
            row = conn.execute("SELECT value FROM settings WHERE key = 'store_id'").fetchone()
        finally:
            conn.close()
        return str(row[0])

    def scontrol(self, slurm_id: str) -> dict[str, str]:
        done = self.cluster.run("scontrol", "show", "job", "-o", slurm_id)
        assert done.returncode == 0, done.stderr
        fields = {}
        for word in done.stdout.split():
            key, _, value = word.partition("=")
            fields.setdefault(key, value)
        return fields

    def cleanup(self) -> None:
        ids = self.ours() if self.paths.database.exists() else []
        if ids:
            self.cluster.run("scancel", *{i.split("_")[0] for i in ids})
        super().cleanup()


@pytest.fixture
def sgflow(cluster: Cluster) -> Iterator[SlurmGflow]:
    installation = SlurmGflow(cluster)
    try:
        installation.start()
        yield installation
    finally:
        installation.cleanup()


@pytest.fixture(scope="session")
def timed_job(cluster: Cluster) -> Iterator[tuple[SlurmGflow, int]]:
    """A job past its time limit, submitted first thing: Slurm enforces limits in whole
    minutes and looks only every ~30 s, so it ends TIMEOUT 60-90 s later, while the other
    tests run (test_slurm_recovery.py checks the end)."""
    installation = SlurmGflow(cluster)
    try:
        installation.start()
        job_id = installation.submit("-t", "0:30", "sleep 300")
        yield installation, job_id
    finally:
        installation.cleanup()
