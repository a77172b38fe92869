"""Big submissions written in slices: invisible until published, gone if never published."""

from __future__ import annotations

from pathlib import Path

from gflow.core.spec import JobSpec
from gflow.core.states import ACTIVE_STATES
from gflow.store.db import JobFilter, NewJob, Store
from gflow.store.submissions import Payloads


def new_jobs(count: int) -> list[NewJob]:
    env = {"PATH": "/bin"}
    return [
        NewJob(
            JobSpec.from_dict({"command": "true", "workdir": "/tmp", "env": env, "hold": True}),
            "alice",
            1000,
            (),
            "tmux",
        )
        for _ in range(count)
    ]


def test_a_staged_submission_is_invisible_until_published(store: Store, tmp_path: Path) -> None:
    (before,) = store.insert_jobs(new_jobs(1), 1.0, tmp_path)
    first = store.stage(4)
    payloads = Payloads()
    store.insert_staged(first, 0, new_jobs(2), 2.0, tmp_path, payloads)
    (during,) = store.insert_jobs(new_jobs(1), 2.5, tmp_path)  # someone else meanwhile
    store.insert_staged(first, 2, new_jobs(2), 2.0, tmp_path, payloads)
    seen = store.list_jobs(JobFilter(states=ACTIVE_STATES))
    assert [job.id for job in seen] == [before.id, during.id]
    assert store.get_job(first) is None and store.states_of([first]) == {}
    assert sum(store.count_by_state().values()) == 2
    assert store.nth_last_submission_of(1000, 0) == [during.id]  # "@" is not the staged one
    store.publish(first)
    ids = [job.id for job in store.list_jobs(JobFilter())]
    assert ids == sorted([before.id, during.id, *range(first, first + 4)])
    assert during.id == first + 4  # the array's ids stay contiguous


def test_a_submission_cut_short_is_gone_at_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "gflow.db"
    store = Store.open(path)
    first = store.stage(3)
    store.insert_staged(first, 0, new_jobs(2), 1.0, tmp_path, Payloads())
    store.close()  # the daemon died before the last slice
    again = Store.open(path)
    try:
        assert again.list_jobs(JobFilter()) == []
        (next_job,) = again.insert_jobs(new_jobs(1), 2.0, tmp_path)
        assert next_job.id == first + 3  # reserved ids are skipped, never reused
    finally:
        again.close()


def test_one_payload_row_for_an_arrays_shared_environment(store: Store, tmp_path: Path) -> None:
    first = store.stage(10)
    payloads = Payloads()
    jobs = new_jobs(10)
    store.insert_staged(first, 0, jobs[:5], 1.0, tmp_path, payloads)
    store.insert_staged(first, 5, jobs[5:], 1.0, tmp_path, payloads)
    store.publish(first)
    assert len(payloads.by_text) == 1
    assert store.get_launch_data(first + 9)[0] == {"PATH": "/bin"}
