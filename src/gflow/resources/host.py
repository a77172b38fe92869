"""Host memory and process trees, through psutil."""

from __future__ import annotations

import psutil

MB = 1024 * 1024


def total_memory_mb() -> int:
    return int(psutil.virtual_memory().total // MB)


def available_memory_mb() -> int:
    return int(psutil.virtual_memory().available // MB)


def tree_rss_mb(root_pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
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
