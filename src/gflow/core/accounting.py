"""Job accounting (`gstats`): totals per state, added up from wherever they were kept.

The store keeps per-day totals of ended jobs (they outlive the jobs, which may be purged)
and counts the active ones from the jobs themselves; here those pieces become one summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gflow.core.states import ENDED_STATES, JobState


@dataclass(frozen=True)
class Tally:
    """Some jobs of one state: how many, how many started and ran to an end, and their
    summed waits (submission to start), runs (start to end) and GPU time."""

    state: JobState
    jobs: int
    started: int
    wait_seconds: float
    ran: int
    run_seconds: float
    gpu_seconds: float


@dataclass(frozen=True)
class LongRun:
    """One of the longest runs: where the GPU time went."""

    id: int
    name: str
    runtime_seconds: float
    gpus: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "runtime_seconds": self.runtime_seconds,
            "gpus": self.gpus,
        }


def summary(tallies: Iterable[Tally], longest: Iterable[LongRun]) -> dict[str, Any]:
    """gstats' figures: counts per state, average wait and run, GPU-hours, success rate."""
    counts = {state.value: 0 for state in JobState}
    started = ran = 0
    wait = run = gpu = 0.0
    for tally in tallies:
        counts[tally.state.value] += tally.jobs
        started += tally.started
        ran += tally.ran
        wait += tally.wait_seconds
        run += tally.run_seconds
        gpu += tally.gpu_seconds
    ended = sum(counts[s.value] for s in ENDED_STATES)
    return {
        "total": sum(counts.values()),
        "counts": counts,
        "avg_wait_seconds": wait / started if started else None,
        "avg_run_seconds": run / ran if ran else None,
        "gpu_hours": gpu / 3600,
        "success_rate": counts[JobState.FINISHED.value] / ended if ended else None,
        "top_jobs": [job.to_dict() for job in longest],
    }
