"""The delivery worker keeps each target's order: a job's later event never reaches a
receiver before an earlier one that happened to be slower to send."""

from __future__ import annotations

import asyncio

from gflow.core.notify import Webhook
from gflow.daemon.notify import worker
from gflow.daemon.notify.send import Sent
from gflow.store import outbox
from gflow.store.db import Store
from gflow.store.events import head_id, insert_system_event

HOOK = Webhook("webhook:0", "http://127.0.0.1:9/hook", frozenset({"*"}), None, ())
OTHER = Webhook("webhook:1", "http://127.0.0.1:9/other", frozenset({"*"}), None, ())


class Recorder(worker.Deliveries):
    """Sends nothing: records what each target got, the first event's send the slowest."""

    def __init__(self, store: Store, slow: int) -> None:
        super().__init__(store, (HOOK, OTHER), lambda: 100.0)
        self.slow = slow
        self.got: list[tuple[str, int]] = []

    async def _send(self, target: object, delivery: outbox.Delivery, body: object) -> Sent:
        await asyncio.sleep(0.05 if delivery.event_id == self.slow else 0)
        self.got.append((delivery.target, delivery.event_id))
        return Sent(True, False, "")


def test_one_targets_deliveries_arrive_in_event_order(store: Store) -> None:
    events = []
    with store.transaction() as conn:
        for kind in ("submitted", "started", "finished"):
            insert_system_event(conn, 1.0, kind, "")
            events.append(head_id(conn))
        rows = [(event, key, "") for event in events for key in (HOOK.key, OTHER.key)]
        outbox.add(conn, rows, 1.0)

    async def delivered() -> None:
        while outbox.pending(store):
            await asyncio.sleep(0.01)

    async def deliver_all() -> list[tuple[str, int]]:
        recorder = Recorder(store, slow=events[0])
        recorder.start()
        try:
            await asyncio.wait_for(delivered(), 10)
        finally:
            await recorder.close()
        return recorder.got

    got = asyncio.run(deliver_all())
    assert [event for key, event in got if key == HOOK.key] == events
    assert [event for key, event in got if key == OTHER.key] == events
    assert outbox.pending(store) == 0
