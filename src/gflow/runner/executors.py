"""Executors start a job's wrapper: in a tmux session (default) or as a detached process."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gflow.runner import wrapper

WRAPPER = Path(wrapper.__file__).resolve()


class LaunchError(Exception):
    """The executor could not start the wrapper (tmux missing, fork failed…)."""


@dataclass(frozen=True)
class Launch:
    job_id: int
    jobdir: Path
    keep_session: bool


# Appended, not put first: nothing in the runner's directory may shadow the stdlib.
# Imported, not run as a script, so its cached bytecode is used (compiling it costs ~5 ms
# of CPU per job). Newlines, not ';': tmux reads an argument ending in ';' as a separator.
_BOOT = "\n".join(
    [
        "import sys",
        f"sys.path.append({str(WRAPPER.parent)!r})",
        "import wrapper",
        "wrapper.run(sys.argv[1])",
    ]
)


def wrapper_argv(jobdir: Path) -> list[str]:
    # -I: ignore the PYTHON* variables of the daemon; -S: no site-packages needed.
    return [sys.executable, "-I", "-S", "-c", _BOOT, str(jobdir)]


class Executor(Protocol):
    name: str

    def start(self, launch: Launch) -> tuple[int, str]:
        """Start the wrapper; return its pid and the session name ('' if none)."""
        ...

    def attach_command(self, session: str) -> list[str]: ...

    def abandon(self, job_id: int) -> None:
        """Make sure a job whose launch a crash cut short never runs."""
        ...

    def close(self) -> None:
        """The daemon is stopping: what it started runs on, but nothing stays idle for it."""
        ...


class TmuxExecutor:
    """One tmux session per job on a private server whose socket is inside the state
    directory (`tmux -S <state>/tmux.sock`): not in /tmp/tmux-<uid>, which another user
    can create first and so make every launch fail."""

    name = "tmux"

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> list[str]:
        return tmux_argv(self.socket, *args)

    def start(self, launch: Launch) -> tuple[int, str]:
        session = f"gflow-{launch.job_id}"
        # exit-empty off: the server stays up between jobs, so the next start is 3x faster.
        argv = self.tmux(
            "start-server",
            ";",
            "set-option",
            "-g",
            "exit-empty",
            "off",
            ";",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "200",
            "-y",
            "50",
            "-P",
            "-F",
            "#{pane_pid}",
            "--",
            *wrapper_argv(launch.jobdir),
        )
        if launch.keep_session:
            # Chained in the same tmux command, so it applies before the pane can exit.
            argv += [";", "set-option", "-t", session, "remain-on-exit", "on"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LaunchError(f"cannot run tmux: {exc}") from None
        if done.returncode != 0:
            raise LaunchError(f"tmux new-session failed: {done.stderr.strip()}")
        try:
            return int(done.stdout.split()[0]), session
        except (IndexError, ValueError):
            raise LaunchError(f"tmux gave no pane pid: {done.stdout!r}") from None

    def attach_command(self, session: str) -> list[str]:
        return self.tmux("attach-session", "-t", session)

    def abandon(self, job_id: int) -> None:
        """Close the job's session if a launch cut short by a crash left one: its wrapper
        gets SIGHUP before it can run the command unrecorded."""
        subprocess.run(
            self.tmux("kill-session", "-t", f"=gflow-{job_id}"), capture_output=True, timeout=30
        )

    def close(self) -> None:
        """The server exits with its last session (at once if it has none): kept warm only
        for a daemon that will launch more. The next launch turns exit-empty off again."""
        try:
            subprocess.run(
                self.tmux("set-option", "-g", "exit-empty", "on"), capture_output=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            pass  # no tmux, or a hung server: nothing more to do on the way out


class ProcessExecutor:
    """The wrapper as a detached session leader, for machines without tmux."""

    name = "process"

    def __init__(self) -> None:
        # Kept so finished wrappers can be reaped (they are our children until we restart).
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, launch: Launch) -> tuple[int, str]:
        try:
            proc = subprocess.Popen(
                wrapper_argv(launch.jobdir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start the job wrapper: {exc}") from None
        self._children[proc.pid] = proc
        return proc.pid, ""

    def reap(self, pid: int) -> None:
        proc = self._children.pop(pid, None)
        if proc is not None:
            proc.wait()

    def attach_command(self, session: str) -> list[str]:
        return []

    def abandon(self, job_id: int) -> None:
        """Nothing to close: a detached wrapper whose launch was cut short by a crash has
        not written its pid yet, and the job is recorded Lost either way."""

    def close(self) -> None:
        """Detached wrappers need nothing from the daemon."""


def tmux_argv(socket: Path, *args: str) -> list[str]:
    return ["tmux", "-S", str(socket), *args]


def make_executor(name: str, tmux_socket: Path) -> TmuxExecutor | ProcessExecutor:
    return TmuxExecutor(tmux_socket) if name == "tmux" else ProcessExecutor()
