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
from gflow.core.model import Job
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.reservations import NOTHING_KEPT, KeptFrom, kept_from
from gflow.core.sharing import (
    NO_RULES,
    RunningCounts,
    SharingRules,
    fair_share_order,
    quota_reason,
)
from gflow.core.spec import ALL_MEMORY, Resources
from gflow.core.states import JobState


@dataclass(frozen=True)
class GpuState:
    """One usable GPU as the scheduler sees it, before counting our own running jobs."""

    index: int
    total_mb: int
    foreign_used_mb: int = 0  # memory used by processes that are not our jobs
    foreign_pids: tuple[int, ...] = ()  # a foreign compute process bars exclusive use
    name: str = ""  # the model, for requests of a GPU type (gpu:a100:2)


@dataclass(frozen=True)
class Machine:
    gpus: tuple[GpuState, ...]  # only the GPUs jobs may use (gctl set-gpus)
    host_free_mb: int  # host RAM available to new jobs now
    cpus: tuple[int, ...] = ()  # the CPU cores jobs may be pinned to (the daemon's own)


@dataclass(frozen=True)
class Start:
    job_id: int
    gpu_ids: tuple[int, ...]
    cpu_ids: tuple[int, ...] = ()


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
    name: str = ""
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


def gpu_matches(model: str, name: str) -> bool:
    """Does a GPU named `name` ('NVIDIA A100-SXM4-80GB') have Slurm's type `model` ('a100')?"""
    return model.lower().replace("_", " ") in name.lower().replace("_", " ")


_WAIT_EXCLUSIVE = Reason(ReasonKind.RESOURCES, "Exclusive")
_WAIT_RESERVATION = Reason(ReasonKind.RESERVATION)
_WAIT_CPU = Reason(ReasonKind.RESOURCES, "CPU")
_WAIT_MEMORY = Reason(ReasonKind.RESOURCES, "HostMemory")


