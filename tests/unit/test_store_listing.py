"""Store.list_fields_json: the few-fields listing `gqueue` uses, written by SQLite, must say
exactly what `Job.to_dict()` says, for the jobs `list_jobs` finds (SPEC §8, §11)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gflow.cli import gqueue
from gflow.core.dependencies import DependencyKind, DependencyMode
from gflow.core.errors import InvalidInput
from gflow.core.model import Event, Job
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import JobSpec, Resources
from gflow.core.states import ACTIVE_STATES, JobState
from gflow.store.db import JobFilter, NewJob, Store
from gflow.store.listing import LIST_FIELDS


def _new(user: str = "alice", uid: int = 1000, deps: Any = (), **spec: Any) -> NewJob:
    fields: dict[str, Any] = {"command": "echo hi", "script": "", "workdir": "/tmp", "env": {}}
    fields.update(spec)
    return NewJob(JobSpec(**fields), user, uid, deps, "tmux")


def _ended(job: Job, state: JobState, **changes: Any) -> tuple[Job, Event]:
    done = replace(job, state=state, started_at=10.0, finished_at=20.5, **changes)
    return done, Event(job.id, 20.5, "ended", state, "")


def _varied_jobs(store: Store, tmp_path: Path) -> list[Job]:
    """One of every kind a list shows: named, unnamed (a command path, a script), held,
    pinned and shared GPUs, dependencies, running, failed by signal, retried, projects."""
    res = Resources(gpus=2, shared=True, gpu_memory_mb=10240, gpu_pin=(3, 1), memory_mb=512)
    jobs = store.insert_jobs(
        [
            _new(name="train", project="nlp", priority=50, time_limit=3600),
            _new(command="  /usr/bin/python3 -c 'x'  ", keep_session=True),
            _new(command="", script="/home/a/run.sh", script_body="echo", hold=True),
            _new(resources=res, auto_cancel=False, retry_on_timeout=True, max_retries=2),
            _new(user="bob", uid=1001, conda_env="torch", begin_at=99.5),
        ],
        1.0,
        tmp_path,
    )
    deps = ((1, DependencyKind.AFTER_NOT_OK), (2, DependencyKind.AFTER_ANY))
    (dependent,) = store.insert_jobs(
        [_new(deps=deps, dependency_mode=DependencyMode.ANY, max_concurrent=3)], 2.0, tmp_path
    )
    running = replace(jobs[0], state=JobState.RUNNING, started_at=5.0, gpu_ids=(1, 0), pid=7)
    failed, event = _ended(
        jobs[3], JobState.FAILED, signal=9, reason=Reason(ReasonKind.SIGNAL, "9")
    )
    store.save([(running, Event(running.id, 5.0, "started", JobState.RUNNING, ""))])
    retry = store.save([(failed, event)], retry_of=failed)
    finished, event = _ended(jobs[4], JobState.FINISHED, exit_code=0)
    store.save([(finished, event)])
    store.set_reasons([(dependent.id, str(Reason(ReasonKind.DEPENDENCY)))])
    assert retry is not None and retry.first_attempt == jobs[3].id
    return store.list_jobs(JobFilter())


def _listing(store: Store, where: JobFilter, fields: list[str]) -> tuple[list[str], list[Any]]:
    table = json.loads(store.list_fields_json(where, fields))
    assert set(table) == {"fields", "rows"}
    return table["fields"], table["rows"]


def test_every_field_equals_to_dict(store: Store, tmp_path: Path) -> None:
    """Asked for every field, each job's row is its to_dict(), value for value (times to
    the last bit, booleans as booleans, lists as lists)."""
    jobs = _varied_jobs(store, tmp_path)
    fields, rows = _listing(store, JobFilter(), sorted(LIST_FIELDS))
    assert set(fields) == LIST_FIELDS == set(jobs[0].to_dict())
    listed = [dict(zip(fields, row, strict=True)) for row in rows]
    assert listed == [job.to_dict() for job in jobs]
    for shown, job in zip(listed, jobs, strict=True):  # == would take 1 for True
        assert [type(v) for v in shown.values()] == [type(job.to_dict()[k]) for k in shown]


def test_times_are_listed_exactly(store: Store, tmp_path: Path) -> None:
    """A Unix time with 17 significant digits comes back as the same float."""
    store.insert_jobs([_new()], 1764603789.1234567, tmp_path)
    _, rows = _listing(store, JobFilter(), ["submitted_at", "started_at"])
    assert rows == [[1764603789.1234567, None]]


@pytest.mark.parametrize(
    "where",
    [
        JobFilter(),
        JobFilter(states=ACTIVE_STATES, uid=1000),
        JobFilter(states=frozenset({JobState.FAILED, JobState.FINISHED})),
        JobFilter(ids=(2, 5, 6), limit=2),
        JobFilter(project="nlp"),
        JobFilter(names=("train",), submitted_since=0.5),
        JobFilter(ids=(404,)),
    ],
)
def test_filters_find_the_same_jobs_as_list_jobs(
    store: Store, tmp_path: Path, where: JobFilter
) -> None:
    """The same filter finds the same jobs, in the same order, whatever fields are asked."""
    _varied_jobs(store, tmp_path)
    expected = [job.to_dict() for job in store.list_jobs(where)]
    fields, rows = _listing(store, where, ["name", "id", "gpu_ids", "name"])
    assert fields == ["name", "id", "gpu_ids"]
    assert rows == [[d["name"], d["id"], d["gpu_ids"]] for d in expected]


@pytest.mark.parametrize("fields", [["id", "env"], ["script_body"], []])
def test_unknown_fields_are_refused(store: Store, fields: list[str]) -> None:
    """A field a job does not show (its environment, its script body) is not listed."""
    with pytest.raises(InvalidInput, match="unknown job field"):
        store.list_fields_json(JobFilter(), fields)


def test_gqueue_asks_for_every_field_it_reads(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every gqueue column, sort key and the tree read only the fields gqueue asks for, and
    show what they show from whole jobs."""
    monkeypatch.setattr(gqueue.time, "time", lambda: 1000.0)  # a running job's TIME
    jobs = [job.to_dict() for job in _varied_jobs(store, tmp_path)]
    parser = gqueue.build_parser()
    for column in gqueue.FIELDS:
        for sort in gqueue.SORT_KEYS:
            for extra in ([], ["-t"], ["-o", "csv"]):
                args = parser.parse_args(["-f", column, "-r", sort, *extra])
                needed = gqueue.needed_fields(args)
                assert needed is not None and set(needed) <= LIST_FIELDS
                rows = [{k: job[k] for k in needed} for job in jobs]
                shown = gqueue.render(sorted(rows, key=gqueue.SORT_KEYS[sort]), args)
                assert shown == gqueue.render(sorted(jobs, key=gqueue.SORT_KEYS[sort]), args)
    assert gqueue.needed_fields(parser.parse_args(["--json"])) is None


def test_ended_since_finds_jobs_by_their_end_not_their_submission(
    store: Store, tmp_path: Path
) -> None:
    """The dashboard's "ended in the last day": a job submitted long before but ended
    recently is in; one ended before, or still queued, is not."""
    old, recent, waiting = store.insert_jobs([_new(), _new(), _new()], 100.0, tmp_path)
    ends = ((old, 1_000.0), (recent, 90_000.0))
    ended = JobState.FINISHED
    store.save([(replace(job, state=ended, started_at=200.0, finished_at=at),
                 Event(job.id, at, "finished", ended)) for job, at in ends])  # fmt: skip
    where = JobFilter(states=None, ended_since=86_400.0)
    assert [job.id for job in store.list_jobs(where)] == [recent.id]
    assert [row[0] for row in _listing(store, where, ["id"])[1]] == [recent.id]
    assert waiting.id not in [job.id for job in store.list_jobs(JobFilter(ended_since=0.0))]
