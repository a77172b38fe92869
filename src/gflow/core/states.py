"""Job states and the nine allowed transitions (why a job waits or ended: reasons.py).

Every CLI imports this on its start path: enums only, no typing."""

from __future__ import annotations

from enum import StrEnum

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
