"""The scheduling decision: which queued jobs start now, on which GPUs, and why the rest wait.

A pure function of its inputs (no I/O, no clock), so it is tested by example and by property.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gflow.core.model import Job
from gflow.core.states import JobState, Reason, ReasonKind


@dataclass(frozen=True)
class Start:
    job_id: int
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True)
class Decision:
    starts: list[Start] = field(default_factory=list)
    waiting: dict[int, Reason] = field(default_factory=dict)
    # Dependents whose dependency can no longer succeed: cancelled, transitively.
    cancels: dict[int, Reason] = field(default_factory=dict)


def queue_order(job: Job) -> tuple[int, int]:
    """Higher priority first, then submission order."""
    return (-job.priority, job.id)


def schedule(
    queued: Sequence[Job],
    running: Sequence[Job],
    dependency_states: Mapping[int, JobState],
    gpu_indices: Sequence[int],
) -> Decision:
    """Decide one pass.

    `queued` are the jobs in state Queued; `dependency_states` gives the state of every job
    they depend on that is not itself in `queued`; `gpu_indices` are the GPUs jobs may use.
    """
    decision = Decision()
    states = dict(dependency_states)
    states.update((job.id, JobState.QUEUED) for job in queued)
    _cancel_impossible(queued, states, decision)

    busy = {gpu for job in running for gpu in job.gpu_ids}
    free = [gpu for gpu in sorted(gpu_indices) if gpu not in busy]
    for job in sorted(queued, key=queue_order):
        if job.id in decision.cancels:
            continue
        if any(states.get(dep) is not JobState.FINISHED for dep in job.depends_on):
            decision.waiting[job.id] = Reason(ReasonKind.DEPENDENCY)
        elif job.gpus > len(free):
            decision.waiting[job.id] = Reason(ReasonKind.RESOURCES, "GPU")
        else:
            taken, free = free[: job.gpus], free[job.gpus :]
            decision.starts.append(Start(job.id, tuple(taken)))
    return decision


def _cancel_impossible(queued: Sequence[Job], states: dict[int, JobState], out: Decision) -> None:
    """Cancel jobs depending on one that ended without success; repeat for their dependents."""
    changed = True
    while changed:
        changed = False
        for job in queued:
            if job.id in out.cancels:
                continue
            for dep in job.depends_on:
                dep_state = states.get(dep)
                if (
                    dep_state is not None
                    and dep_state.is_ended
                    and dep_state is not JobState.FINISHED
                ):
                    out.cancels[job.id] = Reason(ReasonKind.DEPENDENCY_FAILED, str(dep))
                    states[job.id] = JobState.CANCELLED
                    changed = True
                    break
