"""The state directory must be the daemon's own: private, and below nobody else's."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, Gflow
from tests.users import LocalUser


@pytest.fixture
def base() -> Iterator[Path]:
    """A short root-owned scratch dir under /tmp (the sticky, root-owned kind of parent)."""
    path = Path(tempfile.mkdtemp(prefix="gfs", dir="/tmp"))
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def gflowd(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GFLOW_")}
    env["GFLOW_HOME"] = str(home)
    return subprocess.run(
        [str(BIN / "gflowd"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_init_and_start_make_everything_private(base: Path) -> None:
    """`gflowd init` with GFLOW_HOME used to leave the directory 0755 and the database
    0644: every stored environment readable by all."""
    home = base / "home"
    try:
        assert gflowd(home, "init").returncode == 0
        assert mode(home) == 0o700
        assert mode(home / "gflow.toml") == 0o600
        assert gflowd(home, "start").returncode == 0
        for name in ("gflow.db", "gflowd.log", "gflowd.lock", "gflowd.sock"):
            assert mode(home / name) & 0o077 == 0, name
    finally:
        gflowd(home, "stop")


def test_an_existing_open_directory_of_ours_is_tightened(base: Path) -> None:
    gflow = Gflow()
    try:
        os.chmod(gflow.home, 0o755)
        gflow.start()
        gflow.submit("true")
        assert mode(gflow.home) == 0o700
        assert mode(gflow.paths.logs_dir) == 0o700
        gflow.ok("gflowd", "stop")
        os.chmod(gflow.paths.database, 0o644)
        gflow.start()
        assert mode(gflow.paths.database) == 0o600
    finally:
        gflow.cleanup()


def test_a_directory_another_user_created_first_is_refused(base: Path, eve: LocalUser) -> None:
    """Eve squats the state directory before the owner first uses it."""
    os.chmod(base, 0o755)
    squat = base / "gflow"
    squat.mkdir(mode=0o777)
    os.chown(squat, eve.uid, eve.gid)
    done = gflowd(squat, "start")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"belongs to {eve.name}" in done.stderr
    assert os.listdir(squat) == []  # nothing written there: no log, no lock, no database


def test_a_directory_below_another_users_directory_is_refused(base: Path, eve: LocalUser) -> None:
    os.chmod(base, 0o755)
    hers = base / "eve"
    hers.mkdir()
    os.chown(hers, eve.uid, eve.gid)
    ours = hers / "gflow"
    ours.mkdir(mode=0o700)  # ours, but she can rename it away and put hers in its place
    done = gflowd(ours, "start")
    assert done.returncode == 1
    assert f"belongs to {eve.name}" in done.stderr and str(hers) in done.stderr
    assert os.listdir(ours) == []


def test_a_parent_others_can_write_is_refused(base: Path) -> None:
    shared = base / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # not sticky: anyone may rename what is in it
    done = gflowd(shared / "gflow", "start")
    assert done.returncode == 1
    assert "others can write" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_link_as_the_state_directory_is_followed_only_to_a_safe_place(base: Path) -> None:
    """A symlinked state directory is fine when where it leads is ours: its real path is
    what the daemon then uses."""
    real = base / "real"
    real.mkdir(mode=0o700)
    link = base / "link"
    link.symlink_to(real)
    try:
        assert gflowd(link, "start").returncode == 0
        assert (real / "gflow.db").exists()
    finally:
        gflowd(link, "stop")
