"""The domain records: a job as stored and shown (its request is core/spec.py), the GPUs
the daemon sees, a job's proven processes, and the events of its life."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gflow.core.dependencies import DependencyKind, DependencyMode
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import Resources
from gflow.core.states import JobState
from gflow.core.usage import Usage

NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the daemon stores it and every client shows it.

    Slotted: the daemon keeps every active job in memory, and a 41-field instance dict
    would be ~1.5 KB of each one's ~2 KB.
    """

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
    resources: Resources
    time_limit: int | None
    dependencies: tuple[tuple[int, DependencyKind], ...]
    dependency_mode: DependencyMode
    auto_cancel: bool
    array_task_id: int | None
    keep_session: bool
    submitted_at: float
    log_path: str
    begin_at: float | None = None
    group_id: int | None = None
    max_concurrent: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    gpu_ids: tuple[int, ...] = ()
    pid: int | None = None  # the wrapper's pid while Running
    stop_reason: ReasonKind | None = None  # a stop was ordered: cancel, time or memory limit
    executor: str = ""
    session: str = ""  # tmux session name, when the tmux executor ran it
    conda_env: str = ""
    max_retries: int = 0
    retry_on_timeout: bool = False
    attempt: int = 1  # 2 is the first automatic retry …
    first_attempt: int | None = None  # the job this one retries (its lineage's first id)
    project: str = ""
    cpu_ids: tuple[int, ...] = ()  # the cores it is pinned to while Running
    array_job_id: int | None = None  # an array's first job (Slurm's SLURM_ARRAY_JOB_ID)
    # The first job's id of the submission this job came in (an array's or sweep's id, for
    # '@'); None on jobs read from before schema 8 had it.
    submission: int | None = None
    usage: Usage = NO_USAGE  # what it used, as seen so far (core/usage.py)
    slurm_job_id: str = ""  # the Slurm executor's: '123', or '123_4' for an array task
    node: str = ""  # where Slurm ran it
    # Being handed to sbatch (durable before sbatch runs): the id in its Slurm job's mark.
    slurm_handing: int = 0

    @property
    def gpus(self) -> int:
        return self.resources.gpus

    @property
    def depends_on(self) -> tuple[int, ...]:
        return tuple(job_id for job_id, _ in self.dependencies)

    @property
    def display_name(self) -> str:
        return display_name(self.name, self.command, self.script)

    def ends_by(self) -> float | None:
        """When a running job will have ended at the latest (its time limit), if it has one."""
        if self.started_at is None or self.time_limit is None:
            return None
        return self.started_at + self.time_limit

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of a job (`--json`, the API)."""
        res = self.resources
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
            "gpus": res.gpus,
            "shared": res.shared,
            "gpu_memory_mb": res.gpu_memory_mb,
            "gpu_pin": list(res.gpu_pin),
            "memory_mb": res.memory_mb,
            "gpu_ids": list(self.gpu_ids),
            "time_limit": self.time_limit,
            "depends_on": list(self.depends_on),
            "dependencies": [{"job": j, "kind": k.value} for j, k in self.dependencies],
            "dependency_mode": self.dependency_mode.value,
            "auto_cancel": self.auto_cancel,
            "begin_at": self.begin_at,
            "group_id": self.group_id,
            "max_concurrent": self.max_concurrent,
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
            "conda_env": self.conda_env,
            "max_retries": self.max_retries,
            "retry_on_timeout": self.retry_on_timeout,
            "attempt": self.attempt,
            "first_attempt": self.first_attempt or self.id,
            "project": self.project,
            "cpus": res.cpus,
            "exclusive": res.exclusive,
            "gpu_model": res.gpu_model,
            "cpu_ids": list(self.cpu_ids),
            "array_job_id": self.array_job_id,
            "submission": self.submission or self.id,
            "max_rss_mb": self.usage.max_rss_mb,
            "cpu_seconds": self.usage.cpu_seconds,
            "gpu_mem_peak_mb": self.usage.gpu_mem_peak_mb,
            "gpu_usage": [gpu.to_dict() for gpu in self.usage.gpus],
            "slurm_job_id": self.slurm_job_id,
            "node": self.node,
        }


def display_name(name: str, command: str, script: str) -> str:
    """The name a job is shown by: its own, else its command's program, else its script's."""
    return name or _first_word(command) or script.rsplit("/", 1)[-1]


def _first_word(command: str) -> str:
    word = command.strip().split(maxsplit=1)[0] if command.strip() else ""
    return word.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as the resource backend sees it: its size and the processes on it."""

    index: int
    name: str
    total_mb: int
    used_mb: int = 0
    processes: tuple[tuple[int, int], ...] = ()  # (pid, used MB) of compute processes
    utilization: int | None = None  # percent, the whole device
    process_util: tuple[tuple[int, int], ...] = ()  # (pid, percent), where the driver says

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "total_mb": self.total_mb,
            "used_mb": self.used_mb,
            "processes": [{"pid": pid, "used_mb": used} for pid, used in self.processes],
            "utilization": self.utilization,
        }


@dataclass(frozen=True)
class JobProcesses:
    """Who a running job's processes are, as the daemon itself saw them at launch (never as
    the job's own files say): a pid names a process only together with its start time and
    the boot it started in, so a pid reused later, or after a reboot, is never signalled."""

    boot_id: str
    wrapper_pid: int
    wrapper_ticks: int | None  # start time in clock ticks since boot
    group_id: int | None = None  # the command's process group: its leader's pid
    group_ticks: int | None = None


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
