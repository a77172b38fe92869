"""gqueue's columns (`-f`), the job fields each one reads, and its sort keys (`-r`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gflow.core.parse import format_duration, format_size_mb
from gflow.core.states import JobState

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

    Row = dict[str, Any]


def _time(job: Row) -> str:
    if job["started_at"] is None:
        return "-"
    return format_duration((job["finished_at"] or time.time()) - job["started_at"])


_RUNNING = JobState.RUNNING.value  # an enum member's value is a slow lookup, once per row


def _nodelist(job: Row) -> str:
    if job["state"] == _RUNNING:
        return ",".join(map(str, job["gpu_ids"])) or "-"
    return f"({job['reason']})" if job["reason"] else "-"


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _exit(job: Row) -> str:
    if job["signal"] is not None:
        return f"SIG{job['signal']}"
    return "-" if job["exit_code"] is None else str(job["exit_code"])


def _cpu_efficiency(job: Row) -> str:
    """CPU time over cores × run time, as seff's CPU Efficiency (so far, while running)."""
    if job["started_at"] is None:
        return "-"
    wall = (job["finished_at"] or time.time()) - job["started_at"]
    cores = job["cpus"] or len(job["cpu_ids"]) or 1
    return f"{job['cpu_seconds'] / (cores * wall):.0%}" if wall > 0 else "-"


def _used_mb(key: str) -> Callable[[Row], str]:
    return lambda j: format_size_mb(j[key]) if j["started_at"] is not None and j[key] else "-"


FIELDS: dict[str, Callable[[Row], str]] = {
    "JOBID": lambda j: str(j["id"]),
    "NAME": lambda j: j["name"],
    "ST": lambda j: j["state_short"],
    "STATE": lambda j: j["state"],
    "TIME": _time,
    "TIMELIMIT": lambda j: format_duration(j["time_limit"]) if j["time_limit"] else "UNLIMITED",
    "NODES": lambda j: str(j["gpus"]),
    "MEMORY": lambda j: "all" if j["memory_mb"] == 0 else format_size_mb(j["memory_mb"]),
    "GPUMEM": lambda j: format_size_mb(j["gpu_memory_mb"]),
    "GPUS": lambda j: str(j["gpus"]),  # a count, as gflow's GPUS
    "CPUS": lambda j: "all" if j["exclusive"] else str(j["cpus"] or "-"),
    "GPUIDS": lambda j: ",".join(map(str, j["gpu_ids"])) or "-",
    "NODELIST(REASON)": _nodelist,
    "REASON": lambda j: j["reason"] or "-",
    "EXITCODE": _exit,
    "USER": lambda j: j["user"],
    "PRIORITY": lambda j: str(j["priority"]),
    "PROJECT": lambda j: j["project"] or "-",
    "SUBMITTED": lambda j: _clock(j["submitted_at"]),
    "STARTED": lambda j: _clock(j["started_at"]),
    "ENDED": lambda j: _clock(j["finished_at"]),
    "MAXRSS": _used_mb("max_rss_mb"),
    "FAIRSHARE": lambda j: j.get("fairshare", "-"),
    "CPUEFF": _cpu_efficiency,
    "GPUMEMPEAK": _used_mb("gpu_mem_peak_mb"),
}
# The job fields each column reads. gqueue asks the daemon for only these: a full job is
# ~800 bytes of JSON, so 10,000 of them would take longer to send and decode than to show.
NEEDS: dict[str, tuple[str, ...]] = {
    "JOBID": ("id",),
    "NAME": ("name",),
    "ST": ("state_short",),
    "STATE": ("state",),
    "TIME": ("started_at", "finished_at"),
    "TIMELIMIT": ("time_limit",),
    "NODES": ("gpus",),
    "MEMORY": ("memory_mb",),
    "GPUMEM": ("gpu_memory_mb",),
    "GPUS": ("gpus",),
    "CPUS": ("cpus", "exclusive"),
    "GPUIDS": ("gpu_ids",),
    "NODELIST(REASON)": ("state", "gpu_ids", "reason"),
    "REASON": ("reason",),
    "EXITCODE": ("signal", "exit_code"),
    "USER": ("user",),
    "PRIORITY": ("priority",),
    "PROJECT": ("project",),
    "SUBMITTED": ("submitted_at",),
    "STARTED": ("started_at",),
    "ENDED": ("finished_at",),
    "MAXRSS": ("started_at", "max_rss_mb"),
    "FAIRSHARE": ("user",),  # filled from GET /fairshare (gqueue.fetch)
    "CPUEFF": ("started_at", "finished_at", "cpu_seconds", "cpus", "cpu_ids"),
    "GPUMEMPEAK": ("started_at", "gpu_mem_peak_mb"),
}
# The lifecycle order (Queued, Hold, Running, Finished, Failed, Cancelled, Timeout), as gflow.
_STATE_ORDER = {state.value: n for n, state in enumerate(JobState)}
# Every sort is stable on top of the daemon's id order, so ties stay in id order.
SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "id": lambda j: j["id"],
    "state": lambda j: _STATE_ORDER.get(j["state"], len(_STATE_ORDER)),
    "time": lambda j: j["started_at"] or float("inf"),  # not started yet: last
    "name": lambda j: j["name"],
    "gpus": lambda j: j["gpus"],
    "priority": lambda j: -j["priority"],  # highest first: the order they start in
    "submitted": lambda j: j["submitted_at"],
    "end": lambda j: j["finished_at"] or float("inf"),  # not ended yet: last
}
# The field each sort reads, where it is not the key's own name.
SORT_NEEDS = {"time": "started_at", "submitted": "submitted_at", "end": "finished_at"}
TREE_NEEDS = ("id", "depends_on", "name", "state_short")
