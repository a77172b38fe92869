"""Job states, the reasons a job waits or ended, and the nine allowed transitions."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from gflow.core.errors import InvalidInput


class JobState(StrEnum):
    """Where a job is. The value is what the database stores and the API returns."""

    QUEUED = "Queued"
    HOLD = "Hold"
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"

    @property
    def short(self) -> str:
        return _SHORT[self]

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def is_ended(self) -> bool:
        return self in ENDED_STATES

    @classmethod
    def parse(cls, text: str) -> JobState:
        """Accept 'Running', 'running', 'R', 'r' … (case-insensitive)."""
        key = text.strip().lower()
        for state in cls:
            if key in (state.value.lower(), state.short.lower()):
                return state
        names = ", ".join(f"{s.value} ({s.short})" for s in cls)
        raise InvalidInput(f"unknown job state {text!r}", hint=f"valid states: {names}")


_SHORT = {
    JobState.QUEUED: "PD",
    JobState.HOLD: "H",
    JobState.RUNNING: "R",
    JobState.FINISHED: "CD",
    JobState.FAILED: "F",
    JobState.CANCELLED: "CA",
    JobState.TIMEOUT: "TO",
}

ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.HOLD, JobState.RUNNING})
WAITING_STATES = frozenset({JobState.QUEUED, JobState.HOLD})
ENDED_STATES = frozenset({JobState.FINISHED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT})

# gflow's nine transitions, exactly. Retries and redo create new jobs instead.
TRANSITIONS: frozenset[tuple[JobState, JobState]] = frozenset(
    {
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.QUEUED, JobState.HOLD),
        (JobState.QUEUED, JobState.CANCELLED),
        (JobState.HOLD, JobState.QUEUED),
        (JobState.HOLD, JobState.CANCELLED),
        (JobState.RUNNING, JobState.FINISHED),
        (JobState.RUNNING, JobState.FAILED),
        (JobState.RUNNING, JobState.CANCELLED),
        (JobState.RUNNING, JobState.TIMEOUT),
    }
)


def can_transition(src: JobState, dst: JobState) -> bool:
    return (src, dst) in TRANSITIONS


class ReasonKind(StrEnum):
    """Why a job waits, is stopping, or ended the way it did."""

    # waiting
    RESOURCES = "Resources"  # detail: GPU, GPUMemory or HostMemory
    DEPENDENCY = "Dependency"
    BEGIN_TIME = "BeginTime"
    GROUP_LIMIT = "GroupLimit"
    PRIORITY = "Priority"  # could run, but would delay the reserved higher-priority job
    QUOTA = "Quota"  # detail: running_jobs, running_gpus or gpu_hours_per_day
    RESERVATION = "Reservation"  # its GPUs are reserved for someone else
    HELD = "Held"
    UNAVAILABLE = "Unavailable"  # detail: what cannot be reached (Slurm)
    SLURM = "Slurm"  # detail: Slurm's own reason, where ours has no word for it
    # running
    STOPPING = "Stopping"
    # ended
    COMPLETED = "Completed"
    NON_ZERO_EXIT = "NonZeroExit"
    SIGNAL = "Signal"
    TIME_LIMIT = "TimeLimit"
    MEMORY_LIMIT = "MemoryLimit"
    CANCELLED_BY_USER = "CancelledByUser"
    DEPENDENCY_FAILED = "DependencyFailed"
    LAUNCH_FAILED = "LaunchFailed"
    LOST = "Lost"
    NODE_FAIL = "NodeFail"


class Reason(NamedTuple):
    """A reason with an optional detail, shown as 'DependencyFailed:3' or 'Resources:GPU'.

    A NamedTuple, not a dataclass: the CLIs import this module, and dataclasses would add
    ~10 ms to every command's start.
    """

    kind: ReasonKind
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.detail}" if self.detail else self.kind.value

    @classmethod
    def parse(cls, text: str) -> Reason:
        kind, _, detail = text.partition(":")
        return cls(ReasonKind(kind), detail)
