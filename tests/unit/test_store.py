"""gflow.store.db.Store and JobSpec validation: SQLite state, transactions, ids (SPEC §2, §7)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gflow.core.batch import BatchOptions, Warning_
from gflow.core.dependencies import Dependency, DependencyKind, DependencyMode
from gflow.core.errors import InvalidInput
from gflow.core.model import Event, Job
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import _SPEC_FIELDS, JobSpec, Resources
from gflow.core.states import JobState
from gflow.store.db import JobFilter, NewJob, Store, StoreError
from gflow.store.schema import MIGRATIONS, SCHEMA_VERSION


def new_job(command: str = "echo hi", **spec: Any) -> NewJob:
    """A NewJob for user alice (uid 1000) with a validated-looking spec."""
    fields: dict[str, Any] = {"command": command, "script": "", "workdir": "/tmp", "env": {}}
    fields.update(spec)
    return NewJob(JobSpec(**fields), user="alice", uid=1000, dependencies=(), executor="tmux")


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


def make_version_1_database(path: Path, depends_on: str) -> None:
    """A database as gflow with schema version 1 left it: one queued job, one event."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(MIGRATIONS[0])
        conn.execute(
            "INSERT INTO jobs (name, user, uid, command, script, script_body, workdir, env,"
            " state, reason, priority, gpus, time_limit, depends_on, array_task_id, keep_session,"
            " submitted_at, gpu_ids, executor, session, log_path) VALUES ('old', 'alice', 1000,"
            " 'echo hi', '', '', '/tmp', '{\"A\": \"1\"}', 'Queued', 'Dependency', 20, 1, 60,"
            " ?, NULL, 0, 5.0, '[]', 'tmux', '', '/tmp/logs/1.log')",
            (depends_on,),
        )
        conn.execute(
            "INSERT INTO events (job_id, at, kind, state, detail)"
            " VALUES (1, 5.0, 'submitted', 'Queued', '')"
        )
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("depends_on", "dependencies"),
    [
        ("[3]", ((3, DependencyKind.AFTER_OK),)),
        ("[]", ()),
        ("[4, 2]", ((4, DependencyKind.AFTER_OK), (2, DependencyKind.AFTER_OK))),
    ],
)
def test_version_1_database_is_migrated_keeping_dependencies_as_afterok(
    tmp_path: Path, depends_on: str, dependencies: tuple[tuple[int, DependencyKind], ...]
) -> None:
    """Opening a version-1 database migrates it to the current version; jobs stay readable."""
    path = tmp_path / "gflow.db"
    make_version_1_database(path, depends_on)
    store = Store.open(path)
    try:
        job = store.get_job(1)
        assert job is not None
        assert (job.name, job.command, job.state, job.priority, job.time_limit) == (
            "old",
            "echo hi",
            JobState.QUEUED,
            20,
            60,
        )
        assert job.reason == Reason(ReasonKind.DEPENDENCY)
        assert job.resources == Resources(gpus=1)
        assert job.dependencies == dependencies
        assert job.dependency_mode is DependencyMode.ALL
        assert job.auto_cancel is True
        assert (job.begin_at, job.group_id, job.max_concurrent) == (None, None, None)
        assert store.get_launch_data(1) == ({"A": "1"}, "")
        assert [e.kind for e in store.events_of(1)] == ["submitted"]
        assert job.submission == 1  # v6: a job of its own submission
        (new,) = store.insert_jobs([new_job()], 6.0, tmp_path)
        assert new.id == 2
        assert store.nth_last_submission_of(1000, 1) == [1]
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 14
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        assert "depends_on" not in columns
        assert "dependencies" in columns
        assert {"env", "script_body"}.isdisjoint(columns)  # moved to payloads (v5)
    finally:
        conn.close()


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
        [
            new_job("a", name="first", priority=50, resources=Resources(gpus=2), time_limit=60),
            new_job("b"),
        ],
        5.0,
        logs,
    )
    job = jobs[0]
    assert (job.name, job.priority, job.gpus, job.time_limit) == ("first", 50, 2, 60)
    assert job.state is JobState.QUEUED and job.reason is None
    assert job.submitted_at == 5.0
    assert job.log_path == str(logs / "1.log")
    for inserted in jobs:
        events = store.events_of(inserted.id)
        assert events == [Event(inserted.id, 5.0, "submitted", JobState.QUEUED, "")]


