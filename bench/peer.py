"""The Rust gflow 0.4 (PyPI `runqd`) as a benchmark target, run side by side with ours.

`install_peer` makes a venv under the bench's temp dir (never the project's .venv) and
pip-installs runqd into it: gflow, gflowd, gbatch, gqueue, gcancel, ... `PeerDaemon` runs
its daemon in the foreground (`gflowd -q`, our child, own session) with a private world:
HOME, XDG_{CONFIG,DATA,CACHE,STATE,RUNTIME} dirs and TMUX_TMPDIR under a fresh instance
directory, and a free TCP port on localhost (GFLOW_DAEMON__PORT; gflow has no Unix socket).
Its jobs run in tmux sessions on the private tmux server of that TMUX_TMPDIR; each job's
shell is a login shell that must find `gcancel` to report its end, so the instance's
~/.bash_profile puts the venv first on PATH. Closing kills the daemon by pid (SIGTERM,
then SIGKILL) and that private tmux server, and nothing else.

gflow reports job times in its HTTP API (`GET /jobs/{id}`: submitted_at, started_at,
finished_at, nanosecond precision); its CLI prints only elapsed HH:MM:SS, so the job
figures poll the API the way ours poll our client. The peer's workload code is in
bench.peer_work.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from bench.common import BenchError, wait_until

PACKAGE = "runqd"


@dataclass(frozen=True)
class PeerInstall:
    bin: Path
    version: str


def install_peer(root: Path) -> PeerInstall:
    """A venv under `root` with runqd installed; its version as `gflowd --version` says."""
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", PACKAGE]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise BenchError(f"pip install {PACKAGE} failed: {done.stderr.strip()[-500:]}")
    bin_dir = env_dir / "bin"
    shown = subprocess.run(
        [str(bin_dir / "gflowd"), "--version"], capture_output=True, text=True, timeout=30
    )
    return PeerInstall(bin_dir, shown.stdout.strip().splitlines()[0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unix_time(stamp: dict[str, int] | None) -> float:
    """gflow's serde SystemTime ({secs_since_epoch, nanos_since_epoch}) as a Unix time."""
    if stamp is None:
        raise BenchError("gflow job has no such time")
    return stamp["secs_since_epoch"] + stamp["nanos_since_epoch"] / 1e9


class PeerDaemon:
    """One private gflow 0.4 daemon, with its own home, for the length of a `with` block."""

    def __init__(self, install: PeerInstall, root: Path) -> None:
        self.install = install
        self.dir = Path(tempfile.mkdtemp(prefix="peer", dir=root))
        self.port = free_port()
        self.env = self._env()
        self.proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        home = self.dir / "home"
        dirs = {
            "HOME": home,
            "XDG_CONFIG_HOME": home / ".config",
            "XDG_DATA_HOME": home / ".local" / "share",
            "XDG_CACHE_HOME": home / ".cache",
            "XDG_STATE_HOME": home / ".local" / "state",
            "XDG_RUNTIME_DIR": self.dir / "run",
            "TMUX_TMPDIR": self.dir / "tmux",
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path_var = f"{self.install.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        (home / ".bash_profile").write_text(f'export PATH="{self.install.bin}:$PATH"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GFLOW_", "TMUX"))}
        env.update({k: str(v) for k, v in dirs.items()})
        user = pwd.getpwuid(os.getuid()).pw_name
        env.update(PATH=path_var, USER=user, GFLOW_DAEMON__PORT=str(self.port))
        env["HISTFILE"] = ""  # job shells killed at the end write no history into the dir
        return env

    @property
    def logs(self) -> Path:
        return Path(self.env["XDG_DATA_HOME"]) / "gflow" / "logs"

    def __enter__(self) -> PeerDaemon:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        out = (self.dir / "daemon.out").open("wb")
        self.proc = subprocess.Popen(
            [str(self.install.bin / "gflowd"), "-q"],
            env=self.env,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        wait_until("gflow 0.4 daemon health", self._healthy, 30, 0.05)

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.dir / "daemon.out").read_text(errors="replace")[-500:]
            raise BenchError(f"gflow 0.4 daemon exited {self.proc.returncode}: {tail}")
        try:
            return bool(self.api("GET", "/health", timeout=1).get("status") == "ok")
        except (OSError, http.client.HTTPException):
            return False

    def api(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"content-type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            if response.status >= 400:
                raise BenchError(f"gflow 0.4 {method} {path}: {response.status} {raw[:200]!r}")
            return json.loads(raw) if raw else None
        finally:
            conn.close()

    def cli(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(self.install.bin / name), *args]
        return subprocess.run(
            argv, env=self.env, cwd=self.dir, capture_output=True, text=True, timeout=timeout
        )

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        """tmux on this instance's private server (its TMUX_TMPDIR), never the default one."""
        return subprocess.run(
            ["tmux", *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )

    def tmux_sessions(self) -> int:
        done = self.tmux("list-sessions", "-F", "#S")
        return len(done.stdout.split()) if done.returncode == 0 else 0

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("gflow 0.4 daemon not started")
        return self.proc.pid

    def close(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    print("gflow 0.4 daemon up 5 s after SIGTERM: killed", file=sys.stderr)
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            self._kill_tmux_server()

    def _kill_tmux_server(self) -> None:
        """Kill this instance's own tmux server (never another) and wait until it is gone."""
        if not Path(self.env["TMUX_TMPDIR"]).is_relative_to(self.dir):
            return
        listed = self.tmux("list-sessions", "-F", "#{pid}").stdout.split()
        self.tmux("kill-server")
        if listed:
            server = int(listed[0])
            deadline = time.monotonic() + 10
            while psutil.pid_exists(server) and time.monotonic() < deadline:
                time.sleep(0.05)
