"""Never submitted twice, never lost: a daemon killed right after sbatch, a time limit
Slurm enforces, and a controller that is down."""

from __future__ import annotations

import sqlite3
import time

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


def test_daemon_killed_right_after_sbatch_finds_its_job_by_mark(cluster: Cluster) -> None:
    """The daemon dies between sbatch and recording the Slurm id (its record still says
    'being handed'); restarted, it finds the job by its mark, adopts no other store's job
    with the same job id, and never submits it again: the command runs once."""
    installation = SlurmGflow(cluster)
    try:
        installation.env["GFLOW_TEST_EXIT_AFTER_SBATCH"] = "1"
        installation.start()
        job_id = installation.submit("sleep 2; echo once >> once.txt")
        wait_for(lambda: installation.run("gflowd", "status").returncode != 0,
                 what="the daemon to die after sbatch")  # fmt: skip
        assert _record(installation, job_id) == (job_id, "")  # handed, id not recorded
        submitted = installation.ours()
        assert len(submitted) == 1
        # Another store's job with the same gflow id is never taken for ours.
        decoy = cluster.run(
            "sbatch", "--parsable", f"--comment=gflow:0123456789abcdef:{job_id}",
            "--wrap", "sleep 20",
        )  # fmt: skip
        assert decoy.returncode == 0, decoy.stderr
        del installation.env["GFLOW_TEST_EXIT_AFTER_SBATCH"]
        installation.start()
        job = installation.wait_state(job_id, "Finished", timeout=40)
        assert job["slurm_job_id"] == submitted[0] != decoy.stdout.strip()
        assert installation.ours() == submitted  # nothing submitted twice
        assert (installation.workdir / "once.txt").read_text() == "once\n"
        assert "found by its mark" in installation.ok("gjob", "show", str(job_id))
        cluster.run("scancel", decoy.stdout.strip())
    finally:
        installation.cleanup()


def test_time_limit_ends_timeout(timed_job: tuple[SlurmGflow, int]) -> None:
    """Slurm's TIMEOUT (its limit, its ~30 s check) is our Timeout, reason TimeLimit."""
    installation, job_id = timed_job
    job = installation.wait_state(job_id, "Timeout", timeout=150)
    assert job["reason"] == "TimeLimit"
    assert installation.scontrol(job["slurm_job_id"])["JobState"] == "TIMEOUT"
    assert job["finished_at"] - job["started_at"] >= 59


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
