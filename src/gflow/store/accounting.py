"""The queries behind `gstats`: ended jobs from the per-day totals the triggers keep
(schema v12), the partial first day and the active jobs from the jobs table, and the
longest runs by their index, so a year of history costs a few thousand rows, not a scan.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from gflow.core.accounting import LongRun, Tally
from gflow.core.states import JobState
from gflow.store.listing import NAME_SQL
from gflow.store.schema import ACTIVE_CLAUSE, ENDED_LIST

DAY = 86400.0
# The sums of ended jobs, as the triggers add them to daily_totals.
_ENDED_SUMS = (
    "COUNT(*), COUNT(started_at), TOTAL(started_at - submitted_at), COUNT(started_at),"
    " TOTAL(finished_at - started_at), TOTAL(json_array_length(gpu_ids) * (finished_at -"
    " started_at))"
)


@dataclass(frozen=True)
class StatsFilter:
    """Whose jobs (None: everyone's), of which project (None: any), submitted since when."""

    uid: int | None = None
    project: str | None = None
    since: float | None = None


def _owner_terms(where: StatsFilter) -> tuple[list[str], list[Any]]:
    terms: list[str] = []
    params: list[Any] = []
    if where.uid is not None:
        terms.append("uid = ?")
        params.append(where.uid)
    if where.project is not None:
        terms.append("project = ?")
        params.append(where.project)
    return terms, params


def tallies(
    conn: sqlite3.Connection, where: StatsFilter, visible: tuple[str, list[int]]
) -> list[Tally]:
    """Every matching job, tallied by state; `visible` leaves out staged submissions."""
    terms, params = _owner_terms(where)
    first_day = 0 if where.since is None else math.ceil(where.since / DAY)
    rows: list[tuple[Any, ...]] = []
    totals = " AND ".join([*terms, "day >= ?"])
    rows += conn.execute(
        "SELECT state, SUM(jobs), SUM(started), TOTAL(wait_seconds), SUM(started),"
        f" TOTAL(run_seconds), TOTAL(gpu_seconds) FROM daily_totals WHERE {totals}"
        " GROUP BY state",
        [*params, first_day],
    ).fetchall()
    if where.since is not None:  # the part of a day before the first whole one
        partial = " AND ".join(
            [*terms, f"state IN ({ENDED_LIST})", "submitted_at >= ?", "submitted_at < ?"]
        )
        rows += conn.execute(
            f"SELECT state, {_ENDED_SUMS} FROM jobs WHERE {partial} GROUP BY state",
            [*params, where.since, first_day * DAY],
        ).fetchall()
    active_terms = [*terms, ACTIVE_CLAUSE, visible[0]]
    active_params = [*params, *visible[1]]
    if where.since is not None:
        active_terms.append("submitted_at >= ?")
        active_params.append(where.since)
    rows += conn.execute(
        "SELECT state, COUNT(*), COUNT(started_at), TOTAL(started_at - submitted_at), 0, 0, 0"
        f" FROM jobs INDEXED BY jobs_active WHERE {' AND '.join(active_terms)} GROUP BY state",
        active_params,
    ).fetchall()
    return [Tally(JobState(row[0]), *row[1:]) for row in rows]


def longest_runs(conn: sqlite3.Connection, where: StatsFilter, count: int = 5) -> list[LongRun]:
    """The longest runs that ended (ties: the first submitted first)."""
    terms, params = _owner_terms(where)
    terms.append("finished_at - started_at IS NOT NULL")
    if where.since is not None:
        terms.append("submitted_at >= ?")
        params.append(where.since)
    rows = conn.execute(
        f"SELECT id, {NAME_SQL}, finished_at - started_at, json_array_length(gpu_ids)"
        f" FROM jobs WHERE {' AND '.join(terms)}"
        " ORDER BY finished_at - started_at DESC, id LIMIT ?",
        [*params, count],
    ).fetchall()
    return [LongRun(*row) for row in rows]
