"""Forgetting ended jobs: those that ended before a time and/or all but the newest N,
oldest first, a slice at a time ([history] keep / keep_jobs, and `gctl purge`).

Ids are never reused (AUTOINCREMENT). The jobs' events stay: the event history has its
own bounds (store/events.trim) and its ids must only grow. gstats' per-day totals stay.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gflow.store.rows import JOB_COLUMNS
from gflow.store.schema import ENDED_LIST


def oldest_kept(conn: sqlite3.Connection, keep_newest: int) -> int:
    """The id of the oldest of the newest `keep_newest` ended jobs (0: fewer than that)."""
    row = conn.execute(
        f"SELECT id FROM jobs WHERE state IN ({ENDED_LIST}) ORDER BY id DESC LIMIT 1 OFFSET ?",
        (keep_newest - 1,),
    ).fetchone()
    return int(row[0]) if row else 0


def purge(
    conn: sqlite3.Connection, ended_before: float | None, below_id: int | None, limit: int
) -> list[tuple[Any, ...]]:
    """Delete up to `limit` ended jobs, oldest first, that ended before `ended_before` or
    whose id is below `below_id`; return their rows so their files can go too."""
    expired = []
    params: list[Any] = []
    if ended_before is not None:
        expired.append("finished_at < ?")
        params.append(ended_before)
    if below_id is not None:
        expired.append("id < ?")
        params.append(below_id)
    if not expired:
        return []
    rows = conn.execute(
        f"SELECT {JOB_COLUMNS}, payload_id FROM jobs WHERE state IN ({ENDED_LIST})"
        f" AND ({' OR '.join(expired)}) ORDER BY id LIMIT ?",
        (*params, limit),
    ).fetchall()
    ids = json.dumps([row[0] for row in rows])
    payloads = json.dumps(sorted({row[-1] for row in rows if row[-1] is not None}))
    conn.execute("DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (ids,))
    # Only the payloads these jobs had, and only those no other job shares (an array's).
    conn.execute(
        "DELETE FROM payloads WHERE id IN (SELECT value FROM json_each(?))"
        " AND id NOT IN (SELECT payload_id FROM jobs WHERE payload_id IN"
        " (SELECT value FROM json_each(?)))",
        (payloads, payloads),
    )
    return [row[:-1] for row in rows]
