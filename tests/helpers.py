"""A real gflow installation in a temp dir: its own GFLOW_HOME, daemon and tmux server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from gflow.paths import Paths

BIN = Path(sys.executable).parent
ENDED = ("Finished", "Failed", "Cancelled", "Timeout")


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class Gflow:
    """Runs the commands as a user types them, against one isolated daemon."""

    def __init__(self, config: str = "", fake_gpus: str = "") -> None:
        # Short path: the daemon's Unix socket lives in it (107-byte limit).
        self.home = Path(tempfile.mkdtemp(prefix="gf", dir="/tmp"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GFLOW_")}
        self.env["GFLOW_HOME"] = str(self.home)
        if fake_gpus:
            self.env["GFLOW_FAKE_GPUS"] = fake_gpus
        if config:
            (self.home / "gflow.toml").write_text(config)
        self.paths = Paths.from_env(self.env)
        self.workdir = self.home / "work"
        self.workdir.mkdir()

    # ---- commands --------------------------------------------------------------------------

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run one gflow command (by absolute path) and return what it printed."""
        command, *rest = args
        return subprocess.run(
            [str(BIN / command), *rest],
            env=env or self.env,
            input=input,
            cwd=cwd or self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def ok(self, *args: str, **kwargs: Any) -> str:
        done = self.run(*args, **kwargs)
        assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
        return done.stdout

    def submit(self, *args: str, **kwargs: Any) -> int:
        return int(self.ok("gbatch", "--parsable", *args, **kwargs).strip())

    def job(self, job_id: int) -> dict[str, Any]:
        shown: list[dict[str, Any]] = json.loads(self.ok("gjob", "show", str(job_id), "--json"))
        return shown[0]

    def find(self, job_id: int) -> dict[str, Any] | None:
        """The job, or None while it does not exist yet (a grun may not have submitted)."""
        done = self.run("gjob", "show", str(job_id), "--json")
        return json.loads(done.stdout)[0] if done.returncode == 0 else None

    def wait_state(self, job_id: int, *states: str, timeout: float = 20) -> dict[str, Any]:
        wanted = states or ENDED
        return wait_for(
            lambda: (job := self.job(job_id))["state"] in wanted and job,
            timeout,
            f"job {job_id} to reach {'/'.join(wanted)}",
        )

    # ---- daemon and job processes ------------------------------------------------------------

    def start(self) -> None:
        self.ok("gflowd", "start")

    def daemon_pid(self) -> int:
        return int(json.loads(self.ok("gflowd", "status", "--json"))["pid"])

    def kill_daemon(self) -> None:
        """kill -9, as a crash would."""
        pid = self.daemon_pid()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(pid) or _zombie(pid), what="daemon to die")

    def crash_leaving_a_dead_job(self, job_id: int) -> None:
        """kill -9 the daemon, then the job's wrapper and everything under it: a running
        job whose processes vanished while no daemon watched (its records stay)."""
        wait_for(lambda: self.job_processes(job_id), what=f"job {job_id}'s processes")
        record = json.loads((self.paths.jobs_dir / str(job_id) / "pid").read_text())
        self.kill_daemon()
        wrapper = psutil.Process(record["wrapper_pid"])
        for proc in [*wrapper.children(recursive=True), wrapper]:
            proc.send_signal(signal.SIGKILL)
        psutil.wait_procs([wrapper], timeout=10)

    def job_processes(self, job_id: int) -> list[psutil.Process]:
        """The job's wrapper's descendants (its command and everything that forked from it)."""
        try:
            record = json.loads((self.paths.jobs_dir / str(job_id) / "pid").read_text())
            return psutil.Process(record["wrapper_pid"]).children(recursive=True)
        except (OSError, ValueError, psutil.NoSuchProcess):  # not started yet, or gone
            return []

    def tmux_sessions(self) -> list[str]:
        done = subprocess.run(
            ["tmux", "-S", str(self.paths.tmux_socket), "list-sessions", "-F", "#{session_name}"],
            capture_output=True,
            text=True,
        )
        return done.stdout.split() if done.returncode == 0 else []

    def cleanup(self) -> None:
        """Stop the daemon and every process any job of this installation started."""
        self.run("gflowd", "stop")
        for pid_file in self.paths.jobs_dir.glob("*/pid"):
            try:
                wrapper = psutil.Process(json.loads(pid_file.read_text())["wrapper_pid"])
                for proc in [*wrapper.children(recursive=True), wrapper]:
                    proc.kill()
            except (psutil.Error, ValueError, OSError):
                pass
        subprocess.run(
            ["tmux", "-S", str(self.paths.tmux_socket), "kill-server"], capture_output=True
        )
        try:
            lock_pid = int((self.paths.lock_file).read_text().strip() or 0)
            if lock_pid and psutil.pid_exists(lock_pid):
                proc = psutil.Process(lock_pid)
                if "gflow.daemon" in " ".join(proc.cmdline()):
                    proc.kill()
        except (OSError, ValueError, psutil.Error):
            pass
        remove_cgroups(self.paths.state_dir)
        shutil.rmtree(self.home, ignore_errors=True)


def remove_cgroups(state_dir: Path) -> None:
    """The job cgroups a root daemon of this state directory made (resources/cgroups.py),
    the processes still in them killed first, by pid: nothing is left in /sys/fs/cgroup."""
    from gflow.resources.cgroups import CGROUP_ROOT, own_cgroups, state_tag

    name = f"gflow-{state_tag(state_dir)}"
    ours = own_cgroups()
    bases = [CGROUP_ROOT / "memory" / ours["memory"].lstrip("/") / name] if "memory" in ours else []
    if "" in ours and (CGROUP_ROOT / "cgroup.controllers").exists():
        bases.append(CGROUP_ROOT / ours[""].lstrip("/") / name)
    for base in bases:
        if not base.is_dir():
            continue
        for job in base.glob("job-*"):

            def emptied(job: Path = job) -> bool:
                try:
                    pids = [int(p) for p in (job / "cgroup.procs").read_text().split()]
                except OSError:
                    return True
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                return not pids

            wait_for(emptied, what=f"the processes of {job} to end")
            with contextlib.suppress(OSError):
                job.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
