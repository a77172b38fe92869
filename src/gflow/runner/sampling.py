"""Looking at running jobs' processes once a tick: RSS, CPU time and GPU use per job.

Cheap by construction: only the jobs' own process trees are read (from each proven
wrapper down, through /proc/<pid>/task/<pid>/children), one /proc/<pid>/stat read per
process, and the GPUs once for all jobs. A process that vanishes mid-look is skipped; a
look that fails never touches the job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gflow.core.model import GpuInfo, JobProcesses
from gflow.core.usage import GpuSample, GpuSource, Sample
from gflow.runner.control import wrapper_alive

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass(frozen=True)
class ProcessTree:
    """What one job's processes use now: the wrapper's reaped children included."""

    pids: frozenset[int]  # the job's live processes (the wrapper not among them)
    rss_mb: int
    cpu_seconds: float


def look_at(procs: JobProcesses, boot: str) -> ProcessTree | None:
    """The job's process tree now, or None when its wrapper is not the recorded one."""
    if not wrapper_alive(procs, boot):
        return None
    wrapper = _stat(procs.wrapper_pid)
    if wrapper is None:
        return None
    # What already ended and was reaped by the wrapper (a subreaper: orphans too).
    cpu_ticks = wrapper.reaped_ticks
    rss_pages = 0
    pids: set[int] = set()
    stack = _children(procs.wrapper_pid)
    while stack:
        pid = stack.pop()
        if pid in pids:
            continue
        stat = _stat(pid)
        if stat is None:
            continue  # gone meanwhile
        pids.add(pid)
        cpu_ticks += stat.own_ticks + stat.reaped_ticks
        rss_pages += stat.rss_pages
        stack.extend(_children(pid))
    return ProcessTree(frozenset(pids), int(rss_pages * PAGE_MB), cpu_ticks / TICKS)


def sample(tree: ProcessTree, gpus: Iterable[GpuInfo], held: Iterable[int]) -> Sample:
    """One look at a job: its processes' use of each GPU they are on (or that it holds)."""
    held = set(held)
    seen = []
    for gpu in gpus:
        used = sum(mb for pid, mb in gpu.processes if pid in tree.pids)
        own_util = [u for pid, u in gpu.process_util if pid in tree.pids]
        on_it = used > 0 or bool(own_util)
        if not on_it and gpu.index not in held:
            continue
        if own_util:
            util: float | None = float(min(100, sum(own_util)))
            source = GpuSource.PROCESS
        else:
            util = None if gpu.utilization is None else float(gpu.utilization)
            source = GpuSource.DEVICE
        seen.append(GpuSample(gpu.index, used, util, source))
    return Sample(tree.rss_mb, tree.cpu_seconds, tuple(seen))


def sample_all(
    jobs: Mapping[int, tuple[JobProcesses, tuple[int, ...]]], gpus: list[GpuInfo], boot: str
) -> dict[int, tuple[ProcessTree, Sample]]:
    """Every job's tree and sample: `jobs` maps a job id to its processes and held GPUs."""
    found = {}
    for job_id, (procs, held) in jobs.items():
        tree = look_at(procs, boot)
        if tree is not None:
            found[job_id] = (tree, sample(tree, gpus, held))
    return found


@dataclass(frozen=True)
class _Stat:
    own_ticks: int  # utime + stime
    reaped_ticks: int  # cutime + cstime: its children that it waited for
    rss_pages: int


def _stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()  # fields from the 3rd (state) on
    try:
        return _Stat(
            int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]), int(fields[21])
        )
    except (IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    """Direct children of every thread of `pid` (a child forked by a thread is listed
    under that thread)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                found += map(int, f.read().split())
        except OSError:
            continue
    return found
