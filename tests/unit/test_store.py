"""gflow.store.db.Store and JobSpec validation: SQLite state, transactions, ids (SPEC §2, §7)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gflow.core.errors import InvalidInput
from gflow.core.model import Event, Job, JobSpec
from gflow.core.states import JobState, Reason, ReasonKind
from gflow.store.db import JobFilter, NewJob, Store, StoreError
from gflow.store.schema import SCHEMA_VERSION


def new_job(command: str = "echo hi", **spec: Any) -> NewJob:
    """A NewJob for user alice (uid 1000) with a validated-looking spec."""
    fields: dict[str, Any] = {"command": command, "script": "", "workdir": "/tmp", "env": {}}
    fields.update(spec)
    return NewJob(JobSpec(**fields), user="alice", uid=1000, depends_on=(), executor="tmux")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "gflow.db")
    try:
        yield opened
    finally:
        opened.close()


def count(path: Path, table: str) -> int:
    """Rows in a table, read through a separate connection (what is really on disk)."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


# ---- opening -------------------------------------------------------------------------------


def test_open_creates_the_schema_at_the_current_version(tmp_path: Path) -> None:
    """A new database gets the jobs and events tables and user_version == SCHEMA_VERSION."""
    path = tmp_path / "gflow.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"jobs", "events"} <= tables
    finally:
        conn.close()


def test_open_uses_wal_journal_mode(store: Store, tmp_path: Path) -> None:
    """The database is in WAL mode (SPEC §7)."""
    conn = sqlite3.connect(tmp_path / "gflow.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_reopening_keeps_the_jobs(tmp_path: Path) -> None:
    """Closing and reopening an up-to-date database keeps its contents and runs no migration."""
    path = tmp_path / "gflow.db"
    first = Store.open(path)
    first.insert_jobs([new_job(), new_job()], 1.0, tmp_path / "logs")
    first.close()
    second = Store.open(path)
    try:
        assert [job.id for job in second.list_jobs(JobFilter())] == [1, 2]
    finally:
        second.close()


def test_newer_schema_version_is_refused_and_the_file_left_unchanged(tmp_path: Path) -> None:
    """user_version above SCHEMA_VERSION raises StoreError and does not touch the file."""
    path = tmp_path / "gflow.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(SCHEMA_VERSION + 1) in str(caught.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("size", [1, 100, 4096, 65536])
def test_garbage_file_is_refused_and_left_unchanged(tmp_path: Path, size: int) -> None:
    """A file of random bytes (of any size) raises StoreError and is not overwritten."""
    path = tmp_path / "gflow.db"
    garbage = random.Random(size).randbytes(size)
    path.write_bytes(garbage)
    with pytest.raises(StoreError):
        Store.open(path)
    assert path.read_bytes() == garbage


def test_database_with_a_corrupt_page_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    """A database whose integrity check reports damage raises StoreError, untouched."""
    path = tmp_path / "gflow.db"
    first = Store.open(path)
    big_env = {"X": "x" * 3000}
    first.insert_jobs([new_job("echo hi" * 200, env=big_env) for _ in range(50)], 1.0, tmp_path)
    first.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 5 * page
    data[3 * page + 100 : 3 * page + 600] = b"\xab" * 500
    path.write_bytes(bytes(data))
    conn = sqlite3.connect(path)
    try:  # precondition: SQLite itself sees the damage
        assert conn.execute("PRAGMA quick_check").fetchone()[0] != "ok"
    finally:
        conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError):
        Store.open(path)
    assert path.read_bytes() == before


# ---- inserting -----------------------------------------------------------------------------


def test_insert_jobs_returns_dense_increasing_ids(store: Store, tmp_path: Path) -> None:
    """Several jobs inserted at once get ids 1, 2, 3 … in order, then the next batch continues."""
    logs = tmp_path / "logs"
    first = store.insert_jobs([new_job("a"), new_job("b"), new_job("c")], 5.0, logs)
    assert [job.id for job in first] == [1, 2, 3]
    assert [job.command for job in first] == ["a", "b", "c"]
    second = store.insert_jobs([new_job("d"), new_job("e")], 6.0, logs)
    assert [job.id for job in second] == [4, 5]


