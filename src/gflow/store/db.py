"""The Store: one SQLite database in WAL mode; every change and its event in one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.core.dependencies import DependencyKind
from gflow.core.errors import Unavailable
from gflow.core.model import Event, Job, JobSpec
from gflow.core.states import ENDED_STATES, JobState, Reason, ReasonKind
from gflow.store.listing import add_listing_functions, listed_row
from gflow.store.rows import JOB_COLUMNS, row_to_job
from gflow.store.schema import MIGRATIONS, SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(Exception):
    """The database cannot be used (newer schema, corrupt file); the daemon must not start."""


@dataclass(frozen=True)
class NewJob:
    """A validated spec plus what the daemon adds at submission."""

    spec: JobSpec
    user: str
    uid: int
    dependencies: tuple[tuple[int, DependencyKind], ...]  # '@' / '@~N' resolved to ids
    executor: str


@dataclass(frozen=True)
class JobFilter:
    states: frozenset[JobState] | None = None
    uid: int | None = None
    ids: tuple[int, ...] | None = None
    limit: int | None = None
    submitted_since: float | None = None
    project: str | None = None
    names: tuple[str, ...] | None = None


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating or migrating) the database; refuse a newer or corrupt one untouched."""
        if path.exists() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                if f.read(16) != SQLITE_MAGIC:
                    raise StoreError(f"{path} is not an SQLite database; left untouched")
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            add_listing_functions(conn)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            check = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
        if check != [("ok",)]:
            conn.close()
            raise StoreError(f"{path} is corrupt ({check[0][0]}); left untouched")
        if version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{path} has schema version {version}, newer than this gflow understands "
                f"({SCHEMA_VERSION}); upgrade gflow"
            )
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the client hears "ok", even across power loss.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        store = cls(conn)
        store._migrate(version)
        return store

    def close(self) -> None:
        self._conn.close()

    def _migrate(self, version: int) -> None:
        for number in range(version, SCHEMA_VERSION):
            with self.transaction() as conn:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error; a full disk becomes Unavailable."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"cannot write the state database: {exc}") from None
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._rollback()
            raise Unavailable(
                f"cannot write the state database: {exc}", hint="check free disk space"
            ) from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    # ---- writes -------------------------------------------------------------------------

    def insert_jobs(self, new_jobs: Sequence[NewJob], now: float, logs_dir: Path) -> list[Job]:
        """Store all the jobs or none, each with a 'submitted' event.

        Jobs of one submission that set max_concurrent form a group named by the first id.
        """
        ids: list[int] = []
        payloads: dict[tuple[str, str], int] = {}  # an array's jobs share one
        with self.transaction() as conn:
            for new in new_jobs:
                job_id = self._insert(conn, new, now, payloads)
                group = ids[0] if ids else job_id
                conn.execute(
                    "UPDATE jobs SET log_path = ?, group_id = ?, submission = ? WHERE id = ?",
                    (
                        str(logs_dir / f"{job_id}.log"),
                        group if new.spec.max_concurrent is not None else None,
                        group,  # the submission is named by its first job
                        job_id,
                    ),
                )
                ids.append(job_id)
        return self.get_jobs(ids)

    def _insert(
        self,
        conn: sqlite3.Connection,
        new: NewJob,
        now: float,
        payloads: dict[tuple[str, str], int],
    ) -> int:
        spec, res = new.spec, new.spec.resources
        state = JobState.HOLD if spec.hold else JobState.QUEUED
        payload = (json.dumps(spec.env), spec.script_body)
        if payload not in payloads:
            cur = conn.execute("INSERT INTO payloads (env, script_body) VALUES (?, ?)", payload)
            payloads[payload] = int(cur.lastrowid or 0)
        row = {
            "name": spec.name,
            "user": new.user,
            "uid": new.uid,
            "command": spec.command,
            "script": spec.script,
            "workdir": spec.workdir,
            "payload_id": payloads[payload],
            "state": state.value,
            "reason": str(Reason(ReasonKind.HELD)) if spec.hold else None,
            "priority": spec.priority,
            "gpus": res.gpus,
            "shared": int(res.shared),
            "gpu_memory_mb": res.gpu_memory_mb,
            "gpu_pin": json.dumps(res.gpu_pin),
            "memory_mb": res.memory_mb,
            "time_limit": spec.time_limit,
            "dependencies": json.dumps([[j, k.value] for j, k in new.dependencies]),
            "dependency_mode": spec.dependency_mode.value,
            "auto_cancel": int(spec.auto_cancel),
            "begin_at": spec.begin_at,
            "max_concurrent": spec.max_concurrent,
            "array_task_id": spec.array_task_id,
            "keep_session": int(spec.keep_session),
            "conda_env": spec.conda_env,
            "max_retries": spec.max_retries,
            "retry_on_timeout": int(spec.retry_on_timeout),
            "project": spec.project,
            "submitted_at": now,
            "gpu_ids": "[]",
            "executor": new.executor,
            "session": "",
            "log_path": "",
        }
        cur = conn.execute(
            f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        job_id = int(cur.lastrowid or 0)
        _insert_event(conn, Event(job_id, now, "submitted", state, ""))
        return job_id

    def save(self, changes: Iterable[tuple[Job, Event]], retry_of: Job | None = None) -> Job | None:
        """Write each job's mutable fields and its event, all in one transaction; with
        `retry_of`, also insert that job's next attempt (Queued) and return it."""
        new_id = None
        with self.transaction() as conn:
            for job, event in changes:
                _save_job(conn, job)
                _insert_event(conn, event)
            if retry_of is not None:
                new_id = self._insert_attempt(conn, retry_of)
        return self.get_job(new_id) if new_id is not None else None

    def insert_redo(self, job: Job, dependencies: tuple[tuple[int, DependencyKind], ...],
                    now: float, user: str, uid: int) -> Job:  # fmt: skip
        """`gjob redo`: a new Queued job with `job`'s request (a first attempt of its own)."""
        with self.transaction() as conn:
            new_id = self._insert_attempt(conn, job, now=now, redo=True)
            conn.execute(
                "UPDATE jobs SET dependencies = ?, user = ?, uid = ? WHERE id = ?",
                (json.dumps([[j, k.value] for j, k in dependencies]), user, uid, new_id),
            )
        redone = self.get_job(new_id)
        assert redone is not None
        return redone

    def _insert_attempt(
        self, conn: sqlite3.Connection, job: Job, now: float | None = None, redo: bool = False
    ) -> int:
        """A copy of `job`'s request as a new Queued job: its next attempt, or (redo) a new
        first attempt."""
        copied = (
            "name, user, uid, command, script, payload_id, workdir, priority, gpus, shared,"
            " gpu_memory_mb, gpu_pin, memory_mb, time_limit, dependencies, dependency_mode,"
            " auto_cancel, begin_at, group_id, max_concurrent, array_task_id, keep_session,"
            " executor, conda_env, max_retries, retry_on_timeout, project"
        )
        now = now if now is not None else (job.finished_at or 0.0)
        # A retry stays in its submission; a redo is a submission of its own.
        lineage = (
            "1, NULL, NULL" if redo else "attempt + 1, COALESCE(first_attempt, id), submission"
        )
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

    def purge(self, ended_before: float) -> list[Job]:
        """Delete ended jobs that ended before this time, with their events; return them so
        their files can go too. Ids are never reused (AUTOINCREMENT)."""
        ended = [s.value for s in ENDED_STATES]
        with self.transaction() as conn:
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE finished_at < ?"
                f" AND state IN ({','.join('?' * len(ended))}) ORDER BY id",
                (ended_before, *ended),
            ).fetchall()
            ids = json.dumps([row[0] for row in rows])
            conn.execute(
                "DELETE FROM events WHERE job_id IN (SELECT value FROM json_each(?))", (ids,)
            )
            conn.execute("DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (ids,))
            conn.execute(
                "DELETE FROM payloads WHERE id NOT IN"
                " (SELECT payload_id FROM jobs WHERE payload_id IS NOT NULL)"
            )
        return [row_to_job(row) for row in rows]

    def cancelled_because_of(self, job_id: int) -> list[Job]:
        """Jobs cancelled because this one's end made their dependencies impossible."""
        rows = self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = ? AND reason = ? ORDER BY id",
            (JobState.CANCELLED.value, f"{ReasonKind.DEPENDENCY_FAILED.value}:{job_id}"),
        )
        return [row_to_job(row) for row in rows]

    def attempts_of(self, first_attempt: int) -> list[int]:
        rows = self._conn.execute(
            "SELECT id FROM jobs WHERE id = ? OR first_attempt = ? ORDER BY id",
            (first_attempt, first_attempt),
        )
        return [int(row[0]) for row in rows]

    def get_setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_setting(self, key: str, value: str | None) -> None:
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value)
                )

    # ---- reads --------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read, for the small tables kept by their own modules (store/ignored.py)."""
        return self._conn.execute(sql, params).fetchall()

    def get_job(self, job_id: int) -> Job | None:
        jobs = self.get_jobs([job_id])
        return jobs[0] if jobs else None

    def get_jobs(self, ids: Sequence[int]) -> list[Job]:
        return self.list_jobs(JobFilter(ids=tuple(ids)))

    def get_launch_data(self, job_id: int) -> tuple[dict[str, str], str]:
        """The submitter's environment and script body: large, so read only to start a job."""
        row = self._conn.execute(
            "SELECT env, script_body FROM payloads"
            " WHERE id = (SELECT payload_id FROM jobs WHERE id = ?)",
            (job_id,),
        ).fetchone()
        if row is None:
            return {}, ""
        env: dict[str, str] = json.loads(row[0])
        return env, str(row[1])

    def list_jobs(self, where: JobFilter) -> list[Job]:
        sql, params = _select(JOB_COLUMNS, where)
        return [row_to_job(row) for row in self._conn.execute(sql, params)]

    def list_fields_json(self, where: JobFilter, fields: Sequence[str]) -> str:
        """`{"fields": [...], "rows": [[...], ...]}`: only these fields of each job (as
        `Job.to_dict()` has them), written by SQLite straight from their columns. A listing
        of 10,000 jobs builds no Job objects and sends no field it does not show (a full job
        is ~800 bytes of JSON, a default `gqueue` row ~60)."""
        names, row = listed_row(fields)
        rows, params = _select(f"{row} AS listed", where)
        # The rows in the subquery's (id) order: SQLite aggregates a sorted subquery as is.
        listing = "SELECT json_object('fields', json(?), 'rows', json_group_array(json(listed)))"
        (text,) = self._conn.execute(
            f"{listing} FROM ({rows})", [json.dumps(names), *params]
        ).fetchone()
        return str(text)

    def states_of(self, ids: Iterable[int]) -> dict[int, JobState]:
        """Each job's state, or that of its newest attempt when it was retried: a dependent
        waits for the last attempt, not for the failure that started the next one."""
        rows = self._conn.execute(
            "SELECT j.id, (SELECT a.state FROM jobs a"
            "  WHERE a.id = COALESCE(j.first_attempt, j.id)"
            "     OR a.first_attempt = COALESCE(j.first_attempt, j.id)"
            "  ORDER BY a.id DESC LIMIT 1)"
            " FROM jobs j WHERE j.id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(ids))),),
        )
        return {job_id: JobState(state) for job_id, state in rows}

    def nth_last_submission_of(self, uid: int, n: int) -> list[int]:
        """Every job of the user's submission n before the last (n=0 is '@'), in id order;
        [] if there is none. Automatic retries belong to the job they retry."""
        row = self._conn.execute(
            "SELECT DISTINCT submission FROM jobs"
            " WHERE uid = ? AND first_attempt IS NULL ORDER BY submission DESC LIMIT 1 OFFSET ?",
            (uid, n),
        ).fetchone()
        return self.submission_jobs(int(row[0])) if row else []

    def submission_jobs(self, submission: int) -> list[int]:
        """The jobs of the submission named by its first job's id (retries not included)."""
        rows = self._conn.execute(
            "SELECT id FROM jobs WHERE submission = ? AND first_attempt IS NULL ORDER BY id",
            (submission,),
        )
        return [int(row[0]) for row in rows]

    def count_by_state(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        return dict(rows.fetchall())

    def set_reasons(self, reasons: Iterable[tuple[int, str | None]]) -> None:
        """Why queued jobs wait: shown to users, but not a state change, so no event."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE jobs SET reason = ? WHERE id = ?", [(r, i) for i, r in reasons]
            )

    def events_of(self, job_id: int) -> list[Event]:
        rows = self._conn.execute(
            "SELECT job_id, at, kind, state, detail FROM events WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [Event(j, at, kind, JobState(state), det) for j, at, kind, state, det in rows]


def _select(columns: str, where: JobFilter) -> tuple[str, list[Any]]:
    """SELECT these columns of the jobs matching the filter, in id order."""
    clauses: list[str] = []
    params: list[Any] = []
    if where.states is not None:
        clauses.append(f"state IN ({','.join('?' * len(where.states))})")
        params += [s.value for s in where.states]
    if where.uid is not None:
        clauses.append("uid = ?")
        params.append(where.uid)
    if where.ids is not None:
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(where.ids)))
    if where.submitted_since is not None:
        clauses.append("submitted_at >= ?")
        params.append(where.submitted_since)
    if where.project is not None:
        clauses.append("project = ?")
        params.append(where.project)
    if where.names is not None:
        clauses.append("name IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(where.names)))
    sql = f"SELECT {columns} FROM jobs"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY id"
    if where.limit is not None:
        sql += " LIMIT ?"
        params.append(where.limit)
    return sql, params


def _save_job(conn: sqlite3.Connection, job: Job) -> None:
    """Every field that can change after submission (state and outcome, and what
    `gjob update` may change while the job waits)."""
    res = job.resources
    row = {
        "state": job.state.value,
        "reason": str(job.reason) if job.reason else None,
        "priority": job.priority,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "gpu_ids": json.dumps(job.gpu_ids),
        "pid": job.pid,
        "stop_reason": job.stop_reason.value if job.stop_reason else None,
        "session": job.session,
        "begin_at": job.begin_at,
        "max_concurrent": job.max_concurrent,
        "dependencies": json.dumps([[j, k.value] for j, k in job.dependencies]),
        "dependency_mode": job.dependency_mode.value,
        "auto_cancel": int(job.auto_cancel),
        "gpus": res.gpus,
        "shared": int(res.shared),
        "gpu_memory_mb": res.gpu_memory_mb,
        "gpu_pin": json.dumps(res.gpu_pin),
        "memory_mb": res.memory_mb,
        "time_limit": job.time_limit,
        "conda_env": job.conda_env,
        "max_retries": job.max_retries,
    }
    assignments = ", ".join(f"{column} = ?" for column in row)
    conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*row.values(), job.id))


def _insert_event(conn: sqlite3.Connection, event: Event) -> None:
    conn.execute(
        "INSERT INTO events (job_id, at, kind, state, detail) VALUES (?,?,?,?,?)",
        (event.job_id, event.at, event.kind, event.state.value, event.detail),
    )
