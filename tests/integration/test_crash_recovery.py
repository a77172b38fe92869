"""Jobs outlive the daemon: after kill -9 and a restart every job is where it should be."""

from __future__ import annotations

import contextlib
import json

import psutil

from tests.helpers import Gflow, wait_for


def _gated(gflow: Gflow, name: str, code: int) -> tuple[int, str]:
    gate = gflow.workdir / name
    job_id = gflow.submit("bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done; exit {code}")
    return job_id, str(gate)


def test_jobs_ending_while_daemon_is_dead_keep_their_exit_codes(gflow: Gflow) -> None:
    """kill -9 the daemon; jobs end meanwhile or later; after restart each has its real end."""
    ends_while_down, gate1 = _gated(gflow, "g1", 3)
    ends_after_restart, gate2 = _gated(gflow, "g2", 0)
    queued = gflow.submit("--depends-on", str(ends_after_restart), "echo", "then-me")
    gflow.wait_state(ends_while_down, "Running")
    gflow.wait_state(ends_after_restart, "Running")

    gflow.kill_daemon()
    open(gate1, "w").close()
    wait_for(
        lambda: (gflow.paths.jobs_dir / str(ends_while_down) / "exit").exists(),
        what="the job's exit record",
    )
    gflow.start()

    job = gflow.wait_state(ends_while_down)
    assert (job["state"], job["exit_code"]) == ("Failed", 3)
    assert gflow.job(ends_after_restart)["state"] == "Running"
    open(gate2, "w").close()
    assert gflow.wait_state(ends_after_restart)["state"] == "Finished"
    assert gflow.wait_state(queued)["state"] == "Finished"


def test_job_that_vanished_without_exit_record_is_lost(gflow: Gflow) -> None:
    """If the wrapper and its job die unrecorded while the daemon is down: Failed, Lost."""
    job_id, _gate = _gated(gflow, "never", 0)
    gflow.wait_state(job_id, "Running")
    procs = gflow.job_processes(job_id)
    gflow.kill_daemon()
    wrapper = json.loads((gflow.paths.jobs_dir / str(job_id) / "pid").read_text())["wrapper_pid"]
    for proc in [psutil.Process(wrapper), *procs]:  # the wrapper first: it must not record
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    gflow.start()
    job = gflow.wait_state(job_id)
    assert (job["state"], job["reason"], job["exit_code"]) == ("Failed", "Lost", None)


def test_cancel_during_daemon_restart_still_ends_cancelled(make_gflow: type[Gflow]) -> None:
    """A stop ordered before a crash is finished by the next daemon: Cancelled, all killed."""
    gflow = make_gflow(config="[daemon]\nkill_grace = 1\n")
    gflow.start()
    job_id = gflow.submit("bash", "-c", "trap '' TERM; sleep 300")
    procs = wait_for(lambda: gflow.job_processes(job_id), what="the job to start")
    gflow.run("gcancel", str(job_id))  # SIGTERM is ignored; SIGKILL would follow…
    gflow.kill_daemon()  # …but the daemon dies first
    gflow.start()
    job = gflow.wait_state(job_id)
    assert (job["state"], job["reason"]) == ("Cancelled", "CancelledByUser")
    wait_for(lambda: not any(p.is_running() for p in procs), what="the job's processes to die")


def test_second_daemon_on_same_state_dir_is_refused(gflow: Gflow) -> None:
    """One daemon per state directory, with a clear message."""
    done = gflow.run("gflowd", "run", timeout=20)
    assert done.returncode == 1
    assert "already running" in done.stderr and str(gflow.home) in done.stderr
    assert "Traceback" not in done.stderr
    assert gflow.ok("gflowd", "start").startswith("gflowd is already running")


def test_stopping_mid_burst_records_every_launch_under_way(gflow: Gflow) -> None:
    """`gflowd stop` while jobs are being launched waits for those launches and records
    them: after a restart every job that was Running still is (none Lost), and the log has
    no error from a launch finishing after the database was closed."""
    first = int(gflow.ok("gbatch", "--parsable", "--array", "1-40", "sleep", "60").split("-")[0])
    wait_for(lambda: gflow.job(first)["state"] == "Running", what="the burst to begin")
    gflow.ok("gflowd", "stop")
    log = gflow.paths.daemon_log.read_text()
    assert "closed database" not in log and "Traceback" not in log, log[-2000:]
    gflow.start()
    jobs = json.loads(gflow.ok("gqueue", "-a", "--json"))["jobs"]
    assert [j["reason"] for j in jobs if j["state"] == "Failed"] == []
    assert any(j["state"] == "Running" for j in jobs)
    gflow.ok("gcancel", f"{first}-{first + 39}")
