"""Forgetting ended jobs (store/retention.py): by age, by count, oldest first, a slice at a
time, never an active job, payloads shared with a kept job kept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gflow.core.model import Event, Job
from gflow.core.states import JobState
from gflow.store.db import JobFilter, Store
from tests.unit.test_store import new_job


def ended(store: Store, job: Job, at: float) -> None:
    done = replace(job, state=JobState.FINISHED, started_at=at - 1, finished_at=at)
    store.save([(done, Event(job.id, at, "ended", JobState.FINISHED, ""))])


def ids(store: Store) -> list[int]:
    return [j.id for j in store.list_jobs(JobFilter())]


def test_keep_newest_forgets_all_but_the_newest_ended_jobs(store: Store, tmp_path: Path) -> None:
    jobs = store.insert_jobs([new_job(f"job {n}") for n in range(6)], 1.0, tmp_path)
    for n, job in enumerate(jobs[:5]):  # the last one stays Queued
        ended(store, job, 10.0 + n)
    purged = store.purge(None, store.oldest_kept(2))
    assert [j.id for j in purged] == [j.id for j in jobs[:3]]
    assert ids(store) == [j.id for j in jobs[3:]]
    assert store.purge(None, store.oldest_kept(2)) == []


def test_age_and_count_together_and_in_slices(store: Store, tmp_path: Path) -> None:
    jobs = store.insert_jobs([new_job(f"job {n}") for n in range(8)], 1.0, tmp_path)
    for n, job in enumerate(jobs):
        ended(store, job, 100.0 * n)
    # Ended before 250 (jobs 0-2), or older than the newest 6 (jobs 0-1): jobs 0-2.
    first = store.purge(250.0, store.oldest_kept(6), limit=2)
    assert [j.id for j in first] == [j.id for j in jobs[:2]]
    rest = store.purge(250.0, store.oldest_kept(6), limit=2)
    assert [j.id for j in rest] == [jobs[2].id]
    assert ids(store) == [j.id for j in jobs[3:]]


def test_an_arrays_shared_payload_stays_while_one_of_its_jobs_does(
    store: Store, tmp_path: Path
) -> None:
    env = {"A": "1"}
    jobs = store.insert_jobs([new_job("task", env=env) for _ in range(3)], 1.0, tmp_path)
    for n, job in enumerate(jobs[:2]):
        ended(store, job, 10.0 + n)
    store.purge(None, store.oldest_kept(1))
    assert store.get_launch_data(jobs[2].id) == ({"A": "1"}, "")
    ended(store, jobs[2], 20.0)
    store.purge(30.0)
    assert store.query("SELECT COUNT(*) FROM payloads") == [(0,)]
