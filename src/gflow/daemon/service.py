"""The service: what the API asks for (submit, cancel, hold, release, GPU and group
settings), scheduling passes and the resource tick.

Everything runs on the daemon's single asyncio loop; state changes go through the
supervisor's `_transition` and `_commit` (daemon/supervisor.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gflow import __version__
from gflow.config import Config
from gflow.core.errors import Forbidden, InvalidInput, InvalidState
from gflow.core.model import Job, JobSpec
from gflow.core.policy import schedule
from gflow.core.states import ACTIVE_STATES, ENDED_STATES, JobState, Reason, ReasonKind
from gflow.daemon import trial
from gflow.daemon.machine import MachineView
from gflow.daemon.memory import release_free_memory
from gflow.daemon.supervisor import MAX_LAUNCHING, JobSupervisor
from gflow.paths import Paths
from gflow.runner.executors import ProcessExecutor, TmuxExecutor
from gflow.store.db import JobFilter, NewJob, Store

log = logging.getLogger(__name__)

# Most jobs stop within this on SIGTERM, so `gcancel` can answer "cancelled" right away.
CANCEL_ANSWER_WAIT = 2.0
TICK = 1.0  # seconds between resource checks


_PAST = {
    "cancel": "cancelled",
    "hold": "held",
    "release": "released",
    "update": "updated",
    "redo": "redone",
}
UPDATABLE = frozenset(
    {
        "gpus", "shared", "gpu_memory_mb", "gpu_pin", "memory_mb", "time_limit", "priority",
        "dependencies", "dependency_mode", "auto_cancel", "conda_env", "max_retries",
    }
)  # fmt: skip


def _request_of(job: Job) -> dict[str, Any]:
    """A job's current request in the API's submission shape, to validate an update."""
    res = job.resources
    return {
        "command": job.command,
        "script": job.script,
        "workdir": job.workdir,
        "priority": job.priority,
        "gpus": res.gpus,
        "shared": res.shared,
        "gpu_memory_mb": res.gpu_memory_mb,
        "gpu_pin": list(res.gpu_pin),
        "memory_mb": res.memory_mb,
        "cpus": res.cpus,
        "exclusive": res.exclusive,
        "gpu_model": res.gpu_model,
        "time_limit": job.time_limit,
        "dependencies": [{"job": j, "kind": k.value} for j, k in job.dependencies],
        "dependency_mode": job.dependency_mode.value,
        "auto_cancel": job.auto_cancel,
        "conda_env": job.conda_env,
        "max_retries": job.max_retries,
    }


@dataclass(frozen=True)
class Caller:
    """Who sent a request: from the socket's peer credentials, never from $USER."""

    uid: int
    user: str


