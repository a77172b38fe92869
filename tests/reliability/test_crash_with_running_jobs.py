"""kill -9 of the daemon with jobs running, ending, and being stopped: after a restart every
job has its real end, none stays Running, and stopped jobs' processes are gone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import Gflow, wait_for

JOBS = 20


@dataclass(frozen=True)
class Gated:
    """A job that waits for its gate file, then sleeps a little and ends its own way."""

    id: int
    gate: Path
    exit_code: int | None  # None: it kills itself with SIGKILL
    group: str  # ends before the crash, while the daemon is down, or after the restart

    @property
    def expected(self) -> tuple[str, int | None, int | None]:
        if self.exit_code is None:
            return ("Failed", None, 9)
        return ("Finished" if self.exit_code == 0 else "Failed", self.exit_code, None)


def _submit_gated(gflow: Gflow, i: int) -> Gated:
    gate = gflow.workdir / f"gate{i}"
    exit_code = None if i % 7 == 6 else i % 4
    end = "kill -KILL $$" if exit_code is None else f"exit {exit_code}"
    group = ("before", "down", "after")[i % 3]
    command = f"while [ ! -e {gate} ]; do sleep 0.1; done; sleep 0.{i % 5}; {end}"
    return Gated(gflow.submit("bash", "-c", command), gate, exit_code, group)


@pytest.mark.timeout(240)
def test_twenty_jobs_through_a_crash_end_with_their_real_exit_codes(gflow: Gflow) -> None:
    jobs = [_submit_gated(gflow, i) for i in range(JOBS)]
    for job in jobs:
        gflow.wait_state(job.id, "Running", timeout=60)

    for job in jobs:
        if job.group == "before":
            job.gate.touch()
    # Kill while those are ending: some ends are recorded, some are not yet.
    gflow.kill_daemon()
    for job in jobs:
        if job.group == "down":
            job.gate.touch()
    for job in jobs:
        if job.group != "after":
            exit_file = gflow.paths.jobs_dir / str(job.id) / "exit"
            wait_for(exit_file.exists, 60, f"job {job.id} to end while the daemon is down")
    gflow.start()
    for job in jobs:
        if job.group == "after":
            assert gflow.job(job.id)["state"] == "Running"
            job.gate.touch()

    correct = 0
    for job in jobs:
        ended = gflow.wait_state(job.id, timeout=60)
        got = (ended["state"], ended["exit_code"], ended["signal"])
        assert got == job.expected, f"job {job.id} ({job.group}): {got} != {job.expected}"
        correct += 1
    print(f"\ncrash with running jobs: {JOBS} jobs through the crash, {correct} ended correctly")


@pytest.mark.timeout(120)
def test_crash_during_a_time_limit_kill_still_ends_timeout(make_gflow: type[Gflow]) -> None:
    """The time limit's SIGTERM is ignored; the daemon dies before its SIGKILL."""
    gflow = make_gflow(config="[daemon]\nkill_grace = 5\n")
    gflow.start()
    job_id = gflow.submit("-t", "1s", "bash", "-c", "trap '' TERM; sleep 300")
    procs = wait_for(lambda: gflow.job_processes(job_id), what="the job to start")
    wait_for(
        lambda: gflow.job(job_id)["reason"] == "Stopping:TimeLimit",
        what="the time limit to be reached",
    )
    gflow.kill_daemon()
    gflow.start()
    job = gflow.wait_state(job_id, timeout=30)
    assert (job["state"], job["reason"]) == ("Timeout", "TimeLimit")
    wait_for(lambda: not any(p.is_running() for p in procs), what="the job's processes to die")


@pytest.mark.timeout(120)
def test_time_limit_passing_while_the_daemon_is_down_ends_timeout(gflow: Gflow) -> None:
    job_id = gflow.submit("-t", "2s", "sleep", "300")
    procs = wait_for(lambda: gflow.job_processes(job_id), what="the job to start")
    gflow.kill_daemon()
    started = gflow.paths.jobs_dir / str(job_id) / "pid"
    wait_for(lambda: _age(started) > 3, 10, "the time limit to pass while the daemon is down")
    gflow.start()
    job = gflow.wait_state(job_id, timeout=30)
    assert (job["state"], job["reason"]) == ("Timeout", "TimeLimit")
    wait_for(lambda: not any(p.is_running() for p in procs), what="the job's processes to die")


def _age(path: Path) -> float:
    return time.time() - path.stat().st_mtime


@pytest.mark.timeout(120)
def test_crash_in_the_middle_of_a_cancel_ends_cancelled(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(config="[daemon]\nkill_grace = 5\n")
    gflow.start()
    job_id = gflow.submit("bash", "-c", "trap '' TERM; sleep 300")
    procs = wait_for(lambda: gflow.job_processes(job_id), what="the job to start")
    gflow.ok("gcancel", str(job_id))  # acknowledged: the stop is on disk; SIGKILL is due in 5 s
    gflow.kill_daemon()
    assert all(p.is_running() for p in procs)
    gflow.start()
    job = gflow.wait_state(job_id, timeout=30)
    assert (job["state"], job["reason"]) == ("Cancelled", "CancelledByUser")
    wait_for(lambda: not any(p.is_running() for p in procs), what="the job's processes to die")
