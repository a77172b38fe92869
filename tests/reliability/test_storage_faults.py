"""Storage faults: a full state directory, and databases gflowd must not open.

The full-disk test mounts a small tmpfs as GFLOW_HOME, so it needs root; elsewhere it is
skipped with that reason.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from gflow.store.schema import SCHEMA_VERSION
from tests.helpers import Gflow, wait_for

TMPFS_SIZE = "16m"


@pytest.fixture
def gflow_on_small_disk() -> Iterator[Gflow]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the state directory needs root")
    gflow = Gflow()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(gflow.home)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        shutil.rmtree(gflow.home, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    gflow.workdir.mkdir()
    try:
        gflow.start()
        yield gflow
    finally:
        gflow.cleanup()  # empties the tmpfs; the mount point itself stays until unmounted
        subprocess.run(["umount", "-l", str(gflow.home)], capture_output=True)
        shutil.rmtree(gflow.home, ignore_errors=True)


def _fill(directory: Path) -> Path:
    """Write until the filesystem says it is full; return the file to delete for space."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    # Unbuffered: a buffered file would try the failed bytes again on close, and raise there.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    # Also take the last few bytes a smaller write could still get.
    with open(directory / "filler-tail", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return filler


@pytest.mark.timeout(180)
def test_full_disk_refuses_submissions_and_records_running_jobs_once_space_returns(
    gflow_on_small_disk: Gflow,
) -> None:
    gflow = gflow_on_small_disk
    gate = Path("/tmp") / f"gate-{gflow.home.name}"  # outside the full disk
    job_id = gflow.submit(
        "bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; echo after-the-gate; exit 3"
    )
    try:
        gflow.wait_state(job_id, "Running")
        filler = _fill(gflow.home)
        before = gflow.ok("gqueue", "-a", "-f", "JOBID,STATE")

        refused = gflow.run("gbatch", "echo", "no-room")
        assert refused.returncode == 1, refused
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "disk" in lines[0], refused.stderr
        assert "Traceback" not in refused.stderr
        assert gflow.ok("gqueue", "-a", "-f", "JOBID,STATE") == before  # nothing created

        gate.touch()  # the job ends while nothing can be written
        wait_for(
            lambda: not gflow.job_processes(job_id) and _wrapper_waiting(gflow, job_id),
            what="the job's command to end",
        )
        assert gflow.job(job_id)["state"] == "Running"  # not Lost: its end is still coming
        assert gflow.ok("gflowd", "status").strip()  # the daemon is up

        for path in (filler, gflow.home / "filler-tail"):
            path.unlink()
        job = gflow.wait_state(job_id, timeout=30)
        assert (job["state"], job["exit_code"]) == ("Failed", 3)
        log = (gflow.paths.logs_dir / f"{job_id}.log").read_text()
        assert "after-the-gate" in log or "bytes of output lost" in log, log
        assert gflow.wait_state(gflow.submit("echo", "room-again"))["state"] == "Finished"
    finally:
        gate.unlink(missing_ok=True)


def _wrapper_waiting(gflow: Gflow, job_id: int) -> bool:
    """The wrapper is alive and has no exit record on disk yet."""
    pid = json.loads((gflow.paths.jobs_dir / str(job_id) / "pid").read_text())["wrapper_pid"]
    exit_file = gflow.paths.jobs_dir / str(job_id) / "exit"
    return psutil.pid_exists(pid) and not exit_file.exists()


def _refused_start(gflow: Gflow) -> subprocess.CompletedProcess[str]:
    done = gflow.run("gflowd", "start", timeout=30)
    assert done.returncode != 0, done
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done_status = gflow.run("gflowd", "status")
    assert done_status.returncode != 0, "no daemon may be left running"
    return done


def test_newer_schema_makes_gflowd_start_refuse_and_leaves_the_file(
    make_gflow: type[Gflow],
) -> None:
    gflow = make_gflow()
    gflow.start()
    gflow.submit("--hold", "true")
    gflow.ok("gflowd", "stop")
    conn = sqlite3.connect(gflow.paths.database)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = gflow.paths.database.read_bytes()
    done = _refused_start(gflow)
    assert "newer" in done.stderr, done.stderr
    assert gflow.paths.database.read_bytes() == before


def test_corrupt_database_makes_gflowd_start_refuse_and_leaves_the_file(
    make_gflow: type[Gflow],
) -> None:
    gflow = make_gflow()
    gflow.paths.state_dir.mkdir(parents=True, exist_ok=True)
    garbage = b"this is not a database\n" * 100
    gflow.paths.database.write_bytes(garbage)
    done = _refused_start(gflow)
    assert str(gflow.paths.database) in done.stderr, done.stderr
    assert gflow.paths.database.read_bytes() == garbage


def test_damaged_page_makes_gflowd_start_refuse_and_leaves_the_file(
    make_gflow: type[Gflow],
) -> None:
    """The daemon checks the database in a thread while it sets up: a damaged page still
    stops it before it writes a byte or opens its socket."""
    gflow = make_gflow()
    gflow.start()
    for n in range(20):  # each with an environment of its own: pages of payloads
        gflow.ok("gbatch", "--hold", "true", env={**gflow.env, "X": f"{n}" * 3000})
    gflow.ok("gflowd", "stop")
    path = gflow.paths.database
    conn = sqlite3.connect(path)
    try:  # everything into the main file, and the jobs table's pages found
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'jobs'").fetchone()
    finally:
        conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    at = (root - 1) * page
    data[at + 8 : at + 600] = b"\xab" * 592  # past its header: cell pointers and cells
    path.write_bytes(bytes(data))
    conn = sqlite3.connect(path)
    try:  # precondition: SQLite itself sees the damage
        assert conn.execute("PRAGMA quick_check").fetchone()[0] != "ok"
    finally:
        conn.close()
    before = path.read_bytes()
    done = _refused_start(gflow)
    assert "corrupt" in done.stderr or "not a usable" in done.stderr, done.stderr
    assert path.read_bytes() == before
    assert not gflow.paths.socket.exists()
