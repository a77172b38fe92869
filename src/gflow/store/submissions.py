"""Writing a submission's jobs: rows built once per job, written with executemany, at ids
reserved for the whole submission, so an array's ids are contiguous however it is written.

A big submission (a 100,000-job array) is written in slices, each its own transaction, so
the daemon answers others in between. Until its last slice is in, the submission is
*staged*: its id range is listed in `staged_submissions` and every query of the Store
leaves those ids out; publishing it is deleting that one row. A daemon that dies mid-way
finds the range at its next start and deletes what was written: all or nothing, as one
transaction would be (the reserved ids are then skipped, never reused).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.core.batch import NO_BATCH, BatchOptions
from gflow.core.dependencies import DependencyKind
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import JobSpec
from gflow.core.states import JobState

_COLUMNS = (
    "id, name, user, uid, command, script, workdir, payload_id, state, reason, priority,"
    " gpus, shared, gpu_memory_mb, gpu_pin, memory_mb, time_limit, dependencies,"
    " dependency_mode, auto_cancel, begin_at, group_id, max_concurrent, array_task_id,"
    " keep_session, conda_env, max_retries, retry_on_timeout, project, submitted_at, gpu_ids,"
    " executor, session, log_path, cpus, exclusive, gpu_model, array_job_id, submission,"
    " notify_email, notify_on"
)
_INSERT_JOB = f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(',')))})"
_INSERT_EVENT = (
    "INSERT INTO events (job_id, at, kind, state, detail) VALUES (?, ?, 'submitted', ?, '')"
)
_HELD = str(Reason(ReasonKind.HELD))


@dataclass(frozen=True)
class NewJob:
    """A validated spec plus what the daemon adds at submission."""

    spec: JobSpec
    user: str
    uid: int
    dependencies: tuple[tuple[int, DependencyKind], ...]  # '@' / '@~N' resolved to ids
    executor: str


class Payloads:
    """The environment, script body and batch options rows of one submission: an array's
    jobs share one. Keyed by the env dict's identity first (the API decodes equal
    environments to one dict), so the JSON of a 40-variable environment is written once,
    not once a job."""

    def __init__(self) -> None:
        self.by_object: dict[tuple[int, str, BatchOptions], int] = {}
        self.by_text: dict[tuple[str, str, str], int] = {}
        self.kept: list[dict[str, str]] = []  # keeps the dicts alive: their ids stay unique

    def row_of(self, conn: sqlite3.Connection, spec: JobSpec) -> int:
        key = (id(spec.env), spec.script_body, spec.batch)
        found = self.by_object.get(key)
        if found is None:
            text = (json.dumps(spec.env), spec.script_body, json.dumps(spec.batch.to_dict()))
            found = self.by_text.get(text)
            if found is None:
                cur = conn.execute(
                    "INSERT INTO payloads (env, script_body, batch) VALUES (?, ?, ?)", text
                )
                found = self.by_text[text] = int(cur.lastrowid or 0)
            self.by_object[key] = found
            self.kept.append(spec.env)
        return found


def reserve_ids(conn: sqlite3.Connection, count: int) -> int:
    """The first of `count` new ids, taken from the AUTOINCREMENT sequence."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone()
    last = int(row[0]) if row else 0
    if row:
        conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'jobs'", (last + count,))
    else:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', ?)", (count,))
    return last + 1


def insert_rows(
    conn: sqlite3.Connection,
    first_id: int,
    new_jobs: Sequence[NewJob],
    group_id: int,
    now: float,
    logs_dir: Path,
    payloads: Payloads,
    events: bool = True,
) -> None:
    """Jobs first_id, first_id + 1, … with their 'submitted' events, of the submission
    named `group_id` (its first id), which also names its group (the jobs that set
    max_concurrent) and, for an array, the array. A staged slice (`events` False) gets its
    events when the submission is published (`publish_events`)."""
    jobs: list[tuple[Any, ...]] = []
    submitted: list[tuple[Any, ...]] = []
    for job_id, new in enumerate(new_jobs, first_id):
        spec, res = new.spec, new.spec.resources
        state = (JobState.HOLD if spec.hold else JobState.QUEUED).value
        jobs.append(
            (
                job_id, spec.name, new.user, new.uid, spec.command, spec.script, spec.workdir,
                payloads.row_of(conn, spec), state, _HELD if spec.hold else None,
                spec.priority, res.gpus, int(res.shared), res.gpu_memory_mb,
                json.dumps(res.gpu_pin) if res.gpu_pin else "[]", res.memory_mb,
                spec.time_limit, _dependencies(new),
                spec.dependency_mode.value, int(spec.auto_cancel), spec.begin_at,
                group_id if spec.max_concurrent is not None else None, spec.max_concurrent,
                spec.array_task_id, int(spec.keep_session), spec.conda_env, spec.max_retries,
                int(spec.retry_on_timeout), spec.project, now, "[]", new.executor, "",
                str(logs_dir / f"{job_id}.log"), res.cpus, int(res.exclusive), res.gpu_model,
                group_id if spec.array_task_id is not None else None,
                group_id,  # the submission is named by its first job
                spec.notify_email, spec.notify_on,
            )
        )  # fmt: skip
        submitted.append((job_id, now, state))
    conn.executemany(_INSERT_JOB, jobs)
    if events:
        conn.executemany(_INSERT_EVENT, submitted)


def publish_events(conn: sqlite3.Connection, first_id: int, last_id: int) -> None:
    """The 'submitted' events of a staged submission's jobs, written as it is published."""
    conn.execute(
        "INSERT INTO events (job_id, at, kind, state, detail)"
        " SELECT id, submitted_at, 'submitted', state, '' FROM jobs WHERE id BETWEEN ? AND ?"
        " ORDER BY id",
        (first_id, last_id),
    )


def _dependencies(new: NewJob) -> str:
    return json.dumps([[j, k.value] for j, k in new.dependencies]) if new.dependencies else "[]"


def staged_ranges(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in conn.execute("SELECT * FROM staged_submissions")]


def discard_staged(conn: sqlite3.Connection) -> int:
    """Delete whatever staged submissions were written (a daemon died mid-way)."""
    removed = 0
    for first, last in staged_ranges(conn):
        conn.execute("DELETE FROM events WHERE job_id BETWEEN ? AND ?", (first, last))
        removed += conn.execute("DELETE FROM jobs WHERE id BETWEEN ? AND ?", (first, last)).rowcount
    conn.execute("DELETE FROM staged_submissions")
    conn.execute(
        "DELETE FROM payloads WHERE id NOT IN"
        " (SELECT payload_id FROM jobs WHERE payload_id IS NOT NULL)"
    )
    return removed


def launch_payload(
    conn: sqlite3.Connection, job_id: int
) -> tuple[dict[str, str], str, BatchOptions]:
    """The environment, script body and batch options (read when a job starts)."""
    row = conn.execute(
        "SELECT env, script_body, batch FROM payloads"
        " WHERE id = (SELECT payload_id FROM jobs WHERE id = ?)",
        (job_id,),
    ).fetchone()
    if row is None:
        return {}, "", NO_BATCH
    env: dict[str, str] = json.loads(row[0])
    return env, str(row[1]), BatchOptions.from_dict(json.loads(row[2]))
