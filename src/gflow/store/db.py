"""The Store: one SQLite database in WAL mode; every change and its event in one transaction."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.core.accounting import summary
from gflow.core.batch import NO_BATCH, BatchOptions
from gflow.core.dependencies import DependencyKind
from gflow.core.errors import Unavailable
from gflow.core.events import StreamEvent
from gflow.core.model import NO_USAGE, Event, Job, JobProcesses
from gflow.core.reasons import ReasonKind
from gflow.core.reservations import Reservation
from gflow.core.states import ACTIVE_STATES, JobState
from gflow.core.usage import Usage
from gflow.store import accounting, reservations, retention
from gflow.store import events as history
from gflow.store.accounting import StatsFilter
from gflow.store.events import EventFilter, head_id, new_events
from gflow.store.listing import add_listing_functions, listed_row
from gflow.store.rows import JOB_COLUMNS, row_to_job
from gflow.store.schema import ACTIVE_CLAUSE, MIGRATIONS, SCHEMA_VERSION
from gflow.store.submissions import (
    NewJob,
    Payloads,
    discard_staged,
    insert_rows,
    publish_events,
    reserve_ids,
    staged_ranges,
)

__all__ = ["JobFilter", "NewJob", "Store", "StoreError"]

SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(Exception):
    """The database cannot be used (newer schema, corrupt file); the daemon must not start."""


@dataclass(frozen=True)
class JobFilter:
    states: frozenset[JobState] | None = None
    uid: int | None = None
    ids: tuple[int, ...] | None = None
    limit: int | None = None
    submitted_since: float | None = None
    project: str | None = None
    names: tuple[str, ...] | None = None
    last: bool = False  # with a limit: the last jobs (by id), not the first


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._hidden: list[tuple[int, int]] = []  # staged submissions' id ranges
        # The one event source (store/events.py): after a commit that added events, the
        # newest id goes to `on_events`; `outbox` sees them before the commit, inside the
        # transaction, to queue the deliveries that must survive a crash.
        self.on_events: Callable[[int], None] | None = None
        self.outbox: Callable[[sqlite3.Connection, list[StreamEvent]], None] | None = None
        self.event_head = 0
        self._ready = False  # migrated: the events table exists

    @classmethod
    def open(cls, path: Path, check: bool = True) -> Store:
        """Open (creating or migrating) the database; refuse a newer or corrupt one untouched.

        `check=False` leaves the integrity check (seconds on a year's history) to the
        caller, who runs `check_integrity` before anything is written; unless the database
        must first be migrated or cleaned of a dead daemon's half submission: then it is
        checked here, before that."""
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.is_symlink():
                raise StoreError(f"{file} is a link, not a database file; left untouched")
        if path.exists() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                if f.read(16) != SQLITE_MAGIC:
                    raise StoreError(f"{path} is not an SQLite database; left untouched")
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
        try:
            add_listing_functions(conn)
            add_math_functions(conn)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            # Migrating, or discarding what a dead daemon staged, writes: checked first.
            writes = version < SCHEMA_VERSION or (
                version == SCHEMA_VERSION and bool(staged_ranges(conn))
            )
            if check or writes:
                _check_integrity(conn, path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
        except StoreError:
            conn.close()
            raise
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
        store = cls(conn, path)
        store._migrate(version)
        if staged_ranges(conn):
            store.discard_staged()  # what a daemon that died mid-submission left
        store.event_head = head_id(conn)
        store._ready = True
        return store

    def close(self) -> None:
        self._conn.close()

    def _migrate(self, version: int) -> None:
        for number in range(version, SCHEMA_VERSION):
            with self.transaction() as conn:
                for statement in _statements(MIGRATIONS[number]):
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
            if self.outbox is not None:
                added = new_events(self._conn, self.event_head)
                if added:
                    self.outbox(self._conn, added)
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._rollback()
            raise Unavailable(
                f"cannot write the state database: {exc}", hint="check free disk space"
            ) from None
        except BaseException:
            self._rollback()
            raise
        if self._ready:
            head = head_id(self._conn)  # the rowid B-tree's last entry: one page or two
            if head > self.event_head:
                self.event_head = head
                if self.on_events is not None:
                    self.on_events(head)

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    # ---- writes -------------------------------------------------------------------------

    def insert_jobs(self, new_jobs: Sequence[NewJob], now: float, logs_dir: Path) -> list[Job]:
        """Store all the jobs or none, each with a 'submitted' event, at contiguous ids.

        Jobs of one submission that set max_concurrent form a group named by the first id.
        """
        with self.transaction() as conn:
            first = reserve_ids(conn, len(new_jobs))
            insert_rows(conn, first, new_jobs, first, now, logs_dir, Payloads())
        return self.get_jobs(range(first, first + len(new_jobs)))

    # A big submission, in slices (store/submissions.py): stage, insert_staged…, publish.

    def stage(self, count: int) -> int:
        """Reserve ids for a submission of `count` jobs, hidden until it is published."""
        with self.transaction() as conn:
            first = reserve_ids(conn, count)
            last = first + count - 1
            conn.execute("INSERT INTO staged_submissions VALUES (?, ?)", (first, last))
        self._hidden.append((first, last))
        return first

    def insert_staged(
        self,
        first_id: int,
        offset: int,
        new_jobs: Sequence[NewJob],
        now: float,
        logs_dir: Path,
        payloads: Payloads,
    ) -> None:
        with self.transaction() as conn:
            insert_rows(
                conn, first_id + offset, new_jobs, first_id, now, logs_dir, payloads, events=False
            )

    def publish(self, first_id: int) -> None:
        """The staged submission becomes visible, all of it at once, and its 'submitted'
        events are written now: their ids come after every event a client may have seen."""
        with self.transaction() as conn:
            (last_id,) = conn.execute(
                "SELECT last_id FROM staged_submissions WHERE first_id = ?", (first_id,)
            ).fetchone()
            publish_events(conn, first_id, int(last_id))
            conn.execute("DELETE FROM staged_submissions WHERE first_id = ?", (first_id,))
        self._hidden = [r for r in self._hidden if r[0] != first_id]

    def discard_staged(self) -> None:
        """Forget what staged submissions wrote (one failed, or a daemon died mid-way)."""
        with self.transaction() as conn:
            discard_staged(conn)
        self._hidden = []

    def read_staged(self, first_id: int, last_id: int) -> list[Job]:
        """A staged submission's jobs (hidden from every other query until published),
        read on the daemon's own connection and thread: a slice at a time, so the Jobs the
        daemon keeps are made where it keeps them (not in a worker thread's heap, which the
        long-lived objects would then pin)."""
        rows = self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id BETWEEN ? AND ? ORDER BY id",
            (first_id, last_id),
        ).fetchall()
        return [row_to_job(row) for row in rows]

    def _visible(self, column: str = "id") -> tuple[str, list[int]]:
        """A WHERE clause leaving out staged submissions ('1' when there are none)."""
        if not self._hidden:
            return "1", []
        clause = " AND ".join(f"{column} NOT BETWEEN ? AND ?" for _ in self._hidden)
        return clause, [n for r in self._hidden for n in r]

    def save(
        self,
        changes: Iterable[tuple[Job, Event]],
        retry_of: Job | None = None,
        processes: Iterable[tuple[int, JobProcesses]] = (),
    ) -> Job | None:
        """Write each job's mutable fields and its event, all in one transaction; with
        `retry_of`, also insert that job's next attempt (Queued) and return it. An ended job's
        process record goes in the same transaction: it names nothing any more."""
        new_id = None
        changes = list(changes)
        with self.transaction() as conn:
            # One statement each for all the jobs (20,000 of a cancelled array at once).
            conn.executemany(_SAVE_JOB, [_saved_row(job) for job, _ in changes])
            conn.executemany(_INSERT_EVENT, [_event_row(event) for _, event in changes])
            ended = [(job.id,) for job, _ in changes if job.state.is_ended]
            conn.executemany("DELETE FROM processes WHERE job_id = ?", ended)
            _save_processes(conn, processes)
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
            " executor, conda_env, max_retries, retry_on_timeout, project, cpus, exclusive,"
            " gpu_model, array_job_id, notify_email, notify_on"
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

    def purge(
        self, ended_before: float | None, below_id: int | None = None, limit: int = 1 << 62
    ) -> list[Job]:
        """Forget up to `limit` ended jobs, oldest first: those that ended before this time,
        and those with an id below `below_id` (store/retention.py); return them so their
        files can go too."""
        with self.transaction() as conn:
            rows = retention.purge(conn, ended_before, below_id, limit)
        return [row_to_job(row) for row in rows]

    def oldest_kept(self, keep_newest: int) -> int:
        """The id of the oldest of the newest `keep_newest` ended jobs (0: fewer)."""
        return retention.oldest_kept(self._conn, keep_newest)

    def cancelled_because_of(self, job_id: int) -> list[Job]:
        """Jobs cancelled because this one's end made their dependencies impossible."""
        rows = self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = ? AND reason = ? ORDER BY id",
            (JobState.CANCELLED.value, f"{ReasonKind.DEPENDENCY_FAILED.value}:{job_id}"),
        )
        return [row_to_job(row) for row in rows]

    def attempts_of(self, first_attempt: int) -> list[int]:
        visible, hidden = self._visible()
        rows = self._conn.execute(
            f"SELECT id FROM jobs WHERE (id = ? OR first_attempt = ?) AND {visible} ORDER BY id",
            (first_attempt, first_attempt, *hidden),
        )
        return [int(row[0]) for row in rows]

    def record_processes(self, processes: Iterable[tuple[int, JobProcesses]]) -> None:
        with self.transaction() as conn:
            _save_processes(conn, processes)

    def running_processes(self) -> dict[int, JobProcesses]:
        """The recorded processes of every job that has them (only running jobs do)."""
        rows = self._conn.execute(
            "SELECT job_id, boot_id, wrapper_pid, wrapper_ticks, group_id, group_ticks"
            " FROM processes"
        )
        return {row[0]: JobProcesses(*row[1:]) for row in rows}

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
        env, body, _ = self.get_launch_payload(job_id)
        return env, body

    def get_launch_payload(self, job_id: int) -> tuple[dict[str, str], str, BatchOptions]:
        """The environment, script body and batch options (read when a job starts)."""
        row = self._conn.execute(
            "SELECT env, script_body, batch FROM payloads"
            " WHERE id = (SELECT payload_id FROM jobs WHERE id = ?)",
            (job_id,),
        ).fetchone()
        if row is None:
            return {}, "", NO_BATCH
        env: dict[str, str] = json.loads(row[0])
        return env, str(row[1]), BatchOptions.from_dict(json.loads(row[2]))

    def list_jobs(self, where: JobFilter) -> list[Job]:
        sql, params = _select(JOB_COLUMNS, where, self._hidden)
        return [row_to_job(row) for row in self._conn.execute(sql, params)]

    def list_fields_json(self, where: JobFilter, fields: Sequence[str]) -> str:
        """`{"fields": [...], "rows": [[...], ...]}`: only these fields of each job (as
        `Job.to_dict()` has them), written by SQLite straight from their columns. A listing
        of 10,000 jobs builds no Job objects and sends no field it does not show (a full job
        is ~800 bytes of JSON, a default `gqueue` row ~60)."""
        names, row = listed_row(fields)
        rows, params = _select(f"{row} AS listed", where, self._hidden)
        # The rows in the subquery's (id) order: SQLite aggregates a sorted subquery as is.
        listing = "SELECT json_object('fields', json(?), 'rows', json_group_array(json(listed)))"
        (text,) = self._conn.execute(
            f"{listing} FROM ({rows})", [json.dumps(names), *params]
        ).fetchone()
        return str(text)

    def states_of(self, ids: Iterable[int]) -> dict[int, JobState]:
        """Each job's state, or that of its newest attempt when it was retried: a dependent
        waits for the last attempt, not for the failure that started the next one."""
        visible, hidden = self._visible("j.id")
        rows = self._conn.execute(
            "SELECT j.id, (SELECT a.state FROM jobs a"
            "  WHERE a.id = COALESCE(j.first_attempt, j.id)"
            "     OR a.first_attempt = COALESCE(j.first_attempt, j.id)"
            "  ORDER BY a.id DESC LIMIT 1)"
            f" FROM jobs j WHERE j.id IN (SELECT value FROM json_each(?)) AND {visible}",
            (json.dumps(sorted(set(ids))), *hidden),
        )
        return {job_id: JobState(state) for job_id, state in rows}

    def nth_last_submission_of(self, uid: int, n: int) -> list[int]:
        """Every job of the user's submission n before the last (n=0 is '@'), in id order;
        [] if there is none. Automatic retries belong to the job they retry."""
        visible, hidden = self._visible()
        row = self._conn.execute(
            "SELECT DISTINCT submission FROM jobs WHERE uid = ? AND first_attempt IS NULL"
            f" AND {visible} ORDER BY submission DESC LIMIT 1 OFFSET ?",
            (uid, *hidden, n),
        ).fetchone()
        return self.submission_jobs(int(row[0])) if row else []

    def submission_jobs(self, submission: int) -> list[int]:
        """The jobs of the submission named by its first job's id (retries not included)."""
        rows = self._conn.execute(
            "SELECT id FROM jobs WHERE submission = ? AND first_attempt IS NULL ORDER BY id",
            (submission,),
        )
        return [int(row[0]) for row in rows]

    def stats(self, where: StatsFilter) -> dict[str, Any]:
        """gstats' summary of the matching jobs (core/accounting.py)."""
        return summary(
            accounting.tallies(self._conn, where, self._visible()),
            accounting.longest_runs(self._conn, where),
        )

    def count_by_state(self) -> dict[str, int]:
        visible, hidden = self._visible()
        rows = self._conn.execute(
            f"SELECT state, COUNT(*) FROM jobs WHERE {visible} GROUP BY state", hidden
        )
        return dict(rows.fetchall())

    # ---- reservations (store/reservations.py) ---------------------------------------------

    def insert_reservation(self, new: Reservation) -> Reservation:
        """Stored with its event (reservation_created), in one transaction."""
        with self.transaction() as conn:
            made = reservations.insert(conn, new)
            history.insert_system_event(
                conn, new.created_at, "reservation_created", made.describe()
            )
        return made

    def reservations_not_over(self, now: float) -> list[Reservation]:
        return reservations.not_over(self._conn, now)

    def get_reservation(self, reservation_id: int) -> Reservation | None:
        return reservations.get(self._conn, reservation_id)

    def cancel_reservation(self, reservation: Reservation, now: float) -> None:
        with self.transaction() as conn:
            reservations.cancel(conn, reservation.id, now)
            history.insert_system_event(conn, now, "reservation_cancelled", reservation.describe())

    def gpu_spans(self, ended_since: float) -> list[tuple[int, str, float, float, int]]:
        """(uid, project, started, ended, GPUs) of every GPU job that ended since then: the
        history quotas per day and fair-share count."""
        visible, hidden = self._visible()
        rows = self._conn.execute(
            "SELECT uid, project, started_at, finished_at, json_array_length(gpu_ids)"
            " FROM jobs WHERE finished_at >= ? AND started_at IS NOT NULL"
            f" AND gpu_ids != '[]' AND {visible}",
            (ended_since, *hidden),
        )
        return [(int(u), str(p), float(s), float(e), int(g)) for u, p, s, e, g in rows]

    def decayed_gpu_hours(
        self, ended_since: float, at: float, half_life: float
    ) -> dict[int, float]:
        """Each user's decayed GPU-hours (core.sharing.decayed_span) of the GPU jobs that
        ended since then, as of `at`, summed by SQLite: 100,000 spans in one query."""
        rate = math.log(2) / half_life
        rows = self._conn.execute(
            "SELECT uid, TOTAL(json_array_length(gpu_ids) * (exp(-?1 * (?2 - finished_at))"
            " - exp(-?1 * (?2 - started_at)))) / ?1 / 3600"
            " FROM jobs INDEXED BY jobs_gpu_ended WHERE finished_at >= ?3"
            " AND started_at IS NOT NULL AND gpu_ids != '[]' AND finished_at > started_at"
            " GROUP BY uid",
            (rate, at, ended_since),
        )
        return {int(uid): float(hours) for uid, hours in rows}

    def save_usage(self, usages: Iterable[tuple[int, Usage]]) -> None:
        """What running jobs used so far: figures, not state changes, so no event."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE jobs SET usage = ? WHERE id = ?",
                [(json.dumps(usage.to_dict()), job_id) for job_id, usage in usages],
            )

    def set_handing(self, ids: Iterable[int], unit: int) -> None:
        """The Slurm executor: these jobs are being handed to sbatch as the unit `unit` (its
        mark's id), or (0) no longer are; durable before sbatch runs."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE jobs SET slurm_handing = ? WHERE id = ?", [(unit, i) for i in ids]
            )

    def set_reasons(self, reasons: Iterable[tuple[int, str | None]]) -> None:
        """Why queued jobs wait: shown to users, but not a state change, so no event."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE jobs SET reason = ? WHERE id = ?", [(r, i) for i, r in reasons]
            )

    # ---- the event history (store/events.py) ------------------------------------------

    def events_after(self, after: int, where: EventFilter) -> tuple[list[StreamEvent], int]:
        return history.events_after(self._conn, after, where)

    def last_events(self, where: EventFilter, count: int) -> list[StreamEvent]:
        return history.last_events(self._conn, where, count)

    def events_by_id(self, ids: Iterable[int]) -> list[StreamEvent]:
        return history.events_by_id(self._conn, ids)

    def oldest_event_id(self) -> int:
        return history.oldest_id(self._conn)

    def record_system_event(self, at: float, kind: str, detail: str = "") -> None:
        """An event of no job (the daemon started, the usable GPUs changed)."""
        with self.transaction() as conn:
            history.insert_system_event(conn, at, kind, detail)

    def trim_events(self, now: float, keep_seconds: float = history.KEEP_SECONDS) -> int:
        """Up to a batch of the oldest events past the bounds; more while batches fill."""
        total = 0
        for _ in range(50):
            with self.transaction() as conn:
                removed = history.trim(conn, now, keep_seconds)
            total += removed
            if removed < history.TRIM_BATCH:
                return total
        return total

    def events_of(self, job_id: int) -> list[Event]:
        rows = self._conn.execute(
            "SELECT job_id, at, kind, state, detail FROM events WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [Event(j, at, kind, JobState(state), det) for j, at, kind, state, det in rows]


def _select(
    columns: str, where: JobFilter, hidden: Sequence[tuple[int, int]]
) -> tuple[str, list[Any]]:
    """SELECT these columns of the jobs matching the filter, in id order, leaving out the
    `hidden` id ranges (staged submissions)."""
    clauses: list[str] = ["id NOT BETWEEN ? AND ?" for _ in hidden]
    params: list[Any] = [n for r in hidden for n in r]
    if where.states == ACTIVE_STATES:  # the active queue, by its partial index
        clauses.append(ACTIVE_CLAUSE)
    elif where.states is not None:
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
    # The active queue always by its own (partial) index: the planner, knowing nothing of
    # how few jobs are active, would walk a user's whole history by the uid index.
    table = "jobs INDEXED BY jobs_active" if where.states == ACTIVE_STATES else "jobs"
    condition = " WHERE " + " AND ".join(clauses) if clauses else ""
    if where.limit is None:
        return f"SELECT {columns} FROM {table}{condition} ORDER BY id", params
    if not where.last:
        return f"SELECT {columns} FROM {table}{condition} ORDER BY id LIMIT ?", [
            *params, where.limit]  # fmt: skip
    # The newest few, read backwards along the index, then put back in id order.
    newest = f"SELECT id FROM {table}{condition} ORDER BY id DESC LIMIT ?"
    return (
        f"SELECT {columns} FROM jobs WHERE id IN ({newest}) ORDER BY id",
        [*params, where.limit],
    )


def check_integrity(path: Path) -> None:
    """SQLite's quick_check of the whole file, on a read-only connection of its own (so a
    thread can run it while the daemon sets up); StoreError if it finds damage."""
    try:
        conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
    try:
        _check_integrity(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
    finally:
        conn.close()


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    found = conn.execute("PRAGMA quick_check").fetchall()
    if found != [("ok",)]:
        # Its first finding, on one line ("*** in database main ***\nOn tree page 2 …").
        damage = " ".join(str(found[0][0]).replace("*** in database main ***", "").split())
        raise StoreError(f"{path} is corrupt ({damage}); left untouched")


def add_math_functions(conn: sqlite3.Connection) -> None:
    """exp() for the fair-share sums, where this SQLite was built without its own."""
    try:
        conn.execute("SELECT exp(0)")
    except sqlite3.OperationalError:
        conn.create_function("exp", 1, math.exp, deterministic=True)


def _statements(script: str) -> Iterator[str]:
    """A migration's statements, one at a time (a trigger's body has ';' of its own)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement
            statement = ""


