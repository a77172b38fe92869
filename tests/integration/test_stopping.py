"""gcancel and --time stop a job's whole process tree: SIGTERM, then SIGKILL after the grace."""

from __future__ import annotations

import psutil

from tests.helpers import Gflow, wait_for

# A job with children in its group, and one that left the group with setsid.
FAMILY = "sleep 300 & sleep 301 & setsid sleep 302 & wait"


def _all_gone(procs: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)


def _running_family(gflow: Gflow, job_id: int) -> list[psutil.Process]:
    gflow.wait_state(job_id, "Running")
    return wait_for(
        lambda: len(procs := gflow.job_processes(job_id)) >= 4 and procs,
        what="the job's processes to start",
    )


def test_cancel_running_job_leaves_no_process(gflow: Gflow) -> None:
    """Running -> Cancelled; bash, its children and the setsid'd grandchild are all gone."""
    job_id = gflow.submit("bash", "-c", FAMILY)
    procs = _running_family(gflow, job_id)
    assert gflow.ok("gcancel", str(job_id)) == f"Job {job_id} cancelled.\n"
    job = gflow.job(job_id)
    assert (job["state"], job["reason"]) == ("Cancelled", "CancelledByUser")
    wait_for(lambda: _all_gone(procs), what="every process of the job to exit")


def test_cancel_escalates_to_sigkill_for_a_job_ignoring_sigterm(make_gflow: type[Gflow]) -> None:
    """A job that traps SIGTERM is killed after kill_grace, and still ends Cancelled."""
    gflow = make_gflow(config="[daemon]\nkill_grace = 0.5\n")
    gflow.start()
    job_id = gflow.submit("bash", "-c", "trap '' TERM; sleep 300 & sleep 301 & wait")
    procs = wait_for(lambda: len(p := gflow.job_processes(job_id)) >= 3 and p, what="processes")
    out = gflow.ok("gcancel", str(job_id))
    assert out.startswith(f"Job {job_id}")
    job = gflow.wait_state(job_id)
    assert (job["state"], job["signal"]) == ("Cancelled", 9)
    wait_for(lambda: _all_gone(procs), what="the job's processes to be killed")


def test_time_limit_ends_job_as_timeout(gflow: Gflow) -> None:
    """Running -> Timeout when --time passes; the whole tree is stopped."""
    job_id = gflow.submit("--time", "2s", "bash", "-c", FAMILY)
    procs = _running_family(gflow, job_id)
    job = gflow.wait_state(job_id, timeout=30)
    assert (job["state"], job["reason"], job["signal"]) == ("Timeout", "TimeLimit", 15)
    assert 2 <= job["finished_at"] - job["started_at"] < 10
    wait_for(lambda: _all_gone(procs), what="every process of the job to exit")


def test_cancel_queued_and_held_jobs(gflow: Gflow) -> None:
    """Queued -> Cancelled and Hold -> Cancelled happen at once; a range cancels each, and
    a dependent of a cancelled job is cancelled with the reason."""
    anchor = gflow.submit("--hold", "true")
    held = gflow.submit("--hold", "true")
    waiting = gflow.submit("--depends-on", str(anchor), "true")
    dependent = gflow.submit("--depends-on", str(waiting), "true")
    assert gflow.ok("gcancel", f"{held}-{waiting}") == (
        f"Job {held} cancelled.\nJob {waiting} cancelled.\n"
    )
    assert gflow.job(held)["reason"] == gflow.job(waiting)["reason"] == "CancelledByUser"
    assert gflow.wait_state(dependent)["reason"] == f"DependencyFailed:{waiting}"


def test_what_a_finished_command_left_running_is_killed(gflow: Gflow) -> None:
    """A process that left the job's session and group (setsid) and outlived its parent is
    still the wrapper's (a child subreaper): it is killed when the command ends."""
    pidfile = gflow.workdir / "escapee.pid"
    job_id = gflow.submit("bash", "-c", f"setsid sleep 300 & echo $! > {pidfile}")
    assert gflow.wait_state(job_id)["state"] == "Finished"
    try:
        escapee = psutil.Process(int(pidfile.read_text()))
    except psutil.NoSuchProcess:
        return  # killed already
    assert escapee.name() == "sleep"
    wait_for(lambda: _all_gone([escapee]), what="the escaped process to be killed")
