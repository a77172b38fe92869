"""The team's rules, applied: projects and queued-job caps at submission, and the quotas
and fair-share one scheduling pass needs (resolved from the config for the jobs at hand).

The rules themselves are pure (core/sharing.py); this module counts what each user and
project runs, has queued and used, from the daemon's memory and the store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gflow.config import Config
from gflow.core.errors import Forbidden
from gflow.core.model import Job
from gflow.core.reservations import Reservation
from gflow.core.sharing import (
    NO_RULES,
    Quota,
    SharingRules,
    decayed_gpu_hours,
    decayed_span,
    gpu_hours_since,
    never_allowed,
)
from gflow.core.spec import JobSpec
from gflow.core.states import JobState
from gflow.store.db import Store

DAY = 86400.0
RECOMPUTE_EVERY = 30.0  # seconds between reads of the history for GPU-hours (cached)
RECOMPUTE_STALE = 2.0  # … or this soon after a GPU job ended
REREAD_ENDED_EVERY = 3600.0  # seconds between full reads of the ended jobs' GPU-hours
HORIZON_HALF_LIVES = 8  # older GPU use is left out: it weighs under 0.4 %


class EndedGpuUsage:
    """Each user's decayed GPU-hours of ended jobs, kept up to date as jobs end instead of
    summed again from weeks of history on every look (a year's store holds ~100,000 GPU
    jobs in the fair-share horizon). Values are held as of one reference time and scaled
    to any other (core.sharing.decayed_span); a full read from the store, at first use and
    hourly, lets what fell out of the horizon go."""

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self._rate = math.log(2) / half_life
        self._reference = 0.0
        self._read_at = float("-inf")
        self._by_uid: dict[int, float] | None = None

    def as_of(self, store: Store, now: float) -> dict[int, float]:
        if self._by_uid is None or now - self._read_at >= REREAD_ENDED_EVERY:
            horizon = now - HORIZON_HALF_LIVES * self.half_life
            self._by_uid = store.decayed_gpu_hours(horizon, now, self.half_life)
            self._reference = self._read_at = now
        scale = math.exp(-self._rate * (now - self._reference))
        return {uid: hours * scale for uid, hours in self._by_uid.items()}

    def add(self, job: Job) -> None:
        """A job that just ended (before the first read, the read will count it)."""
        if self._by_uid is None or job.started_at is None or job.finished_at is None:
            return
        gpus = len(job.gpu_ids)
        if gpus and job.finished_at > job.started_at:
            hours = decayed_span(
                job.started_at, job.finished_at, gpus, self._reference, self.half_life
            )
            self._by_uid[job.uid] = self._by_uid.get(job.uid, 0.0) + hours


def running_gpu_hours(running: Iterable[Job], now: float, half_life: float) -> dict[int, float]:
    """The running jobs' decayed GPU-hours so far."""
    spans = ((j.uid, j.started_at, now, len(j.gpu_ids)) for j in running if j.started_at)
    return decayed_gpu_hours(spans, now, half_life)


def decayed_usage(
    ended: EndedGpuUsage, store: Store, running: Iterable[Job], now: float
) -> dict[int, float]:
    """Ended and running jobs' decayed GPU-hours per user: what fair-share orders by."""
    usage = ended.as_of(store, now)
    for uid, hours in running_gpu_hours(running, now, ended.half_life).items():
        usage[uid] = usage.get(uid, 0.0) + hours
    return usage


def check_submission(
    config: Config, active: Iterable[Job], user: str, uid: int, specs: Sequence[JobSpec]
) -> None:
    """Refuse, all or nothing, a submission the rules forbid: an unknown or missing
    project, more queued jobs than a cap allows, a request no cap could ever let run."""
    _check_projects(config, specs)
    quotas = config.quotas
    if not quotas.any:
        return
    waiting = [j for j in active if j.state in (JobState.QUEUED, JobState.HOLD)]
    mine = sum(1 for j in waiting if j.uid == uid)
    user_quota = quotas.of_user(user)
    cap = user_quota.max_queued_jobs if user_quota is not None else None
    if cap is not None and mine + len(specs) > cap:
        raise Forbidden(
            f"{user} has {mine} of {cap} queued jobs; {len(specs)} more would be too many",
            hint="wait for some to start, or cancel some (gcancel)",
        )
    by_project: dict[str, int] = {}
    for spec in specs:
        by_project[spec.project] = by_project.get(spec.project, 0) + 1
    for project, count in by_project.items():
        quota = quotas.of_project(project)
        if quota is None or quota.max_queued_jobs is None:
            continue
        queued = sum(1 for j in waiting if j.project == project)
        if queued + count > quota.max_queued_jobs:
            raise Forbidden(
                f"project {project} has {queued} of {quota.max_queued_jobs} queued jobs; "
                f"{count} more would be too many"
            )
    for spec in specs:
        caps = [(user, q) for q in (user_quota,) if q is not None]
        project_quota = quotas.of_project(spec.project)
        if project_quota is not None:
            caps.append((f"project {spec.project}", project_quota))
        why = never_allowed(spec.resources.gpus, caps)
        if why:
            raise Forbidden(f"this job could never start: {why}", hint="ask for less")


