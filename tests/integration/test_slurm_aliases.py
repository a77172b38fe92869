"""`gflowd slurm-aliases install`: sbatch/squeue/scancel/sacct/scontrol front doors that map
onto ours and never shadow a real Slurm on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import Gflow


def test_front_doors_map_onto_gflow_and_skip_a_real_slurm(gflow: Gflow, tmp_path: Path) -> None:
    """sbatch -c/--wrap/--parsable submit; scontrol shows; scancel cancels; real squeue kept."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "squeue").write_text("#!/bin/sh\necho real squeue\n")
    (real / "squeue").chmod(0o755)
    doors = tmp_path / "doors"
    # A machine with Slurm installed (tests/slurm) has the real sbatch too: left out here.
    others = [d for d in gflow.env["PATH"].split(":") if not (Path(d) / "sbatch").exists()]
    env = {**gflow.env, "PATH": ":".join([str(real), *others])}
    said = gflow.ok("gflowd", "slurm-aliases", "install", str(doors), env=env)
    assert "squeue: skipped, a real one is on PATH" in said
    assert not (doors / "squeue").exists() and (doors / "sbatch").exists()

    def door(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(doors / args[0]), *args[1:]], env=env, cwd=gflow.workdir,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    done = door("sbatch", "--parsable", "-c1", "-J", "wrapped", "--hold", "--wrap", "sleep 5")
    assert done.returncode == 0, done.stderr
    job_id = int(done.stdout.strip())
    job = gflow.job(job_id)
    assert (job["name"], job["cpus"], job["state"]) == ("wrapped", 1, "Hold")
    assert f"{job_id}" in door("scontrol", "show", "job", str(job_id)).stdout
    assert door("scancel", str(job_id)).returncode == 0
    assert gflow.job(job_id)["state"] == "Cancelled"
    assert str(job_id) in door("sacct", "-j", str(job_id)).stdout
    gflow.ok("gflowd", "slurm-aliases", "uninstall", str(doors), env=env)
    assert not (doors / "sbatch").exists()
