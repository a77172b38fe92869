"""A Slurm cluster: Slurm decides where and when; we hand each job over with sbatch and
mirror what Slurm says (daemon/backends/slurm_mirror.py).

Handing over: the job's record says it is being handed (`slurm_handing`, durable) before
sbatch runs, and the Slurm job carries a mark unique to this store and job in its
`--comment` (core/slurm.mark). A daemon killed in between finds it again by that mark at
the next poll instead of submitting it twice; a mark of another store is never adopted.
Inside the Slurm job our own wrapper runs the command and writes its exit record in the
job's directory (a filesystem the nodes share), so exit codes and signals read as they do
locally. Every Slurm command runs in a worker thread with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from gflow.core.dependencies import DependencyKind, DependencyMode, Verdict, dependency_verdict
from gflow.core.errors import Forbidden, InvalidState, Unavailable
from gflow.core.model import Event, Job
from gflow.core.policy import dependency_cancels
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.slurm import SbatchRequest, mark, sbatch_options, slurm_minutes
from gflow.core.states import WAITING_STATES, JobState
from gflow.daemon.backends.slurm_commands import SlurmCommands, SlurmRefused, SlurmUnreachable
from gflow.daemon.backends.slurm_mirror import Mirror
from gflow.daemon.launcher import PreparedLaunch
from gflow.runner.as_user import RunAs, job_env
from gflow.runner.executors import _BOOT

if TYPE_CHECKING:
    from gflow.daemon.service import Service

log = logging.getLogger(__name__)

RETRY_DOWN = 5.0  # seconds between tries while Slurm cannot be reached
UNAVAILABLE = Reason(ReasonKind.UNAVAILABLE, "Slurm")
# What the wrapper takes from the Slurm job's own environment into the command's.
INHERIT = ("SLURM_", "SLURMD_", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL",
           "ROCR_VISIBLE_DEVICES")  # fmt: skip
# Tests only: the daemon dies right after sbatch returns, before it records the id.
EXIT_AFTER_SBATCH = "GFLOW_TEST_EXIT_AFTER_SBATCH"
T = TypeVar("T")


@dataclass(frozen=True)
class Unit:
    """One sbatch call: a job, or waiting jobs of one array as one Slurm array."""

    mark_id: int  # the first job's id: the number in the mark
    jobs: tuple[Job, ...]

    @property
    def is_array(self) -> bool:
        return len(self.jobs) > 1 or self.jobs[0].array_task_id is not None

    def task_of(self, job: Job) -> int:
        """Its Slurm array index: an array's task id; a sweep's jobs (a group that only
        goes as an array for its --max-concurrent) are numbered in id order from 0."""
        if job.array_task_id is not None:
            return job.array_task_id
        return sorted(j.id for j in self.jobs).index(job.id)


class SlurmBackend:
    name = "slurm"
    local = False

    def __init__(self, service: Service, commands: SlurmCommands | None = None) -> None:
        self.service = service
        self.commands = commands or SlurmCommands()
        self.settings = service.config.slurm
        self.store_id = _store_id(service)
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="slurm")
        self.in_flight: set[int] = set()  # job ids whose sbatch is running
        self.cancel_on_submit: set[int] = set()  # cancelled while their sbatch ran
        self.unreachable_since: float | None = None
        self._retry_at = 0.0
        self._poll_task: asyncio.Task[None] | None = None
        # When we last changed a job in Slurm ourselves (monotonic): a squeue asked before
        # that describes the job as it was, and is not applied to it.
        self.acted_at: dict[int, float] = {}
        self.mirror = Mirror(self)

    # ---- the interface ---------------------------------------------------------------------

    def start(self) -> None:
        """Jobs a killed daemon left 'being handed' are looked for by their mark at the
        first poll; everything else is mirrored from there on."""
        self._poll_task = self.service.loop.create_task(self.mirror.poll_forever())

    def dispatch(self) -> None:
        sup = self.service
        waiting = [j for j in sup.jobs.values() if j.state in WAITING_STATES]
        states = self._parent_states(waiting)
        cancels = dependency_cancels([j for j in waiting if j.state is JobState.QUEUED], states)
        if cancels:
            cancelled = [sup.jobs[i] for i in cancels]
            sup._commit(
                [
                    sup._transition(sup.jobs[i], JobState.CANCELLED, "cancelled", str(r), reason=r)
                    for i, r in cancels.items()
                ]
            )
            self.forget(cancelled)  # Slurm would leave them pending for good
            waiting = [j for j in waiting if j.id not in cancels]
        if sup.clock() < self._retry_at:
            return
        reasons: list[tuple[Job, Reason | None]] = []
        units = self._units(waiting)
        if self.unreachable_since is not None:  # one sbatch at a time asks if it is back
            units = units[:1] if not self.in_flight else []
        for unit in units:
            deps = self._slurm_dependencies(unit.jobs[0], states)
            if deps is None:
                reasons += [(j, Reason(ReasonKind.DEPENDENCY)) for j in unit.jobs]
                continue
            self._hand(unit, deps)
        self.mirror.set_reasons(reasons)

    def stop(self, job: Job, why: ReasonKind, kill: bool) -> None:
        sup = self.service
        if job.stop_reason is None:  # why it stops, durable first (as a local stop is)
            job = replace(job, stop_reason=why, reason=Reason(ReasonKind.STOPPING, why.value))
            sup._commit([(job, Event(job.id, sup.clock(), "stop", job.state, why.value))])
        self.acted_at[job.id] = time.monotonic()
        if job.slurm_job_id:
            self.mirror.scancel([job.slurm_job_id], "KILL" if kill else "")
        else:
            self.cancel_on_submit.add(job.id)

    def forget(self, jobs: list[Job]) -> None:
        handed = [j.slurm_job_id for j in jobs if j.slurm_job_id]
        self.cancel_on_submit.update(j.id for j in jobs if j.slurm_handing)
        if handed:
            self.mirror.scancel(handed)

    async def hold(self, job: Job) -> None:
        await self._control(job, "uhold", job.slurm_job_id)  # a user hold: theirs to release

    async def release(self, job: Job, at: float | None) -> None:
        if at is not None and job.slurm_job_id:
            wait = max(0, int(at - self.service.clock()))
            await self._control(job, "update", f"JobId={job.slurm_job_id}", f"StartTime=now+{wait}")
        await self._control(job, "release", job.slurm_job_id)

    async def update(self, job: Job, new: Job) -> None:
        changes = []
        if new.time_limit != job.time_limit:
            minutes = -(-new.time_limit // 60) if new.time_limit else "UNLIMITED"
            changes.append(f"TimeLimit={minutes}")
        if new.resources.memory_mb != job.resources.memory_mb and new.resources.memory_mb:
            changes.append(f"MinMemoryNode={new.resources.memory_mb}")
        if new.resources.cpus != job.resources.cpus and new.resources.cpus:
            changes.append(f"NumCPUs={new.resources.cpus}")
        if new.resources.gpus != job.resources.gpus:
            model = f"{new.resources.gpu_model}:" if new.resources.gpu_model else ""
            changes.append(f"Gres=gpu:{model}{new.resources.gpus}")  # 22.05 and later
        if changes:
            await self._control(job, "update", f"JobId={job.slurm_job_id}", *changes)

    def attach_hint(self, job: Job) -> str:
        where = f"Slurm job {job.slurm_job_id}" if job.slurm_job_id else "Slurm"
        sid = job.slurm_job_id or "ID"
        return (
            f"job {job.id} runs under {where}: use `srun --jobid={sid} --overlap --pty bash`"
            f" for a shell beside it, `sattach {sid}.STEP` for its srun steps, or gjob log -f"
        )

    async def close(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- calls off the loop --------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.service.loop.run_in_executor(self._pool, partial(fn, *args))

    async def _control(self, job: Job, *args: str) -> None:
        """scontrol on a job Slurm has; one a sbatch is handing over right now must wait."""
        self.acted_at[job.id] = time.monotonic()
        if job.slurm_handing:
            raise Unavailable(
                f"job {job.id} is being handed to Slurm", hint="try again in a moment"
            )
        if not job.slurm_job_id:
            return  # not in Slurm yet: our own record is all there is
        try:
            await self.call(self.commands.scontrol, *args)
        except SlurmUnreachable as exc:
            raise Unavailable(f"Slurm cannot be reached: {exc}", hint="try again later") from None
        except SlurmRefused as exc:
            raise InvalidState(f"Slurm refused: {exc}") from None

    def unreachable(self, why: str) -> None:
        """Slurm did not answer: waiting jobs say so, the next try is in RETRY_DOWN."""
        sup = self.service
        if self.unreachable_since is None:
            log.warning("Slurm cannot be reached: %s", why)
            self.unreachable_since = sup.clock()
        self._retry_at = sup.clock() + RETRY_DOWN
        waiting = [j for j in sup.jobs.values() if j.state is JobState.QUEUED]
        self.mirror.set_reasons([(j, UNAVAILABLE) for j in waiting])

    def reachable(self) -> None:
        if self.unreachable_since is not None:
            log.info("Slurm answers again")
            self.unreachable_since = None
            self._retry_at = 0.0
            self.service.request_pass()

    # ---- handing over ----------------------------------------------------------------------

    def _parent_states(self, waiting: list[Job]) -> dict[int, JobState]:
        jobs = self.service.jobs
        deps = {dep for job in waiting for dep in job.depends_on}
        states = {d: jobs[d].state for d in deps if d in jobs}
        states.update(self.service.store.states_of(deps - states.keys()))
        return states

    def _units(self, waiting: list[Job]) -> list[Unit]:
        """Waiting jobs not in Slurm yet, an array's alike ones together."""
        groups: dict[tuple[Any, ...], list[Job]] = {}
        for job in sorted(waiting, key=lambda j: j.id):
            if job.slurm_job_id or job.slurm_handing or job.stop_reason is not None:
                continue
            key: tuple[Any, ...] = (job.id,)
            alike = (job.state, job.resources, job.time_limit, job.dependencies, job.begin_at,
                     job.max_concurrent, job.attempt)  # fmt: skip
            if job.array_job_id is not None and job.array_task_id is not None:
                key = ("array", job.array_job_id, *alike)
            elif job.group_id is not None and job.max_concurrent:  # a throttled sweep
                key = ("group", job.group_id, *alike)
            groups.setdefault(key, []).append(job)
        return [Unit(jobs[0].id, tuple(jobs)) for jobs in groups.values()]

    def _slurm_dependencies(
        self, job: Job, states: dict[int, JobState]
    ) -> tuple[tuple[DependencyKind, str], ...] | None:
        """The job's parents as Slurm ids; None while a parent is not in Slurm yet, or may
        still be retried (Slurm would tie the job to the attempt that failed, and leave it
        pending for good; so it waits here for the last attempt). A parent already ended
        here is no dependency for Slurm any more: met, or (when it can never be met) the
        cascade above has cancelled the job."""
        out: list[tuple[DependencyKind, str]] = []
        any_mode = job.dependency_mode is DependencyMode.ANY
        for parent_id, kind in job.dependencies:
            parent = self.service.jobs.get(parent_id)
            if parent is not None:
                if not parent.slurm_job_id or parent.attempt <= parent.max_retries:
                    return None
                out.append((kind, parent.slurm_job_id))
                continue
            verdict, _ = dependency_verdict(((parent_id, kind),), DependencyMode.ALL, states)
            if verdict is Verdict.READY and any_mode:
                return ()
            if verdict is not Verdict.READY and not any_mode:
                return None  # impossible (kept by --no-auto-cancel) or unknown: it waits
        if any_mode and job.dependencies and not out:
            return None
        return tuple(out)

    def _hand(self, unit: Unit, deps: tuple[tuple[DependencyKind, str], ...]) -> None:
        sup = self.service
        ids = [j.id for j in unit.jobs]
        sup.store.set_handing(ids, unit.mark_id)  # durable before sbatch runs
        for job in unit.jobs:
            sup.jobs[job.id] = replace(job, slurm_handing=unit.mark_id)
        first = unit.jobs[0]
        request = SbatchRequest(
            name=first.display_name,
            resources=first.resources,
            workdir=first.workdir,
            time_limit=first.time_limit,
            begin_at=first.begin_at,
            hold=first.state is JobState.HOLD,
            array_tasks=tuple(unit.task_of(j) for j in unit.jobs) if unit.is_array else (),
            throttle=first.max_concurrent if unit.is_array else None,
            dependencies=deps,
            dependency_mode=first.dependency_mode,
            comment=mark(self.store_id, unit.mark_id),
        )
        prepared = [self._prepare(job) for job in unit.jobs]
        batch = prepared[0].batch
        # No --signal: the wrapper sends it itself, as locally (a signal Slurm sent the
        # batch shell would reach our wrapper, not the job).
        request = replace(request, output=batch.output, error=batch.error,
                          append=batch.append, ntasks=batch.ntasks)  # fmt: skip
        options, notes = sbatch_options(request, self.settings, sup.clock())
        if not batch.output:
            options.append("--output=/dev/null")  # the script sends it to the job's dir
        for note in notes:
            log.info("job %d: %s", first.id, note)
        self.in_flight.update(ids)
        done = sup.loop.run_in_executor(self._pool, self._submit, unit, prepared, options)
        done.add_done_callback(partial(self._submitted, unit, notes))

    def _prepare(self, job: Job) -> PreparedLaunch:
        """What the wrapper needs, read on the loop's thread (the store is its)."""
        env, body, batch = self.service.store.get_launch_payload(job.id)
        env.update(
            GFLOW_JOB_ID=str(job.id),
            GFLOW_ARRAY_TASK_ID=str(job.array_task_id if job.array_task_id is not None else 0),
        )
        # Slurm enforces the time limit and gives the GPUs: the wrapper only records, and
        # sends --signal's warning that long before Slurm's (whole-minute) limit.
        extra: dict[str, Any] = {"inherit": list(INHERIT), "quiet": not batch.output,
                                 "exit_as_job": True}  # fmt: skip
        if batch.error and batch.error != batch.output:
            extra["stderr_apart"] = True  # sbatch opened --error as the wrapper's stderr
        if batch.warning is not None and job.time_limit is not None:
            minutes, _ = slurm_minutes(job.time_limit)
            w = batch.warning
            extra["warning_after"] = (max(0, minutes * 60 - w.seconds), w.signum, w.batch_only)
        return PreparedLaunch(job, env, body, batch, extra)

    def _submit(self, unit: Unit, prepared: list[PreparedLaunch], options: list[str]) -> str:
        """In a worker thread: each job's directory and spec, then one sbatch."""
        launcher = self.service.launcher
        dirs = [launcher.write_files(p, {})[0] for p in prepared]
        first = unit.jobs[0]
        run_as = RunAs.of_uid(first.uid) if self.service.paths.system else None
        env = job_env(prepared[0].env, run_as) if run_as is not None else prepared[0].env
        python = self.service.executor.python or sys.executable
        lines = ["#!/bin/bash", f"# gflow {self.store_id}: job(s) {unit.mark_id}…"]
        if unit.is_array:
            lines.append('case "${SLURM_ARRAY_TASK_ID:-}" in')
            lines += [f"  {unit.task_of(j)}) D={shlex.quote(str(d))} ;;" for j, d in
                      zip(unit.jobs, dirs, strict=True)]  # fmt: skip
            lines.append("esac")
        else:
            lines.append(f"D={shlex.quote(str(dirs[0]))}")
        batch = prepared[0].batch
        if not batch.output:  # the job's output is its log; what else is printed, here
            apart = batch.error and batch.error != batch.output
            lines.append('exec >>"$D/slurm.out"' + ("" if apart else " 2>&1"))
        lines.append(f'exec {shlex.quote(python)} -I -S -c {shlex.quote(_BOOT)} "$D"')
        slurm_id = self.commands.sbatch(options, "\n".join(lines) + "\n", env, run_as)
        if os.environ.get(EXIT_AFTER_SBATCH):
            os._exit(137)  # as a kill -9 right here would
        return slurm_id

    def _submitted(self, unit: Unit, notes: list[str], done: asyncio.Future[str]) -> None:
        """Back on the loop: record the Slurm ids, or say why the jobs are not in Slurm."""
        ids = [j.id for j in unit.jobs]
        self.in_flight.difference_update(ids)
        try:
            slurm_id = done.result()
        except SlurmUnreachable as exc:
            # Perhaps accepted all the same (it timed out): still 'being handed', so the
            # next poll looks for its mark before anything is submitted again.
            if "did not answer" not in str(exc):
                self._not_handed(ids)
                self.mirror.cancel_stopped(ids)
            self.unreachable(str(exc))
            return
        except (SlurmRefused, OSError, Forbidden) as exc:
            log.error("job %d: Slurm did not take it: %s", unit.mark_id, exc)
            self._not_handed(ids)
            self.mirror.cancel_stopped(ids)
            self.mirror.refused(ids, str(exc))
            return
        self.reachable()
        self.mirror.record_ids(unit, slurm_id, notes)

    def _not_handed(self, ids: list[int]) -> None:
        sup = self.service
        sup.store.set_handing(ids, 0)
        for job_id in ids:
            if job_id in sup.jobs:
                sup.jobs[job_id] = replace(sup.jobs[job_id], slurm_handing=0)


def _store_id(service: Service) -> str:
    """This store's own id, made once: the first half of every mark."""
    found = service.store.get_setting("store_id")
    if found:
        return found
    made = uuid.uuid4().hex[:16]
    service.store.set_setting("store_id", made)
    return made
