"""The Store: one SQLite database in WAL mode; every change and its event in one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gflow.core.accounting import summary
from gflow.core.batch import BatchOptions
from gflow.core.dependencies import DependencyKind
from gflow.core.errors import Unavailable
from gflow.core.events import StreamEvent
from gflow.core.model import Event, Job, JobProcesses
from gflow.core.reservations import Reservation
from gflow.core.states import JobState
from gflow.core.usage import Usage
from gflow.store import (
    accounting,
    gpu_hours,
    lineage,
    reservations,
    retention,
    saving,
    settings,
)
from gflow.store import events as history
from gflow.store.accounting import StatsFilter
from gflow.store.events import EventFilter, head_id, new_events
from gflow.store.integrity import StoreError, quick_check, refuse_foreign
from gflow.store.listing import JobFilter, add_listing_functions, fields_json, select_jobs
from gflow.store.rows import JOB_COLUMNS, row_to_job
from gflow.store.schema import MIGRATIONS, SCHEMA_VERSION, statements
from gflow.store.submissions import (
    NewJob,
    Payloads,
    discard_staged,
    insert_rows,
    launch_payload,
    publish_events,
    reserve_ids,
    staged_ranges,
)

__all__ = ["JobFilter", "NewJob", "Store", "StoreError"]


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
        refuse_foreign(path)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a usable gflow database ({exc})") from None
        try:
            add_listing_functions(conn)
            gpu_hours.add_math_functions(conn)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            # Migrating, or discarding what a dead daemon staged, writes: checked first.
            writes = version < SCHEMA_VERSION or (
                version == SCHEMA_VERSION and bool(staged_ranges(conn))
            )
            if check or writes:
                quick_check(conn, path)
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
                for statement in statements(MIGRATIONS[number]):
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
            saving.write_changes(conn, changes, processes)
            if retry_of is not None:
                new_id = saving.insert_attempt(conn, retry_of)
        return self.get_job(new_id) if new_id is not None else None

    def insert_redo(self, job: Job, dependencies: tuple[tuple[int, DependencyKind], ...],
                    now: float, user: str, uid: int) -> Job:  # fmt: skip
        """`gjob redo`: a new Queued job with `job`'s request (a first attempt of its own)."""
        with self.transaction() as conn:
            new_id = saving.insert_attempt(conn, job, now=now, redo=True)
            conn.execute(
                "UPDATE jobs SET dependencies = ?, user = ?, uid = ? WHERE id = ?",
                (json.dumps([[j, k.value] for j, k in dependencies]), user, uid, new_id),
            )
        redone = self.get_job(new_id)
        assert redone is not None
        return redone

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
        return lineage.cancelled_because_of(self._conn, job_id)

    def attempts_of(self, first_attempt: int) -> list[int]:
        return lineage.attempts_of(self._conn, first_attempt, self._visible())

    def record_processes(self, processes: Iterable[tuple[int, JobProcesses]]) -> None:
        with self.transaction() as conn:
            saving.save_processes(conn, processes)

    def running_processes(self) -> dict[int, JobProcesses]:
        """The recorded processes of every job that has them (only running jobs do)."""
        return saving.running_processes(self._conn)

    def get_setting(self, key: str) -> str | None:
        return settings.get(self._conn, key)

    def set_setting(self, key: str, value: str | None) -> None:
        with self.transaction() as conn:
            settings.put(conn, key, value)

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
        return launch_payload(self._conn, job_id)

    def list_jobs(self, where: JobFilter) -> list[Job]:
        sql, params = select_jobs(JOB_COLUMNS, where, self._hidden)
        return [row_to_job(row) for row in self._conn.execute(sql, params)]

    def list_fields_json(self, where: JobFilter, fields: Sequence[str]) -> str:
        """`{"fields": [...], "rows": [[...], ...]}`: only these fields of each job (as
        `Job.to_dict()` has them), written by SQLite straight from their columns. A listing
        of 10,000 jobs builds no Job objects and sends no field it does not show (a full job
        is ~800 bytes of JSON, a default `gqueue` row ~60)."""
        return fields_json(self._conn, where, fields, self._hidden)

    def states_of(self, ids: Iterable[int]) -> dict[int, JobState]:
        return lineage.states_of(self._conn, ids, self._visible("j.id"))

    def nth_last_submission_of(self, uid: int, n: int) -> list[int]:
        return lineage.nth_last_submission_of(self._conn, uid, n, self._visible())

    def submission_jobs(self, submission: int) -> list[int]:
        return lineage.submission_jobs(self._conn, submission)

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
        return gpu_hours.gpu_spans(self._conn, ended_since, self._visible())

    def decayed_gpu_hours(
        self, ended_since: float, at: float, half_life: float
    ) -> dict[int, float]:
        """Each user's decayed GPU-hours (core.sharing.decayed_span) of the GPU jobs that
        ended since then, as of `at`, summed by SQLite: 100,000 spans in one query."""
        return gpu_hours.decayed_gpu_hours(self._conn, ended_since, at, half_life)

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
        return history.events_of(self._conn, job_id)
