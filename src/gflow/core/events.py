"""Events as the outside world sees them: one per committed change, with the id the events
table gave it (ids only grow), and the notification names each one answers to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gflow.core.errors import InvalidInput

SYSTEM_JOB = 0  # job_id of events that belong to no job (daemon start, GPU changes)

# Names a webhook or e-mail target may subscribe to (SPEC §8, issue 17).
NOTIFICATION_NAMES = frozenset(
    {
        "job_submitted",
        "job_started",
        "job_finished",
        "job_failed",
        "job_timeout",
        "job_cancelled",
        "job_held",
        "job_released",
        "job_updated",
        "job_retried",
        "reservation_created",
        "reservation_cancelled",
        "gpu_available",
        "daemon_started",
        "ended",
        "*",
    }
)
_ENDED = {
    "Finished": "job_finished",
    "Failed": "job_failed",
    "Timeout": "job_timeout",
    "Cancelled": "job_cancelled",
}
_BY_KIND = {
    "started": "job_started",
    "held": "job_held",
    "released": "job_released",
    "updated": "job_updated",
    "limit": "job_updated",
    "cancelled": "job_cancelled",
    "gpus": "gpus_changed",
    "gpu_available": "gpu_available",
    "gpu_blocked": "gpu_blocked",
    "daemon_started": "daemon_started",
    "notify_test": "notify_test",
    "reservation_created": "reservation_created",
    "reservation_cancelled": "reservation_cancelled",
}


@dataclass(frozen=True)
class StreamEvent:
    """One row of the events table, with the job's owner (None once the job is purged)."""

    id: int
    job_id: int
    at: float
    kind: str
    state: str  # a JobState's value, or "" for an event of no job
    detail: str
    user: str | None = None
    uid: int | None = None

    @property
    def name(self) -> str:
        """The notification name: job_submitted, job_failed, daemon_started …"""
        if self.kind == "submitted":
            return "job_retried" if self.detail.startswith("attempt ") else "job_submitted"
        if self.kind == "ended":
            return _ENDED.get(self.state, "job_failed")
        return _BY_KIND.get(self.kind, f"job_{self.kind}")

    @property
    def is_end(self) -> bool:
        return self.name in _ENDED.values() and self.kind in ("ended", "cancelled")

    def matches(self, names: frozenset[str]) -> bool:
        """Does a target subscribed to these names want this event?"""
        return "*" in names or self.name in names or ("ended" in names and self.is_end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job_id": self.job_id,
            "at": self.at,
            "kind": self.kind,
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "user": self.user,
        }


def parse_event_names(text: str, what: str = "event") -> frozenset[str]:
    """'job_failed,ended' -> its names; an unknown one is bad input."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - NOTIFICATION_NAMES)
    if unknown or not names:
        raise InvalidInput(
            f"unknown {what} name {unknown[0]!r}" if unknown else f"no {what} names given",
            hint="known: " + ", ".join(sorted(NOTIFICATION_NAMES)),
        )
    return names
