"""The delivery worker keeps each job's order at each target: a job's later event never
reaches a receiver before an earlier one that happened to be slower to send, while other
jobs' deliveries do not wait for it."""

from __future__ import annotations

import asyncio
import sqlite3

from gflow.core.notify import Webhook
from gflow.daemon.notify import worker
from gflow.daemon.notify.send import Sent
from gflow.store import outbox
from gflow.store.db import Store
from gflow.store.events import head_id

HOOK = Webhook("webhook:0", "http://127.0.0.1:9/hook", frozenset({"*"}), None, ())
OTHER = Webhook("webhook:1", "http://127.0.0.1:9/other", frozenset({"*"}), None, ())


class Recorder(worker.Deliveries):
    """Sends nothing: records what each target got; the `slow` event's send takes longest."""

    def __init__(self, store: Store, slow: int) -> None:
        super().__init__(store, (HOOK, OTHER), lambda: 100.0)
        self.slow = slow
        self.got: list[tuple[str, int]] = []

    async def _send(self, target: object, delivery: outbox.Delivery, body: object) -> Sent:
        await asyncio.sleep(0.2 if delivery.event_id == self.slow else 0)
        self.got.append((delivery.target, delivery.event_id))
        return Sent(True, False, "")


def add_event(conn: sqlite3.Connection, job_id: int, kind: str) -> int:
    conn.execute(
        "INSERT INTO events (job_id, at, kind, state, detail) VALUES (?, 1.0, ?, '', '')",
        (job_id, kind),
    )
    return head_id(conn)


def test_a_jobs_deliveries_arrive_in_event_order_and_other_jobs_do_not_wait(
    store: Store,
) -> None:
    with store.transaction() as conn:
        first = [add_event(conn, 1, kind) for kind in ("submitted", "started", "finished")]
        other = add_event(conn, 2, "submitted")
        rows = [(event, key, "") for event in (*first, other) for key in (HOOK.key, OTHER.key)]
        outbox.add(conn, rows, 1.0)

    async def delivered() -> None:
        while outbox.pending(store):
            await asyncio.sleep(0.01)

    async def deliver_all() -> list[tuple[str, int]]:
        recorder = Recorder(store, slow=first[0])
        recorder.start()
        try:
            await asyncio.wait_for(delivered(), 10)
        finally:
            await recorder.close()
        return recorder.got

    got = asyncio.run(deliver_all())
    for key in (HOOK.key, OTHER.key):
        mine = [event for target, event in got if target == key]
        assert [event for event in mine if event in first] == first
        assert mine[0] == other  # job 2's did not wait behind job 1's slow first send
    assert outbox.pending(store) == 0
