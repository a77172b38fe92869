"""Is a file a database gflow may open: not a link, an SQLite file, whole (SQLite's
quick_check). Any doubt is a StoreError, and the file is left untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(Exception):
    """The database cannot be used (newer schema, corrupt file); the daemon must not start."""


def refuse_foreign(path: Path) -> None:
    """Refuse a database (or its -wal, -shm) that is a link, or a file that is not SQLite's."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.is_symlink():
            raise StoreError(f"{file} is a link, not a database file; left untouched")
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise StoreError(f"{path} is not an SQLite database; left untouched")


def check_integrity(path: Path) -> None:
    """SQLite's quick_check of the whole file, on a read-only connection of its own (so a
    thread can run it while the daemon sets up); StoreError if it finds damage."""
    try:
        conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
    try:
        quick_check(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
    finally:
        conn.close()


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    found = conn.execute("PRAGMA quick_check").fetchall()
    if found != [("ok",)]:
        # Its first finding, on one line ("*** in database main ***\nOn tree page 2 …").
        damage = " ".join(str(found[0][0]).replace("*** in database main ***", "").split())
        raise StoreError(f"{path} is corrupt ({damage}); left untouched")
