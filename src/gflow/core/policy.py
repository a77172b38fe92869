"""The scheduling decision: which queued jobs start now, on which GPUs, and why the rest wait.

A pure function of its inputs (no I/O, no clock), so it is tested by example and by property.

Order is priority, then submission. When the first job in that order that could run is
blocked on resources, it gets a reservation: the GPUs and memory it will get at the
earliest time running jobs' time limits guarantee ("the shadow time"). A later job may
start only if it fits beside that reservation, or if its own time limit ends before the
shadow time (EASY backfill). A job without a time limit never jumps the blocked head
unless it fits beside the reservation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter

from gflow.core.dependencies import Verdict, dependency_verdict
from gflow.core.model import Job, Resources
from gflow.core.states import JobState, Reason, ReasonKind


@dataclass(frozen=True)
class GpuState:
    """One usable GPU as the scheduler sees it, before counting our own running jobs."""

    index: int
    total_mb: int
    foreign_used_mb: int = 0  # memory used by processes that are not our jobs
    foreign_pids: tuple[int, ...] = ()  # a foreign compute process bars exclusive use


@dataclass(frozen=True)
class Machine:
    gpus: tuple[GpuState, ...]  # only the GPUs jobs may use (gctl set-gpus)
    host_free_mb: int  # host RAM available to new jobs now


@dataclass(frozen=True)
class Start:
    job_id: int
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True)
class Decision:
    starts: list[Start] = field(default_factory=list)
    waiting: dict[int, Reason] = field(default_factory=dict)
    # Dependents whose dependencies can no longer be met: cancelled, transitively.
    cancels: dict[int, Reason] = field(default_factory=dict)
    # The earliest future begin time among waiting jobs: when to run the next pass.
    next_begin: float | None = None


@dataclass
class _Gpu:
    """A GPU's occupancy during one pass (mutable scratch, never leaves this module)."""

    index: int
    total_mb: int
    foreign_used_mb: int
    foreign: bool
    promised_mb: int = 0  # declared GPU memory of our shared jobs on it
    exclusive: bool = False  # one of our exclusive jobs holds it
    shared_jobs: int = 0

    @property
    def free_mb(self) -> int:
        return self.total_mb - self.foreign_used_mb - self.promised_mb

    def idle(self) -> bool:
        return not self.exclusive and self.shared_jobs == 0 and not self.foreign

    def take(self, res: Resources, sign: int = 1) -> None:
        if res.shared:
            self.shared_jobs += sign
            self.promised_mb += sign * (res.gpu_memory_mb or 0)
        else:
            self.exclusive = sign > 0


@dataclass
class _Pool:
    gpus: dict[int, _Gpu]
    host_free_mb: int

    def copy(self) -> _Pool:
        return _Pool({i: replace(g) for i, g in self.gpus.items()}, self.host_free_mb)

    def allocate(
        self, res: Resources, avoid: frozenset[int] = frozenset()
    ) -> tuple[int, ...] | Reason:
        """The GPUs this request would get now (lowest index first, those in `avoid` last),
        or why it cannot start."""
        if res.memory_mb and res.memory_mb > self.host_free_mb:
            return Reason(ReasonKind.RESOURCES, "HostMemory")
        if res.gpus == 0:
            return ()
        candidates = (
            [self.gpus[i] for i in res.gpu_pin if i in self.gpus]
            if res.gpu_pin
            else (list(self.gpus.values()))
        )
        need = res.gpu_memory_mb or 0
        if res.shared:
            fit = [g for g in candidates if not g.exclusive and g.free_mb >= need]
            short = "GPUMemory"
        else:
            fit = [g for g in candidates if g.idle() and g.total_mb - g.foreign_used_mb >= need]
            short = "GPU"
        if len(fit) < res.gpus:
            return Reason(ReasonKind.RESOURCES, short)
        if avoid:
            fit.sort(key=lambda g: g.index in avoid)  # stable: index order otherwise
        return tuple(g.index for g in fit[: res.gpus])

    def fits_at(self, res: Resources, gpu_ids: Iterable[int]) -> bool:
        """Would this job, holding exactly these GPUs, fit in this pool?"""
        if res.memory_mb and res.memory_mb > self.host_free_mb:
            return False
        for index in gpu_ids:
            gpu = self.gpus.get(index)
            if gpu is None:
                return False
            if res.shared:
                if gpu.exclusive or gpu.free_mb < (res.gpu_memory_mb or 0):
                    return False
            elif not gpu.idle():
                return False
        return True

    def take(self, res: Resources, gpu_ids: Iterable[int], sign: int = 1) -> None:
        self.host_free_mb -= sign * (res.memory_mb or 0)
        for index in gpu_ids:
            if index in self.gpus:
                self.gpus[index].take(res, sign)


@dataclass(frozen=True)
class _Reservation:
    start: float  # shadow time; math.inf when no running job's time limit frees enough
    after: _Pool  # what is left at the shadow time once the head job has its share
    gpu_ids: frozenset[int]  # the GPUs the head job will get


# Blocked jobs that may try to reserve in one pass, so a queue of 10,000 jobs that can never
# fit does not cost 10,000 simulations.
MAX_RESERVE_TRIES = 8


_WAIT_DEPENDENCY = Reason(ReasonKind.DEPENDENCY)
_WAIT_BEGIN = Reason(ReasonKind.BEGIN_TIME)
_WAIT_GROUP = Reason(ReasonKind.GROUP_LIMIT)
_WAIT_PRIORITY = Reason(ReasonKind.PRIORITY)