def test_insert_jobs_stores_the_spec_and_a_submitted_event(store: Store, tmp_path: Path) -> None:
    """Each inserted job is Queued with its fields, its log path, and one 'submitted' event."""
    logs = tmp_path / "logs"
    jobs = store.insert_jobs(
        [new_job("a", name="first", priority=50, gpus=2, time_limit=60), new_job("b")], 5.0, logs
    )
    job = jobs[0]
    assert (job.name, job.priority, job.gpus, job.time_limit) == ("first", 50, 2, 60)
    assert job.state is JobState.QUEUED and job.reason is None
    assert job.submitted_at == 5.0
    assert job.log_path == str(logs / "1.log")
    for inserted in jobs:
        events = store.events_of(inserted.id)
        assert events == [Event(inserted.id, 5.0, "submitted", JobState.QUEUED, "")]


def test_insert_held_job_is_hold_with_reason_held(store: Store, tmp_path: Path) -> None:
    """A spec with hold=True is stored in state Hold with reason Held."""
    (job,) = store.insert_jobs([new_job(hold=True)], 1.0, tmp_path)
    assert job.state is JobState.HOLD
    assert job.reason == Reason(ReasonKind.HELD)
    assert store.events_of(job.id)[0].state is JobState.HOLD


def test_insert_jobs_is_all_or_none(store: Store, tmp_path: Path) -> None:
    """If one job of a batch cannot be stored, none of the batch is."""
    store.insert_jobs([new_job()], 1.0, tmp_path)
    unstorable = new_job(env={"A": object()})  # not JSON-serializable
    with pytest.raises(TypeError):
        store.insert_jobs([new_job(), new_job(), unstorable], 2.0, tmp_path)
    assert [job.id for job in store.list_jobs(JobFilter())] == [1]
    assert count(tmp_path / "gflow.db", "events") == 1


def test_launch_data_holds_env_and_script_body(store: Store, tmp_path: Path) -> None:
    """The submitter's environment and script body are stored for the launch."""
    (job,) = store.insert_jobs(
        [new_job("", script="/x/run.sh", script_body="#!/bin/sh\n", env={"A": "1"})], 1.0, tmp_path
    )
    assert store.get_launch_data(job.id) == ({"A": "1"}, "#!/bin/sh\n")


# ---- saving and transactions ---------------------------------------------------------------


def started(job: Job) -> tuple[Job, Event]:
    changed = replace(
        job,
        state=JobState.RUNNING,
        reason=None,
        started_at=10.0,
        gpu_ids=(1, 3),
        pid=4242,
        session="gflow-1",
    )
    return changed, Event(job.id, 10.0, "started", JobState.RUNNING, "gpus 1,3")


def test_save_writes_the_state_and_its_event(store: Store, tmp_path: Path) -> None:
    """save() stores the job's new state and fields together with the event."""
    (job,) = store.insert_jobs([new_job()], 1.0, tmp_path)
    store.save([started(job)])
    stored = store.get_job(job.id)
    assert stored is not None
    assert (stored.state, stored.started_at, stored.gpu_ids, stored.pid, stored.session) == (
        JobState.RUNNING,
        10.0,
        (1, 3),
        4242,
        "gflow-1",
    )
    assert [e.kind for e in store.events_of(job.id)] == ["submitted", "started"]
    assert store.events_of(job.id)[1].detail == "gpus 1,3"


def test_save_is_one_transaction(store: Store, tmp_path: Path) -> None:
    """If saving fails part-way, neither the earlier job changes nor their events are kept."""
    jobs = store.insert_jobs([new_job(), new_job()], 1.0, tmp_path)

    def changes() -> Iterator[tuple[Job, Event]]:
        yield started(jobs[0])
        raise RuntimeError("crash between two changes")

    with pytest.raises(RuntimeError):
        store.save(changes())
    assert [job.state for job in store.list_jobs(JobFilter())] == [JobState.QUEUED] * 2
    assert [e.kind for e in store.events_of(jobs[0].id)] == ["submitted"]
    assert count(tmp_path / "gflow.db", "events") == 2


def test_exception_inside_transaction_writes_nothing(store: Store, tmp_path: Path) -> None:
    """An exception inside `with store.transaction()` rolls everything back; the store lives on."""
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute(
            "INSERT INTO events (job_id, at, kind, state, detail)"
            " VALUES (1, 1.0, 'x', 'Queued', '')"
        )
        raise RuntimeError("boom")
    assert count(tmp_path / "gflow.db", "events") == 0
    assert count(tmp_path / "gflow.db", "jobs") == 0
    (job,) = store.insert_jobs([new_job()], 1.0, tmp_path)
    assert job.id == 1


