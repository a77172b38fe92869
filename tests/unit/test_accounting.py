"""gstats' figures from the per-day totals (schema v12) equal counting the jobs one by one,
survive the purge of the jobs, and are rebuilt for a database made before them."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from statistics import mean

from gflow.core.model import Event, Job
from gflow.core.states import ACTIVE_STATES, ENDED_STATES, JobState
from gflow.store.accounting import DAY, StatsFilter
from gflow.store.db import JobFilter, Store
from tests.unit.test_store import new_job

T0 = 1_790_000_000.0  # some midnight-unaligned time
ENDS = [JobState.FINISHED, JobState.FAILED, JobState.FINISHED, JobState.TIMEOUT]


def history(store: Store, tmp_path: Path, days: int = 6) -> list[Job]:
    """Three jobs a day (every 8 hours) for some days: ended ones, a cancelled-while-queued
    one, and at the end one running and one still queued."""
    jobs: list[Job] = []
    for n in range(days * 3):
        at = T0 + n * 8 * 3600
        spec = {"project": "vision" if n % 2 else ""}
        (job,) = store.insert_jobs([new_job(f"job {n}", **spec)], at, tmp_path)
        state = ENDS[n % 4] if n % 5 else JobState.CANCELLED
        started = None if state is JobState.CANCELLED else at + 60 * (n + 1)
        ended = replace(
            job,
            state=state,
            started_at=started,
            finished_at=(started or at) + 600 * (n % 7 + 1),
            gpu_ids=tuple(range(n % 3)),
        )
        store.save([(ended, Event(job.id, at, "ended", state, ""))])
        jobs.append(ended)
    (running, queued) = store.insert_jobs([new_job("run"), new_job("wait")], T0, tmp_path)
    running = replace(running, state=JobState.RUNNING, started_at=T0 + 30, gpu_ids=(0,))
    store.save([(running, Event(running.id, T0, "started", JobState.RUNNING, ""))])
    return [*jobs, running, queued]


def counted(jobs: list[Job]) -> dict[str, object]:
    """The figures counted job by job, as gstats did before the totals."""
    started = [j for j in jobs if j.started_at is not None]
    ran = [j for j in started if j.finished_at is not None]
    ended = [j for j in jobs if j.state in ENDED_STATES]
    return {
        "total": len(jobs),
        "counts": {s.value: sum(j.state is s for j in jobs) for s in JobState},
        "avg_wait_seconds": mean(j.started_at - j.submitted_at for j in started)  # type: ignore[operator]
        if started
        else None,
        "avg_run_seconds": mean(j.finished_at - j.started_at for j in ran) if ran else None,  # type: ignore[operator]
        "gpu_hours": sum(len(j.gpu_ids) * (j.finished_at - j.started_at) for j in ran) / 3600,  # type: ignore[operator]
        "success_rate": sum(j.state is JobState.FINISHED for j in ended) / len(ended),
    }


def figures(store: Store, where: StatsFilter) -> dict[str, object]:
    stats = store.stats(where)
    del stats["top_jobs"]
    return rounded(stats)


def rounded(stats: dict[str, object]) -> dict[str, object]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in stats.items()}


def test_totals_equal_counting_every_job(store: Store, tmp_path: Path) -> None:
    jobs = history(store, tmp_path)
    assert figures(store, StatsFilter()) == rounded(counted(jobs))
    vision = [j for j in jobs if j.project == "vision"]
    assert figures(store, StatsFilter(uid=1000, project="vision")) == rounded(counted(vision))
    assert store.stats(StatsFilter(uid=4242))["total"] == 0


def test_since_counts_the_partial_first_day_from_the_jobs(store: Store, tmp_path: Path) -> None:
    jobs = history(store, tmp_path)
    since = T0 + 2.5 * DAY  # half-way through a day: part from the jobs, part from totals
    recent = [j for j in jobs if j.submitted_at >= since]
    assert figures(store, StatsFilter(since=since)) == rounded(counted(recent))


def test_longest_runs_are_the_longest_first(store: Store, tmp_path: Path) -> None:
    jobs = history(store, tmp_path)
    ran = [j for j in jobs if j.started_at is not None and j.finished_at is not None]
    ran.sort(key=lambda j: j.finished_at - j.started_at, reverse=True)  # type: ignore[operator]
    top = store.stats(StatsFilter())["top_jobs"]
    assert [t["id"] for t in top] == [j.id for j in ran[:5]]
    assert top[0]["runtime_seconds"] == ran[0].finished_at - ran[0].started_at  # type: ignore[operator]


def test_accounting_outlives_the_purge_of_the_jobs(store: Store, tmp_path: Path) -> None:
    jobs = history(store, tmp_path)
    before = figures(store, StatsFilter())
    purged = store.purge(T0 + 100 * DAY)
    assert len(purged) == sum(j.state in ENDED_STATES for j in jobs)
    assert [j.state for j in store.list_jobs(JobFilter())] == [JobState.RUNNING, JobState.QUEUED]
    assert figures(store, StatsFilter()) == before


def test_a_database_from_before_the_totals_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "gflow.db"
    store = Store.open(path)
    jobs = history(store, tmp_path)
    store.close()
    conn = sqlite3.connect(path)  # undo migrations 12 to 14, as an older gflow left the file
    conn.executescript(
        "DROP INDEX jobs_by_finished;"
        " DROP TRIGGER job_ended; DROP TRIGGER job_inserted_ended; DROP TABLE daily_totals;"
        " DROP INDEX jobs_active; DROP INDEX jobs_by_runtime; DROP INDEX jobs_gpu_ended;"
        " ALTER TABLE jobs DROP COLUMN slurm_job_id; ALTER TABLE jobs DROP COLUMN node;"
        " ALTER TABLE jobs DROP COLUMN slurm_handing; PRAGMA user_version = 11;"
    )
    conn.close()
    store = Store.open(path)
    try:
        assert figures(store, StatsFilter()) == rounded(counted(jobs))
    finally:
        store.close()


def test_a_limit_takes_the_first_or_the_last_jobs_in_the_query(
    store: Store, tmp_path: Path
) -> None:
    ids = [j.id for j in history(store, tmp_path, days=2)]
    assert [j.id for j in store.list_jobs(JobFilter(limit=2))] == ids[:2]
    assert [j.id for j in store.list_jobs(JobFilter(limit=2, last=True))] == ids[-2:]
    active = store.list_jobs(JobFilter(states=ACTIVE_STATES, uid=1000, limit=1, last=True))
    assert [j.id for j in active] == ids[-1:]
