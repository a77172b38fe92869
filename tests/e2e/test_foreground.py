"""grun and taskflow: run through the queue in the foreground; the seeds' own spellings."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable

import psutil

from tests.helpers import BIN, Gflow, wait_for


def start_grun(gflow: Gflow, *args: str, command: str = "grun") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / command), *args],
        env=gflow.env,
        cwd=gflow.workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_grun_streams_output_and_exits_with_the_jobs_code(gflow: Gflow) -> None:
    """Both stdout and stderr lines come through; the exit code is the job's."""
    done = gflow.run("grun", "bash", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3
    assert done.stdout.splitlines() == ["out", "err"]
    assert gflow.job(1)["exit_code"] == 3


def test_grun_waits_for_a_busy_gpu_then_runs(make_gflow: Callable[..., Gflow]) -> None:
    """A grun behind a busy GPU says it is queued, then runs when the GPU frees."""
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    gate = gflow.workdir / "gate"
    blocker = gflow.submit(
        "--gpus", "1", "bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"
    )
    gflow.wait_state(blocker, "Running")
    proc = start_grun(gflow, "--gpus", "1", "bash", "-c", "echo ran on $CUDA_VISIBLE_DEVICES")
    wait_for(lambda: (gflow.find(2) or {}).get("reason") == "Resources:GPU", what="grun to queue")
    gate.touch()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == "ran on 0\n"
    assert "grun: job 2 queued (position 1, waiting for Resources:GPU)" in err


def test_interrupting_grun_cancels_the_job(gflow: Gflow) -> None:
    """SIGINT to grun: the job is Cancelled, none of its processes is left, grun fails."""
    proc = start_grun(gflow, "bash", "-c", "echo started; sleep 300")
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    procs = gflow.job_processes(1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGINT
    job = gflow.job(1)
    assert (job["state"], job["reason"]) == ("Cancelled", "CancelledByUser")
    wait_for(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs),
        what="the job's processes to exit",
    )


def test_grun_carries_on_through_a_daemon_restart(gflow: Gflow) -> None:
    """kill -9 the daemon under a waiting grun; after a restart grun still gets the end."""
    gate = gflow.workdir / "gate"
    proc = start_grun(gflow, "bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done; echo done")
    wait_for(lambda: gflow.find(1), what="grun to submit")
    gflow.wait_state(1, "Running")
    gflow.kill_daemon()
    gate.touch()
    gflow.start()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "done\n"


def test_taskflow_run_and_ps(make_gflow: Callable[..., Gflow]) -> None:
    """taskflow run -m 1G --gpu 0:10G runs on GPU 0; taskflow ps -o json lists it."""
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    gate = gflow.workdir / "gate"
    proc = start_grun(
        gflow,
        "run",
        "-m",
        "1G",
        "--gpu",
        "0:10G",
        "-p",
        "200",
        "-d",
        "15",
        "bash",
        "-c",
        f"echo cuda=$CUDA_VISIBLE_DEVICES; while [ ! -e {gate} ]; do sleep 0.02; done",
        command="taskflow",
    )
    wait_for(lambda: gflow.find(1), what="taskflow to submit")
    gflow.wait_state(1, "Running")
    listed = json.loads(gflow.ok("taskflow", "ps", "-o", "json"))["jobs"]
    assert [j["id"] for j in listed] == [1]
    assert (listed[0]["priority"], listed[0]["memory_mb"], listed[0]["gpu_ids"]) == (20, 1024, [0])
    assert "JobId=1" in gflow.ok("taskflow", "show", "1")
    gate.touch()
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (0, "cuda=0\n")
    assert "-d ignored" in err


def test_gctl_up_and_down(make_gflow: Callable[..., Gflow]) -> None:
    """The brief's `gctl up` / `gctl down` start and stop the daemon."""
    gflow = make_gflow()
    assert gflow.ok("gctl", "up").startswith("gflowd started")
    assert json.loads(gflow.ok("gctl", "status", "--json"))["running"] is True
    assert gflow.ok("gctl", "down") == "gflowd stopped\n"
    assert gflow.run("gctl", "status").returncode == 1


def test_gbatch_command_string_expands_in_the_job(gflow: Gflow) -> None:
    """--command 'echo $HOME' is a shell string: the variable expands in the job."""
    env = dict(gflow.env, HOME="/home/someone")
    job_id = gflow.submit("--command", "echo $HOME", env=env)
    gflow.wait_state(job_id, "Finished")
    assert gflow.ok("gjob", "log", str(job_id)) == "/home/someone\n"
