"""What keeps the daemon's memory small with 10,000 jobs (SPEC §11: RSS ≤ 80 MB)."""

from __future__ import annotations

import json
from pathlib import Path

from gflow.core.spec import JobSpec
from gflow.daemon.app import SharedStrings
from gflow.daemon.memory import release_free_memory
from gflow.store.db import JobFilter, NewJob, Store


def test_equal_string_objects_decode_to_one_dict() -> None:
    """An array's jobs share one decoded environment; other objects are decoded as usual."""
    env = {"HOME": "/home/a", "PATH": "/usr/bin"}
    body = json.dumps({"jobs": [{"env": env, "array_task_id": i} for i in range(3)]})
    jobs = json.loads(body, object_pairs_hook=SharedStrings())["jobs"]
    assert jobs[0]["env"] == env and jobs[0]["env"] is jobs[1]["env"] is jobs[2]["env"]
    assert [job["array_task_id"] for job in jobs] == [0, 1, 2]


def test_values_that_compare_equal_keep_their_types() -> None:
    """1, 1.0 and true are equal in Python: such objects are never shared."""
    body = '[{"a": 1}, {"a": true}, {"a": 1.0}, {"a": "1"}, {"a": [1]}, {"a": [1]}]'
    decoded = json.loads(body, object_pairs_hook=SharedStrings())
    assert [type(item["a"]) for item in decoded] == [int, bool, float, str, list, list]
    assert decoded[4] is not decoded[5]


def test_release_free_memory_can_always_be_called() -> None:
    """Where the C library has no malloc_trim it does nothing; it never raises."""
    release_free_memory()
    release_free_memory()


def test_stored_jobs_share_repeated_values(tmp_path: Path) -> None:
    """Jobs read back hold no per-job dict and share equal strings and requests, so an
    array of 10,000 costs ~0.5 KB a job in memory."""
    store = Store.open(tmp_path / "gflow.db")
    try:
        spec = JobSpec(command="python train.py", script="", workdir="/work/x", env={"A": "1"})
        store.insert_jobs([NewJob(spec, "alice", 1000, (), "tmux")] * 3, 1.0, tmp_path)
        first, *others = store.list_jobs(JobFilter())
    finally:
        store.close()
    assert not hasattr(first, "__dict__")
    for job in others:
        assert job.command is first.command and job.workdir is first.workdir
        assert job.user is first.user and job.resources is first.resources
