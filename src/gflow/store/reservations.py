"""The reservations table: GPU reservations kept across restarts (core/reservations.py)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gflow.core.reservations import Reservation

_COLUMNS = "id, user, uid, start, end, gpu_ids, gpus, created_by, created_at"


def insert(conn: sqlite3.Connection, new: Reservation) -> Reservation:
    cur = conn.execute(
        "INSERT INTO reservations (user, uid, start, end, gpu_ids, gpus, created_by,"
        " created_at) VALUES (?,?,?,?,?,?,?,?)",
        (
            new.user, new.uid, new.start, new.end, json.dumps(list(new.gpu_ids)),
            new.gpus, new.created_by, new.created_at,
        ),
    )  # fmt: skip
    return Reservation(
        int(cur.lastrowid or 0), new.user, new.uid, new.start, new.end, new.gpu_ids,
        new.gpus, new.created_by, new.created_at,
    )  # fmt: skip


def not_over(conn: sqlite3.Connection, now: float) -> list[Reservation]:
    """Every reservation not cancelled that has not ended yet, by start."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM reservations WHERE cancelled_at IS NULL AND end > ?"
        " ORDER BY start, id",
        (now,),
    )
    return [_row(row) for row in rows]


def get(conn: sqlite3.Connection, reservation_id: int) -> Reservation | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM reservations WHERE id = ? AND cancelled_at IS NULL",
        (reservation_id,),
    ).fetchone()
    return _row(row) if row else None


def cancel(conn: sqlite3.Connection, reservation_id: int, now: float) -> None:
    conn.execute("UPDATE reservations SET cancelled_at = ? WHERE id = ?", (now, reservation_id))


def _row(row: tuple[Any, ...]) -> Reservation:
    rid, user, uid, start, end, gpu_ids, gpus, created_by, created_at = row
    return Reservation(
        int(rid), str(user), int(uid), float(start), float(end),
        tuple(json.loads(gpu_ids)), int(gpus), str(created_by), float(created_at),
    )  # fmt: skip
