"""Other local users for the tests: created with useradd, removed afterwards.

CI runs as root, so these run there; elsewhere they skip with the reason. The `eve`
fixture (tests/conftest.py) is one of them."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"  # one another user can run (the venv's may be under /root)


@dataclass(frozen=True)
class LocalUser:
    name: str
    uid: int
    gid: int
    home: str

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command as this user, with a clean environment."""
        env = ["env", "-i", f"HOME={self.home}", f"USER={self.name}", "PATH=/usr/bin:/bin"]
        return subprocess.run(
            ["runuser", "-u", self.name, "--", *env, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        env = ["env", "-i", f"HOME={self.home}", f"USER={self.name}", "PATH=/usr/bin:/bin"]
        return subprocess.Popen(
            ["runuser", "-u", self.name, "--", *env, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


@contextmanager
def local_user(prefix: str) -> Iterator[LocalUser]:
    """A new local user without sudo, removed (home, processes) afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second Unix user (CI runs as root)")
    if not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("useradd/runuser not installed")
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    entry = pwd.getpwnam(name)
    try:
        yield LocalUser(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        subprocess.run(["userdel", "--remove", name], capture_output=True)
