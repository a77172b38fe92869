"""Waiting for the daemon's next change on the event stream instead of polling (gqueue -w,
grun, gjob log -f): `wait(timeout)` returns early when an event comes."""

from __future__ import annotations

import time

from gflow.client import Client, EventStream
from gflow.core.errors import GflowError

COALESCE = 0.05  # seconds more events may take to come after the first (a burst: one redraw)
FALLBACK = 0.5  # seconds slept while the stream cannot be opened (the daemon restarting)


class Changes:
    """The events after the moment it was opened, as wake-ups."""

    def __init__(self, client: Client, query: dict[str, str] | None = None) -> None:
        self.client = client
        self.query = query or {}
        self.stream: EventStream | None = None
        self.last_id: int | None = None
        self._open()

    def _open(self) -> None:
        try:
            self.stream = EventStream(self.client, self.query, self.last_id)
        except GflowError:
            self.stream = None

    def wait(self, timeout: float) -> bool:
        """True when a change came within `timeout` seconds (and the burst it began, within
        COALESCE, is drained), False when the time passed with none."""
        if self.stream is None:
            self._open()
            if self.stream is None:
                time.sleep(min(timeout, FALLBACK))
                return False
        try:
            event = self.stream.next(timeout)
            if event is not None:
                while self.stream.next(COALESCE) is not None:
                    pass
        except GflowError:
            self.close()
            return True  # the daemon went away: what the caller shows may have changed
        finally:
            if self.stream is not None:
                self.last_id = self.stream.last_id
        return event is not None

    def close(self) -> None:
        if self.stream is not None:
            self.last_id = self.stream.last_id
            self.stream.close()
            self.stream = None
