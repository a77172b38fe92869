"""What a Slurm job asks for and sees, honoured by a real daemon: GPU types, --exclusive,
--signal, --error, the SLURM_* environment, srun's checks, ginfo's CPUs, --mem=0."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import Gflow, wait_for


def script(gflow: Gflow, name: str, text: str) -> str:
    (gflow.workdir / name).write_text(text)
    return name


def test_a_gpu_type_picks_that_model_or_is_ignored_with_a_note(make_gflow: type[Gflow]) -> None:
    """gpu:a100:1 gets the A100 (GPU 1), not the first GPU; an unknown type: a note."""
    gflow = make_gflow(fake_gpus="1x24G:L4,1x80G:A100")
    gflow.start()
    job = gflow.wait_state(gflow.submit("--gres=gpu:a100:1", "true"))
    assert job["gpu_ids"] == [1] and job["gpu_model"] == "a100"
    done = gflow.run("gbatch", "--parsable", "--gpus=h100:1", "true")
    assert done.returncode == 0 and "no GPU of type h100 here" in done.stderr
    job = gflow.wait_state(int(done.stdout))
    assert job["gpu_ids"] == [0] and job["gpu_model"] == ""
    done = gflow.run("gbatch", "--gpus=a100:2", "true")
    assert done.returncode == 2 and "asks for 2 a100 GPU(s) but 1" in done.stderr


def test_exclusive_gets_everything_and_nothing_runs_beside_it(make_gflow: type[Gflow]) -> None:
    """--exclusive waits for running jobs, holds every GPU and core, and blocks the rest."""
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    first = gflow.submit("sleep", "30")
    gflow.wait_state(first, "Running")
    exclusive = gflow.submit("--exclusive", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES; sleep 30")
    wait_for(lambda: gflow.job(exclusive)["reason"] == "Resources:Exclusive", what="waiting")
    gflow.ok("gcancel", str(first))
    job = gflow.wait_state(exclusive, "Running")
    assert job["gpu_ids"] == [0, 1] and len(job["cpu_ids"]) == len(os.sched_getaffinity(0))
    beside = gflow.submit("true")
    wait_for(lambda: gflow.job(beside)["reason"] == "Resources:Exclusive", what="blocked")
    wait_for(lambda: "0,1" in Path(job["log_path"]).read_text(), what="all GPUs visible")
    gflow.ok("gcancel", str(exclusive))
    assert gflow.wait_state(beside)["state"] == "Finished"


def test_signal_comes_before_the_time_limit(gflow: Gflow) -> None:
    """--signal=B:USR1@25 with a 30 s limit: the script's trap runs ~5 s in, before Timeout."""
    name = script(
        gflow,
        "warned.sh",
        "#!/bin/bash\n#SBATCH --time=30s --signal=B:USR1@25\n"
        "trap 'echo got USR1; exit 0' USR1\necho waiting\n"
        "for i in $(seq 60); do sleep 1; done\n",
    )
    job = gflow.wait_state(gflow.submit(name), timeout=40)
    log = Path(job["log_path"]).read_text()
    assert job["state"] == "Finished" and "got USR1" in log, log


def test_signal_without_b_goes_to_the_steps_not_the_batch_shell(gflow: Gflow) -> None:
    """--signal=USR1@25: srun's step gets it (its trap ends it); the batch shell, which has
    no trap, is not signalled and ends the job normally, as in Slurm."""
    name = script(
        gflow,
        "steps.sh",
        "#!/bin/bash\n#SBATCH --time=30s --signal=USR1@25\n"
        'srun bash -c \'trap "echo step got USR1; exit 0" USR1; '
        "for i in $(seq 300); do sleep 0.1; done'\n"
        "echo shell still here\n",
    )
    job = gflow.wait_state(gflow.submit(name), timeout=40)
    log = Path(job["log_path"]).read_text()
    assert job["state"] == "Finished", log
    assert "step got USR1" in log and "shell still here" in log