def test_insert_jobs_stores_resources_dependencies_and_timing(store: Store, tmp_path: Path) -> None:
    """Every new field of a spec is stored and read back unchanged."""
    res = Resources(gpus=2, shared=True, gpu_memory_mb=10240, gpu_pin=(3, 1), memory_mb=512)
    deps = ((1, DependencyKind.AFTER_NOT_OK), (2, DependencyKind.AFTER_ANY))
    new = NewJob(
        JobSpec(
            command="a",
            script="",
            workdir="/tmp",
            env={},
            resources=res,
            dependency_mode=DependencyMode.ANY,
            auto_cancel=False,
            begin_at=1234.5,
        ),
        user="alice",
        uid=1000,
        dependencies=deps,
        executor="tmux",
    )
    store.insert_jobs([new_job(), new_job()], 1.0, tmp_path)
    (job,) = store.insert_jobs([new], 2.0, tmp_path)
    stored = store.get_job(job.id)
    assert stored == job
    assert (job.resources, job.dependencies, job.dependency_mode) == (
        res,
        deps,
        DependencyMode.ANY,
    )
    assert (job.auto_cancel, job.begin_at, job.group_id, job.max_concurrent) == (
        False,
        1234.5,
        None,
        None,
    )
    assert job.gpus == 2 and job.depends_on == (1, 2)


def test_jobs_of_one_submission_with_max_concurrent_share_a_group(
    store: Store, tmp_path: Path
) -> None:
    """A submission that sets max_concurrent is one group, named by its first id."""
    store.insert_jobs([new_job()], 1.0, tmp_path)
    grouped = store.insert_jobs([new_job(max_concurrent=2) for _ in range(3)], 2.0, tmp_path)
    assert [(j.id, j.group_id, j.max_concurrent) for j in grouped] == [
        (2, 2, 2),
        (3, 2, 2),
        (4, 2, 2),
    ]
    (alone,) = store.insert_jobs([new_job()], 3.0, tmp_path)
    assert (alone.group_id, alone.max_concurrent) == (None, None)


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
    assert (spec.priority, spec.resources, spec.time_limit, spec.hold) == (
        10,
        Resources(),
        None,
        False,
    )


