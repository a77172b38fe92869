"""A team's rules for one machine: quotas per user and per project, and fair-share.

Pure: the daemon resolves the configured rules to the users and projects at hand, counts
what each runs and used, and the scheduler (core/policy.py) asks these functions whether a
job may start and in what order equal-priority jobs go.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from gflow.core.model import Job
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.reservations import Reservation

QUOTA_KEYS = ("max_running_jobs", "max_running_gpus", "max_queued_jobs", "max_gpu_hours_per_day")


@dataclass(frozen=True)
class Quota:
    """Caps for one user or one project; None: no cap."""

    max_running_jobs: int | None = None
    max_running_gpus: int | None = None
    max_queued_jobs: int | None = None
    max_gpu_hours_per_day: float | None = None

    def to_dict(self) -> dict[str, int | float | None]:
        return {key: getattr(self, key) for key in QUOTA_KEYS}


NO_QUOTA = Quota()


@dataclass(frozen=True)
class SharingRules:
    """What one scheduling pass needs of the rules, resolved for the jobs at hand."""

    user_quotas: Mapping[int, Quota] = field(default_factory=dict)  # by uid
    project_quotas: Mapping[str, Quota] = field(default_factory=dict)
    user_gpu_hours_today: Mapping[int, float] = field(default_factory=dict)  # last 24 h
    project_gpu_hours_today: Mapping[str, float] = field(default_factory=dict)
    fair_share_usage: Mapping[int, float] = field(default_factory=dict)  # decayed GPU-hours
    fair_share: bool = False
    reservations: tuple[Reservation, ...] = ()  # not yet over


NO_RULES = SharingRules()


@dataclass
class RunningCounts:
    """Running jobs and GPUs per user and per project, during one pass (mutable scratch)."""

    user_jobs: dict[int, int] = field(default_factory=dict)
    user_gpus: dict[int, int] = field(default_factory=dict)
    project_jobs: dict[str, int] = field(default_factory=dict)
    project_gpus: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, running: Iterable[Job]) -> RunningCounts:
        counts = cls()
        for job in running:
            counts.add(job)
        return counts

    def add(self, job: Job) -> None:
        self.user_jobs[job.uid] = self.user_jobs.get(job.uid, 0) + 1
        self.user_gpus[job.uid] = self.user_gpus.get(job.uid, 0) + job.gpus
        if job.project:
            self.project_jobs[job.project] = self.project_jobs.get(job.project, 0) + 1
            self.project_gpus[job.project] = self.project_gpus.get(job.project, 0) + job.gpus


def quota_reason(job: Job, rules: SharingRules, counts: RunningCounts) -> Reason | None:
    """Why the rules keep this job waiting now (Quota:running_jobs …), or None."""
    checks: list[tuple[Quota | None, int, int, float]] = [
        (
            rules.user_quotas.get(job.uid),
            counts.user_jobs.get(job.uid, 0),
            counts.user_gpus.get(job.uid, 0),
            rules.user_gpu_hours_today.get(job.uid, 0.0),
        )
    ]
    if job.project:
        checks.append(
            (
                rules.project_quotas.get(job.project),
                counts.project_jobs.get(job.project, 0),
                counts.project_gpus.get(job.project, 0),
                rules.project_gpu_hours_today.get(job.project, 0.0),
            )
        )
    for quota, jobs, gpus, hours in checks:
        if quota is None:
            continue
        if quota.max_running_jobs is not None and jobs >= quota.max_running_jobs:
            return Reason(ReasonKind.QUOTA, "running_jobs")
        if quota.max_running_gpus is not None and gpus + job.gpus > quota.max_running_gpus:
            return Reason(ReasonKind.QUOTA, "running_gpus")
        if quota.max_gpu_hours_per_day is not None and hours >= quota.max_gpu_hours_per_day:
            return Reason(ReasonKind.QUOTA, "gpu_hours_per_day")
    return None


def never_allowed(gpus: int, quotas: Iterable[tuple[str, Quota]]) -> str | None:
    """Why a request for `gpus` GPUs could never start under these caps, or None."""
    for who, quota in quotas:
        if quota.max_running_gpus is not None and gpus > quota.max_running_gpus:
            return f"{who} may run at most {quota.max_running_gpus} GPU(s) at once"
        if quota.max_running_jobs == 0:
            return f"{who} may run no jobs"
    return None


def fair_share_order(jobs: Sequence[Job], usage: Mapping[int, float]) -> list[Job]:
    """Higher priority first; within a priority, users who used fewer GPU-hours recently
    first; then submission order. Three stable sorts, two of them keyed in C."""
    by_id = sorted(jobs, key=attrgetter("id"))
    by_usage = sorted(by_id, key=lambda j: usage.get(j.uid, 0.0))
    return sorted(by_usage, key=attrgetter("priority"), reverse=True)


def decayed_gpu_hours(
    spans: Iterable[tuple[int, float, float, int]], now: float, half_life: float
) -> dict[int, float]:
    """Each user's GPU-hours, an hour `half_life` seconds ago counting half: `spans` are
    (uid, start, end, gpus), a running job's end being now. Credited as jobs run."""
    usage: dict[int, float] = {}
    for uid, start, end, gpus in spans:
        end = min(end, now)
        if gpus > 0 and end > start:
            usage[uid] = usage.get(uid, 0.0) + decayed_span(start, end, gpus, now, half_life)
    return usage


def decayed_span(start: float, end: float, gpus: int, at: float, half_life: float) -> float:
    """One job's GPU-hours as of `at`: the integral of gpus * exp(-rate * (at - t)) dt over
    [start, end]. Also for an `at` before the end (a weight above 1): the value as of one
    time, times exp(-rate * dt), is the value as of another."""
    rate = math.log(2) / half_life
    return gpus * (math.exp(-rate * (at - end)) - math.exp(-rate * (at - start))) / rate / 3600


def gpu_hours_since(
    spans: Iterable[tuple[str | int, float, float, int]], since: float, now: float
) -> dict[str | int, float]:
    """GPU-hours per key used within [since, now] (a day's worth, for the daily caps)."""
    hours: dict[str | int, float] = {}
    for key, start, end, gpus in spans:
        overlap = min(end, now) - max(start, since)
        if gpus > 0 and overlap > 0:
            hours[key] = hours.get(key, 0.0) + gpus * overlap / 3600
    return hours
