"""Where gflow keeps things: GFLOW_HOME, or the XDG config and data directories.

Every CLI imports this on its start path, so it stays small: no dataclasses, no hashlib.
"""

from __future__ import annotations

import os
from pathlib import Path

from gflow.core.errors import InvalidInput

# AF_UNIX paths are limited to 107 bytes on Linux.
MAX_SOCKET_PATH = 107

# A test and packaging knob, never needed on a real machine: a directory that prefixes the
# system daemon's three roots (/etc/gflow, /var/lib/gflow, /run/gflow), so a test owns a
# private system layout and never touches the real one.
SYSTEM_ROOT_ENV = "GFLOW_SYSTEM_ROOT"


def system_root(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    return Path(env.get(SYSTEM_ROOT_ENV) or "/").absolute()


class Paths:
    """Where one gflow installation keeps its config, database, logs, jobs and socket.

    Personal mode: one directory holds state and socket (GFLOW_HOME, or the XDG ones).
    System mode (`gflowd start --system`): /etc/gflow/gflow.toml, /var/lib/gflow and the
    socket in /run/gflow, with each user's tmux server in /run/gflow/users/<uid>/.
    `why` says how a client came to this daemon (`gflowd status`)."""

    __slots__ = ("config_file", "run_dir", "state_dir", "system", "why")

    def __init__(
        self,
        config_file: Path,
        state_dir: Path,
        run_dir: Path | None = None,
        system: bool = False,
        why: str = "",
    ) -> None:
        self.config_file = config_file
        self.state_dir = state_dir
        self.run_dir = state_dir if run_dir is None else run_dir
        self.system = system
        self.why = why

    @classmethod
    def for_system(cls, env: dict[str, str] | None = None) -> Paths:
        root = system_root(env)
        return cls(
            config_file=root / "etc" / "gflow" / "gflow.toml",
            state_dir=root / "var" / "lib" / "gflow",
            run_dir=root / "run" / "gflow",
            system=True,
            why="the system daemon",
        )

    @classmethod
    def for_client(cls, env: dict[str, str] | None = None) -> Paths:
        """The daemon a CLI talks to, with no set-up: GFLOW_HOME names one and never falls
        back; else the caller's own personal daemon if one is running, else the system
        daemon if one is running, else the personal one (whose absence the error names)."""
        env = dict(os.environ) if env is None else env
        personal = cls.from_env(env)
        if env.get("GFLOW_HOME"):
            personal.why = "GFLOW_HOME names it"
            return personal
        if _listening(personal.socket):
            personal.why = "your own daemon is running"
            return personal
        system = cls.for_system(env)
        if _listening(system.socket):
            system.why = "no personal daemon of yours runs; the system daemon does"
            return system
        personal.why = "no daemon runs; personal is the default"
        return personal

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Paths:
        env = dict(os.environ) if env is None else env
        if home := env.get("GFLOW_HOME"):
            if home.startswith("~/") and env.get("HOME"):
                home = env["HOME"] + home[1:]
            root = Path(home).expanduser().absolute()
            return cls(config_file=root / "gflow.toml", state_dir=root)
        user_home = Path(env.get("HOME") or Path.home())
        config_home = Path(env.get("XDG_CONFIG_HOME") or user_home / ".config")
        data_home = Path(env.get("XDG_DATA_HOME") or user_home / ".local" / "share")
        return cls(config_file=config_home / "gflow" / "gflow.toml", state_dir=data_home / "gflow")

    @property
    def mode(self) -> str:
        return "system" if self.system else "personal"

    @property
    def socket(self) -> Path:
        return self.run_dir / "gflowd.sock"

    @property
    def users_dir(self) -> Path:
        """System mode: /run/gflow/users/, root 0755, holding each user's 0700 <uid>/."""
        return self.run_dir / "users"

    def user_tmux_socket(self, uid: int) -> Path:
        """A user's own tmux server (system mode): only they can enter its directory."""
        return self.users_dir / str(uid) / "tmux.sock"

    @property
    def database(self) -> Path:
        return self.state_dir / "gflow.db"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "gflowd.lock"

    @property
    def daemon_log(self) -> Path:
        return self.state_dir / "gflowd.log"

    @property
    def fake_gpu_usage(self) -> Path:
        """What 'other processes' use on fake GPUs: {"0": {"used": "20G", "pids": [4242]}}."""
        return self.state_dir / "fake_gpus.json"

    @property
    def tmux_socket(self) -> Path:
        """One private tmux server per state directory (`tmux -S <this>`)."""
        return self.state_dir / "tmux.sock"

    def check_socket_path(self) -> None:
        """Both sockets (the daemon's, tmux's) fit in an AF_UNIX address."""
        sockets = [self.socket, self.tmux_socket]
        if self.system:
            sockets.append(self.user_tmux_socket(2**32 - 1))
        longest = max(len(str(s).encode()) for s in sockets)
        if longest > MAX_SOCKET_PATH:
            raise InvalidInput(
                f"state directory path too long for a Unix socket: {self.state_dir}",
                hint="set GFLOW_HOME to a shorter directory of your own (e.g. ~/gflow)",
            )


def _listening(socket_path: Path) -> bool:
    """Something accepts connections there (a socket file a killed daemon left does not),
    or a daemon is there that refuses us (the client then says so: a `socket_group`).
    Only connects: who listens is checked by the client before a byte is sent."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect(str(socket_path))
        return True
    except PermissionError:
        return True
    except OSError:
        return False
    finally:
        sock.close()
