"""The files one job's run leaves in <state>/jobs/<id>/: spec.marshal, pid and exit."""

from __future__ import annotations

import json
import marshal
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.runner.wrapper import SPEC_FILE, start_ticks


@dataclass(frozen=True)
class PidRecord:
    wrapper_pid: int
    pgid: int
    start_ticks: int | None


@dataclass(frozen=True)
class ExitRecord:
    exit_code: int | None
    signal: int | None
    ended_at: float
    hangup: bool = False  # the wrapper's terminal went away (the tmux server was killed)
    timed_out: bool = False  # the wrapper stopped the job at its time limit
    launch_failed: bool = False  # the command never started (its working directory is gone)


def write_spec(
    jobdir: Path, argv: list[str], env: dict[str, str], cwd: str, log: str,
    time_limit: int | None = None, kill_grace: float = 30.0,
) -> None:  # fmt: skip
    """What the wrapper needs: the command, its environment and directory, the log, and
    the time limit it enforces itself (with the SIGTERM-to-SIGKILL grace)."""
    jobdir.mkdir(parents=True, exist_ok=True)
    for stale in ("pid", "exit"):
        (jobdir / stale).unlink(missing_ok=True)
    data: dict[str, Any] = {"argv": argv, "env": env, "cwd": cwd, "log": log}
    data.update(time_limit=time_limit, kill_grace=float(kill_grace))
    # marshal, not JSON: the wrapper reads it without importing json (see wrapper.py).
    tmp = jobdir / f"{SPEC_FILE}.tmp"
    tmp.write_bytes(marshal.dumps(data))
    os.replace(tmp, jobdir / SPEC_FILE)


def read_pid(jobdir: Path) -> PidRecord | None:
    data = _read_json(jobdir / "pid")
    if data is None:
        return None
    return PidRecord(int(data["wrapper_pid"]), int(data["pgid"]), data.get("start_ticks"))


def read_exit(jobdir: Path) -> ExitRecord | None:
    data = _read_json(jobdir / "exit")
    if data is None:
        return None
    return ExitRecord(
        data.get("exit_code"),
        data.get("signal"),
        float(data["ended_at"]),
        bool(data.get("hangup", False)),
        data.get("timed_out") is True,
        data.get("launch_failed") is True,
    )


def wrapper_alive(record: PidRecord) -> bool:
    """Is the recorded wrapper still that same process (not a reused pid)?"""
    ticks = start_ticks(record.wrapper_pid)
    return ticks is not None and (record.start_ticks is None or ticks == record.start_ticks)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
