"""The notification outbox: one row per delivery still owed (store/schema.py, v9).

Rows are added inside the transaction that commits their event (Store.outbox), so an event
committed before a crash is still delivered after it; a row is deleted once delivered or
given up, in a transaction of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from gflow.store.db import Store


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    target: str  # a configured target's key ("webhook:0", "email:1")
    address: str  # a job's own --notify-email address, or ""
    attempts: int
    next_at: float


def add(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, str]], now: float) -> None:
    """(event id, target key, address) rows, due now; inside the event's transaction."""
    conn.executemany(
        "INSERT INTO outbox (event_id, target, address, next_at) VALUES (?, ?, ?, ?)",
        [(event_id, target, address, now) for event_id, target, address in rows],
    )


def due(store: Store, now: float, limit: int) -> list[Delivery]:
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT id, event_id, target, address, attempts, next_at FROM outbox"
            " WHERE next_at <= ? ORDER BY next_at, id LIMIT ?",
            (now, limit),
        ).fetchall()
    return [Delivery(*row) for row in rows]


def next_due(store: Store) -> float | None:
    with store.transaction() as conn:
        (when,) = conn.execute("SELECT MIN(next_at) FROM outbox").fetchone()
    return None if when is None else float(when)


def done(store: Store, delivery_id: int) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))


def later(store: Store, delivery_id: int, attempts: int, next_at: float) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE outbox SET attempts = ?, next_at = ? WHERE id = ?",
            (attempts, next_at, delivery_id),
        )


def pending(store: Store) -> int:
    with store.transaction() as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
    return int(count)