def test_job_spec_from_dict_reads_every_field() -> None:
    """Every accepted JSON field lands in the spec (the API's whole input, as the CLI sends it)."""
    data = {
        **VALID,
        "script": "",
        "script_body": "#!/bin/sh\n",
        "name": "n",
        "priority": 255,
        "gpus": 2,
        "shared": True,
        "gpu_memory_mb": 10240,
        "gpu_pin": [3, 1],
        "memory_mb": 5120,
        "time_limit": 60,
        "dependencies": [
            {"job": 1},
            {"job": "@", "kind": "afterany"},
            {"job": "@~2", "kind": "afternotok"},
        ],
        "dependency_mode": "any",
        "auto_cancel": False,
        "begin_at": 1_800_000_000,
        "max_concurrent": 4,
        "hold": True,
        "keep_session": True,
        "array_task_id": 7,
        "conda_env": "torch2",
        "max_retries": 3,
        "retry_on_timeout": True,
        "project": "vision",
        "cpus": 8,
        "exclusive": True,
        "gpu_model": "a100",
        "batch": {"args": ["--lr", "0.1"], "output": "%x-%j.out", "signal": [10, 90, True]},
        "singleton": True,
        "notify_email": "alice@example.org",
        "notify_on": "started,failed",
    }
    assert set(data) == _SPEC_FIELDS
    assert JobSpec.from_dict(data) == JobSpec(
        command="python train.py",
        script="",
        workdir="/home/alice",
        env={"A": "1"},
        name="n",
        priority=255,
        resources=Resources(
            gpus=2,
            shared=True,
            gpu_memory_mb=10240,
            gpu_pin=(3, 1),
            memory_mb=5120,
            cpus=8,
            exclusive=True,
            gpu_model="a100",
        ),
        batch=BatchOptions(
            args=("--lr", "0.1"), output="%x-%j.out", warning=Warning_(10, 90, True)
        ),
        singleton=True,
        notify_email="alice@example.org",
        notify_on="job_failed,job_started,job_timeout",
        time_limit=60,
        dependencies=(
            Dependency(1, DependencyKind.AFTER_OK),
            Dependency("@", DependencyKind.AFTER_ANY),
            Dependency("@~2", DependencyKind.AFTER_NOT_OK),
        ),
        dependency_mode=DependencyMode.ANY,
        auto_cancel=False,
        begin_at=1_800_000_000.0,
        max_concurrent=4,
        conda_env="torch2",
        max_retries=3,
        retry_on_timeout=True,
        project="vision",
        hold=True,
        keep_session=True,
        array_task_id=7,
        script_body="#!/bin/sh\n",
    )


def test_job_spec_from_dict_gpu_pin_sets_the_gpu_count() -> None:
    """A pinned GPU list (Taskflow's --gpu IDX:SIZE) is the request: as many GPUs as listed."""
    spec = JobSpec.from_dict({**VALID, "gpu_pin": [2, 0], "shared": True, "gpu_memory_mb": 100})
    assert spec.resources == Resources(2, True, 100, (2, 0), None)


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
        ({"depends_on": [1]}, ()),  # the old field: unknown now
        ({"dependencies": [{"job": 0}]}, ()),
        ({"dependencies": [{"job": "x"}]}, ()),
        ({"dependencies": [{"job": True}]}, ()),
        ({"dependencies": [{"job": 1.5}]}, ()),
        ({"dependencies": [{"kind": "afterok"}]}, ()),
        ({"dependencies": [{"job": 1, "kind": "afterfoo"}]}, ()),
        ({"dependencies": [{"job": 1, "extra": 1}]}, ()),
        ({"dependencies": [1]}, ()),
        ({"dependencies": 3}, ()),
        ({"dependency_mode": "some"}, ()),
        ({"auto_cancel": "no"}, ()),
        ({"shared": True}, ()),
        ({"shared": True, "gpus": 1}, ()),
        ({"shared": True, "gpu_memory_mb": 100}, ()),
        ({"gpu_memory_mb": 100}, ()),
        ({"gpus": 1, "gpu_memory_mb": 0}, ()),
        ({"gpu_pin": [0, 0]}, ()),
        ({"gpu_pin": [-1]}, ()),
        ({"gpu_pin": [True]}, ()),
        ({"gpu_pin": 0}, ()),
        ({"memory_mb": -1}, ()),
        ({"cpus": 5000}, ()),
        ({"gpu_model": "a 100"}, ()),
        ({"batch": {"args": "x"}}, ()),
        ({"batch": {"signal": [0, 1, False]}}, ()),
        ({"batch": {"nope": 1}}, ()),
        ({"memory_mb": "5G"}, ()),
        ({"begin_at": -1}, ()),
        ({"begin_at": "tomorrow"}, ()),
        ({"max_concurrent": 0}, ()),
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