def test_error_goes_to_its_own_file(gflow: Gflow) -> None:
    """--output and --error apart: stdout in one, stderr in the other, both in gjob log."""
    name = script(
        gflow,
        "split.sh",
        "#!/bin/sh\n#SBATCH -o out-%j.txt -e err-%j.txt\necho to-out\necho to-err >&2\n",
    )
    job_id = gflow.submit(name)
    job = gflow.wait_state(job_id)
    assert (gflow.workdir / f"out-{job_id}.txt").read_text() == "to-out\n"
    assert (gflow.workdir / f"err-{job_id}.txt").read_text() == "to-err\n"
    assert {"to-out", "to-err"} <= set(Path(job["log_path"]).read_text().split())


def test_the_job_sees_slurm_variables(gflow: Gflow) -> None:
    """The variables a Slurm batch job's shell has, with their one-machine meaning."""
    name = script(
        gflow, "env.sh", "#!/bin/bash\n#SBATCH -J envjob -c 1 -n 1 --mem=64M\nenv | grep ^SLURM\n"
    )
    job_id = gflow.submit(name)
    job = gflow.wait_state(job_id)
    env = dict(
        line.split("=", 1) for line in Path(job["log_path"]).read_text().splitlines() if "=" in line
    )
    assert env["SLURM_JOB_ID"] == str(job_id) and env["SLURM_JOB_NAME"] == "envjob"
    assert env["SLURM_NNODES"] == "1" and env["SLURM_NTASKS"] == "1"
    assert env["SLURM_CPUS_PER_TASK"] == "1" and env["SLURM_CPUS_ON_NODE"] == "1"
    assert env["SLURM_MEM_PER_NODE"] == "64" and env["SLURM_GPUS_ON_NODE"] == "0"
    assert env["SLURM_SUBMIT_DIR"] == str(gflow.workdir)
    assert env["SLURM_JOB_NODELIST"] == env["SLURMD_NODENAME"] != ""
    assert "SLURM_ARRAY_TASK_ID" not in env


def test_srun_is_found_by_a_login_shell_script(gflow: Gflow) -> None:
    """#!/bin/bash -l resets PATH from /etc/profile; srun is still found (through BASH_ENV),
    and the submitter's own BASH_ENV still runs."""
    user_env = gflow.workdir / "mine.sh"
    user_env.write_text("echo user-bash-env-ran\n")
    name = script(gflow, "login.sh", "#!/bin/bash -l\n#SBATCH -n 1\nsrun echo via-srun\n")
    env = {**gflow.env, "BASH_ENV": str(user_env)}
    job = gflow.wait_state(int(gflow.ok("gbatch", "--parsable", name, env=env)))
    log = Path(job["log_path"]).read_text()
    assert job["state"] == "Finished", log
    assert "via-srun" in log and "user-bash-env-ran" in log


def test_srun_refuses_more_than_the_job_holds(gflow: Gflow) -> None:
    """srun -n 3 in a 1-task, 1-CPU job fails as Slurm's does; -N 2 too."""
    name = script(gflow, "over.sh", "#!/bin/bash\n#SBATCH -n 1\nsrun -n 3 true\n")
    job = gflow.wait_state(gflow.submit(name))
    assert job["state"] == "Failed"
    assert "More processors requested than permitted" in Path(job["log_path"]).read_text()
    name = script(gflow, "nodes.sh", "#!/bin/bash\nsrun -N2 hostname\n")
    job = gflow.wait_state(gflow.submit(name))
    assert job["state"] == "Failed" and "only one node" in Path(job["log_path"]).read_text()


def test_ginfo_shows_cpus_and_gjob_shows_all_memory(gflow: Gflow) -> None:
    """ginfo names the usable cores and who holds them; --mem=0 is shown as 'all'."""
    job_id = gflow.submit("--cpus-per-task=1", "--mem=0", "sleep", "30")
    job = gflow.wait_state(job_id, "Running")
    core = job["cpu_ids"][0]
    assert f"job {job_id}: {core}" in gflow.ok("ginfo")
    assert json.loads(gflow.ok("ginfo", "--json"))["cpus"]["jobs"] == {str(job_id): [core]}
    shown = gflow.ok("gjob", "show", str(job_id))
    assert "\nMemory=all\n" in shown and f"\nCPUIDs={core}\n" in shown
    listed = gflow.ok("gqueue", "-f", "JOBID,CPUS,MEMORY").split()
    assert listed[-3:] == [str(job_id), "1", "all"]
    gflow.ok("gcancel", str(job_id))
