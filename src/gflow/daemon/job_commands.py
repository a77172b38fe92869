"""Commands on jobs already submitted: cancel, hold, release, update and redo, each
allowed only to the job's owner (or an admin) and only from the states it names."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from gflow.core.errors import GflowError, InvalidInput, InvalidState
from gflow.core.model import Event, Job
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import JobSpec
from gflow.core.states import ACTIVE_STATES, ENDED_STATES, JobState
from gflow.daemon.edits import UPDATABLE, checked_redo_changes, refuse_cycle, request_of
from gflow.daemon.identity import Caller, authorize
from gflow.daemon.references import resolve_dependencies
from gflow.daemon.service_base import ServiceBase

# Most jobs stop within this on SIGTERM, so `gcancel` can answer "cancelled" right away.
CANCEL_ANSWER_WAIT = 2.0

_PAST = {
    "cancel": "cancelled",
    "hold": "held",
    "release": "released",
    "update": "updated",
    "redo": "redone",
}


class JobCommands(ServiceBase):
    """`gcancel` and `gjob hold/release/update/redo`: through the backend first where the
    engine holds the job too (Slurm), then our record."""

    async def cancel(self, caller: Caller, job_id: int, kill: bool = False) -> Job:
        """Queued/Hold: Cancelled at once; Running: SIGTERM, SIGKILL after the grace
        (`kill`: SIGKILL now, `gcancel --kill`)."""
        job = self._owned(caller, job_id, "cancel", ACTIVE_STATES)
        if job.state is JobState.RUNNING or job.slurm_handing:
            self.backend.stop(job, ReasonKind.CANCELLED_BY_USER, kill)
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
        self.backend.forget([job])
        self.request_pass()  # its dependents may now be impossible
        return self.get_job(job_id)

    async def cancel_many(
        self, caller: Caller, ids: Sequence[int], kill: bool = False
    ) -> list[dict[str, Any]]:
        """`gcancel 1-20000`: every waiting job named is cancelled in one transaction, every
        running one is stopped; each id answers its new state, or the refusal in words."""
        results: dict[int, dict[str, Any]] = {}
        waiting: list[Job] = []
        running: list[Job] = []
        for job_id in ids:
            try:
                job = self._owned(caller, job_id, "cancel", ACTIVE_STATES)
            except GflowError as exc:
                found = self.jobs.get(job_id) or self.store.get_job(job_id)
                results[job_id] = {
                    "id": job_id,
                    "error": {"code": exc.code, "message": exc.message, "hint": exc.hint},
                    "reason": str(found.reason) if found and found.reason else None,
                }
                continue
            (running if job.state is JobState.RUNNING or job.slurm_handing else waiting).append(job)
        reason = Reason(ReasonKind.CANCELLED_BY_USER)
        self._commit(
            [self._transition(j, JobState.CANCELLED, "cancelled", reason=reason) for j in waiting]
        )
        self.backend.forget(waiting)
        for job in running:
            self.backend.stop(job, ReasonKind.CANCELLED_BY_USER, kill)
        await asyncio.gather(*(self.wait_until_ended(j.id, CANCEL_ANSWER_WAIT) for j in running))
        if waiting:
            self.request_pass()  # their dependents may now be impossible
        for job in waiting:  # committed above: no need to read 20,000 jobs back
            results[job.id] = {"id": job.id, "state": JobState.CANCELLED.value, "error": None}
        for job in running:
            now = self.get_job(job.id)
            results[job.id] = {"id": job.id, "state": now.state.value, "error": None}
        return [results[i] for i in ids if i in results]

    async def hold_job(self, caller: Caller, job_id: int) -> Job:
        """`gjob hold`: the engine first (Slurm: scontrol hold), then our record."""
        await self.backend.hold(self._owned(caller, job_id, "hold", {JobState.QUEUED}))
        return self.hold(caller, job_id)

    async def release_job(self, caller: Caller, job_id: int, at: float | None = None) -> Job:
        await self.backend.release(self._owned(caller, job_id, "release", {JobState.HOLD}), at)
        return self.release(caller, job_id, at)

    async def update_job(self, caller: Caller, job_id: int, changes: dict[str, Any]) -> Job:
        """`gjob update`: validated, then the engine's (Slurm: scontrol update), then ours."""
        job, updated = self._updated(caller, job_id, changes)
        await self.backend.update(job, updated[0])
        return self.update(caller, job_id, changes)

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
        if at is None and any(
            e.kind == "released" and e.detail.startswith("not before")
            for e in self.store.events_of(job_id)
        ):
            begin_at = None  # that time was an earlier `release --at`'s: a plain one is now
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
        _, updated = self._updated(caller, job_id, changes)
        self._commit([updated])
        self.request_pass()
        return self.jobs[job_id]

    def _updated(
        self, caller: Caller, job_id: int, changes: dict[str, Any]
    ) -> tuple[Job, tuple[Job, Event]]:
        """The job and its change as `gjob update` asks for it, checked, not yet committed."""
        job = self._owned(caller, job_id, "update", {JobState.QUEUED, JobState.HOLD})
        unknown = set(changes) - UPDATABLE
        if unknown or not changes:
            raise InvalidInput(
                f"cannot update {', '.join(sorted(unknown)) or 'nothing'}",
                hint=f"updatable: {', '.join(sorted(UPDATABLE))}",
            )
        spec = JobSpec.from_dict({**request_of(job), **changes})
        if self.backend.local:
            self.machine.check_feasible([spec])
        deps = resolve_dependencies(self.store, self.jobs, job.uid, spec.dependencies)
        refuse_cycle(self.jobs, job_id, deps)
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
        return job, updated

    def _checked_changes(self, uid: int, job: Job, changes: dict[str, Any]) -> dict[str, Any]:
        return checked_redo_changes(self.store, self.jobs, self.machine, uid, job, changes)

    def redo(
        self, caller: Caller, job_id: int, cascade: bool, changes: dict[str, Any] | None = None
    ) -> list[Job]:
        """`gjob redo`: submit an ended job again, with `changes` (gflow's overrides: GPUs,
        time, memory, dependencies…) checked as `gjob update` checks them, before anything
        is stored; with `cascade`, also the dependents that were cancelled because of it,
        their dependencies pointing at the new jobs."""
        # A malformed override is a usage error (2) whatever the job's state (1).
        original = self.get_job(job_id)
        changes = self._checked_changes(original.uid, original, changes or {})
        job = self._owned(caller, job_id, "redo", ENDED_STATES)
        now = self.clock()
        # The owner stays the job's, whoever asks: an admin's redo never makes it theirs.
        new = [self.store.insert_redo(job, job.dependencies, now, job.user, job.uid)]
        if changes:
            self.jobs[new[0].id] = new[0]
            new[0] = self.update(caller, new[0].id, changes)
        renamed = {job.id: new[0].id}
        queue = [job.id] if cascade else []
        while queue:
            parent = queue.pop(0)
            for child in self.store.cancelled_because_of(parent):
                deps = tuple((renamed.get(d, d), k) for d, k in child.dependencies)
                redone = self.store.insert_redo(child, deps, now, child.user, child.uid)
                renamed[child.id] = redone.id
                new.append(redone)
                queue.append(child.id)
        self.jobs.update((j.id, j) for j in new)
        self.request_pass()
        return new

    def _owned(self, caller: Caller, job_id: int, action: str, allowed: Iterable[JobState]) -> Job:
        """The job, if the caller may act on it and its state allows the action."""
        job = self.get_job(job_id)
        authorize(caller, action, job)
        allowed = set(allowed)
        if job.state not in allowed:
            names = " or ".join(sorted(s.value for s in allowed))
            raise InvalidState(
                f"cannot {action} job {job_id}: it is {job.state.value}",
                hint=f"only {names} jobs can be {_PAST[action]}",
            )
        return job
