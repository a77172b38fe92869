"""`gbatch --export-slurm`: the sbatch script of the job gbatch would submit, written with
no daemon and no Slurm; run by a real Slurm, it does what the job would."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import Gflow, wait_for
from tests.slurm.cluster import Cluster


def test_export_needs_no_daemon_and_submits_nothing(tmp_path: Path) -> None:
    """No daemon runs: the script comes out, directives translated, env captured."""
    installation = Gflow()  # never started
    try:
        env = {**installation.env, "GREETING": "it's me"}
        done = installation.run(
            "gbatch", "--export-slurm", "-J", "exp", "--gpus", "1", "-t", "1:30", "--mem", "1G",
            "-a", "0-2%1", "echo", "$GREETING", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        script = done.stdout
        assert script.startswith("#!/bin/bash\n")
        for directive in ("--job-name=exp", "--gres=gpu:1", "--time=2", "--mem=1024M",
                          "--array=0-2%1", f"--chdir={installation.workdir}"):  # fmt: skip
            assert f"#SBATCH {directive}\n" in script
        assert "rounded up to 2 min" in script
        assert "export GREETING='it'\"'\"'s me'" in script
        assert not installation.paths.database.exists()  # nothing submitted anywhere
        out = tmp_path / "job.sh"
        done = installation.run("gbatch", f"--export-slurm={out}", "true")
        assert done.returncode == 0 and out.read_text().startswith("#!/bin/bash")
    finally:
        installation.cleanup()


def test_exported_script_runs_under_slurm(cluster: Cluster, tmp_path: Path) -> None:
    """sbatch of the exported script: the command runs in the captured directory with the
    captured environment and GFLOW_ARRAY_TASK_ID set as locally."""
    installation = Gflow()
    try:
        env = {**installation.env, "GREETING": "hello there"}
        script = tmp_path / "job.sh"
        installation.ok(
            "gbatch", f"--export-slurm={script}", "-a", "1-2", "--output", "out-%a.txt",
            "--command", "echo $GREETING task=$GFLOW_ARRAY_TASK_ID in $(pwd)", env=env,
        )  # fmt: skip
        done = cluster.run("sbatch", "--parsable", str(script))
        assert done.returncode == 0, done.stderr
        outs = [installation.workdir / f"out-{task}.txt" for task in (1, 2)]
        wait_for(lambda: all(o.exists() and o.read_text() for o in outs), 30, "the outputs")
        for task, out in enumerate(outs, start=1):
            text = out.read_text()
            assert f"hello there task={task} in {os.path.realpath(installation.workdir)}" in text
    finally:
        installation.cleanup()
