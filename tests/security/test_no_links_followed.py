"""No link in the state directory is followed, and no record is waited on."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import Gflow, wait_for


def victim(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text("precious data\n")
    return path


def test_a_link_at_the_lock_file_is_refused_not_written(tmp_path: Path) -> None:
    gflow = Gflow()
    try:
        target = victim(tmp_path, "lock-victim")
        gflow.paths.lock_file.symlink_to(target)
        done = gflow.run("gflowd", "start")
        assert done.returncode == 1
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert target.read_text() == "precious data\n"
    finally:
        gflow.cleanup()


def test_a_link_at_a_jobs_log_is_replaced_not_written_through(gflow: Gflow, tmp_path: Path) -> None:
    target = victim(tmp_path, "log-victim")
    gflow.paths.logs_dir.mkdir(exist_ok=True)
    (gflow.paths.logs_dir / "1.log").symlink_to(target)
    job = gflow.submit("echo", "hello")
    assert job == 1
    assert gflow.wait_state(job)["state"] == "Finished"
    assert target.read_text() == "precious data\n"
    log = gflow.paths.logs_dir / "1.log"
    assert not log.is_symlink() and log.read_text() == "hello\n"


def test_a_fifo_in_place_of_an_exit_record_is_not_waited_on(gflow: Gflow) -> None:
    """The daemon reads records a job can write only as small regular files: a FIFO there
    would have hung its start for ever."""
    job = gflow.submit("sleep", "300")
    gflow.wait_state(job, "Running")
    gflow.crash_leaving_a_dead_job(job)
    exit_file = gflow.paths.jobs_dir / str(job) / "exit"
    exit_file.unlink(missing_ok=True)
    os.mkfifo(exit_file)
    gflow.start()
    ended = gflow.wait_state(job)
    assert (ended["state"], ended["reason"]) == ("Failed", "Lost")


def test_purge_removes_links_not_what_they_point_at(gflow: Gflow, tmp_path: Path) -> None:
    job = gflow.submit("true")
    gflow.wait_state(job)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file").write_text("mine\n")
    log_target = victim(tmp_path, "purge-victim")
    log = gflow.paths.logs_dir / f"{job}.log"
    log.unlink()
    log.symlink_to(log_target)
    jobdir = gflow.paths.jobs_dir / str(job)
    for entry in jobdir.iterdir():
        entry.unlink()
    jobdir.rmdir()
    jobdir.symlink_to(keep)
    wait_for(
        lambda: "Purged 1 " in gflow.ok("gctl", "purge", "--before", "1s"),
        what="the job to be a second old and purged",
    )
    assert not log.is_symlink() and not jobdir.is_symlink()
    assert log_target.read_text() == "precious data\n"
    assert (keep / "file").read_text() == "mine\n"