@dataclass
class _Pool:
    gpus: dict[int, _Gpu]
    host_free_mb: int
    cpus: set[int] = field(default_factory=set)  # cores no job of ours is pinned to
    ours: int = 0  # our jobs holding a share of this pool
    exclusive_held: int = 0  # our --exclusive jobs: nothing runs beside one
    all_memory: int = 0  # our --mem=0 jobs: they hold all the RAM

    def copy(self) -> _Pool:
        return _Pool(
            {i: replace(g) for i, g in self.gpus.items()},
            self.host_free_mb,
            set(self.cpus),
            self.ours,
            self.exclusive_held,
            self.all_memory,
        )

    def allocate_cpus(self, res: Resources) -> tuple[int, ...] | Reason:
        """The cores this request is pinned to (lowest first), or why it cannot start."""
        if res.exclusive:
            return tuple(sorted(self.cpus))
        if res.cpus > len(self.cpus):
            return _WAIT_CPU
        return tuple(sorted(self.cpus)[: res.cpus]) if res.cpus else ()

    def _memory_fits(self, res: Resources) -> bool:
        if res.memory_mb is None:
            return True
        if self.all_memory:
            return False
        return res.memory_mb == ALL_MEMORY or res.memory_mb <= self.host_free_mb

    def allocate(
        self, res: Resources, avoid: frozenset[int] = frozenset(), kept: KeptFrom = NOTHING_KEPT
    ) -> tuple[int, ...] | Reason:
        """The GPUs this request would get now (lowest index first, those in `avoid` last),
        or why it cannot start. `kept`: what others' reservations keep from it."""
        if kept.anything:
            got = self._allocate(res, avoid, kept)
            if isinstance(got, Reason) and not isinstance(self._allocate(res, avoid), Reason):
                return _WAIT_RESERVATION  # it would fit, but on GPUs reserved for another
            return got
        return self._allocate(res, avoid)

    def _allocate(
        self, res: Resources, avoid: frozenset[int] = frozenset(), kept: KeptFrom = NOTHING_KEPT
    ) -> tuple[int, ...] | Reason:
        if self.exclusive_held or (res.exclusive and self.ours):
            return _WAIT_EXCLUSIVE
        memory = res.memory_mb  # inline (not _memory_fits): this runs per job per pass
        if memory is not None and (self.all_memory or memory > self.host_free_mb):
            return _WAIT_MEMORY
        if res.cpus and res.cpus > len(self.cpus):
            return _WAIT_CPU
        if res.exclusive:
            if kept.anything or not all(g.idle() for g in self.gpus.values()):
                return Reason(ReasonKind.RESOURCES, "GPU")
            return tuple(sorted(self.gpus))
        if res.gpus == 0:
            return ()
        candidates = (
            [self.gpus[i] for i in res.gpu_pin if i in self.gpus]
            if res.gpu_pin
            else (list(self.gpus.values()))
        )
        if kept.gpu_ids:
            candidates = [g for g in candidates if g.index not in kept.gpu_ids]
        if res.gpu_model:
            candidates = [g for g in candidates if gpu_matches(res.gpu_model, g.name)]
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
        chosen = fit[: res.gpus]
        if kept.keep_idle:
            idle = sum(1 for g in self.gpus.values() if g.idle() and g.index not in kept.gpu_ids)
            if idle - sum(1 for g in chosen if g.idle()) < kept.keep_idle:
                return Reason(ReasonKind.RESOURCES, short)
        return tuple(g.index for g in chosen)

    def fits_at(self, res: Resources, gpu_ids: Iterable[int], cpu_ids: Iterable[int] = ()) -> bool:
        """Would this job, holding exactly these GPUs and cores, fit in this pool?"""
        if self.exclusive_held or (res.exclusive and self.ours) or not self._memory_fits(res):
            return False
        if not self.cpus.issuperset(cpu_ids):
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

    def take(
        self, res: Resources, gpu_ids: Iterable[int], sign: int = 1, cpu_ids: Iterable[int] = ()
    ) -> None:
        self.host_free_mb -= sign * (res.memory_mb or 0)
        self.ours += sign
        self.exclusive_held += sign * res.exclusive
        self.all_memory += sign * (res.memory_mb == ALL_MEMORY)
        if sign > 0:
            self.cpus.difference_update(cpu_ids)
        else:
            self.cpus.update(cpu_ids)
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
    rules: SharingRules = NO_RULES,
) -> Decision:
    """Decide one pass.

    `queued` are the jobs in state Queued; `dependency_states` gives the state of every job
    they depend on that is not itself in `queued`; `rules` are the team's quotas and
    fair-share (core/sharing.py).
    """
    decision = Decision()
    states = dict(dependency_states)
    states.update(dict.fromkeys([job.id for job in queued], JobState.QUEUED))
    dependencies_met = _settle_dependencies(queued, states, decision)

    pool = _Pool(
        {
            g.index: _Gpu(g.index, g.total_mb, g.foreign_used_mb, bool(g.foreign_pids), g.name)
            for g in machine.gpus
        },
        machine.host_free_mb,
        set(machine.cpus),
    )
    group_running: dict[int, int] = {}
    for job in running:
        # RAM is already counted in host_free_mb (but --mem=0 holds all of it)
        held = (
            job.resources
            if job.resources.memory_mb == ALL_MEMORY
            else job.resources._replace(memory_mb=None)
        )
        pool.take(held, job.gpu_ids, cpu_ids=job.cpu_ids)
        if job.group_id is not None:
            group_running[job.group_id] = group_running.get(job.group_id, 0) + 1
    # (when it ends at the latest, what it holds): what a reservation can count on.
    running_ends = [
        (job.ends_by() or math.inf, job.resources, job.gpu_ids, job.cpu_ids) for job in running
    ]
    reservation: _Reservation | None = None
    reserve_tries = MAX_RESERVE_TRIES
    next_begin: float | None = None

    # The pool only fills up during a pass, so a request that did not fit will not fit
    # later in the same pass: remember it (a queue of 10,000 alike jobs is common).
    cannot_fit: dict[Resources | tuple[Resources, KeptFrom], Reason] = {}
    quotas = bool(rules.user_quotas or rules.project_quotas)
    counts = RunningCounts.of(running) if quotas else RunningCounts()
    quota_seen: dict[tuple[int, str, int], Reason | None] = {}
    kept_seen: dict[tuple[int, int | None], KeptFrom] = {}
    ordered = (
        fair_share_order(queued, rules.fair_share_usage)
        if rules.fair_share
        else in_queue_order(queued)
    )
    for job in ordered:
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
        if quotas:
            # The counts change only when a job starts: one answer per kind of job till then.
            quota_key = (job.uid, job.project, job.gpus)
            if quota_key not in quota_seen:
                quota_seen[quota_key] = quota_reason(job, rules, counts)
            over = quota_seen[quota_key]
            if over is not None:
                decision.waiting[job.id] = over
                continue
        avoid = reservation.gpu_ids if reservation is not None else frozenset()
        kept = NOTHING_KEPT
        if rules.reservations and (job.resources.gpus or job.resources.exclusive):
            kept_key = (job.uid, job.time_limit)
            if kept_key not in kept_seen:
                ends = now + job.time_limit if job.time_limit else math.inf
                kept_seen[kept_key] = kept_from(rules.reservations, job.uid, now, ends)
            kept = kept_seen[kept_key]
        fit_key = (job.resources, kept) if kept.anything else job.resources
        gpu_ids = cannot_fit.get(fit_key) or pool.allocate(job.resources, avoid, kept)
        res = job.resources
        cores = (
            pool.allocate_cpus(res)
            if (res.cpus or res.exclusive) and not isinstance(gpu_ids, Reason)
            else ()
        )
        if isinstance(cores, Reason):
            gpu_ids = cores
        cpu_ids = () if isinstance(cores, Reason) else cores
        if isinstance(gpu_ids, Reason):
            cannot_fit[fit_key] = gpu_ids
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
                if not reservation.after.fits_at(job.resources, gpu_ids, cpu_ids):
                    decision.waiting[job.id] = _WAIT_PRIORITY
                    continue
                reservation.after.take(job.resources, gpu_ids, cpu_ids=cpu_ids)
        pool.take(job.resources, gpu_ids, cpu_ids=cpu_ids)
        ends = now + job.time_limit if job.time_limit else math.inf
        running_ends.append((ends, job.resources, gpu_ids, cpu_ids))
        if job.group_id is not None:
            group_running[job.group_id] = group_running.get(job.group_id, 0) + 1
        decision.starts.append(Start(job.id, gpu_ids, cpu_ids))
        if quotas:
            counts.add(job)
            quota_seen.clear()
    return replace(decision, next_begin=next_begin)


