"""Never submitted twice, never lost: a daemon killed right after sbatch, a time limit
Slurm enforces, and a controller that is down."""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.helpers import wait_for
from tests.slurm.cluster import Cluster
from tests.slurm.conftest import SlurmGflow


def _record(installation: SlurmGflow, job_id: int) -> tuple[int, str]:
    conn = sqlite3.connect(installation.paths.database)
    try:
        row = conn.execute(
            "SELECT slurm_handing, slurm_job_id FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), str(row[1])


@pytest.mark.parametrize("array", [False, True], ids=["job", "array"])
def test_daemon_killed_right_after_sbatch_finds_its_job_by_mark(
    cluster: Cluster, array: bool
) -> None:
    """The daemon dies between sbatch and recording the Slurm id (its record still says
    'being handed'); restarted, it finds the job (each array task) by its mark, adopts no
    other store's job with the same job id, and never submits again: each runs once."""
    installation = SlurmGflow(cluster)
    try:
        installation.env["GFLOW_TEST_EXIT_AFTER_SBATCH"] = "1"
        installation.start()
        shape = ["-a", "1-2"] if array else []
        printed = installation.ok("gbatch", "--parsable", *shape,
                                  "sleep 2; echo once >> once-$GFLOW_JOB_ID.txt")  # fmt: skip
        first, _, last = printed.strip().partition("-")
        ids = list(range(int(first), int(last or first) + 1))
        wait_for(lambda: installation.run("gflowd", "status").returncode != 0,
                 what="the daemon to die after sbatch")  # fmt: skip
        for job_id in ids:  # handed (the mark's id: the first job's), no Slurm id recorded
            assert _record(installation, job_id) == (ids[0], "")
        submitted = installation.ours()
        assert len(submitted) == len(ids)
        # Another store's job with the same gflow id is never taken for ours.
        decoy = cluster.run(
            "sbatch", "--parsable", f"--comment=gflow:0123456789abcdef:{ids[0]}",
            "--output=/dev/null", "--wrap", "sleep 20",
        )  # fmt: skip
        assert decoy.returncode == 0, decoy.stderr
        del installation.env["GFLOW_TEST_EXIT_AFTER_SBATCH"]
        installation.start()
        jobs = [installation.wait_state(i, "Finished", timeout=40) for i in ids]
        assert sorted(j["slurm_job_id"] for j in jobs) == submitted
        assert decoy.stdout.strip() not in submitted
        assert installation.ours() == submitted  # nothing submitted twice
        for job_id in ids:
            assert (installation.workdir / f"once-{job_id}.txt").read_text() == "once\n"
            assert "found by its mark" in installation.ok("gjob", "show", str(job_id))
        cluster.run("scancel", decoy.stdout.strip())
    finally:
        installation.cleanup()


@pytest.mark.timeout(240)  # Slurm's own pace: a minute, then its ~30 s check
def test_time_limit_ends_timeout(timed_job: tuple[SlurmGflow, int]) -> None:
    """Slurm's TIMEOUT (its limit, its ~30 s check) is our Timeout, reason TimeLimit."""
    installation, job_id = timed_job
    job = installation.wait_state(job_id, "Timeout", timeout=150)
    assert job["reason"] == "TimeLimit"
    assert installation.scontrol(job["slurm_job_id"])["JobState"] == "TIMEOUT"
    assert job["finished_at"] - job["started_at"] >= 59


@pytest.mark.timeout(240)  # a dead controller takes ~9 s per failed call
def test_slurm_down_jobs_wait_unavailable_and_daemon_answers(
    cluster: Cluster, sgflow: SlurmGflow
) -> None:
    """With slurmctld down, a new job waits 'Unavailable:Slurm' while gqueue and the health
    check answer at once; once Slurm is back it runs, submitted once."""
    cluster.stop_controller()
    try:
        job_id = sgflow.submit("echo back")
        wait_for(lambda: sgflow.job(job_id)["reason"] == "Unavailable:Slurm", timeout=60,
                 what="reason Unavailable:Slurm")  # fmt: skip
        start = time.monotonic()
        sgflow.ok("gqueue")
        sgflow.ok("gflowd", "status")
        assert time.monotonic() - start < 3
    finally:
        cluster.start_controller()
    sgflow.wait_state(job_id, "Finished", timeout=90)
    assert len(sgflow.ours()) == 1
    assert "back" in sgflow.ok("gjob", "log", str(job_id))
