"""Host memory and process trees, through psutil."""

from __future__ import annotations

import psutil

MB = 1024 * 1024


def total_memory_mb() -> int:
    return int(psutil.virtual_memory().total // MB)


def available_memory_mb() -> int:
    return int(psutil.virtual_memory().available // MB)


def descendants_rss_mb(root_pid: int) -> int:
    """Resident memory of all descendants of a process (a job's processes under its wrapper,
    not counting the wrapper itself)."""
    try:
        procs = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total // MB


def ancestors(pid: int) -> set[int]:
    """Every ancestor of a process (empty if it is gone)."""
    try:
        return {parent.pid for parent in psutil.Process(pid).parents()}
    except psutil.Error:
        return set()


def process_owner_and_start(pid: int) -> tuple[str, float] | None:
    """(user name, start time as Unix time) of a process, or None if it is gone. A process
    of another user is still named (its owner and start are public in /proc)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            started = proc.create_time()
            try:
                user = proc.username()
            except KeyError:  # a uid with no name
                user = str(proc.uids().real)
        return user, started
    except psutil.Error:
        return None
