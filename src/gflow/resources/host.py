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
