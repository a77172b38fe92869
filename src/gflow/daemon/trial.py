"""Slurm's submission semantics the service needs beyond storing jobs: `sbatch
--test-only` (could it run here, when would it start; nothing stored) and
`--dependency=singleton` (after my active jobs of the same name)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gflow.core.dependencies import DependencyKind
from gflow.core.errors import InvalidInput
from gflow.core.model import Job, display_name
from gflow.core.policy import earliest_start, schedule
from gflow.core.spec import JobSpec
from gflow.core.states import JobState
from gflow.daemon.references import resolve_dependencies

if TYPE_CHECKING:
    from gflow.daemon.identity import Caller
    from gflow.daemon.service_base import ServiceBase

PROBE_ID = 2**62  # the would-be job in a trial pass: after every real one of its priority


def singleton_dependencies(
    active: Iterable[Job], uid: int, spec: JobSpec
) -> tuple[tuple[int, DependencyKind], ...]:
    """After every active job of this user with the same name: each later one then waits
    for this one, so they run one at a time, as Slurm's singleton."""
    if not spec.singleton:
        return ()
    name = display_name(spec.name, spec.command, spec.script)
    return tuple(
        (job.id, DependencyKind.AFTER_ANY)
        for job in sorted(active, key=lambda j: j.id)
        if job.uid == uid and job.display_name == name
    )


def answer(service: ServiceBase, caller: Caller, specs: list[JobSpec]) -> dict[str, Any]:
    """Refused as a submission would be; else when the first job would start."""
    if not specs:
        raise InvalidInput("nothing to submit")
    if not service.backend.local:  # this machine's view says nothing of a cluster's
        first = specs[0]
        resolve_dependencies(service.store, service.jobs, caller.uid, first.dependencies)
        note = ("the executor is Slurm: where and when are its to decide (sbatch --test-only);"
                " gbatch --export-slurm shows what it would be given")  # fmt: skip
        return {
            "could_run": True, "start_at": service.clock(), "now": service.clock(),
            "waits_for": "Slurm", "queued_ahead": 0,
            "has_dependencies": bool(first.dependencies) or first.singleton, "notes": [note],
        }  # fmt: skip
    specs, notes = service.machine.resolve_gpu_models(specs)
    service.machine.check_feasible(specs)
    first = specs[0]
    resolve_dependencies(service.store, service.jobs, caller.uid, first.dependencies)
    jobs = service.jobs.values()
    running = [j for j in jobs if j.state is JobState.RUNNING]
    queued = [j for j in jobs if j.state is JobState.QUEUED]
    now = service.clock()
    probe = Job(
        id=PROBE_ID, name=first.name, user=caller.user, uid=caller.uid, command=first.command,
        script=first.script, workdir=first.workdir, state=JobState.QUEUED, reason=None,
        priority=first.priority, resources=first.resources, time_limit=first.time_limit,
        dependencies=(), dependency_mode=first.dependency_mode, auto_cancel=True,
        array_task_id=first.array_task_id, keep_session=False, submitted_at=now,
        log_path="", begin_at=first.begin_at,
    )  # fmt: skip
    machine = service.machine.snapshot(running)
    # A pass with the queue as it is: does it start now? If not, when would it, were it
    # first (running jobs' time limits)?
    deps = {dep for job in queued for dep in job.depends_on}
    dep_states = {d: service.jobs[d].state for d in deps if d in service.jobs}
    dep_states.update(service.store.states_of(deps - dep_states.keys()))
    decision = schedule([*queued, probe], running, dep_states, machine, now)
    at: float | None = now
    reason = None
    if not any(start.job_id == PROBE_ID for start in decision.starts):
        reason = decision.waiting.get(PROBE_ID)
        at, _ = earliest_start(probe, running, machine, now)
    return {
        "could_run": True,
        "start_at": at,
        "now": now,
        "waits_for": str(reason) if reason else None,
        "queued_ahead": sum(1 for j in queued if j.priority >= first.priority),
        "has_dependencies": bool(first.dependencies) or first.singleton,
        "notes": notes,
    }
