"""System mode with the Slurm executor: sbatch runs as the job's owner, so Slurm knows the
real user, and the job runs as them."""

from __future__ import annotations

from pathlib import Path

from tests.security.system import SystemGflow, Users, system, users
from tests.slurm.cluster import Cluster

__all__ = ["system", "users"]  # fixtures


def test_sbatch_runs_as_the_jobs_owner(
    cluster: Cluster, system: type[SystemGflow], users: Users
) -> None:
    """bob's job: Slurm's UserId is bob, and the command ran as bob."""
    bob = users.user("bob")
    installation = system('executor = "slurm"\n')
    installation.env["SLURM_CONF"] = str(cluster.conf)
    installation.start()
    job_id = installation.submit(bob, "python3", "-c", "import os; print('UID', os.getuid())")
    shown = installation.wait_state(job_id, timeout=40)
    assert shown["state"] == "Finished", shown
    assert f"UID {bob.uid}" in Path(shown["log_path"]).read_text()
    done = cluster.run("scontrol", "show", "job", "-o", shown["slurm_job_id"])
    assert f"UserId={bob.name}({bob.uid})" in done.stdout
