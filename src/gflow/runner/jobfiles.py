"""The files one job's run leaves in <state>/jobs/<id>/: spec.marshal, pid and exit."""

from __future__ import annotations

import json
import marshal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gflow.runner.wrapper import SPEC_FILE, start_ticks
from gflow.safefs import ensure_private_subdir, read_small_file, remove_entry, write_private_file


@dataclass(frozen=True)
class LaunchSpec:
    """What the wrapper runs: argv in cwd with env, output to log, files made with umask."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: str
    umask: int
    extra: dict[str, Any] = field(default_factory=dict)


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
    cpu_seconds: float | None = None  # what every reaped process used, as the wrapper saw
    max_rss_kb: int | None = None  # the largest reaped process's peak


RECORD_LIMIT = 4096  # bytes: a pid or exit record is ~100; anything bigger is not one


def make_jobdir(jobs_dir: Path, job_id: int) -> Path:
    """jobs/<id>/, a real private directory of ours (a link planted there is refused)."""
    return ensure_private_subdir(jobs_dir, str(job_id))


def write_spec(jobdir: Path, spec: LaunchSpec) -> None:
    for stale in ("pid", "exit"):
        remove_entry(jobdir, stale)
    data = {
        "argv": spec.argv,
        "env": spec.env,
        "cwd": spec.cwd,
        "log": spec.log,
        "umask": spec.umask,
        **spec.extra,  # what else the wrapper reads: cpus, output, error, append, warning
    }
    # marshal, not JSON: the wrapper reads it without importing json (see wrapper.py).
    write_private_file(jobdir / SPEC_FILE, marshal.dumps(data))


def write_script(jobdir: Path, body: str) -> Path:
    """The job's copy of its script, executable: it runs by its own shebang."""
    path = jobdir / "script.sh"
    write_private_file(path, body.encode(), mode=0o700)
    return path


def read_pid(jobdir: Path) -> PidRecord | None:
    """What the wrapper says of itself: shown to people, never trusted for signalling
    (the daemon's own record, Store.processes_of, is)."""
    data = _read_json(jobdir / "pid")
    if data is None:
        return None
    try:
        return PidRecord(int(data["wrapper_pid"]), int(data["pgid"]), data.get("start_ticks"))
    except (KeyError, TypeError, ValueError):
        return None


def read_exit(jobdir: Path, owner: int | None = None) -> ExitRecord | None:
    """`owner`: the uid the record must belong to (system mode: the job's user, whose
    wrapper wrote it), so a hard link to someone else's file is no record."""
    data = _read_json(jobdir / "exit", owner)
    if data is None:
        return None
    code, signum = data.get("exit_code"), data.get("signal")
    try:
        return ExitRecord(
            code if isinstance(code, int) and 0 <= code <= 255 else None,
            signum if isinstance(signum, int) and 0 < signum < 128 else None,
            float(data["ended_at"]),
            bool(data.get("hangup", False)),
            data.get("timed_out") is True,
            data.get("launch_failed") is True,
            _non_negative(data.get("cpu_seconds"), float),
            _non_negative(data.get("max_rss_kb"), int),
        )
    except (KeyError, TypeError, ValueError):
        return None


def wrapper_alive(record: PidRecord) -> bool:
    """Is the recorded wrapper still that same process (not a reused pid)?"""
    ticks = start_ticks(record.wrapper_pid)
    return ticks is not None and (record.start_ticks is None or ticks == record.start_ticks)


def _read_json(path: Path, owner: int | None = None) -> dict[str, Any] | None:
    """A record the job could have written: a small regular file, read without following a
    link or blocking on a FIFO."""
    raw = read_small_file(path, RECORD_LIMIT, owner)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _non_negative(value: Any, kind: type[float] | type[int]) -> Any:
    """A count the job's own record gives: a non-negative number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**53:
        return None
    return kind(value)
