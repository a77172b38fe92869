"""Writing what changes about a job after its submission: its mutable columns with their
event, in one statement each for all the jobs of a commit; its process record; and its
next attempt (a retry) or a redo, a copy of its request as a new Queued job."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gflow.core.model import NO_USAGE, Event, Job, JobProcesses
from gflow.core.states import JobState

# Every field that can change after submission (state and outcome, and what `gjob update`
# may change while the job waits), in the order `saved_row` gives them.
SAVED_COLUMNS = (
    "state", "reason", "priority", "started_at", "finished_at", "exit_code", "signal",
    "gpu_ids", "cpu_ids", "pid", "stop_reason", "usage", "session", "begin_at",
    "max_concurrent", "dependencies", "dependency_mode", "auto_cancel", "gpus", "shared",
    "gpu_memory_mb", "gpu_pin", "memory_mb", "cpus", "exclusive", "gpu_model", "time_limit",
    "conda_env", "max_retries", "slurm_job_id", "node", "slurm_handing",
)  # fmt: skip
SAVE_JOB = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in SAVED_COLUMNS)} WHERE id = ?"


def write_changes(
    conn: sqlite3.Connection,
    changes: list[tuple[Job, Event]],
    processes: Iterable[tuple[int, JobProcesses]],
) -> None:
    """Each job's mutable fields and its event; an ended job's process record deleted."""
    # One statement each for all the jobs (20,000 of a cancelled array at once).
    conn.executemany(SAVE_JOB, [saved_row(job) for job, _ in changes])
    conn.executemany(_INSERT_EVENT, [_event_row(event) for _, event in changes])
    ended = [(job.id,) for job, _ in changes if job.state.is_ended]
    conn.executemany("DELETE FROM processes WHERE job_id = ?", ended)
    save_processes(conn, processes)


def insert_attempt(
    conn: sqlite3.Connection, job: Job, now: float | None = None, redo: bool = False
) -> int:
    """A copy of `job`'s request as a new Queued job: its next attempt, or (redo) a new
    first attempt."""
    copied = (
        "name, user, uid, command, script, payload_id, workdir, priority, gpus, shared,"
        " gpu_memory_mb, gpu_pin, memory_mb, time_limit, dependencies, dependency_mode,"
        " auto_cancel, begin_at, group_id, max_concurrent, array_task_id, keep_session,"
        " executor, conda_env, max_retries, retry_on_timeout, project, cpus, exclusive,"
        " gpu_model, array_job_id, notify_email, notify_on"
    )
    now = now if now is not None else (job.finished_at or 0.0)
    # A retry stays in its submission; a redo is a submission of its own.
    lineage = "1, NULL, NULL" if redo else "attempt + 1, COALESCE(first_attempt, id), submission"
    cur = conn.execute(
        f"INSERT INTO jobs ({copied}, state, submitted_at, gpu_ids, session, log_path,"
        " attempt, first_attempt, submission)"
        f" SELECT {copied}, ?, ?, '[]', '', '', {lineage}"
        " FROM jobs WHERE id = ?",
        (JobState.QUEUED.value, now, job.id),
    )
    new_id = int(cur.lastrowid or 0)
    log_path = Path(job.log_path).with_name(f"{new_id}.log")
    conn.execute(
        "UPDATE jobs SET log_path = ?, submission = COALESCE(submission, id) WHERE id = ?",
        (str(log_path), new_id),
    )
    detail = (
        f"redo of job {job.id}"
        if redo
        else f"attempt {job.attempt + 1} of job {job.first_attempt or job.id}"
    )
    _insert_event(conn, Event(new_id, now, "submitted", JobState.QUEUED, detail))
    return new_id


def saved_row(job: Job) -> tuple[Any, ...]:
    res = job.resources
    return (
        job.state.value,
        str(job.reason) if job.reason else None,
        job.priority,
        job.started_at,
        job.finished_at,
        job.exit_code,
        job.signal,
        json.dumps(job.gpu_ids),
        json.dumps(job.cpu_ids),
        job.pid,
        job.stop_reason.value if job.stop_reason else None,
        "{}" if job.usage is NO_USAGE else json.dumps(job.usage.to_dict()),
        job.session,
        job.begin_at,
        job.max_concurrent,
        json.dumps([[j, k.value] for j, k in job.dependencies]),
        job.dependency_mode.value,
        int(job.auto_cancel),
        res.gpus,
        int(res.shared),
        res.gpu_memory_mb,
        json.dumps(res.gpu_pin),
        res.memory_mb,
        res.cpus,
        int(res.exclusive),
        res.gpu_model,
        job.time_limit,
        job.conda_env,
        job.max_retries,
        job.slurm_job_id,
        job.node,
        int(job.slurm_handing),
        job.id,
    )


def save_processes(conn: sqlite3.Connection, processes: Iterable[tuple[int, JobProcesses]]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO processes"
        " (job_id, boot_id, wrapper_pid, wrapper_ticks, group_id, group_ticks)"
        " VALUES (?,?,?,?,?,?)",
        [
            (job_id, p.boot_id, p.wrapper_pid, p.wrapper_ticks, p.group_id, p.group_ticks)
            for job_id, p in processes
        ],
    )


def running_processes(conn: sqlite3.Connection) -> dict[int, JobProcesses]:
    """The recorded processes of every job that has them (only running jobs do)."""
    rows = conn.execute(
        "SELECT job_id, boot_id, wrapper_pid, wrapper_ticks, group_id, group_ticks FROM processes"
    )
    return {row[0]: JobProcesses(*row[1:]) for row in rows}


_INSERT_EVENT = "INSERT INTO events (job_id, at, kind, state, detail) VALUES (?,?,?,?,?)"


def _event_row(event: Event) -> tuple[Any, ...]:
    return (event.job_id, event.at, event.kind, event.state.value, event.detail)


def _insert_event(conn: sqlite3.Connection, event: Event) -> None:
    conn.execute(_INSERT_EVENT, _event_row(event))
