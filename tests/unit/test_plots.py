"""The dashboard's plots (core/plots.py): samples at the end of each step."""

from __future__ import annotations

from gflow.core.plots import JobTimes, timeline


def job(
    submitted: float, started: float | None, finished: float | None, gpus: int = 1, user: str = "a"
) -> JobTimes:
    return JobTimes(submitted, started, finished, gpus, user, "")


def test_queue_length_and_gpus_in_use_at_each_sample() -> None:
    jobs = [job(0, 2500, 5500, gpus=2), job(1500, None, None), job(100, None, 900)]
    t = timeline(jobs, now=8000, window=8000, buckets=8)  # samples at 1000, 2000 … 8000
    assert t.queue_length == (1, 2, 1, 1, 1, 1, 1, 1)
    assert t.gpus_in_use == (0, 0, 2, 2, 2, 0, 0, 0)


def test_waits_and_runs_fall_in_the_step_they_happened_and_hours_are_clipped() -> None:
    jobs = [job(-5000, -3000, 1500, gpus=1, user="b"), job(0, 2500, 5500, gpus=2)]
    t = timeline(jobs, now=8000, window=8000, buckets=8)
    assert t.wait_median[2] == 2500 and t.wait_median[0] is None
    assert t.run_median[1] == 4500 and t.run_median[5] == 3000
    assert dict(t.gpu_hours_by_user) == {"a": round(2 * 3000 / 3600, 3), "b": round(1500 / 3600, 3)}
    assert t.gpu_hours_by_user[0][0] == "a"  # most first
    assert dict(t.gpu_hours_by_project) == {"(none)": round(7500 / 3600, 3)}


def test_a_running_job_counts_until_now() -> None:
    t = timeline([job(0, 10, None, gpus=1)], now=3600, window=3600, buckets=4)
    assert t.gpus_in_use == (1, 1, 1, 1)
    assert dict(t.gpu_hours_by_user) == {"a": round(3590 / 3600, 3)}


def test_gpus_in_use_counts_each_gpu_once_however_many_jobs_share_it() -> None:
    shared = [JobTimes(0, 10, None, 1, "a", "", (0,)), JobTimes(0, 10, None, 1, "b", "", (0,))]
    whole = JobTimes(0, 10, 2500, 2, "c", "", (1, 2))
    t = timeline([*shared, whole], now=4000, window=4000, buckets=4)
    assert t.gpus_in_use == (3, 3, 1, 1)
    assert dict(t.gpu_hours_by_user)["c"] == round(2 * 2490 / 3600, 3)
