"""Which deliveries an event owes: called by the Store inside the event's transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from gflow.core.events import StreamEvent
from gflow.core.notify import EmailTarget, Target
from gflow.store import outbox

TEST_KIND = "notify_test"  # `gctl notify test`: goes to every target


class Router:
    def __init__(self, targets: tuple[Target, ...], clock: Callable[[], float]) -> None:
        self.targets = targets
        self.clock = clock
        self.job_email = next((t for t in targets if isinstance(t, EmailTarget)), None)

    def __call__(self, conn: sqlite3.Connection, events: list[StreamEvent]) -> None:
        rows: list[tuple[int, str, str]] = []
        for event in events:
            for target in self.targets:
                if event.kind == TEST_KIND or (
                    event.matches(target.events)
                    and (target.users is None or event.user in target.users)
                ):
                    rows.append((event.id, target.key, ""))
        if self.job_email is not None:
            rows += self._per_job(conn, events, self.job_email)
        if rows:
            outbox.add(conn, rows, self.clock())

    def _per_job(
        self, conn: sqlite3.Connection, events: list[StreamEvent], transport: EmailTarget
    ) -> list[tuple[int, str, str]]:
        """--notify-email ADDR --notify-on …: through the first configured e-mail target."""
        ids = sorted({e.job_id for e in events if e.job_id})
        if not ids:
            return []
        wanted = {
            int(job_id): (address, frozenset(on.split(",")))
            for job_id, address, on in conn.execute(
                "SELECT id, notify_email, notify_on FROM jobs WHERE notify_email != ''"
                " AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
        }
        return [
            (e.id, transport.key, wanted[e.job_id][0])
            for e in events
            if e.job_id in wanted and e.matches(wanted[e.job_id][1])
        ]
