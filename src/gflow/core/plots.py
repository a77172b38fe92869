"""The dashboard's plots of the last day or week, from jobs' times (pure: the caller
passes the jobs and the time).

Each series is sampled at the end of each of `buckets` equal steps of the window: the
queue length and GPUs in use at that moment, the median wait of the jobs that started in
the step and the median run time of those that ended in it; GPU-hours are summed over
the whole window, by user and by project. GPUs in use counts GPUs, not jobs: two shared
jobs on one GPU make one GPU in use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median
from typing import Any

WINDOWS = {"day": (86400.0, 48), "week": (7 * 86400.0, 84)}  # length, steps


@dataclass(frozen=True)
class JobTimes:
    submitted: float
    started: float | None
    finished: float | None
    gpus: int
    user: str
    project: str
    gpu_ids: tuple[int, ...] = ()  # which GPUs it held (none known: `gpus` unnamed ones)


@dataclass(frozen=True)
class Timeline:
    start: float
    step: float
    queue_length: tuple[int, ...]
    gpus_in_use: tuple[int, ...]
    wait_median: tuple[float | None, ...]
    run_median: tuple[float | None, ...]
    gpu_hours_by_user: tuple[tuple[str, float], ...]
    gpu_hours_by_project: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "step": self.step,
            "queue_length": list(self.queue_length),
            "gpus_in_use": list(self.gpus_in_use),
            "wait_median": list(self.wait_median),
            "run_median": list(self.run_median),
            "gpu_hours_by_user": [list(p) for p in self.gpu_hours_by_user],
            "gpu_hours_by_project": [list(p) for p in self.gpu_hours_by_project],
        }


def timeline(jobs: Iterable[JobTimes], now: float, window: float, buckets: int) -> Timeline:
    """The series over [now - window, now]; O(jobs + buckets)."""
    start, step = now - window, window / buckets
    queued = [0] * (buckets + 1)  # differences: +1 where an interval begins, -1 after it
    holders: dict[int, list[int]] = {}  # GPU index -> differences of the jobs holding it
    unnamed = [0] * (buckets + 1)  # GPUs of jobs that did not say which
    waits: list[list[float]] = [[] for _ in range(buckets)]
    runs: list[list[float]] = [[] for _ in range(buckets)]
    by_user: dict[str, float] = {}
    by_project: dict[str, float] = {}

    def first_sample(t: float) -> int:
        """The index of the first sample time (start + (k+1)*step) at or after t."""
        return min(buckets, max(0, math.ceil((t - start) / step) - 1))

    def add(series: list[int], begin: float, end: float | None, amount: int) -> None:
        lo, hi = first_sample(begin), buckets if end is None else first_sample(end)
        if lo < hi:  # the samples k with begin <= t_k < end
            series[lo] += amount
            series[hi] -= amount

    for job in jobs:
        waited_until = job.started if job.started is not None else job.finished
        add(queued, job.submitted, waited_until, 1)
        if job.started is None:
            continue
        for index in job.gpu_ids:
            add(holders.setdefault(index, [0] * (buckets + 1)), job.started, job.finished, 1)
        if not job.gpu_ids:
            add(unnamed, job.started, job.finished, job.gpus)
        if start <= job.started < now:
            waits[int((job.started - start) // step)].append(job.started - job.submitted)
        if job.finished is not None and start <= job.finished < now:
            runs[int((job.finished - start) // step)].append(job.finished - job.started)
        overlap = min(job.finished or now, now) - max(job.started, start)
        if overlap > 0 and job.gpus:
            hours = overlap * job.gpus / 3600
            by_user[job.user] = by_user.get(job.user, 0.0) + hours
            project = job.project or "(none)"
            by_project[project] = by_project.get(project, 0.0) + hours
    return Timeline(
        start=start,
        step=step,
        queue_length=_running_sum(queued, buckets),
        gpus_in_use=_gpus_in_use(holders, unnamed, buckets),
        wait_median=tuple(median(w) if w else None for w in waits),
        run_median=tuple(median(r) if r else None for r in runs),
        gpu_hours_by_user=_ranked(by_user),
        gpu_hours_by_project=_ranked(by_project),
    )


def _gpus_in_use(
    holders: dict[int, list[int]], unnamed: list[int], buckets: int
) -> tuple[int, ...]:
    """At each sample: the GPUs at least one job held, and the unnamed ones."""
    held = [_running_sum(differences, buckets) for differences in holders.values()]
    extra = _running_sum(unnamed, buckets)
    return tuple(sum(1 for counts in held if counts[k] > 0) + extra[k] for k in range(buckets))


def _running_sum(differences: list[int], buckets: int) -> tuple[int, ...]:
    total, out = 0, []
    for k in range(buckets):
        total += differences[k]
        out.append(total)
    return tuple(out)


def _ranked(hours: dict[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(((k, round(v, 3)) for k, v in hours.items()), key=lambda p: -p[1]))
