"""Changing what a job asks for: `gjob update` of a waiting job and `gjob redo`'s
overrides, checked as a new submission would be (with the service's state passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gflow.core.dependencies import DependencyKind
from gflow.core.errors import InvalidInput
from gflow.core.model import Job
from gflow.core.spec import JobSpec
from gflow.daemon.machine import MachineView
from gflow.daemon.references import resolve_dependencies
from gflow.store.db import Store

UPDATABLE = frozenset(
    {
        "gpus", "shared", "gpu_memory_mb", "gpu_pin", "memory_mb", "time_limit", "priority",
        "dependencies", "dependency_mode", "auto_cancel", "conda_env", "max_retries",
    }
)  # fmt: skip


def request_of(job: Job) -> dict[str, Any]:
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


def checked_redo_changes(
    store: Store, jobs: Mapping[int, Job], machine: MachineView, uid: int, job: Job,
    changes: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """A redo's overrides, validated on the ended job's request before anything is stored;
    '@' in them resolved now (the redo itself is about to be the caller's last submission)."""
    if not changes:
        return changes
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} on redo",
                           hint=f"changeable: {', '.join(sorted(UPDATABLE))}")  # fmt: skip
    spec = JobSpec.from_dict({**request_of(job), **changes})
    machine.check_feasible([spec])
    if "dependencies" in changes:
        deps = resolve_dependencies(store, jobs, uid, spec.dependencies)
        changes = {**changes, "dependencies": [{"job": j, "kind": k.value} for j, k in deps]}
    return changes


def refuse_cycle(
    jobs: Mapping[int, Job], job_id: int, deps: tuple[tuple[int, DependencyKind], ...]
) -> None:
    """Refuse dependencies that would lead back to the job, naming the way round."""
    came_from: dict[int, int | None] = {}
    stack: list[tuple[int, int | None]] = [(dep, None) for dep, _ in deps]
    while stack:
        current, parent = stack.pop()
        if current == job_id:
            path = [job_id]
            step: int | None = parent
            while step is not None:
                path.append(step)
                step = came_from[step]
            path.append(job_id)
            if len(path) == 2:
                raise InvalidInput(f"job {job_id} would depend on itself")
            way = " -> ".join(map(str, path))
            raise InvalidInput(f"job {job_id} would wait for itself: a dependency cycle ({way})")
        if current not in came_from and current in jobs:
            came_from[current] = parent
            stack.extend((dep, current) for dep in jobs[current].depends_on)
