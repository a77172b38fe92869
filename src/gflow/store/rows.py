"""Job rows of the `jobs` table as `Job`s: the columns read, and the values shared between
the jobs of one array or sweep (the daemon keeps every active job in memory)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from gflow.core.dependencies import DependencyKind, DependencyMode
from gflow.core.model import NO_USAGE, Job
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import Resources
from gflow.core.states import JobState
from gflow.core.usage import Usage

JOB_COLUMNS = (
    "id, name, user, uid, command, script, workdir, state, reason, priority, gpus, shared,"
    " gpu_memory_mb, gpu_pin, memory_mb, time_limit, dependencies, dependency_mode,"
    " auto_cancel, begin_at, group_id, max_concurrent, array_task_id, keep_session,"
    " submitted_at, log_path, started_at, finished_at, exit_code, signal, gpu_ids, pid,"
    " stop_reason, executor, session, conda_env, max_retries, retry_on_timeout, attempt,"
    " first_attempt, project, cpus, exclusive, gpu_model, cpu_ids, array_job_id, submission,"
    " usage, slurm_job_id, node, slurm_handing"
)


def _json_list(text: str) -> list[Any]:
    result: list[Any] = [] if text == "[]" else json.loads(text)  # "[]": most jobs
    return result


# Jobs of one array or sweep repeat the same values: the daemon keeps each active job in
# memory, so equal strings, requests and reasons are shared rather than copied per job.
# Bounded caches (not sys.intern), so a long-running daemon keeps no value forever.
_share = lru_cache(maxsize=4096)(str)  # returns the first equal string it was given
_STATES = {state.value: state for state in JobState}
_MODES = {mode.value: mode for mode in DependencyMode}


def _usage(text: str) -> Usage:
    return NO_USAGE if text == "{}" else Usage.from_dict(json.loads(text))  # "{}": not run


@lru_cache(maxsize=1024)
def _resources(
    gpus: int,
    shared: int,
    gpu_mb: int | None,
    pin: str,
    mem: int | None,
    cpus: int = 0,
    exclusive: int = 0,
    model: str = "",
) -> Resources:
    return Resources(
        gpus, bool(shared), gpu_mb, tuple(_json_list(pin)), mem, cpus, bool(exclusive), model
    )


@lru_cache(maxsize=1024)
def _reason(text: str) -> Reason:
    return Reason.parse(text)


@lru_cache(maxsize=256)  # an array's tasks that all depend on '@' share one tuple
def _dependencies(text: str) -> tuple[tuple[int, DependencyKind], ...]:
    return tuple((j, DependencyKind(k)) for j, k in _json_list(text))


def row_to_job(row: Sequence[Any]) -> Job:
    (
        job_id,
        name,
        user,
        uid,
        command,
        script,
        workdir,
        state,
        reason,
        priority,
        gpus,
        shared,
        gpu_memory_mb,
        gpu_pin,
        memory_mb,
        time_limit,
        dependencies,
        dependency_mode,
        auto_cancel,
        begin_at,
        group_id,
        max_concurrent,
        task,
        keep,
        submitted,
        log_path,
        started,
        finished,
        exit_code,
        signal,
        gpu_ids,
        pid,
        stop_reason,
        executor,
        session,
        conda_env,
        max_retries,
        retry_on_timeout,
        attempt,
        first_attempt,
        project,
        cpus,
        exclusive,
        gpu_model,
        cpu_ids,
        array_job_id,
        submission,
        usage,
        slurm_job_id,
        node,
        slurm_handing,
    ) = row
    return Job(
        id=job_id,
        name=_share(name),
        user=_share(user),
        uid=uid,
        command=_share(command),
        script=_share(script),
        workdir=_share(workdir),
        state=_STATES[state],
        reason=_reason(reason) if reason else None,
        priority=priority,
        resources=_resources(
            gpus, shared, gpu_memory_mb, gpu_pin, memory_mb, cpus, exclusive, gpu_model
        ),
        time_limit=time_limit,
        dependencies=_dependencies(dependencies),
        dependency_mode=_MODES[dependency_mode],
        auto_cancel=bool(auto_cancel),
        begin_at=begin_at,
        group_id=group_id,
        max_concurrent=max_concurrent,
        array_task_id=task,
        keep_session=bool(keep),
        submitted_at=submitted,
        log_path=log_path,
        started_at=started,
        finished_at=finished,
        exit_code=exit_code,
        signal=signal,
        gpu_ids=tuple(_json_list(gpu_ids)),
        pid=pid,
        stop_reason=ReasonKind(stop_reason) if stop_reason else None,
        executor=_share(executor),
        session=session,
        conda_env=_share(conda_env),
        max_retries=max_retries,
        retry_on_timeout=bool(retry_on_timeout),
        attempt=attempt,
        first_attempt=first_attempt,
        project=_share(project),
        cpu_ids=tuple(_json_list(cpu_ids)),
        array_job_id=array_job_id,
        submission=submission,
        usage=_usage(usage),
        slurm_job_id=slurm_job_id,
        node=node,
        slurm_handing=slurm_handing,
    )