def _check_projects(config: Config, specs: Sequence[JobSpec]) -> None:
    known = config.known_projects
    hint = f"known projects: {', '.join(known)}" if known else "give one with -P/--project"
    for spec in specs:
        if not spec.project:
            if config.require_project:
                raise Forbidden("this machine requires a project for every job", hint=hint)
        elif known and spec.project not in known:
            raise Forbidden(f"unknown project {spec.project!r}", hint=hint)


@dataclass
class RulesCache:
    """The history-based figures (GPU-hours today, decayed usage), read at most every
    RECOMPUTE_EVERY seconds: a pass runs on every event, the history changes slowly."""

    at: float = float("-inf")
    stale: bool = False  # a GPU job ended since: look again sooner
    today: dict[str | int, float] = field(default_factory=dict)
    projects_today: dict[str | int, float] = field(default_factory=dict)
    usage: dict[int, float] = field(default_factory=dict)
    ended: EndedGpuUsage = field(default_factory=lambda: EndedGpuUsage(Config.fair_share_half_life))


def rules_for(
    config: Config,
    store: Store,
    queued: Sequence[Job],
    running: Sequence[Job],
    now: float,
    cache: RulesCache,
    names: Callable[[int], str],
    reservations: tuple[Reservation, ...] = (),
) -> SharingRules:
    """What this pass needs of the rules, for the users and projects of these jobs."""
    quotas = config.quotas
    if not quotas.any and not config.fair_share:
        return SharingRules(reservations=reservations) if reservations else NO_RULES
    jobs = [*queued, *running]
    user_quotas: dict[int, Quota] = {}
    for uid in {j.uid for j in jobs}:
        quota = quotas.of_user(names(uid))
        if quota is not None:
            user_quotas[uid] = quota
    project_quotas: dict[str, Quota] = {}
    for project in {j.project for j in jobs if j.project}:
        quota = quotas.of_project(project)
        if quota is not None:
            project_quotas[project] = quota
    daily = any(
        q.max_gpu_hours_per_day is not None
        for q in (*user_quotas.values(), *project_quotas.values())
    )
    wait = RECOMPUTE_STALE if cache.stale else RECOMPUTE_EVERY
    if (daily or config.fair_share) and now - cache.at >= wait:
        _recompute(config, store, running, now, cache, daily)
    return SharingRules(
        user_quotas=user_quotas,
        project_quotas=project_quotas,
        user_gpu_hours_today={k: v for k, v in cache.today.items() if isinstance(k, int)},
        project_gpu_hours_today={
            k: v for k, v in cache.projects_today.items() if isinstance(k, str)
        },
        fair_share_usage=cache.usage,
        fair_share=config.fair_share,
        reservations=reservations,
    )


def _recompute(
    config: Config,
    store: Store,
    running: Sequence[Job],
    now: float,
    cache: RulesCache,
    daily: bool,
) -> None:
    if daily:
        spans = store.gpu_spans(now - DAY)
        spans += [
            (j.uid, j.project, j.started_at, now, len(j.gpu_ids))
            for j in running
            if j.started_at is not None
        ]
        cache.today = gpu_hours_since(((u, s, e, g) for u, _, s, e, g in spans), now - DAY, now)
        cache.projects_today = gpu_hours_since(
            ((p, s, e, g) for _, p, s, e, g in spans if p), now - DAY, now
        )
    if config.fair_share:
        cache.usage = decayed_usage(cache.ended, store, running, now)
    cache.at = now
    cache.stale = False


def quota_status(
    config: Config, active: Iterable[Job], store: Store, name: str, uid: int
) -> dict[str, Any]:
    """`gctl quota show`: a user's limits and what they use now."""
    jobs = [j for j in active if j.uid == uid]
    running = [j for j in jobs if j.state is JobState.RUNNING]
    now = time.time()
    spans = [(u, s, e, g) for u, _, s, e, g in store.gpu_spans(now - DAY) if u == uid]
    spans += [(uid, j.started_at, now, len(j.gpu_ids)) for j in running if j.started_at]
    quota = config.quotas.of_user(name)
    return {
        "user": name,
        "limits": quota.to_dict() if quota is not None else None,
        "running_jobs": len(running),
        "running_gpus": sum(len(j.gpu_ids) for j in running),
        "queued_jobs": sum(1 for j in jobs if j.state in (JobState.QUEUED, JobState.HOLD)),
        "gpu_hours_today": gpu_hours_since(spans, now - DAY, now).get(uid, 0.0),
    }


def fair_share_report(
    config: Config,
    store: Store,
    running: Sequence[Job],
    now: float,
    ended: EndedGpuUsage,
    names: Callable[[int], str],
) -> dict[str, Any]:
    """Each user's decayed GPU-hours and share of the total (`gqueue -f FAIRSHARE`,
    `gstats`), whether or not fair-share orders the queue."""
    usage = decayed_usage(ended, store, running, now)
    total = sum(usage.values())
    return {
        "enabled": config.fair_share,
        "half_life": ended.half_life,
        "users": {
            names(uid): {"usage_gpu_hours": hours, "share": hours / total if total else 0.0}
            for uid, hours in sorted(usage.items())
        },
    }
