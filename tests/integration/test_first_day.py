"""Defects a new user met on the first day (issue 14): time limits without a daemon, jobs
that cannot start, release after --at."""

from __future__ import annotations

import subprocess

from tests.helpers import BIN, Gflow, wait_for


def test_time_limit_holds_while_the_daemon_is_stopped(make_gflow: type[Gflow]) -> None:
    """The wrapper enforces --time itself: SIGTERM, then SIGKILL after kill_grace, with no
    daemon running; the daemon, started again, records Timeout."""
    gflow = make_gflow(config="[daemon]\nkill_grace = 1\n")
    gflow.start()
    job = gflow.submit("-t", "2s", "bash", "-c", "trap '' TERM; echo started; sleep 120")
    gflow.wait_state(job, "Running")
    gflow.ok("gflowd", "stop")
    exit_record = gflow.paths.jobs_dir / str(job) / "exit"
    wait_for(exit_record.exists, timeout=30, what="the wrapper to stop the job by itself")
    gflow.start()
    ended = gflow.wait_state(job)
    assert (ended["state"], ended["reason"]) == ("Timeout", "TimeLimit")
    assert ended["signal"] == 9  # it ignored SIGTERM
    log = gflow.ok("gjob", "log", str(job))
    assert "time limit of 2 s reached" in log and "sending SIGKILL" in log


def test_a_job_whose_directory_is_gone_is_launch_failed(gflow: Gflow) -> None:
    """No working directory: Failed with LaunchFailed and the reason in the log, not the
    program's own NonZeroExit:1."""
    gone = gflow.workdir / "gone"
    gone.mkdir()
    job = gflow.submit("--hold", "true", cwd=gone)
    gone.rmdir()
    gflow.ok("gjob", "release", str(job))
    ended = gflow.wait_state(job)
    assert (ended["state"], ended["reason"]) == ("Failed", "LaunchFailed")
    assert ended["exit_code"] is None
    assert "cannot enter working directory" in gflow.ok("gjob", "log", str(job))


def test_release_after_release_at_and_hold_releases_now(gflow: Gflow) -> None:
    """`release --at` far ahead, `hold`, then a plain `release`: the job starts now."""
    job = gflow.submit("--hold", "true")
    gflow.ok("gjob", "release", str(job), "--at", "now+10d")
    gflow.ok("gjob", "hold", str(job))
    gflow.ok("gjob", "release", str(job))
    ended = gflow.wait_state(job)
    assert ended["state"] == "Finished" and ended["begin_at"] is None


def test_submitting_from_a_deleted_directory_is_one_line(gflow: Gflow) -> None:
    """gbatch, grun and taskflow run in a directory that was deleted: one line, exit 1,
    no traceback, nothing submitted."""
    gone = gflow.workdir / "gone"
    gone.mkdir()
    script = f'cd {gone} && rmdir {gone} && exec "$@"'
    for command in (["gbatch", "true"], ["grun", "true"], ["taskflow", "run", "true"]):
        done = subprocess.run(
            ["sh", "-c", script, "sh", str(BIN / command[0]), *command[1:]],
            env=gflow.env, cwd=gflow.workdir, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.count("\n") == 1 and "no longer exists" in done.stderr, done.stderr
        gone.mkdir()
    assert "No jobs found." in gflow.ok("gqueue", "-a")


def test_gflowd_reload_rereads_the_config_and_keeps_jobs_running(gflow: Gflow) -> None:
    """`gflowd reload`: a malformed config is refused with the daemon untouched; a good one
    is read by a new daemon while the running job runs on, watched, to its real end."""
    gate = gflow.workdir / "gate"
    job = gflow.submit("bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    gflow.wait_state(job, "Running")
    old_pid = gflow.daemon_pid()
    assert gflow.ok("ginfo").startswith("No GPUs.\n")
    (gflow.home / "gflow.toml").write_text("[daemon]\nkill_grace = -5\n")
    done = gflow.run("gflowd", "reload")
    assert done.returncode == 2 and "kill_grace" in done.stderr
    assert gflow.daemon_pid() == old_pid
    (gflow.home / "gflow.toml").write_text('[gpu]\nfake = "1x24G"\n')
    out = gflow.ok("gflowd", "reload")
    new_pid = gflow.daemon_pid()
    assert new_pid != old_pid and f"(pid {old_pid} -> {new_pid})" in out
    assert "Fake GPU" in gflow.ok("ginfo")
    assert gflow.job(job)["state"] == "Running"
    gate.touch()
    assert gflow.wait_state(job)["state"] == "Finished"
