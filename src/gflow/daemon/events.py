"""The event bus and the event stream (`GET /api/v1/events`, Server-Sent Events).

The store is the one event source: every change is written with its event in one
transaction (store/db.py), and after each commit that added events the store hands the
newest id to `EventBus.published`. Subscribers read the rows themselves, from their own
cursor, out of the durable history (store/events.py): the live stream and a resume after
`Last-Event-ID` are the same read, so a slow client never makes the daemon buffer, and a
client whose cursor fell out of the history gets a "resync" event, never a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pwd
from collections.abc import Callable, Mapping

from aiohttp import web

from gflow.core.errors import Forbidden, InvalidInput, Unavailable
from gflow.core.events import NOTIFICATION_NAMES, StreamEvent
from gflow.core.parse import parse_id_list
from gflow.store.db import Store
from gflow.store.events import EventFilter

MAX_STREAMS = 128  # open streams at most: the rest of the 512 connections stay for requests
HEARTBEAT = 15.0  # seconds between comments on a quiet stream (proxies, dead peers)
HISTORY_LIMIT = 10_000  # events one history request may ask for
KINDS = frozenset(
    {"submitted", "started", "launched", "stop", "ended", "cancelled", "held", "released"}
    | {"updated", "limit"}
    | {"daemon_started", "gpus", "gpu_available", "gpu_blocked", "notify_test"}
)


class EventBus:
    """The newest committed event id, and whoever waits for a newer one."""

    def __init__(self, head: int = 0) -> None:
        self.head = head
        self.streams = 0
        self.closed = False
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[int], None]] = []

    def subscribe(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    def published(self, head: int) -> None:
        """Called by the store after a commit that added events."""
        self.head = head
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self._listeners:
            listener(head)

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def wait_beyond(self, cursor: int, timeout: float) -> None:
        """Return once an event after `cursor` is committed, the bus closes, or `timeout`."""
        if self.head > cursor or self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


def event_filter(query: Mapping[str, str], caller_uid: int, admin: bool) -> EventFilter:
    """?user=NAME|all &job=IDS &kind=KINDS-or-NAMES; a user sees their own jobs' events
    (and the daemon's) unless admin."""
    user = query.get("user", "")
    uid: int | None = caller_uid
    if user in ("all", "*"):
        uid = None
    elif user:
        try:
            uid = pwd.getpwnam(user).pw_uid
        except (KeyError, ValueError):
            raise InvalidInput(f"unknown user {user!r}", hint="give a user name or 'all'") from None
    if uid != caller_uid and not admin:
        raise Forbidden("only an admin may watch other users' events", hint="leave out user=")
    job, kind = query.get("job", ""), query.get("kind", "")
    jobs = tuple(parse_id_list(job)) if job else None
    if jobs is not None and len(jobs) > 1000:
        raise InvalidInput("at most 1,000 job ids in job=")
    kinds = None
    if kind:
        kinds = frozenset(k.strip() for k in kind.split(",") if k.strip())
        unknown = sorted(kinds - KINDS - NOTIFICATION_NAMES)
        if unknown:
            raise InvalidInput(
                f"unknown event kind {unknown[0]!r}",
                hint="kinds: " + ", ".join(sorted(KINDS)) + "; or a notification name",
            )
    return EventFilter(uid=uid, job_ids=jobs, kinds=kinds)


PUBLIC_KEYS = ("id", "job_id", "at", "kind", "name", "state", "user")


def sse(event: StreamEvent, public: bool = False) -> bytes:
    """One event as SSE; `public`: without its detail (the dashboard's anonymous stream)."""
    shown = event.to_dict()
    if public:
        shown = {key: shown[key] for key in PUBLIC_KEYS}
    data = json.dumps(shown, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


def resync(head: int, why: str) -> bytes:
    data = json.dumps({"head": head, "reason": why})
    return f"id: {head}\nevent: resync\ndata: {data}\n\n".encode()


def last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"Last-Event-ID {raw!r} is not an event id", hint="a whole number")
    return int(raw)


async def stream(
    request: web.Request, store: Store, bus: EventBus, where: EventFilter, public: bool = False
) -> web.StreamResponse:
    """Send the events after Last-Event-ID (or, without one, from now on) as they come;
    `public`: each without its detail."""
    after = last_event_id(request)
    if bus.streams >= MAX_STREAMS:
        raise Unavailable(f"{MAX_STREAMS} event streams are open", hint="try again later")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    bus.streams += 1
    try:
        await response.prepare(request)
        cursor = bus.head if after is None else after
        if after is not None and after > bus.head:
            await response.write(resync(bus.head, "the daemon has no event that new"))
            cursor = bus.head
        clock = asyncio.get_running_loop().time
        quiet_since = clock()
        while not bus.closed:
            if cursor < store.oldest_event_id() - 1:
                await response.write(resync(bus.head, "events were forgotten since then"))
                cursor = bus.head
            events, scanned = store.events_after(cursor, where)
            if events:
                await response.write(b"".join(sse(e, public) for e in events))
                quiet_since = clock()
            moved, cursor = scanned > cursor, scanned
            if moved and cursor < bus.head:
                await asyncio.sleep(0)  # more to read: let the loop breathe between pages
                continue
            await bus.wait_beyond(cursor, max(0.0, quiet_since + HEARTBEAT - clock()))
            if clock() - quiet_since >= HEARTBEAT and not bus.closed:
                await response.write(b": keep-alive\n\n")  # also when others' events flow
                quiet_since = clock()
    except ConnectionResetError:
        pass  # the client went away
    finally:
        bus.streams -= 1
    return response


def history(store: Store, where: EventFilter, limit: int) -> dict[str, object]:
    """The last `limit` events passing the filter (a job's whole history when filtered by
    job), and the head to follow from."""
    if not 1 <= limit <= HISTORY_LIMIT:
        raise InvalidInput(f"limit {limit} is out of range", hint=f"1 to {HISTORY_LIMIT:,}")
    events = store.last_events(where, limit)
    return {"events": [e.to_dict() for e in events], "head": store.event_head}
