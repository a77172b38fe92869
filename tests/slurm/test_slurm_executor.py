"""The Slurm executor against a real one-node Slurm: what gflow records is checked
against what squeue and scontrol say."""

from __future__ import annotations

from tests.helpers import wait_for
from tests.slurm.conftest import SlurmGflow


def test_time_limit_rounded_up_to_slurm_minutes(timed_job: tuple[SlurmGflow, int]) -> None:
    """-t 0:30 goes to Slurm as 1 minute (its unit), and the job's events say so."""
    installation, job_id = timed_job
    sid = wait_for(lambda: installation.job(job_id)["slurm_job_id"], what="the job in Slurm")
    assert installation.scontrol(sid)["TimeLimit"] == "00:01:00"
    events = installation.ok("gjob", "show", str(job_id))
    assert "time limit 30 s rounded up to 1 min" in events


def test_job_runs_in_slurm_with_our_log_and_env(sgflow: SlurmGflow) -> None:
    """A job goes to Slurm (its mark in --comment), runs our wrapper there, and ends
    Finished with its output in its usual log and GFLOW_JOB_ID set as locally."""
    job_id = sgflow.submit("--gpus", "1", "--cpus-per-task", "1", "--mem", "100M", "-J", "hello",
                           "echo id=$GFLOW_JOB_ID task=$GFLOW_ARRAY_TASK_ID"
                           " slurm=$SLURM_JOB_ID gpu=$CUDA_VISIBLE_DEVICES")  # fmt: skip
    job = sgflow.wait_state(job_id, "Finished", timeout=30)
    assert job["executor"] == "slurm" and job["slurm_job_id"] and job["node"]
    shown = sgflow.scontrol(job["slurm_job_id"])
    assert shown["JobState"] == "COMPLETED"
    assert shown["JobName"] == "hello"
    assert shown["Comment"] == f"gflow:{sgflow.store_id()}:{job_id}"
    assert "gpu:1" in shown["TresPerNode"]
    log = sgflow.ok("gjob", "log", str(job_id))
    assert f"id={job_id} task=0 slurm={job['slurm_job_id']} gpu=0" in log
    assert job["exit_code"] == 0 and job["reason"] == "Completed"
    assert job["started_at"] and job["finished_at"] >= job["started_at"]
    assert sgflow.ours() == [job["slurm_job_id"]]
    events = sgflow.ok("gjob", "events", str(job_id))
    for kind in ("submitted", "slurm", "started", "ended"):  # the same events as locally
        assert f" {kind} " in events, events
    assert "Finished" in sgflow.ok("gstats")


def test_exit_codes_and_signals_read_as_locally(sgflow: SlurmGflow) -> None:
    """exit 3 -> Failed NonZeroExit:3; a job killed by SIGKILL -> Failed Signal:SIGKILL."""
    three = sgflow.submit("exit 3")
    killed = sgflow.submit("kill -9 $$")
    job = sgflow.wait_state(three, "Failed", timeout=30)
    assert (job["reason"], job["exit_code"]) == ("NonZeroExit:3", 3)
    assert sgflow.scontrol(job["slurm_job_id"])["JobState"] == "FAILED"
    job = sgflow.wait_state(killed, "Failed", timeout=30)
    assert (job["reason"], job["signal"]) == ("Signal:SIGKILL", 9)
    assert sgflow.scontrol(job["slurm_job_id"])["JobState"] == "FAILED"


def test_cancel_running_job_through_scancel(sgflow: SlurmGflow) -> None:
    """gcancel of a running job -> scancel: Slurm says CANCELLED, we say Cancelled."""
    job_id = sgflow.submit("sleep 300")
    job = sgflow.wait_state(job_id, "Running", timeout=30)
    assert sgflow.scontrol(job["slurm_job_id"])["JobState"] == "RUNNING"
    sgflow.ok("gcancel", str(job_id))
    job = sgflow.wait_state(job_id, "Cancelled", timeout=30)
    assert job["reason"] == "CancelledByUser"
    wait_for(lambda: sgflow.scontrol(job["slurm_job_id"])["JobState"] == "CANCELLED",
             what="Slurm to say CANCELLED")  # fmt: skip


def test_output_error_and_signal_as_under_sbatch(sgflow: SlurmGflow) -> None:
    """--output and --error are files apart, named as Slurm names them (%j: Slurm's id);
    --signal's warning reaches the script before Slurm's limit; the log keeps both."""
    job_id = sgflow.submit(
        "--output", "out.%j", "--error", "err.%j", "-t", "1:00", "--signal", "B:USR1@55",
        "trap 'echo warned; exit 0' USR1; echo to-out; echo to-err >&2; sleep 100 & wait",
    )  # fmt: skip
    job = sgflow.wait_state(job_id, "Finished", timeout=60)
    sid = job["slurm_job_id"]
    out = (sgflow.workdir / f"out.{sid}").read_text()
    err = (sgflow.workdir / f"err.{sid}").read_text()
    assert "to-out" in out and "warned" in out and "to-err" not in out, out
    assert "to-err" in err and "to-out" not in err, err
    log = sgflow.ok("gjob", "log", str(job_id))
    assert "to-out" in log and "to-err" in log and "warned" in log
    assert sgflow.scontrol(sid)["JobState"] == "COMPLETED"