def test_an_arrays_jobs_share_one_environment_and_purge_drops_it_with_them(
    store: Store, tmp_path: Path
) -> None:
    """Equal environments in one submission are stored once; each job still reads its own;
    a retry reads the same; purge removes what no job uses any more."""
    env = {"PATH": "/usr/bin", "BIG": "x" * 1000}
    jobs = store.insert_jobs([new_job(f"echo {i}", env=env) for i in range(3)], 1.0, tmp_path)
    (other,) = store.insert_jobs([new_job("echo other", env={"A": "1"})], 2.0, tmp_path)
    for job in jobs:
        assert store.get_launch_data(job.id) == (env, "")
    assert store.get_launch_data(other.id) == ({"A": "1"}, "")
    count = "SELECT COUNT(*) FROM payloads"
    assert store._conn.execute(count).fetchone()[0] == 2

    first = jobs[0]
    failed = replace(first, state=JobState.FAILED, finished_at=3.0, max_retries=1)
    retry = store.save([(failed, Event(first.id, 3.0, "ended", JobState.FAILED, ""))], failed)
    assert retry is not None and store.get_launch_data(retry.id) == (env, "")

    for job in [*jobs[1:], other]:
        ended = replace(job, state=JobState.FINISHED, finished_at=3.0)
        store.save([(ended, Event(job.id, 3.0, "ended", JobState.FINISHED, ""))])
    store.purge(ended_before=10.0)
    assert store._conn.execute(count).fetchone()[0] == 1  # the retry still uses the array's
    assert store.get_launch_data(retry.id) == (env, "")


def test_submissions_group_an_arrays_jobs_and_keep_retries_and_redos_apart(store: Store) -> None:
    """A submission is named by its first job; a retry stays in its job's submission (so '@'
    still names the original jobs), a redo is a submission of its own."""
    array = store.insert_jobs([new_job(), new_job(), new_job()], 1.0, Path("/tmp"))
    single = store.insert_jobs([new_job()], 2.0, Path("/tmp"))[0]
    assert [j.submission for j in array] == [1, 1, 1] and single.submission == 4
    assert store.nth_last_submission_of(1000, 0) == [4]
    assert store.nth_last_submission_of(1000, 1) == [1, 2, 3]
    assert store.nth_last_submission_of(1000, 2) == []
    assert store.nth_last_submission_of(1001, 0) == []
    failed = replace(array[1], state=JobState.FAILED, finished_at=3.0)
    retry = store.save([(failed, Event(2, 3.0, "ended", JobState.FAILED))], retry_of=failed)
    assert retry is not None and retry.submission == 1
    assert store.nth_last_submission_of(1000, 0) == [4]
    redo = store.insert_redo(failed, (), 4.0, "alice", 1000)
    assert redo.submission == redo.id
    assert store.nth_last_submission_of(1000, 0) == [redo.id]
    assert store.submission_jobs(1) == [1, 2, 3]


def test_version_5_database_gets_submissions_from_submission_times(tmp_path: Path) -> None:
    """v5 -> v6: the jobs one user submitted at one instant become one submission (named
    by the first), a retry joins its job's, and '@' then means the whole last array."""
    path = tmp_path / "gflow.db"
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:5]:
        conn.executescript(migration)
    columns = (
        "name, user, uid, command, script, workdir, state, priority, gpus, array_task_id,"
        " keep_session, submitted_at, gpu_ids, executor, session, log_path, attempt,"
        " first_attempt"
    )
    rows = [  # (submitted_at, array task, attempt, first_attempt)
        (1.0, None, 1, None), (2.0, 0, 1, None), (2.0, 1, 1, None), (3.0, 1, 2, 3),
    ]  # fmt: skip
    for at, task, attempt, first in rows:
        conn.execute(
            f"INSERT INTO jobs ({columns}) VALUES ('j', 'alice', 1000, 'true', '', '/tmp',"
            " 'Failed', 10, 0, ?, 0, ?, '[]', 'tmux', '', '', ?, ?)",
            (task, at, attempt, first),
        )
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    store = Store.open(path)
    try:
        assert [j.submission for j in store.get_jobs([1, 2, 3, 4])] == [1, 2, 2, 2]
        assert store.nth_last_submission_of(1000, 0) == [2, 3]
        assert store.nth_last_submission_of(1000, 1) == [1]
    finally:
        store.close()
