"""How jobs are related: the dependents cancelled because of a job, a job's attempts
(its automatic retries), the state a dependent waits on (its newest attempt's), and the
jobs of a submission (what '@' and '@~N' name)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from gflow.core.model import Job
from gflow.core.reasons import ReasonKind
from gflow.core.states import JobState
from gflow.store.rows import JOB_COLUMNS, row_to_job


def cancelled_because_of(conn: sqlite3.Connection, job_id: int) -> list[Job]:
    """Jobs cancelled because this one's end made their dependencies impossible."""
    rows = conn.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = ? AND reason = ? ORDER BY id",
        (JobState.CANCELLED.value, f"{ReasonKind.DEPENDENCY_FAILED.value}:{job_id}"),
    )
    return [row_to_job(row) for row in rows]


def attempts_of(
    conn: sqlite3.Connection, first_attempt: int, visible: tuple[str, list[int]]
) -> list[int]:
    clause, hidden = visible
    rows = conn.execute(
        f"SELECT id FROM jobs WHERE (id = ? OR first_attempt = ?) AND {clause} ORDER BY id",
        (first_attempt, first_attempt, *hidden),
    )
    return [int(row[0]) for row in rows]


def states_of(
    conn: sqlite3.Connection, ids: Iterable[int], visible: tuple[str, list[int]]
) -> dict[int, JobState]:
    """Each job's state, or that of its newest attempt when it was retried: a dependent
    waits for the last attempt, not for the failure that started the next one."""
    clause, hidden = visible
    rows = conn.execute(
        "SELECT j.id, (SELECT a.state FROM jobs a"
        "  WHERE a.id = COALESCE(j.first_attempt, j.id)"
        "     OR a.first_attempt = COALESCE(j.first_attempt, j.id)"
        "  ORDER BY a.id DESC LIMIT 1)"
        f" FROM jobs j WHERE j.id IN (SELECT value FROM json_each(?)) AND {clause}",
        (json.dumps(sorted(set(ids))), *hidden),
    )
    return {job_id: JobState(state) for job_id, state in rows}


def nth_last_submission_of(
    conn: sqlite3.Connection, uid: int, n: int, visible: tuple[str, list[int]]
) -> list[int]:
    """Every job of the user's submission n before the last (n=0 is '@'), in id order;
    [] if there is none. Automatic retries belong to the job they retry."""
    clause, hidden = visible
    row = conn.execute(
        "SELECT DISTINCT submission FROM jobs WHERE uid = ? AND first_attempt IS NULL"
        f" AND {clause} ORDER BY submission DESC LIMIT 1 OFFSET ?",
        (uid, *hidden, n),
    ).fetchone()
    return submission_jobs(conn, int(row[0])) if row else []


def submission_jobs(conn: sqlite3.Connection, submission: int) -> list[int]:
    """The jobs of the submission named by its first job's id (retries not included)."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE submission = ? AND first_attempt IS NULL ORDER BY id",
        (submission,),
    )
    return [int(row[0]) for row in rows]
