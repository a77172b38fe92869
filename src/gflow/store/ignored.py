"""GPU processes an admin told the scheduler to ignore (`gctl ignore-gpu-process PID`):
persisted, so a restart keeps them, and named by pid and start time, so a pid the kernel
later gives to another process is not ignored with it."""

from __future__ import annotations

from dataclasses import dataclass

from gflow.store.db import Store

# Two looks at one process's start time agree to well within this (psutil reads it from
# /proc as clock ticks since boot).
SAME_START = 0.05


@dataclass(frozen=True)
class IgnoredProcess:
    pid: int
    started_at: float | None  # the process's start (Unix time); None: it was not found
    user: str  # who ran it, when it was ignored
    added_by: str
    added_at: float

    def is_process(self, started_at: float | None) -> bool:
        """Is a process with this pid, started then, the one that was ignored?"""
        if self.started_at is None or started_at is None:
            return self.started_at is None and started_at is None
        return abs(self.started_at - started_at) < SAME_START


def load(store: Store) -> list[IgnoredProcess]:
    rows = store.query(
        "SELECT pid, started_at, user, added_by, added_at FROM ignored_gpu_processes ORDER BY pid"
    )
    return [IgnoredProcess(*row) for row in rows]


def add(store: Store, entry: IgnoredProcess) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO ignored_gpu_processes"
            " (pid, started_at, user, added_by, added_at) VALUES (?, ?, ?, ?, ?)",
            (entry.pid, entry.started_at, entry.user, entry.added_by, entry.added_at),
        )


def remove(store: Store, pid: int) -> bool:
    """Forget it; False if it was not ignored."""
    with store.transaction() as conn:
        cur = conn.execute("DELETE FROM ignored_gpu_processes WHERE pid = ?", (pid,))
        return cur.rowcount > 0