_Held = tuple[float, Resources, tuple[int, ...], tuple[int, ...]]  # ends, request, GPUs, cores


def _reserve(head: Job, pool: _Pool, running_ends: list[_Held]) -> _Reservation | None:
    """Release running jobs in the order their time limits end until the head job fits.

    None if it would not fit even with every job of ours gone (foreign processes, a pinned
    GPU outside the allowed set): reserving would only block others for nothing, so the
    next blocked job may reserve instead.
    """
    future = pool.copy()
    for end, resources, gpu_ids_held, cpu_ids_held in sorted(running_ends, key=lambda i: i[0]):
        future.take(resources, gpu_ids_held, sign=-1, cpu_ids=cpu_ids_held)
        gpu_ids = future.allocate(head.resources)
        cpu_ids = () if isinstance(gpu_ids, Reason) else future.allocate_cpus(head.resources)
        if not isinstance(gpu_ids, Reason) and not isinstance(cpu_ids, Reason):
            future.take(head.resources, gpu_ids, cpu_ids=cpu_ids)
            return _Reservation(end, future, frozenset(gpu_ids))
    return None


def earliest_start(
    job: Job, running: Sequence[Job], machine: Machine, now: float
) -> tuple[float | None, Reason | None]:
    """When this job could start if it were first in the queue (`sbatch --test-only`):
    now, when running jobs' time limits free enough (None: only when a job without a time
    limit ends), and what it waits for meanwhile."""
    decision = schedule([replace(job, dependencies=(), begin_at=None)], running, {}, machine, now)
    if decision.starts:
        return max(now, job.begin_at or now), None
    reason = decision.waiting.get(job.id)
    pool = _Pool(
        {g.index: _Gpu(g.index, g.total_mb, g.foreign_used_mb, bool(g.foreign_pids), g.name)
         for g in machine.gpus},
        machine.host_free_mb,
        set(machine.cpus),
    )  # fmt: skip
    held: list[_Held] = []
    for other in running:
        pool.take(other.resources._replace(memory_mb=None), other.gpu_ids, cpu_ids=other.cpu_ids)
        held.append((other.ends_by() or math.inf, other.resources, other.gpu_ids, other.cpu_ids))
    reservation = _reserve(job, pool, held)
    if reservation is None or math.isinf(reservation.start):
        return None, reason
    return max(reservation.start, job.begin_at or now), reason


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


def dependency_cancels(queued: Sequence[Job], states: dict[int, JobState]) -> dict[int, Reason]:
    """The cascade alone (for an engine that decides the rest itself, like Slurm): queued
    jobs whose dependencies can no longer be met, and then their dependents."""
    out = Decision()
    _settle_dependencies(queued, dict(states), out)
    return out.cancels
