"""The client checks who listens before it sends a byte (the request holds the whole
environment), and tmux's socket is inside the state directory."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Gflow, wait_for
from tests.users import SYSTEM_PYTHON, LocalUser

# Eve's fake gflowd: records whatever it is sent, answers "Submitted batch job 4242".
FAKE_DAEMON = r"""
import os, socket, sys
path, capture = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
os.chmod(path, 0o777)
server.listen()
open(capture + ".ready", "w").close()
while True:
    conn, _ = server.accept()
    data = conn.recv(1 << 20)
    with open(capture, "ab") as f:
        f.write(data)
    body = b'{"jobs": [{"id": 4242}]}'
    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn.close()
"""


@pytest.fixture
def eves_dir(eve: LocalUser) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="gfw", dir="/tmp"))
    os.chmod(base, 0o755)
    home = base / "gflow"
    home.mkdir()
    os.chown(home, eve.uid, eve.gid)
    try:
        yield home
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def start_fake_daemon(eve: LocalUser, home: Path) -> tuple[subprocess.Popen[str], Path]:
    script = home / "fake.py"
    script.write_text(FAKE_DAEMON)
    os.chown(script, eve.uid, eve.gid)
    capture = home / "capture"
    proc = eve.popen(SYSTEM_PYTHON, str(script), str(home / "gflowd.sock"), str(capture))
    wait_for(lambda: Path(f"{capture}.ready").exists(), what="eve's fake daemon")
    return proc, capture


def submit_as_owner(home: Path) -> subprocess.CompletedProcess[str]:
    gflow = Gflow()
    env = {**gflow.env, "GFLOW_HOME": str(home), "API_TOKEN": "owner-secret-789"}
    try:
        return gflow.run("gbatch", "echo", "hi", env=env)
    finally:
        gflow.cleanup()


def test_a_socket_in_another_users_directory_gets_nothing(eve: LocalUser, eves_dir: Path) -> None:
    proc, capture = start_fake_daemon(eve, eves_dir)
    try:
        done = submit_as_owner(eves_dir)
        assert done.returncode == 1
        assert eve.name in done.stderr and "nothing sent" in done.stderr
        assert "4242" not in done.stdout
        assert not capture.exists() or b"owner-secret" not in capture.read_bytes()
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_a_socket_served_by_another_user_gets_nothing(eve: LocalUser, eves_dir: Path) -> None:
    """Even where the socket file and its directory look like ours, the kernel says who
    accepted the connection: her process."""
    proc, capture = start_fake_daemon(eve, eves_dir)
    try:
        os.chown(eves_dir, 0, 0)
        os.chown(eves_dir / "gflowd.sock", 0, 0, follow_symlinks=False)
        done = submit_as_owner(eves_dir)
        assert done.returncode == 1
        assert f"is served by {eve.name}" in done.stderr
        assert not capture.exists() or capture.read_bytes() == b""
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_jobs_start_whatever_is_in_tmux_tmpdir(make_gflow: type[Gflow], eve: LocalUser) -> None:
    """tmux's default socket directory (/tmp/tmux-<uid>, or $TMUX_TMPDIR) can be created
    first by anyone: every job used to end LaunchFailed then."""
    squat = Path(tempfile.mkdtemp(prefix="gft", dir="/tmp"))
    try:
        os.chmod(squat, 0o755)
        taken = squat / f"tmux-{os.geteuid()}"
        taken.mkdir(mode=0o700)
        os.chown(taken, eve.uid, eve.gid)
        gflow = make_gflow()
        gflow.env["TMUX_TMPDIR"] = str(squat)
        gflow.start()
        job = gflow.submit("echo", "started")
        assert gflow.wait_state(job)["state"] == "Finished"
        assert os.listdir(taken) == []
    finally:
        subprocess.run(["rm", "-rf", str(squat)], check=False)
