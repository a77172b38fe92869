"""A system daemon in a private root (GFLOW_SYSTEM_ROOT), and real users who talk to it.

The CLI is stdlib-only, so users run it with Debian's /usr/bin/python3 straight from the
source tree: the venv's python is under /root (0700), which no other user can enter.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from gflow.paths import Paths
from tests.helpers import BIN, remove_cgroups, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"
SRC = Path(__file__).resolve().parents[2] / "src"
ENDED = ("Finished", "Failed", "Cancelled", "Timeout")


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str


def need_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create Unix users and run the system daemon (CI runs as root)")
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "runuser", "tmux"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} (an interpreter every user can run) is missing")
    for parent in [SRC, *SRC.parents]:
        if not os.stat(parent).st_mode & 0o001:
            pytest.skip(f"{parent} is not open to other users: they cannot run the CLI")


def _retry(argv: list[str]) -> None:
    """useradd and friends fail on a lock another session holds: try again a few times."""
    for attempt in range(20):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode == 0:
            return
        if "lock" not in done.stderr or attempt == 19:
            raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
        time.sleep(0.1)


class Users:
    """Users and groups made for one test, removed (their files first) afterwards."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.users: list[User] = []
        self.groups: list[str] = []

    def group(self, role: str) -> str:
        name = f"gf{role}{self.tag}"
        _retry(["groupadd", name])
        self.groups.append(name)
        return name

    def user(self, role: str, groups: tuple[str, ...] = ()) -> User:
        name = f"gf{role}{self.tag}"
        argv = ["useradd", "--create-home", "--shell", "/bin/bash"]
        if groups:
            argv += ["--groups", ",".join(groups)]
        _retry([*argv, name])
        entry = pwd.getpwnam(name)
        user = User(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
        self.users.append(user)
        return user

    def remove(self) -> None:
        for user in self.users:
            _kill_processes_of(user.uid)
            _retry(["userdel", "--remove", user.name])
        for name in self.groups:
            _retry(["groupdel", name])


def _kill_processes_of(uid: int) -> None:
    """Every process of this test's user (its jobs, its tmux server), by pid."""
    for proc in psutil.process_iter(["uids"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real == uid:
                proc.kill()
        except psutil.Error:
            pass
    wait_for(
        lambda: (
            not any(
                p.info["uids"] and p.info["uids"].real == uid and p.status() != psutil.STATUS_ZOMBIE
                for p in psutil.process_iter(["uids"])
            )
        ),
        what=f"processes of uid {uid} to end",
    )


@pytest.fixture
def users() -> Iterator[Users]:
    need_root_and_tools()
    made = Users()
    try:
        yield made
    finally:
        made.remove()


class SystemGflow:
    """`gflowd start --system` in a private root; commands run as root or as a user."""

    def __init__(self, config: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gfs", dir="/tmp"))
        os.chmod(self.root, 0o755)  # users must reach root/run/gflow/gflowd.sock
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GFLOW_")}
        self.env["GFLOW_SYSTEM_ROOT"] = str(self.root)
        self.paths = Paths.for_system(self.env)
        self.paths.config_file.parent.mkdir(parents=True)
        base = f'[daemon]\nwrapper_python = "{SYSTEM_PYTHON}"\nkill_grace = 2\n'
        self.paths.config_file.write_text(base + config)
        self.workdir = self.root / "work"

    def root_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / args[0]), *args[1:]], env=self.env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def start(self) -> None:
        self.root_run("gflowd", "start", "--system")

    def as_user(
        self,
        user: User,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        umask: str = "022",
    ) -> subprocess.CompletedProcess[str]:
        """A command as `user` types it: their uid, a clean login-like environment."""
        clean = {
            "HOME": user.home,
            "USER": user.name,
            "LOGNAME": user.name,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "GFLOW_SYSTEM_ROOT": str(self.root),
            **(env or {}),
        }
        code = f"import sys; sys.path.insert(0, {str(SRC)!r}); from gflow.cli.{args[0]} import main; sys.exit(main(sys.argv[1:]))"  # noqa: E501
        return subprocess.run(
            ["runuser", "-u", user.name, "--", "env", "-i", *(f"{k}={v}" for k, v in clean.items()),
             "sh", "-c", f'umask {umask}; exec "$0" "$@"', SYSTEM_PYTHON, "-I", "-c", code,
             *args[1:]],
            capture_output=True, text=True, timeout=60, cwd=cwd or user.home,
        )  # fmt: skip

    def as_user_on_terminal(self, user: User, *args: str) -> subprocess.Popen[bytes]:
        """The same, on a pseudo-terminal (script(1)): for `gjob attach`."""
        clean = {
            "HOME": user.home, "USER": user.name, "PATH": "/usr/bin:/bin", "TERM": "xterm",
            "GFLOW_SYSTEM_ROOT": str(self.root),
        }  # fmt: skip
        code = f"import sys; sys.path.insert(0, {str(SRC)!r}); from gflow.cli.{args[0]} import main; sys.exit(main(sys.argv[1:]))"  # noqa: E501
        inner = shlex.join([SYSTEM_PYTHON, "-I", "-c", code, *args[1:]])
        return subprocess.Popen(
            ["runuser", "-u", user.name, "--", "env", "-i", *(f"{k}={v}" for k, v in clean.items()),
             "script", "-qec", inner, "/dev/null"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=user.home,
        )  # fmt: skip

    def submit(
        self, user: User, *args: str, env: dict[str, str] | None = None, umask: str = "022"
    ) -> int:
        done = self.as_user(user, "gbatch", *args, env=env, umask=umask)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[-1])

    def job(self, job_id: int) -> dict[str, Any]:
        done = self.root_run("gjob", "show", str(job_id), "--json")
        job: dict[str, Any] = json.loads(done.stdout)[0]
        return job

    def wait_state(self, job_id: int, *states: str, timeout: float = 30) -> dict[str, Any]:
        wanted = states or ENDED
        return wait_for(  # type: ignore[no-any-return]
            lambda: (j := self.job(job_id))["state"] in wanted and j, timeout, f"job {job_id}"
        )

    def daemon_pid(self) -> int:
        return int(json.loads(self.root_run("gflowd", "status", "--json").stdout)["pid"])

    def kill_daemon(self) -> None:
        pid = self.daemon_pid()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), what="daemon to die")

    def cleanup(self) -> None:
        self.root_run("gflowd", "stop", "--system", check=False)
        lock = self.paths.lock_file
        try:
            pid = int(lock.read_text().strip() or 0)
            if pid and _alive(pid) and "gflow.daemon" in " ".join(psutil.Process(pid).cmdline()):
                psutil.Process(pid).kill()
        except (OSError, ValueError, psutil.Error):
            pass
        remove_cgroups(self.paths.state_dir)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def system(users: Users) -> Iterator[type[SystemGflow]]:
    """Make (then .start()) system daemons; each is stopped and its root removed after the
    test, before the users are (files of a deleted uid would belong to the next one)."""
    made: list[SystemGflow] = []

    def make(config: str = "") -> SystemGflow:
        installation = SystemGflow(config)
        made.append(installation)
        return installation

    try:
        yield make  # type: ignore[misc]
    finally:
        for installation in made:
            installation.cleanup()


def group_names(gids: list[int]) -> set[str]:
    return {grp.getgrgid(g).gr_name for g in gids}


assert sys.version_info >= (3, 11)
