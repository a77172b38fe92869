"""Executors start a job's wrapper: in a tmux session (default) or as a detached process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gflow.core.errors import Forbidden
from gflow.runner import wrapper
from gflow.runner.as_user import RunAs, ensure_user_dir

WRAPPER = Path(wrapper.__file__).resolve()


class LaunchError(Exception):
    """The executor could not start the wrapper (tmux missing, fork failed…)."""


@dataclass(frozen=True)
class Launch:
    job_id: int
    jobdir: Path
    keep_session: bool
    run_as: RunAs | None = None  # system mode: the submitter; None: the daemon's own user


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


def wrapper_argv(jobdir: Path, python: str = "") -> list[str]:
    # -I: ignore the PYTHON* variables of the daemon; -S: no site-packages needed.
    return [python or sys.executable, "-I", "-S", "-c", _BOOT, str(jobdir)]


class Executor(Protocol):
    name: str

    def start(self, launch: Launch) -> tuple[int, str]:
        """Start the wrapper; return its pid and the session name ('' if none)."""
        ...

    def attach_command(self, session: str) -> list[str]: ...

    def abandon(self, job_id: int, run_as: RunAs | None = None) -> None:
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

    def __init__(self, socket: Path, users_dir: Path | None = None, python: str = "") -> None:
        self.socket = socket
        self.users_dir = users_dir  # system mode: one server per user, run as that user
        self.python = python

    def tmux(self, *args: str, run_as: RunAs | None = None) -> list[str]:
        return tmux_argv(self.socket_of(run_as), *args)

    def socket_of(self, run_as: RunAs | None) -> Path:
        if run_as is None or self.users_dir is None:
            return self.socket
        return self.users_dir / str(run_as.uid) / "tmux.sock"

    def _run(
        self, argv: list[str], run_as: RunAs | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """tmux as the user whose server it is: never root on a user's server."""
        if run_as is None or self.users_dir is None:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        ensure_user_dir(self.users_dir, str(run_as.uid), run_as)
        done: subprocess.CompletedProcess[str] = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=run_as.server_env(),
            **run_as.popen_args(),  # type: ignore[call-overload]
        )
        return done

    def start(self, launch: Launch) -> tuple[int, str]:
        session = f"gflow-{launch.job_id}"
        run_as = launch.run_as
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
            *wrapper_argv(launch.jobdir, self.python),
            run_as=run_as,
        )
        if launch.keep_session:
            # Chained in the same tmux command, so it applies before the pane can exit.
            argv += [";", "set-option", "-t", session, "remain-on-exit", "on"]
        try:
            done = self._run(argv, run_as, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise LaunchError(f"cannot run tmux: {exc}") from None
        if done.returncode != 0:
            raise LaunchError(f"tmux new-session failed: {done.stderr.strip()}")
        try:
            return int(done.stdout.split()[0]), session
        except (IndexError, ValueError):
            raise LaunchError(f"tmux gave no pane pid: {done.stdout!r}") from None

    def attach_command(self, session: str, run_as: RunAs | None = None) -> list[str]:
        """What the job's owner runs (as themselves) to attach: tmux itself refuses anyone
        whose uid is not its server's."""
        return self.tmux("attach-session", "-t", f"={session}", run_as=run_as)

    def abandon(self, job_id: int, run_as: RunAs | None = None) -> None:
        """Close the job's session if a launch cut short by a crash left one: its wrapper
        gets SIGHUP before it can run the command unrecorded."""
        argv = self.tmux("kill-session", "-t", f"=gflow-{job_id}", run_as=run_as)
        try:
            self._run(argv, run_as, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass

    def close(self) -> None:
        """The server exits with its last session (at once if it has none): kept warm only
        for a daemon that will launch more. The next launch turns exit-empty off again."""
        for run_as in [None, *self._user_servers()]:
            try:
                self._run(self.tmux("set-option", "-g", "exit-empty", "on", run_as=run_as),
                          run_as, timeout=10)  # fmt: skip
            except (OSError, subprocess.SubprocessError):
                pass  # no tmux, or a hung server: nothing more to do on the way out

    def _user_servers(self) -> list[RunAs]:
        if self.users_dir is None:
            return []
        found = []
        try:
            names = os.listdir(self.users_dir)
        except OSError:
            return []
        for name in names:
            if name.isdigit():
                try:
                    found.append(RunAs.of_uid(int(name)))
                except Forbidden:
                    continue
        return found


class ProcessExecutor:
    """The wrapper as a detached session leader, for machines without tmux."""

    name = "process"

    def __init__(self, python: str = "") -> None:
        self.python = python
        # Kept so finished wrappers can be reaped (they are our children until we restart).
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, launch: Launch) -> tuple[int, str]:
        as_user: dict[str, object] = {}
        if launch.run_as is not None:
            as_user = {"env": launch.run_as.server_env(), **launch.run_as.popen_args()}
        try:
            proc = subprocess.Popen(
                wrapper_argv(launch.jobdir, self.python),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                **as_user,  # type: ignore[call-overload]
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise LaunchError(f"cannot start the job wrapper: {exc}") from None
        self._children[proc.pid] = proc
        return proc.pid, ""

    def reap(self, pid: int) -> None:
        proc = self._children.pop(pid, None)
        if proc is not None:
            proc.wait()

    def attach_command(self, session: str, run_as: RunAs | None = None) -> list[str]:
        return []

    def abandon(self, job_id: int, run_as: RunAs | None = None) -> None:
        """Nothing to close: a detached wrapper whose launch was cut short by a crash has
        not written its pid yet, and the job is recorded Lost either way."""

    def close(self) -> None:
        """Detached wrappers need nothing from the daemon."""


def tmux_argv(socket: Path, *args: str) -> list[str]:
    return ["tmux", "-S", str(socket), *args]


def make_executor(
    name: str, tmux_socket: Path, users_dir: Path | None = None, python: str = ""
) -> TmuxExecutor | ProcessExecutor:
    if name == "tmux":
        return TmuxExecutor(tmux_socket, users_dir, python)
    return ProcessExecutor(python)
