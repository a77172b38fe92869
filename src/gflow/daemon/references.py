"""What a user's job references mean: `@` / `@~N` (a whole submission) and an array's id
(all its jobs) turned into job ids, for dependencies and for `gjob … @`.

`@` is the caller's last submission, every job of it (an array's or sweep's too); `@~N` the
submission N before it, as git's `HEAD~N` (`@~0` is `@`). In Slurm's forms (`afterok:133`)
the id of an array's first job stands for all its jobs (`SLURM_ARRAY_JOB_ID`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gflow.core.dependencies import Dependency, DependencyKind
from gflow.core.errors import InvalidInput, NotFound
from gflow.core.model import Job
from gflow.store.db import Store


def submission_of(store: Store, uid: int, ref: str) -> list[int]:
    """The jobs of the caller's submission that '@' / '@~N' names, or NotFound."""
    back = 0 if ref == "@" else int(ref[2:])
    ids = store.nth_last_submission_of(uid, back)
    if not ids:
        what = "submission" if back == 0 else f"submission {back} before your last"
        raise NotFound(f"{ref}: you have no {what}", hint="submit a job first")
    return ids


def resolve_dependencies(
    store: Store, active: Mapping[int, Job], uid: int, deps: Sequence[Dependency],
    cache: dict[tuple[int | str, bool], list[int]] | None = None,
) -> tuple[tuple[int, DependencyKind], ...]:  # fmt: skip
    """Each reference as the job ids it stands for, each (id, kind) once, in order.

    `cache` is shared by the specs of one request: a 2,000-task array whose every task
    depends on '@' looks the submission up once.
    """
    cache = {} if cache is None else cache
    plain = {d.job for d in deps if isinstance(d.job, int) and (d.job, d.whole_array) not in cache}
    known = set(plain) & active.keys()
    known.update(store.states_of(plain - known))
    resolved: dict[tuple[int, DependencyKind], None] = {}
    for dep in deps:
        key = (dep.job, dep.whole_array)
        if key not in cache:
            cache[key] = _ids_of(store, active, uid, dep, known)
        resolved.update(dict.fromkeys((job_id, dep.kind) for job_id in cache[key]))
    return tuple(resolved)


def _ids_of(
    store: Store, active: Mapping[int, Job], uid: int, dep: Dependency, known: set[int]
) -> list[int]:
    if isinstance(dep.job, str):
        try:
            return submission_of(store, uid, dep.job)
        except NotFound as exc:
            raise InvalidInput(f"dependency {exc.message}") from None
    if dep.job not in known:
        raise InvalidInput(f"dependency job {dep.job} does not exist")
    if not dep.whole_array:
        return [dep.job]
    job = active.get(dep.job) or store.get_job(dep.job)
    if job is not None and job.submission == job.id:  # the first job: the array's id
        return store.submission_jobs(job.id) or [job.id]
    return [dep.job]
