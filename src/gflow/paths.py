"""Where gflow keeps things: GFLOW_HOME, or the XDG config and data directories.

Every CLI imports this on its start path, so it stays small: no dataclasses, no hashlib.
"""

from __future__ import annotations

import os
from pathlib import Path

from gflow.core.errors import InvalidInput

# AF_UNIX paths are limited to 107 bytes on Linux.
MAX_SOCKET_PATH = 107


class Paths:
    """Where one gflow installation keeps its config, database, logs, jobs and socket."""

    __slots__ = ("config_file", "state_dir")

    def __init__(self, config_file: Path, state_dir: Path) -> None:
        self.config_file = config_file
        self.state_dir = state_dir

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
    def socket(self) -> Path:
        return self.state_dir / "gflowd.sock"

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
        longest = max(len(str(s).encode()) for s in (self.socket, self.tmux_socket))
        if longest > MAX_SOCKET_PATH:
            raise InvalidInput(
                f"state directory path too long for a Unix socket: {self.state_dir}",
                hint="set GFLOW_HOME to a shorter directory of your own (e.g. ~/gflow)",
            )
