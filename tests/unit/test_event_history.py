"""The event history behind the stream: ids only grow, staged submissions' events come at
publication, purge keeps events, trim bounds them, hooks see only committed events."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from gflow.core.events import StreamEvent
from gflow.core.model import Event
from gflow.core.states import JobState
from gflow.store.db import Store
from gflow.store.events import EventFilter
from gflow.store.submissions import Payloads
from tests.unit.test_store import new_job


def all_events(store: Store) -> list[StreamEvent]:
    return store.events_after(0, EventFilter())[0]


def test_a_staged_submissions_events_come_after_everything_before_its_publication(
    store: Store, tmp_path: Path
) -> None:
    """Its jobs' ids are reserved first, but their events are written as it is published:
    a client that saw an event in between misses none of them."""
    first = store.stage(2)
    store.insert_staged(first, 0, [new_job(), new_job()], 1.0, tmp_path, Payloads())
    assert all_events(store) == []  # nothing of a staged submission shows
    (other,) = store.insert_jobs([new_job()], 2.0, tmp_path)
    seen = store.event_head
    store.publish(first)
    after = store.events_after(seen, EventFilter())[0]
    assert [(e.job_id, e.kind) for e in after] == [(first, "submitted"), (first + 1, "submitted")]
    assert other.id == first + 2


def test_purge_keeps_events_and_ids_never_go_back(store: Store, tmp_path: Path) -> None:
    (job,) = store.insert_jobs([new_job()], 1.0, tmp_path)
    store.save([(replace(job, state=JobState.CANCELLED, finished_at=2.0),
                 Event(job.id, 2.0, "cancelled", JobState.CANCELLED))])  # fmt: skip
    head = store.event_head
    assert [j.id for j in store.purge(10.0)] == [job.id]
    assert [e.id for e in all_events(store)][-1] == head  # the history stays
    assert all_events(store)[-1].user is None  # its job is gone
    store.insert_jobs([new_job()], 3.0, tmp_path)
    assert all_events(store)[-1].id > head


def test_trim_keeps_the_newest_and_the_recent(store: Store, tmp_path: Path) -> None:
    store.insert_jobs([new_job() for _ in range(5)], 1.0, tmp_path)
    store.insert_jobs([new_job()], 1000.0, tmp_path)
    with store.transaction() as conn:
        from gflow.store.events import trim

        assert trim(conn, now=1001.0, keep_seconds=10.0, keep_count=2) == 4
    kept = all_events(store)
    assert len(kept) == 2 and kept[-1].id == store.event_head


def test_hooks_see_committed_events_only(store: Store, tmp_path: Path) -> None:
    """on_events gets the new head after the commit; the outbox sees the transaction's new
    events inside it, and a rolled-back transaction leaves no outbox rows."""
    heads: list[int] = []
    seen: list[list[int]] = []

    def outbox(conn: sqlite3.Connection, events: list[StreamEvent]) -> None:
        seen.append([e.job_id for e in events])
        conn.execute(
            "INSERT INTO outbox (event_id, target) VALUES (?, 'webhook:0')", (events[0].id,)
        )

    store.on_events = heads.append
    store.outbox = outbox
    jobs = store.insert_jobs([new_job(), new_job()], 1.0, tmp_path)
    assert seen == [[jobs[0].id, jobs[1].id]] and heads == [store.event_head]
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute(
            "INSERT INTO events (job_id, at, kind, state, detail)"
            " VALUES (1, 2.0, 'x', 'Queued', '')"
        )
        raise RuntimeError("boom")
    store.set_reasons([(jobs[0].id, "Resources")])  # a write without events
    assert len(heads) == 1
    with store.transaction() as conn:
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1


def test_filters_and_the_cursor(store: Store, tmp_path: Path) -> None:
    """A filter that passes nothing still moves the cursor to what it looked at."""
    jobs = store.insert_jobs([new_job(), new_job()], 1.0, tmp_path)
    store.record_system_event(2.0, "daemon_started", "pid 1")
    events, scanned = store.events_after(0, EventFilter(job_ids=(jobs[1].id,)))
    assert [e.job_id for e in events] == [jobs[1].id] and scanned == store.event_head
    events, _ = store.events_after(0, EventFilter(kinds=frozenset({"daemon_started"})))
    assert [(e.job_id, e.state) for e in events] == [(0, "")]
    events, _ = store.events_after(0, EventFilter(uid=4242))  # someone else: daemon events only
    assert [e.kind for e in events] == ["daemon_started"]
    assert [e.job_id for e in store.last_events(EventFilter(), 2)] == [jobs[1].id, 0]
