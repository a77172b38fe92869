"""Listing jobs: the filter (`JobFilter`) as SQL, and the few-fields listing (`gqueue`),
written as JSON by SQLite itself.

Each API job field (`Job.to_dict()`) has the SQL expression that writes it as JSON, so a
listing of 10,000 jobs costs no Python object per value. A unit test checks every field
equals `Job.to_dict()`'s value, types included.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gflow.core.errors import InvalidInput
from gflow.core.model import display_name
from gflow.core.states import ACTIVE_STATES, JobState
from gflow.store.schema import ACTIVE_CLAUSE


@dataclass(frozen=True)
class JobFilter:
    states: frozenset[JobState] | None = None
    uid: int | None = None
    ids: tuple[int, ...] | None = None
    limit: int | None = None
    submitted_since: float | None = None
    ended_since: float | None = None  # ended at or after this time
    project: str | None = None
    names: tuple[str, ...] | None = None
    last: bool = False  # with a limit: the last jobs (by id), not the first


def _exact_time(column: str) -> str:
    # json_array() writes a REAL with 15 digits (10 µs off for a Unix time); 17 round-trip.
    return f"IIF({column} IS NULL, NULL, json(printf('%!.17g', {column})))"


def _boolean(column: str) -> str:
    return f"json(IIF({column}, 'true', 'false'))"


NAME_SQL = "IIF(name != '', name, display_name(name, command, script))"
_STATE_SHORT = " ".join(f"WHEN '{s.value}' THEN '{s.short}'" for s in JobState)
_DEPENDENCY = "json_extract(value, '$[0]')"
_FIELD_SQL = {
    **{f: f for f in (
        "id", "user", "uid", "command", "script", "workdir", "state", "priority", "gpus",
        "gpu_memory_mb", "memory_mb", "time_limit", "dependency_mode", "group_id",
        "max_concurrent", "array_task_id", "exit_code", "signal", "log_path", "executor",
        "session", "conda_env", "max_retries", "attempt", "project", "cpus", "gpu_model",
        "array_job_id", "slurm_job_id", "node",
    )},
    **{f: _exact_time(f) for f in ("submitted_at", "started_at", "finished_at", "begin_at")},
    **{f: _boolean(f) for f in (
        "shared", "auto_cancel", "keep_session", "retry_on_timeout", "exclusive",
    )},
    "name": NAME_SQL,
    "state_short": f"CASE state {_STATE_SHORT} END",
    "reason": "NULLIF(reason, '')",
    "first_attempt": "COALESCE(first_attempt, id)",
    "submission": "COALESCE(submission, id)",
    # What the job used (core/usage.py), from its usage JSON; 0 before anything was seen.
    "max_rss_mb": "COALESCE(json_extract(usage, '$.max_rss_mb'), 0)",
    "cpu_seconds": (
        "json(printf('%!.17g', COALESCE(json_extract(usage, '$.cpu_seconds'), 0.0)))"
    ),
    "gpu_mem_peak_mb": "COALESCE(json_extract(usage, '$.gpu_mem_peak_mb'), 0)",
    "gpu_usage": "COALESCE(json_extract(usage, '$.gpus'), json('[]'))",
    "gpu_pin": "json(gpu_pin)",
    "gpu_ids": "json(gpu_ids)",
    "cpu_ids": "json(cpu_ids)",
    "depends_on": f"(SELECT json_group_array({_DEPENDENCY}) FROM json_each(dependencies))",
    "dependencies": (
        f"(SELECT json_group_array(json_object('job', {_DEPENDENCY},"
        " 'kind', json_extract(value, '$[1]'))) FROM json_each(dependencies))"
    ),
}  # fmt: skip
LIST_FIELDS = frozenset(_FIELD_SQL)


def add_listing_functions(conn: sqlite3.Connection) -> None:
    """The Python functions the field expressions call."""
    # Cached: an array's jobs share their command, so a listing computes it once.
    shown_name = lru_cache(maxsize=4096)(display_name)
    conn.create_function("display_name", 3, shown_name, deterministic=True)


def listed_row(fields: Sequence[str]) -> tuple[list[str], str]:
    """The fields without repeats, and the SQL expression writing one job as their JSON
    array; an unknown field (or none) is refused."""
    unknown = [f for f in fields if f not in LIST_FIELDS]
    if unknown or not fields:
        raise InvalidInput(
            f"unknown job field(s) {', '.join(unknown) or repr('')}",
            hint=f"fields: {', '.join(sorted(LIST_FIELDS))}",
        )
    names = list(dict.fromkeys(fields))
    return names, f"json_array({', '.join(_FIELD_SQL[f] for f in names)})"


def fields_json(
    conn: sqlite3.Connection,
    where: JobFilter,
    fields: Sequence[str],
    hidden: Sequence[tuple[int, int]],
) -> str:
    """`{"fields": [...], "rows": [[...], ...]}` for the matching jobs (Store.list_fields_json)."""
    names, row = listed_row(fields)
    rows, params = select_jobs(f"{row} AS listed", where, hidden)
    # The rows in the subquery's (id) order: SQLite aggregates a sorted subquery as is.
    listing = "SELECT json_object('fields', json(?), 'rows', json_group_array(json(listed)))"
    (text,) = conn.execute(f"{listing} FROM ({rows})", [json.dumps(names), *params]).fetchone()
    return str(text)


def select_jobs(
    columns: str, where: JobFilter, hidden: Sequence[tuple[int, int]]
) -> tuple[str, list[Any]]:
    """SELECT these columns of the jobs matching the filter, in id order, leaving out the
    `hidden` id ranges (staged submissions)."""
    clauses: list[str] = ["id NOT BETWEEN ? AND ?" for _ in hidden]
    params: list[Any] = [n for r in hidden for n in r]
    if where.states == ACTIVE_STATES:  # the active queue, by its partial index
        clauses.append(ACTIVE_CLAUSE)
    elif where.states is not None:
        clauses.append(f"state IN ({','.join('?' * len(where.states))})")
        params += [s.value for s in where.states]
    if where.uid is not None:
        clauses.append("uid = ?")
        params.append(where.uid)
    if where.ids is not None:
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(where.ids)))
    if where.submitted_since is not None:
        clauses.append("submitted_at >= ?")
        params.append(where.submitted_since)
    if where.ended_since is not None:
        clauses.append("finished_at >= ?")
        params.append(where.ended_since)
    if where.project is not None:
        clauses.append("project = ?")
        params.append(where.project)
    if where.names is not None:
        clauses.append("name IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(where.names)))
    # The active queue always by its own (partial) index, and recent ends by their end:
    # the planner, knowing nothing of how few jobs these are, would walk a user's whole
    # history by the uid index, or all of it in id order.
    table = "jobs"
    if where.states == ACTIVE_STATES:
        table = "jobs INDEXED BY jobs_active"
    elif where.ended_since is not None:
        table = "jobs INDEXED BY jobs_by_finished"
    condition = " WHERE " + " AND ".join(clauses) if clauses else ""
    if where.limit is None:
        return f"SELECT {columns} FROM {table}{condition} ORDER BY id", params
    if not where.last:
        return f"SELECT {columns} FROM {table}{condition} ORDER BY id LIMIT ?", [
            *params, where.limit]  # fmt: skip
    # The newest few, read backwards along the index, then put back in id order.
    newest = f"SELECT id FROM {table}{condition} ORDER BY id DESC LIMIT ?"
    return (
        f"SELECT {columns} FROM jobs WHERE id IN ({newest}) ORDER BY id",
        [*params, where.limit],
    )
