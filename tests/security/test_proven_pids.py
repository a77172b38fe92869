"""Only processes proven to be the job's are signalled: the pid file a job can write names
nothing the daemon will kill."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from gflow.runner.wrapper import start_ticks
from tests.helpers import Gflow, wait_for


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """Someone else's process group, which a forged or stale record could name."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def forge_pid_file(gflow: Gflow, job: int, pid: int) -> None:
    record = {"wrapper_pid": pid, "pgid": pid, "start_ticks": start_ticks(pid)}
    (gflow.paths.jobs_dir / str(job) / "pid").write_text(json.dumps(record))


def test_restart_after_the_wrapper_died_kills_no_stranger(
    gflow: Gflow, stranger: subprocess.Popen[bytes]
) -> None:
    """The pids a dead job recorded are someone else's after a reboot or a while: the
    daemon used to SIGKILL whatever process group the pid file named."""
    job = gflow.submit("sleep", "300")
    gflow.wait_state(job, "Running")
    gflow.crash_leaving_a_dead_job(job)
    forge_pid_file(gflow, job, stranger.pid)
    gflow.start()
    ended = gflow.wait_state(job)
    assert (ended["state"], ended["reason"]) == ("Failed", "Lost")
    assert stranger.poll() is None, "the daemon killed a process that was not the job's"


def test_cancel_signals_the_job_not_what_its_pid_file_names(
    gflow: Gflow, stranger: subprocess.Popen[bytes]
) -> None:
    job = gflow.submit("sleep", "300")
    gflow.wait_state(job, "Running")
    wait_for(lambda: gflow.job_processes(job), what="the job's processes")
    forge_pid_file(gflow, job, stranger.pid)  # what a job of a shared daemon could write
    gflow.ok("gcancel", str(job))
    ended = gflow.wait_state(job)
    assert ended["state"] == "Cancelled"
    assert stranger.poll() is None, "the daemon signalled a process that was not the job's"