class Service(JobSupervisor):
    """Commands from the API, scheduling passes and the resource tick, on top of the
    supervisor that owns job state and running jobs."""

    def __init__(
        self,
        paths: Paths,
        config: Config,
        store: Store,
        executor: TmuxExecutor | ProcessExecutor,
        machine: MachineView,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(paths, config, store, executor, clock)
        self.machine = machine
        self.started_at = clock()
        self._pass_requested = False
        self._begin_timer: asyncio.TimerHandle | None = None
        self._release_memory = 0  # ticks left that give freed memory back

    # ---- start-up ----------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        active = self.store.list_jobs(JobFilter(states=ACTIVE_STATES))
        self.jobs = {job.id: job for job in active}
        self.release_memory_soon()  # what reading them took
        self.reconcile_running_jobs()
        self.request_pass()
        self._tick()

    # ---- commands (API handlers call these) --------------------------------------------

    def submit(self, caller: Caller, specs: list[JobSpec]) -> list[Job]:
        if not specs:
            raise InvalidInput("nothing to submit")
        specs, _ = self.machine.resolve_gpu_models(specs)
        self.machine.check_feasible(specs)
        new_jobs = []
        for spec in specs:
            deps = tuple(
                (self._resolve_dependency(caller, dep.job), dep.kind) for dep in spec.dependencies
            )
            deps += trial.singleton_dependencies(self.jobs.values(), caller.uid, spec)
            new_jobs.append(NewJob(spec, caller.user, caller.uid, deps, self.executor.name))
        jobs = self.store.insert_jobs(new_jobs, self.clock(), self.paths.logs_dir)
        self.jobs.update((job.id, job) for job in jobs)
        self.request_pass()
        return jobs

    def test_submit(self, caller: Caller, specs: list[JobSpec]) -> dict[str, Any]:
        """`gbatch --dry-run` (sbatch --test-only): see daemon/trial.py."""
        return trial.answer(self, caller, specs)

    def _resolve_dependency(self, caller: Caller, dep: int | str) -> int:
        if isinstance(dep, str):  # '@' or '@~N'
            nth = 1 if dep == "@" else int(dep[2:])
            found = self.store.nth_last_job_of(caller.uid, nth)
            if found is None:
                raise InvalidInput(f"dependency {dep}: you have no such earlier job")
            return found
        if dep not in self.jobs and not self.store.states_of([dep]):
            raise InvalidInput(f"dependency job {dep} does not exist")
        return dep

    def list_jobs(self, where: JobFilter) -> list[Job]:
        return self.store.list_jobs(where)

    def list_fields_json(self, where: JobFilter, fields: list[str]) -> str:
        return self.store.list_fields_json(where, fields)

    async def cancel(self, caller: Caller, job_id: int) -> Job:
        job = self._owned(caller, job_id, "cancel", ACTIVE_STATES)
        if job.state is JobState.RUNNING:
            if job.stop_reason is None:
                self._stop(job, ReasonKind.CANCELLED_BY_USER)
            await self.wait_until_ended(job_id, CANCEL_ANSWER_WAIT)
            return self.get_job(job_id)
        # Queued/Hold -> Cancelled
        self._commit(
            [
                self._transition(
                    job,
                    JobState.CANCELLED,
                    "cancelled",
                    reason=Reason(ReasonKind.CANCELLED_BY_USER),
                )
            ]
        )
        self.request_pass()  # its dependents may now be impossible
        return self.get_job(job_id)

    def hold(self, caller: Caller, job_id: int) -> Job:
        job = self._owned(caller, job_id, "hold", {JobState.QUEUED})
        # Queued -> Hold
        self._commit([self._transition(job, JobState.HOLD, "held", reason=Reason(ReasonKind.HELD))])
        self.request_pass()
        return self.jobs[job_id]

    def release(self, caller: Caller, job_id: int, at: float | None = None) -> Job:
        """Hold -> Queued, now or (`gjob release --at`) not before `at`."""
        job = self._owned(caller, job_id, "release", {JobState.HOLD})
        begin_at = at if at is not None else job.begin_at
        detail = f"not before {at:.0f}" if at is not None else ""
        # Hold -> Queued
        self._commit(
            [
                self._transition(
                    job, JobState.QUEUED, "released", detail, reason=None, begin_at=begin_at
                )
            ]
        )
        self.request_pass()
        return self.jobs[job_id]

    def update(self, caller: Caller, job_id: int, changes: dict[str, Any]) -> Job:
        """`gjob update`: change what a Queued or Hold job asks for, validated as a new
        submission would be."""
        job = self._owned(caller, job_id, "update", {JobState.QUEUED, JobState.HOLD})
        unknown = set(changes) - UPDATABLE
        if unknown or not changes:
            raise InvalidInput(
                f"cannot update {', '.join(sorted(unknown)) or 'nothing'}",
                hint=f"updatable: {', '.join(sorted(UPDATABLE))}",
            )
        spec = JobSpec.from_dict({**_request_of(job), **changes})
        self.machine.check_feasible([spec])
        deps = tuple((self._resolve_dependency(caller, d.job), d.kind) for d in spec.dependencies)
        self._refuse_cycle(job_id, deps)
        updated = self._transition_free(
            job,
            "updated",
            ", ".join(sorted(changes)),
            priority=spec.priority,
            resources=spec.resources,
            time_limit=spec.time_limit,
            dependencies=deps,
            dependency_mode=spec.dependency_mode,
            auto_cancel=spec.auto_cancel,
            conda_env=spec.conda_env,
            max_retries=spec.max_retries,
        )
        self._commit([updated])
        self.request_pass()
        return self.jobs[job_id]

    def _refuse_cycle(self, job_id: int, deps: tuple[tuple[int, Any], ...]) -> None:
        seen: set[int] = set()
        stack = [dep for dep, _ in deps]
        while stack:
            current = stack.pop()
            if current == job_id:
                raise InvalidInput(f"job {job_id} would depend on itself (a dependency cycle)")
            if current not in seen and current in self.jobs:
                seen.add(current)
                stack.extend(self.jobs[current].depends_on)

    def redo(self, caller: Caller, job_id: int, cascade: bool) -> list[Job]:
        """`gjob redo`: submit an ended job again; with `cascade`, also the dependents that
        were cancelled because of it, their dependencies pointing at the new jobs."""
        job = self._owned(caller, job_id, "redo", ENDED_STATES)
        now = self.clock()
        new = [self.store.insert_redo(job, job.dependencies, now, caller.user, caller.uid)]
        renamed = {job.id: new[0].id}
        queue = [job.id] if cascade else []
        while queue:
            parent = queue.pop(0)
            for child in self.store.cancelled_because_of(parent):
                deps = tuple((renamed.get(d, d), k) for d, k in child.dependencies)
                redone = self.store.insert_redo(child, deps, now, caller.user, caller.uid)
                renamed[child.id] = redone.id
                new.append(redone)
                queue.append(child.id)
        self.jobs.update((j.id, j) for j in new)
        self.request_pass()
        return new

    def purge(self, caller: Caller, older_than: float) -> int:
        """`gctl purge --before 30d`: forget ended jobs older than that, logs included."""
        self._admin(caller, "purge job history")
        purged = self.store.purge(self.clock() - older_than)
        for job in purged:
            Path(job.log_path).unlink(missing_ok=True)
            shutil.rmtree(self.jobdir(job.id), ignore_errors=True)
        return len(purged)

    def set_gpus(self, caller: Caller, indices: list[int] | None) -> list[dict[str, Any]]:
        self._admin(caller, "change the usable GPUs")
        self.machine.set_allowed(indices)
        self.request_pass()
        return self.gpu_status()

    def set_group_limit(self, caller: Caller, job_or_group: int, limit: int) -> int:
        """`gctl set-limit`: at most `limit` of the group's jobs run at once."""
        group = self.get_job(job_or_group).group_id
        if group is None:
            raise InvalidInput(
                f"job {job_or_group} is not in a group",
                hint="groups are made by submitting with --max-concurrent",
            )
        self._admin(caller, "change a group's limit")
        changed = [
            self._transition_free(job, "limit", str(limit), max_concurrent=limit)
            for job in self.jobs.values()
            if job.group_id == group
        ]
        self._commit(changed)
        self.request_pass()
        return len(changed)

    def _admin(self, caller: Caller, what: str) -> None:
        if caller.uid not in (0, os.getuid()):
            raise Forbidden(f"only the daemon's owner or root may {what}")

    def gpu_status(self) -> list[dict[str, Any]]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        return self.machine.describe(running)

    def cpu_status(self) -> dict[str, Any]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        return self.machine.describe_cpus(running)

    def _owned(self, caller: Caller, job_id: int, action: str, allowed: Iterable[JobState]) -> Job:
        """The job, if the caller may act on it and its state allows the action."""
        job = self.get_job(job_id)
        if caller.uid not in (job.uid, 0, os.getuid()):
            raise Forbidden(f"job {job_id} belongs to {job.user}; you cannot {action} it")
        allowed = set(allowed)
        if job.state not in allowed:
            names = " or ".join(sorted(s.value for s in allowed))
            raise InvalidState(
                f"cannot {action} job {job_id}: it is {job.state.value}",
                hint=f"only {names} jobs can be {_PAST[action]}",
            )
        return job

    def status(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime": self.clock() - self.started_at,
            "executor": self.executor.name,
            "state_dir": str(self.paths.state_dir),
            "gpu_backend": self.machine.backend.name,
            "gpus": self.gpu_status(),
            "jobs": self.store.count_by_state(),
        }

    # ---- scheduling ------------------------------------------------------------------------

    def request_pass(self) -> None:
        """Run a scheduling pass soon; many requests in one loop turn make one pass."""
        if not self._pass_requested and self._loop is not None:
            self._pass_requested = True
            self._loop.call_soon(self._run_pass)

    def _run_pass(self) -> None:
        self._pass_requested = False
        try:
            self.schedule_once()
        except Exception:
            log.exception("scheduling pass failed; retrying in 1 s")
            self.loop.call_later(1.0, self.request_pass)

    def schedule_once(self) -> None:
        queued = [j for j in self.jobs.values() if j.state is JobState.QUEUED]
        if not queued:
            return
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        deps = {dep for job in queued for dep in job.depends_on}
        dep_states = {d: self.jobs[d].state for d in deps if d in self.jobs}
        dep_states.update(self.store.states_of(deps - dep_states.keys()))
        now = self.clock()
        decision = schedule(queued, running, dep_states, self.machine.snapshot(running), now)
        self._wake_at(decision.next_begin)

        self._commit(
            [
                self._transition(
                    self.jobs[job_id], JobState.CANCELLED, "cancelled", str(reason), reason=reason
                )
                for job_id, reason in decision.cancels.items()
            ]
        )
        changed = [(i, r) for i, r in decision.waiting.items() if self.jobs[i].reason != r]
        if changed:
            self.store.set_reasons((i, str(r)) for i, r in changed)
            for job_id, reason in changed:
                self.jobs[job_id] = replace(self.jobs[job_id], reason=reason)
        # A burst (a 1,000-job array) starts a few at a time: each finished launch asks for
        # the next pass, and the API stays responsive in between.
        room = max(0, MAX_LAUNCHING - len(self._launching))
        starts = [(self.jobs[s.job_id], s.gpu_ids, s.cpu_ids) for s in decision.starts[:room]]
        if starts:
            self._start_jobs(starts)

    def _wake_at(self, when: float | None) -> None:
        """A pass at the earliest --begin time, precisely (not at the next tick)."""
        if self._begin_timer is not None:
            self._begin_timer.cancel()
            self._begin_timer = None
        if when is not None:
            delay = max(0.0, when - self.clock())
            self._begin_timer = self.loop.call_later(delay, self.request_pass)

    def _tick(self) -> None:
        """Every second: notice what nobody announces (foreign GPU use, free RAM, job RSS)."""
        self.loop.call_later(TICK, self._tick)
        try:
            if self.config.enforce_memory:
                self._enforce_memory_limits()
            if any(j.state is JobState.QUEUED for j in self.jobs.values()):
                self.request_pass()
            if self._release_memory:
                self._release_memory -= 1
                release_free_memory()
        except Exception:
            log.exception("resource tick failed")

    def release_memory_soon(self) -> None:
        """A big request was answered: give what it freed back to the system on the next
        two ticks (a tick overdue after a long request can come before its answer is sent
        and freed; the second comes after)."""
        self._release_memory = 2
