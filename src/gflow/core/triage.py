"""What most likely went wrong with a job, from its outcome and the tail of its log (pure)."""

from __future__ import annotations

import re
from typing import Any

_CUDA_OOM = re.compile(r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError: CUDA")
_MISSING = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '?([\w.]+)'?")
_NOT_FOUND = re.compile(r"(?:command not found|No such file or directory)")
_KILLED = re.compile(r"\bKilled\b|Out of memory: Killed process|MemoryError")


def diagnose(job: dict[str, Any], log_tail: str) -> list[str]:
    """Likely causes, most likely first; empty when nothing points anywhere."""
    found: list[str] = []
    state, reason = job.get("state"), str(job.get("reason") or "")
    if state == "Timeout" or reason.startswith("TimeLimit"):
        limit = job.get("time_limit")
        found.append(f"time limit: it ran past its limit ({limit} s)" if limit else "time limit")
    if _CUDA_OOM.search(log_tail):
        found.append("CUDA out of memory: ask for more GPU memory or a smaller batch")
    if reason.startswith("MemoryLimit") or job.get("signal") == 9 or _KILLED.search(log_tail):
        found.append("out of memory (host RAM): it was killed; ask for more with --mem")
    if missing := _MISSING.search(log_tail):
        found.append(f"missing module {missing.group(1)!r}: install it or pick the right env")
    if _NOT_FOUND.search(log_tail) and job.get("exit_code") in (126, 127):
        found.append("a command or file was not found (exit code 127 or 126)")
    if not found and state == "Failed" and reason.startswith("Lost"):
        found.append("lost: the daemon found no trace of it after a restart")
    return found
