"""The few-fields job listing (`gqueue`), written as JSON by SQLite itself.

Each API job field (`Job.to_dict()`) has the SQL expression that writes it as JSON, so a
listing of 10,000 jobs costs no Python object per value. A unit test checks every field
equals `Job.to_dict()`'s value, types included.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache

from gflow.core.errors import InvalidInput
from gflow.core.model import display_name
from gflow.core.states import JobState


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
