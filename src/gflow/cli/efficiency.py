"""What a job used next to what it asked for, as the CLI shows it: `gjob show`'s lines,
`gjob eff` (Slurm's `seff`), gqueue's usage columns and `gstats --efficiency`."""

from __future__ import annotations

from typing import Any

from gflow.core.parse import format_duration
from gflow.core.usage import Efficiency, Usage, advice, efficiency, format_mb

Job = dict[str, Any]


def usage_of(job: Job) -> Usage:
    return Usage.from_dict(
        {
            "max_rss_mb": job.get("max_rss_mb", 0),
            "cpu_seconds": job.get("cpu_seconds", 0.0),
            "gpus": job.get("gpu_usage", []),
        }
    )


def elapsed(job: Job, now: float) -> float | None:
    if job.get("started_at") is None:
        return None
    return float((job.get("finished_at") or now) - job["started_at"])


def cores_of(job: Job) -> int:
    """The cores the job had: booked, or all it was pinned to (--exclusive), else one."""
    return int(job.get("cpus") or len(job.get("cpu_ids") or ()) or 1)


def gpu_memory_asked(job: Job) -> int | None:
    """Per GPU: what a shared job declared (a whole-GPU job declares no figure)."""
    return job.get("gpu_memory_mb") or None


def efficiency_of(job: Job, now: float) -> Efficiency:
    return efficiency(
        usage_of(job),
        cores_of(job),
        elapsed(job, now),
        job.get("memory_mb") or None,
        gpu_memory_asked(job),
        job.get("time_limit"),
    )


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.1%}"


def show_lines(job: Job, now: float) -> list[tuple[str, Any]]:
    """`gjob show`'s usage lines, each next to what was asked, and the advice of an ended
    job that used far less than it asked."""
    usage, eff = usage_of(job), efficiency_of(job, now)
    if job.get("started_at") is None:
        return []
    asked_mem = job.get("memory_mb")
    lines: list[tuple[str, Any]] = [
        ("MaxRSS", format_mb(usage.max_rss_mb)
         + (f" (of {format_mb(asked_mem)} asked)" if asked_mem else "")),
        ("CPUTime", format_duration(usage.cpu_seconds)),
        ("CPUEfficiency", f"{_percent(eff.cpu)} of {eff.cores} core(s)"),
        ("GPUMemPeak", ",".join(f"{g.index}:{format_mb(g.peak_mb)}" for g in usage.gpus) or "-"),
        ("GPUUtil", ",".join(
            f"{g.index}:{'-' if g.mean_util is None else f'{g.mean_util:.0f}%'} ({g.source})"
            for g in usage.gpus) or "-"),
    ]  # fmt: skip
    if job.get("finished_at") is not None:
        for line in advice(
            usage, eff, asked_mem or None, gpu_memory_asked(job), job.get("time_limit")
        ):
            lines.append(("Advice", line))
    return lines


def seff(job: Job, now: float) -> str:
    """The report Slurm's `seff JOBID` prints, for one job."""
    usage, eff = usage_of(job), efficiency_of(job, now)
    wall = eff.elapsed or 0.0
    exit_code = job.get("exit_code")
    state = job["state"] + (f" (exit code {exit_code})" if exit_code is not None else "")
    lines = [
        f"Job ID: {job['id']}",
        f"Job Name: {job['name']}",
        f"User: {job['user']}",
        f"State: {state}",
        f"Cores: {eff.cores}",
        f"CPU Utilized: {format_duration(usage.cpu_seconds)}",
        f"CPU Efficiency: {_percent(eff.cpu)} of {format_duration(wall * eff.cores)} core-walltime",
        f"Job Wall-clock time: {format_duration(wall)}",
        f"Memory Utilized: {format_mb(usage.max_rss_mb)}",
    ]
    if job.get("memory_mb"):
        lines.append(f"Memory Efficiency: {_percent(eff.memory)} of {format_mb(job['memory_mb'])}")
    else:
        lines.append("Memory Efficiency: - (no --mem asked)")
    for gpu in usage.gpus:
        asked = gpu_memory_asked(job)
        of = f" of {format_mb(asked)}" if asked else ""
        util = "-" if gpu.mean_util is None else f"{gpu.mean_util:.0f}%"
        lines.append(f"GPU {gpu.index} Memory Utilized: {format_mb(gpu.peak_mb)}{of}")
        lines.append(f"GPU {gpu.index} Utilization: {util} (mean; {gpu.source} figures)")
    if job["state"] == "Running":
        lines.append("(the job is still running: these are the figures so far)")
    return "\n".join(lines)


def gpu_hours(job: Job, now: float) -> tuple[float, float]:
    """(asked, used) GPU-hours: the GPUs it held for its run time, and the same weighted
    by each GPU's mean utilisation (unknown utilisation counts as used)."""
    run = elapsed(job, now) or 0.0
    held = len(job.get("gpu_ids") or ()) or job.get("gpus", 0)
    usage = usage_of(job)
    used = sum(run * (1.0 if g.mean_util is None else g.mean_util / 100) for g in usage.gpus)
    if held and not usage.gpus:
        used = run * held  # nothing measured: no figure to say it was wasted
    return held * run / 3600, used / 3600


def memory_gb_hours(job: Job, now: float) -> tuple[float, float]:
    """(asked, used) GB-hours of host memory: --mem and the peak RSS, for the run time."""
    run = (elapsed(job, now) or 0.0) / 3600
    asked = (job.get("memory_mb") or 0) / 1024
    return asked * run, (job.get("max_rss_mb") or 0) / 1024 * run


def efficiency_report(jobs: list[Job], now: float) -> dict[str, Any]:
    """`gstats --efficiency`: asked against used, per user and per project, and the jobs
    that left the most unused."""

    def totals(group: list[Job]) -> dict[str, float]:
        gpu = [gpu_hours(j, now) for j in group]
        mem = [memory_gb_hours(j, now) for j in group]
        return {
            "jobs": len(group),
            "gpu_hours_asked": sum(a for a, _ in gpu),
            "gpu_hours_used": sum(u for _, u in gpu),
            "memory_gb_hours_asked": sum(a for a, _ in mem),
            "memory_gb_hours_used": sum(u for _, u in mem),
        }

    ran = [j for j in jobs if j.get("started_at") is not None]
    by: dict[str, dict[str, list[Job]]] = {"user": {}, "project": {}}
    for job in ran:
        by["user"].setdefault(job["user"], []).append(job)
        by["project"].setdefault(job.get("project") or "-", []).append(job)

    def waste(job: Job) -> float:
        asked, used = gpu_hours(job, now)
        mem_asked, mem_used = memory_gb_hours(job, now)
        return (asked - used) + (mem_asked - mem_used) / 64  # 64 GB-hours ~ one GPU-hour

    worst = sorted(ran, key=waste, reverse=True)[:5]
    return {
        "by_user": {name: totals(group) for name, group in sorted(by["user"].items())},
        "by_project": {name: totals(group) for name, group in sorted(by["project"].items())},
        "most_unused": [
            {
                "id": j["id"],
                "name": j["name"],
                "user": j["user"],
                "gpu_hours_asked": gpu_hours(j, now)[0],
                "gpu_hours_used": gpu_hours(j, now)[1],
                "memory_mb_asked": j.get("memory_mb"),
                "max_rss_mb": j.get("max_rss_mb", 0),
            }
            for j in worst
            if waste(j) > 0
        ],
    }