# Every field that can change after submission (state and outcome, and what `gjob update`
# may change while the job waits), in the order `_saved_row` gives them.
_SAVED_COLUMNS = (
    "state", "reason", "priority", "started_at", "finished_at", "exit_code", "signal",
    "gpu_ids", "cpu_ids", "pid", "stop_reason", "usage", "session", "begin_at",
    "max_concurrent", "dependencies", "dependency_mode", "auto_cancel", "gpus", "shared",
    "gpu_memory_mb", "gpu_pin", "memory_mb", "cpus", "exclusive", "gpu_model", "time_limit",
    "conda_env", "max_retries", "slurm_job_id", "node", "slurm_handing",
)  # fmt: skip
_SAVE_JOB = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _SAVED_COLUMNS)} WHERE id = ?"


def _saved_row(job: Job) -> tuple[Any, ...]:
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


def _save_processes(
    conn: sqlite3.Connection, processes: Iterable[tuple[int, JobProcesses]]
) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO processes"
        " (job_id, boot_id, wrapper_pid, wrapper_ticks, group_id, group_ticks)"
        " VALUES (?,?,?,?,?,?)",
        [
            (job_id, p.boot_id, p.wrapper_pid, p.wrapper_ticks, p.group_id, p.group_ticks)
            for job_id, p in processes
        ],
    )


_INSERT_EVENT = "INSERT INTO events (job_id, at, kind, state, detail) VALUES (?,?,?,?,?)"


def _event_row(event: Event) -> tuple[Any, ...]:
    return (event.job_id, event.at, event.kind, event.state.value, event.detail)


def _insert_event(conn: sqlite3.Connection, event: Event) -> None:
    conn.execute(_INSERT_EVENT, _event_row(event))
