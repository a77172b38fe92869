"""Why a job waits, is stopping, or ended the way it did: a kind and an optional detail.

Apart from states.py: the CLIs import that on their start path and need none of this.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


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

    A NamedTuple, not a dataclass: hashed and compared in C, as the scheduler does often.
    """

    kind: ReasonKind
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.detail}" if self.detail else self.kind.value

    @classmethod
    def parse(cls, text: str) -> Reason:
        kind, _, detail = text.partition(":")
        return cls(ReasonKind(kind), detail)
