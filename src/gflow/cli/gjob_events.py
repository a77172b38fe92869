"""`gjob events [ID] [-f]`: the event history, one line per event (time, job, kind, state,
detail): all of a job's, or the last 100; with -f, then new events as they come."""

from __future__ import annotations

import sys
import time

from gflow.cli.common import EXIT_OK
from gflow.client import Client, EventStream
from gflow.core.errors import Unavailable

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

HISTORY = 100
RECONNECT_FOR = 60.0  # seconds -f keeps trying while the daemon is away (a restart)


def line(event: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.get("at", 0)))
    job = str(event.get("job_id") or "-")
    if event.get("event") == "resync":
        return f"{time.strftime('%Y-%m-%d %H:%M:%S')}  -  resync  (events were missed; "\
               f"next is after {event.get('head')})"  # fmt: skip
    detail = event.get("detail") or ""
    return f"{stamp}  {job:>6}  {event.get('kind', ''):<14} {event.get('state') or '-':<9} {detail}"


def show_events(client: Client, job_id: int | None, follow: bool) -> int:
    query = {"job": str(job_id)} if job_id is not None else {}
    limit = "10000" if job_id is not None else str(HISTORY)
    past = client.request("GET", "/events/history", query={**query, "limit": limit})
    if job_id is not None and not past["events"]:
        client.show_job(job_id)  # no such job: say so (NotFound), rather than print nothing
    for event in past["events"]:
        print(line(event))
    sys.stdout.flush()
    if not follow:
        return EXIT_OK
    stream = EventStream(client, query, last_id=int(past["head"]))
    away_since: float | None = None
    try:
        while True:
            try:
                if stream.sock is None:
                    stream.reopen()  # resumes after the last event seen
                event = stream.next(30.0)
                away_since = None
            except Unavailable:
                stream.close()
                now = time.monotonic()
                away_since = away_since or now
                if now - away_since > RECONNECT_FOR:
                    raise
                time.sleep(0.5)
                continue
            if event is not None:
                print(line(event))
                sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        stream.close()
