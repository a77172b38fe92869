"""The domain records: a job as stored and shown, and a validated request to create one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gflow.core.errors import InvalidInput
from gflow.core.limits import (
    DEFAULT_PRIORITY,
    MAX_COMMAND_LENGTH,
    MAX_GPUS,
    MAX_JOB_ID,
    MAX_NAME_LENGTH,
    MAX_PRIORITY,
    MAX_TIME_LIMIT,
)
from gflow.core.states import JobState, Reason, ReasonKind


@dataclass(frozen=True)
class JobSpec:
    """What a submitter asks for: validated once, in the daemon, before anything is stored."""

    command: str  # a shell string run with bash -c; empty in script mode
    script: str  # absolute path of the submitted script; empty in command mode
    workdir: str
    env: dict[str, str]
    name: str = ""
    priority: int = DEFAULT_PRIORITY
    gpus: int = 0
    time_limit: int | None = None  # seconds
    depends_on: tuple[int | str, ...] = ()  # ids, or '@' / '@~N' until the daemon resolves them
    hold: bool = False
    keep_session: bool = False
    array_task_id: int | None = None
    script_body: str = ""  # the script as it was at submission (Slurm copies it too)

    @classmethod
    def from_dict(cls, data: Any) -> JobSpec:
        """Check every field's type and range; the API takes nothing else."""
        if not isinstance(data, dict):
            raise InvalidInput("a job must be a JSON object")
        unknown = set(data) - _SPEC_FIELDS
        if unknown:
            raise InvalidInput(f"unknown job field(s): {', '.join(sorted(map(str, unknown)))}")
        command = _get(data, "command", str, "")
        script = _get(data, "script", str, "")
        script_body = _get(data, "script_body", str, "")
        if bool(command.strip()) == bool(script):
            raise InvalidInput("give exactly one of a command or a script")
        if script and not script.startswith("/"):
            raise InvalidInput("script must be an absolute path")
        if max(len(command), len(script_body)) > MAX_COMMAND_LENGTH:
            raise InvalidInput("the command or script is too long (1 MB at most)")
        env = _get(data, "env", dict, {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise InvalidInput("env must map strings to strings")
        texts = (command, script, script_body, *env.values())
        if any("\0" in k or "=" in k for k in env) or any("\0" in t for t in texts):
            raise InvalidInput("NUL characters (and '=' in variable names) are not allowed")
        name = _get(data, "name", str, "")
        if len(name) > MAX_NAME_LENGTH or any(not c.isprintable() for c in name):
            raise InvalidInput(f"invalid job name {name[:40]!r}: printable, at most 200 characters")
        time_limit = _get(data, "time_limit", int, None)
        if time_limit is not None and not 0 < time_limit <= MAX_TIME_LIMIT:
            raise InvalidInput(f"invalid time limit {time_limit}: 1 s to 10 years")
        depends_on = tuple(_get(data, "depends_on", list, []))
        for dep in depends_on:
            _check_dependency(dep)
        task = _get(data, "array_task_id", int, None)
        if task is not None and not 0 <= task <= MAX_JOB_ID:
            raise InvalidInput(f"invalid array task id {task}")
        workdir = _get(data, "workdir", str, "")
        if not workdir.startswith("/"):
            raise InvalidInput("workdir must be an absolute path")
        return cls(
            command=command,
            script=script,
            workdir=workdir,
            env=env,
            name=name,
            priority=_ranged(data, "priority", DEFAULT_PRIORITY, 0, MAX_PRIORITY),
            gpus=_ranged(data, "gpus", 0, 0, MAX_GPUS),
            time_limit=time_limit,
            depends_on=depends_on,
            hold=_get(data, "hold", bool, False),
            keep_session=_get(data, "keep_session", bool, False),
            array_task_id=task,
            script_body=script_body,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "script": self.script,
            "workdir": self.workdir,
            "env": self.env,
            "name": self.name,
            "priority": self.priority,
            "gpus": self.gpus,
            "time_limit": self.time_limit,
            "depends_on": list(self.depends_on),
            "hold": self.hold,
            "keep_session": self.keep_session,
            "array_task_id": self.array_task_id,
            "script_body": self.script_body,
        }


_SPEC_FIELDS = frozenset(JobSpec.__dataclass_fields__)


def _get(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    # bool is an int in Python; a JSON true is not a valid priority.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"field {key!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _ranged(data: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value: int = _get(data, key, int, default)
    if not lo <= value <= hi:
        raise InvalidInput(f"invalid {key} {value}: must be between {lo} and {hi}")
    return value


def _check_dependency(dep: Any) -> None:
    if isinstance(dep, bool) or not isinstance(dep, int | str):
        raise InvalidInput("depends_on holds job ids or '@' / '@~N'")
    if isinstance(dep, int) and not 0 < dep <= MAX_JOB_ID:
        raise InvalidInput(f"invalid dependency {dep}")
    if isinstance(dep, str):
        from gflow.core.parse import parse_dependency_ref

        parse_dependency_ref(dep)


@dataclass(frozen=True)
class Job:
    """A job as the daemon stores it and every client shows it."""

    id: int
    name: str
    user: str
    uid: int
    command: str
    script: str
    workdir: str
    state: JobState
    reason: Reason | None
    priority: int
    gpus: int
    time_limit: int | None
    depends_on: tuple[int, ...]
    array_task_id: int | None
    keep_session: bool
    submitted_at: float
    log_path: str
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    gpu_ids: tuple[int, ...] = ()
    pid: int | None = None  # the wrapper's pid while Running
    stop_reason: ReasonKind | None = None  # a stop was ordered: cancel or time limit
    executor: str = ""
    session: str = ""  # tmux session name, when the tmux executor ran it

    @property
    def display_name(self) -> str:
        return self.name or _first_word(self.command) or self.script.rsplit("/", 1)[-1]

    def runtime(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or now) - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of a job (`--json`, the API)."""
        return {
            "id": self.id,
            "name": self.display_name,
            "user": self.user,
            "uid": self.uid,
            "command": self.command,
            "script": self.script,
            "workdir": self.workdir,
            "state": self.state.value,
            "state_short": self.state.short,
            "reason": str(self.reason) if self.reason else None,
            "priority": self.priority,
            "gpus": self.gpus,
            "gpu_ids": list(self.gpu_ids),
            "time_limit": self.time_limit,
            "depends_on": list(self.depends_on),
            "array_task_id": self.array_task_id,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "log_path": self.log_path,
            "executor": self.executor,
            "session": self.session,
            "keep_session": self.keep_session,
        }


def _first_word(command: str) -> str:
    word = command.strip().split(maxsplit=1)[0] if command.strip() else ""
    return word.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as the resource backend sees it."""

    index: int
    name: str
    total_mb: int
    used_mb: int = 0
    foreign_pids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "total_mb": self.total_mb,
            "used_mb": self.used_mb,
            "foreign_pids": list(self.foreign_pids),
        }


@dataclass(frozen=True)
class Event:
    """One line of a job's history, stored in the same transaction as the change it records."""

    job_id: int
    at: float
    kind: str
    state: JobState
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "state": self.state.value, "detail": self.detail}
