"""The events table as a durable, bounded history: read after an id, trimmed by age and count.

Ids are the table's rowids. The newest row is never trimmed, so a new row always gets a
bigger id than any a client has seen; purging jobs keeps their events (the history is
bounded by `trim`, not by purge).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from gflow.core.events import SYSTEM_JOB, StreamEvent
from gflow.core.model import Event
from gflow.core.states import JobState

KEEP_SECONDS = 7 * 24 * 3600.0  # at least the last 7 days …
KEEP_COUNT = 100_000  # … or the last 100,000 events, whichever is more
PAGE = 500
TRIM_BATCH = 20_000  # oldest events looked at per trim

_SELECT = (
    "SELECT e.id, e.job_id, e.at, e.kind, e.state, e.detail, j.user, j.uid"
    " FROM events e LEFT JOIN jobs j ON j.id = e.job_id"
)


@dataclass(frozen=True)
class EventFilter:
    uid: int | None = None  # only this user's jobs (and events of no job)
    job_ids: tuple[int, ...] | None = None
    kinds: frozenset[str] | None = None  # kinds ("ended") or names ("job_failed")


def head_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(id) FROM events").fetchone()
    return int(row[0] or 0)


def oldest_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MIN(id) FROM events").fetchone()
    return int(row[0] or 0)


def events_after(
    conn: sqlite3.Connection, after: int, where: EventFilter, limit: int = PAGE
) -> tuple[list[StreamEvent], int]:
    """Up to `limit` rows after id `after` that pass the filter, oldest first, and the id
    up to which rows were looked at (so a filter that passes few rows still moves on)."""
    clauses, params = _matching("e.id > ?", after, where)
    sql = f"{_SELECT} WHERE {clauses} ORDER BY e.id LIMIT ?"
    rows = conn.execute(sql, (*params, limit)).fetchall()
    events = [_event(row) for row in rows]
    # A short page saw every row there is; a full one, up to its last.
    scanned = events[-1].id if len(rows) == limit else max(after, head_id(conn))
    return _of_kinds(events, where), scanned


def new_events(conn: sqlite3.Connection, after: int) -> list[StreamEvent]:
    """Every row after id `after` (inside a transaction: the ones it added)."""
    return [
        _event(row) for row in conn.execute(f"{_SELECT} WHERE e.id > ? ORDER BY e.id", (after,))
    ]


def last_events(conn: sqlite3.Connection, where: EventFilter, count: int) -> list[StreamEvent]:
    """The newest `count` events passing the filter, oldest first (`gjob events`)."""
    found: list[StreamEvent] = []
    before = head_id(conn) + 1
    while len(found) < count and before > 0:
        clauses, params = _matching("e.id < ?", before, where)
        sql = f"{_SELECT} WHERE {clauses} ORDER BY e.id DESC LIMIT ?"
        rows = conn.execute(sql, (*params, PAGE)).fetchall()
        if not rows:
            break
        page = [_event(row) for row in rows]
        before = page[-1].id
        found += _of_kinds(page, where)
    return list(reversed(found[:count]))


def _matching(cursor: str, at: int, where: EventFilter) -> tuple[str, list[object]]:
    """The WHERE clause (and its parameters) of a page from `at` on, by job and user; the
    kinds are filtered afterwards in Python (a kind may be a notification name)."""
    clauses = [cursor]
    params: list[object] = [at]
    if where.job_ids is not None:
        clauses.append("e.job_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(where.job_ids)))
    if where.uid is not None:
        clauses.append(f"(j.uid = ? OR e.job_id = {SYSTEM_JOB})")
        params.append(where.uid)
    return " AND ".join(clauses), params


def _of_kinds(events: list[StreamEvent], where: EventFilter) -> list[StreamEvent]:
    kinds = where.kinds
    if kinds is None:
        return events
    return [e for e in events if e.kind in kinds or e.matches(kinds)]


def events_by_id(conn: sqlite3.Connection, ids: Iterable[int]) -> list[StreamEvent]:
    rows = conn.execute(
        f"{_SELECT} WHERE e.id IN (SELECT value FROM json_each(?)) ORDER BY e.id",
        (json.dumps(list(ids)),),
    ).fetchall()
    return [_event(row) for row in rows]


def insert_system_event(conn: sqlite3.Connection, at: float, kind: str, detail: str) -> None:
    conn.execute(
        "INSERT INTO events (job_id, at, kind, state, detail) VALUES (?, ?, ?, '', ?)",
        (SYSTEM_JOB, at, kind, detail),
    )


def trim(
    conn: sqlite3.Connection, now: float, keep_seconds: float = KEEP_SECONDS,
    keep_count: int = KEEP_COUNT, batch: int = TRIM_BATCH,
) -> int:  # fmt: skip
    """Forget events older than `keep_seconds` that are not among the newest `keep_count`.

    Only the oldest `batch` rows are looked at (ids grow with time), so a trim costs the
    same with a million events as with a thousand; the next trim goes on from there."""
    newest = head_id(conn)
    cur = conn.execute(
        "DELETE FROM events WHERE id IN"
        " (SELECT id FROM events WHERE id <= ? ORDER BY id LIMIT ?) AND at < ?",
        (newest - keep_count, batch, now - keep_seconds),
    )
    return cur.rowcount


def _event(row: tuple[object, ...]) -> StreamEvent:
    id_, job_id, at, kind, state, detail, user, uid = row
    return StreamEvent(
        int(id_),  # type: ignore[call-overload]
        int(job_id),  # type: ignore[call-overload]
        float(at),  # type: ignore[arg-type]
        str(kind),
        str(state),
        str(detail),
        None if user is None else str(user),
        None if uid is None else int(uid),  # type: ignore[call-overload]
    )


def events_of(conn: sqlite3.Connection, job_id: int) -> list[Event]:
    """One job's events, oldest first."""
    rows = conn.execute(
        "SELECT job_id, at, kind, state, detail FROM events WHERE job_id = ? ORDER BY id",
        (job_id,),
    )
    return [Event(j, at, kind, JobState(state), det) for j, at, kind, state, det in rows]
