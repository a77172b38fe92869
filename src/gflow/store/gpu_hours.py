"""The GPU-hours of ended jobs, read for daily quotas and fair share (daemon/sharing.py):
their spans, or each user's decayed sum computed by SQLite."""

from __future__ import annotations

import math
import sqlite3


def gpu_spans(
    conn: sqlite3.Connection, ended_since: float, visible: tuple[str, list[int]]
) -> list[tuple[int, str, float, float, int]]:
    """(uid, project, started, ended, GPUs) of every GPU job that ended since then: the
    history quotas per day and fair-share count."""
    clause, hidden = visible
    rows = conn.execute(
        "SELECT uid, project, started_at, finished_at, json_array_length(gpu_ids)"
        " FROM jobs WHERE finished_at >= ? AND started_at IS NOT NULL"
        f" AND gpu_ids != '[]' AND {clause}",
        (ended_since, *hidden),
    )
    return [(int(u), str(p), float(s), float(e), int(g)) for u, p, s, e, g in rows]


def decayed_gpu_hours(
    conn: sqlite3.Connection, ended_since: float, at: float, half_life: float
) -> dict[int, float]:
    """Each user's decayed GPU-hours (core.sharing.decayed_span) of the GPU jobs that
    ended since then, as of `at`, summed by SQLite: 100,000 spans in one query."""
    rate = math.log(2) / half_life
    rows = conn.execute(
        "SELECT uid, TOTAL(json_array_length(gpu_ids) * (exp(-?1 * (?2 - finished_at))"
        " - exp(-?1 * (?2 - started_at)))) / ?1 / 3600"
        " FROM jobs INDEXED BY jobs_gpu_ended WHERE finished_at >= ?3"
        " AND started_at IS NOT NULL AND gpu_ids != '[]' AND finished_at > started_at"
        " GROUP BY uid",
        (rate, at, ended_since),
    )
    return {int(uid): float(hours) for uid, hours in rows}


def add_math_functions(conn: sqlite3.Connection) -> None:
    """exp() for the fair-share sums, where this SQLite was built without its own."""
    try:
        conn.execute("SELECT exp(0)")
    except sqlite3.OperationalError:
        conn.create_function("exp", 1, math.exp, deterministic=True)