def test_ids_are_never_reused_after_deletion(store: Store, tmp_path: Path) -> None:
    """Deleting the newest rows (or all rows) never makes their ids available again."""
    store.insert_jobs([new_job(), new_job(), new_job()], 1.0, tmp_path)
    with store.transaction() as conn:
        conn.execute("DELETE FROM jobs WHERE id = 3")
    (job,) = store.insert_jobs([new_job()], 2.0, tmp_path)
    assert job.id == 4
    with store.transaction() as conn:
        conn.execute("DELETE FROM jobs")
    (job,) = store.insert_jobs([new_job()], 3.0, tmp_path)
    assert job.id == 5


def test_ids_are_never_reused_across_reopen(tmp_path: Path) -> None:
    """The id sequence survives closing and reopening the database."""
    path = tmp_path / "gflow.db"
    first = Store.open(path)
    first.insert_jobs([new_job(), new_job()], 1.0, tmp_path)
    with first.transaction() as conn:
        conn.execute("DELETE FROM jobs")
    first.close()
    second = Store.open(path)
    try:
        (job,) = second.insert_jobs([new_job()], 2.0, tmp_path)
        assert job.id == 3
    finally:
        second.close()


# ---- JobSpec.from_dict ---------------------------------------------------------------------

VALID: dict[str, Any] = {"command": "python train.py", "workdir": "/home/alice", "env": {"A": "1"}}


def test_job_spec_from_dict_accepts_a_minimal_valid_request() -> None:
    """command + workdir + env is enough; everything else takes its default."""
    spec = JobSpec.from_dict(dict(VALID))
    assert (spec.command, spec.workdir, spec.env) == ("python train.py", "/home/alice", {"A": "1"})
    assert (spec.priority, spec.gpus, spec.time_limit, spec.hold) == (10, 0, None, False)


def test_job_spec_from_dict_round_trips_through_to_dict() -> None:
    """from_dict(spec.to_dict()) gives the same spec back."""
    spec = JobSpec.from_dict(
        {**VALID, "name": "n", "priority": 255, "gpus": 2, "time_limit": 60, "depends_on": [1, "@"]}
    )
    assert JobSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("change", "drop"),
    [
        ({"priority": "x"}, ()),
        ({"priority": True}, ()),
        ({"priority": 1.5}, ()),
        ({"priority": 256}, ()),
        ({"priority": -1}, ()),
        ({"gpus": -1}, ()),
        ({"gpus": "1"}, ()),
        ({"gpus": False}, ()),
        ({"time_limit": 0}, ()),
        ({"time_limit": "1h"}, ()),
        ({"bogus": 1}, ()),
        ({"script": "/x/run.sh"}, ()),
        ({}, ("command",)),
        ({"command": "   "}, ()),
        ({"workdir": "relative/dir"}, ()),
        ({"workdir": ""}, ()),
        ({}, ("workdir",)),
        ({"env": {"A": 1}}, ()),
        ({"env": {"A": None}}, ()),
        ({"env": ["A=1"]}, ()),
        ({"env": {"A=B": "1"}}, ()),
        ({"command": "echo \0"}, ()),
        ({"name": 5}, ()),
        ({"name": "a\nb"}, ()),
        ({"hold": "yes"}, ()),
        ({"depends_on": [0]}, ()),
        ({"depends_on": ["x"]}, ()),
        ({"depends_on": [True]}, ()),
        ({"depends_on": 3}, ()),
    ],
)
def test_job_spec_from_dict_rejects_wrong_types_and_values(
    change: dict[str, Any], drop: tuple[str, ...]
) -> None:
    """Wrong types, out-of-range numbers, unknown fields, bad command/script/workdir/env fail."""
    data = {k: v for k, v in {**VALID, **change}.items() if k not in drop}
    with pytest.raises(InvalidInput):
        JobSpec.from_dict(data)


def test_job_spec_from_dict_rejects_a_script_with_a_relative_path() -> None:
    """Script mode needs an absolute script path."""
    data = {k: v for k, v in VALID.items() if k != "command"}
    with pytest.raises(InvalidInput):
        JobSpec.from_dict({**data, "script": "run.sh"})
    assert JobSpec.from_dict({**data, "script": "/x/run.sh"}).script == "/x/run.sh"


@pytest.mark.parametrize("data", [None, [], "job", 3])
def test_job_spec_from_dict_rejects_non_objects(data: Any) -> None:
    """A request that is not a JSON object is InvalidInput, not a crash."""
    with pytest.raises(InvalidInput):
        JobSpec.from_dict(data)