def in_queue_order(jobs: Sequence[Job]) -> list[Job]:
    """Higher priority first, then submission order.

    Two stable C-keyed sorts instead of one Python key function: 5x faster on 10,000 jobs.
    """
    by_id = sorted(jobs, key=attrgetter("id"))
    return sorted(by_id, key=attrgetter("priority"), reverse=True)


def schedule(
    queued: Sequence[Job],
    running: Sequence[Job],
    dependency_states: Mapping[int, JobState],
    machine: Machine,
    now: float,
) -> Decision:
    """Decide one pass.

    `queued` are the jobs in state Queued; `dependency_states` gives the state of every job
    they depend on that is not itself in `queued`.
    """
    decision = Decision()
    states = dict(dependency_states)
    states.update(dict.fromkeys([job.id for job in queued], JobState.QUEUED))
    dependencies_met = _settle_dependencies(queued, states, decision)

    pool = _Pool(
        {
            g.index: _Gpu(g.index, g.total_mb, g.foreign_used_mb, bool(g.foreign_pids))
            for g in machine.gpus
        },
        machine.host_free_mb,
    )
    group_running: dict[int, int] = {}
    for job in running:
        pool.take(job.resources._replace(memory_mb=None), job.gpu_ids)  # RAM: in host_free_mb
        if job.group_id is not None:
            group_running[job.group_id] = group_running.get(job.group_id, 0) + 1
    # (when it ends at the latest, what it holds): what a reservation can count on.
    running_ends = [(job.ends_by() or math.inf, job.resources, job.gpu_ids) for job in running]
    reservation: _Reservation | None = None
    reserve_tries = MAX_RESERVE_TRIES
    next_begin: float | None = None

    # The pool only fills up during a pass, so a request that did not fit will not fit
    # later in the same pass: remember it (a queue of 10,000 alike jobs is common).
    cannot_fit: dict[Resources, Reason] = {}
    for job in in_queue_order(queued):
        if job.id in decision.cancels:
            continue
        if job.dependencies and job.id not in dependencies_met:
            decision.waiting[job.id] = _WAIT_DEPENDENCY
            continue
        if job.begin_at is not None and job.begin_at > now:
            decision.waiting[job.id] = _WAIT_BEGIN
            next_begin = job.begin_at if next_begin is None else min(next_begin, job.begin_at)
            continue
        limit = job.max_concurrent
        if limit is not None and group_running.get(job.group_id or 0, 0) >= limit:
            decision.waiting[job.id] = _WAIT_GROUP
            continue
        avoid = reservation.gpu_ids if reservation is not None else frozenset()
        gpu_ids = cannot_fit.get(job.resources) or pool.allocate(job.resources, avoid)
        if isinstance(gpu_ids, Reason):
            cannot_fit[job.resources] = gpu_ids
            decision.waiting[job.id] = gpu_ids
            if reservation is None and reserve_tries > 0:
                reserve_tries -= 1
                reservation = _reserve(job, pool, running_ends)
            continue
        if reservation is not None:
            ends = now + job.time_limit if job.time_limit is not None else math.inf
            # When the shadow time is unknown (a job without a time limit holds what the
            # head needs), no job can be sure to end before it: it must fit beside.
            if math.isinf(reservation.start) or ends > reservation.start:
                if not reservation.after.fits_at(job.resources, gpu_ids):
                    decision.waiting[job.id] = _WAIT_PRIORITY
                    continue
                reservation.after.take(job.resources, gpu_ids)
        pool.take(job.resources, gpu_ids)
        ends = now + job.time_limit if job.time_limit else math.inf
        running_ends.append((ends, job.resources, gpu_ids))
        if job.group_id is not None:
            group_running[job.group_id] = group_running.get(job.group_id, 0) + 1
        decision.starts.append(Start(job.id, gpu_ids))
    return replace(decision, next_begin=next_begin)


def _reserve(
    head: Job, pool: _Pool, running_ends: list[tuple[float, Resources, tuple[int, ...]]]
) -> _Reservation | None:
    """Release running jobs in the order their time limits end until the head job fits.

    None if it would not fit even with every job of ours gone (foreign processes, a pinned
    GPU outside the allowed set): reserving would only block others for nothing, so the
    next blocked job may reserve instead.
    """
    future = pool.copy()
    for end, resources, gpu_ids_held in sorted(running_ends, key=lambda item: item[0]):
        future.take(resources, gpu_ids_held, sign=-1)
        gpu_ids = future.allocate(head.resources)
        if not isinstance(gpu_ids, Reason):
            future.take(head.resources, gpu_ids)
            return _Reservation(end, future, frozenset(gpu_ids))
    return None


def _settle_dependencies(
    queued: Sequence[Job], states: dict[int, JobState], out: Decision
) -> set[int]:
    """Ids of jobs whose dependencies are met. Jobs whose dependencies can no longer be met
    are cancelled (unless --no-auto-cancel), and then their dependents, transitively."""
    pending = [job for job in queued if job.dependencies]
    met: set[int] = set()
    changed = True
    while changed:
        changed = False
        still_pending = []
        for job in pending:
            verdict, blocker = dependency_verdict(job.dependencies, job.dependency_mode, states)
            if verdict is Verdict.READY:
                met.add(job.id)
            elif verdict is Verdict.IMPOSSIBLE and job.auto_cancel:
                out.cancels[job.id] = Reason(ReasonKind.DEPENDENCY_FAILED, str(blocker))
                states[job.id] = JobState.CANCELLED
                changed = True
            else:
                still_pending.append(job)
        pending = still_pending
    return met
