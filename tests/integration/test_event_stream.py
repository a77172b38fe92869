"""The event stream (GET /api/v1/events): one event per committed change, in id order,
resumable with Last-Event-ID across reconnects and daemon restarts; `gjob events`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gflow.client import Client, EventStream
from gflow.core.errors import InvalidInput
from gflow.paths import Paths
from tests.helpers import Gflow


def client_of(gflow: Gflow) -> Client:
    return Client(Paths.from_env(gflow.env), timeout=10.0)


def take(
    stream: EventStream, until: str, job_id: int, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Events from the stream until one of `job_id` of kind `until` (a deadline, no sleeps)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = stream.next(deadline - time.monotonic())
        if event is None:
            continue
        got.append(event)
        if event.get("job_id") == job_id and event["event"] == until:
            return got
    raise AssertionError(f"no {until!r} event of job {job_id} within {timeout} s: {got}")


@pytest.fixture
def stream(gflow: Gflow) -> Iterator[EventStream]:
    opened = EventStream(client_of(gflow), {})
    try:
        yield opened
    finally:
        opened.close()


def test_stream_delivers_every_event_of_a_jobs_life_in_order(
    gflow: Gflow, stream: EventStream
) -> None:
    """Submitted (held), updated, released, started, ended: each once, ids increasing."""
    job_id = gflow.submit("--hold", "true")
    gflow.ok("gjob", "update", str(job_id), "--time", "5")
    gflow.ok("gjob", "release", str(job_id))
    events = [e for e in take(stream, "ended", job_id) if e.get("job_id") == job_id]
    assert [e["event"] for e in events] == [
        "submitted",
        "updated",
        "released",
        "started",
        "launched",
        "ended",
    ]
    assert events[0]["state"] == "Hold"
    assert events[-1]["state"] == "Finished"
    assert [e["name"] for e in events][-1] == "job_finished"
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_stream_filters_by_job_and_kind(gflow: Gflow) -> None:
    """?job= and ?kind= leave out every other event; a mistyped kind is refused."""
    client = client_of(gflow)
    other = gflow.submit("true")
    job_id = gflow.submit("true")
    gflow.wait_state(other)
    with pytest.raises(InvalidInput, match="unknown event kind 'endd'"):
        EventStream(client, {"kind": "endd"})
    history = client.request("GET", "/events/history", query={"job": str(job_id)})
    watched = EventStream(client, {"job": str(job_id), "kind": "ended"}, last_id=0)
    try:
        events = take(watched, "ended", job_id)
    finally:
        watched.close()
    assert [(e["job_id"], e["event"]) for e in events] == [(job_id, "ended")]
    assert history["head"] >= events[0]["id"] or history["events"]


def test_stream_resumes_after_a_reconnect_and_a_daemon_restart(gflow: Gflow) -> None:
    """Last-Event-ID picks up exactly after the last event seen, also after kill -9."""
    client = client_of(gflow)
    first = gflow.submit("true")
    stream = EventStream(client, {}, last_id=0)
    try:
        seen = take(stream, "ended", first)
    finally:
        stream.close()
    last = seen[-1]["id"]
    gflow.kill_daemon()
    gflow.start()
    second = gflow.submit("true")
    resumed = EventStream(client, {}, last_id=last)
    try:
        after = take(resumed, "ended", second)
    finally:
        resumed.close()
    assert all(e["id"] > last for e in after)
    kinds = [(e.get("job_id"), e["event"]) for e in after]
    assert kinds[0] == (0, "daemon_started")
    assert (second, "submitted") in kinds
    assert not any(job == first for job, _ in kinds)  # nothing seen twice


def test_a_client_ahead_of_the_history_gets_resync(gflow: Gflow) -> None:
    """An id the daemon never gave (another daemon's, say) is answered 'resync', not silence."""
    stream = EventStream(client_of(gflow), {}, last_id=10**9)
    try:
        event = stream.next(10.0)
    finally:
        stream.close()
    assert event is not None and event["event"] == "resync"


def test_gjob_events_prints_a_jobs_history(gflow: Gflow) -> None:
    """One line per event: time, job, kind, state, detail."""
    job_id = gflow.submit("true")
    gflow.wait_state(job_id)
    lines = gflow.ok("gjob", "events", str(job_id)).splitlines()
    assert [line.split()[3] for line in lines] == ["submitted", "started", "launched", "ended"]
    assert lines[-1].split()[4] == "Finished"
    assert all(line.split()[2] == str(job_id) for line in lines)
    everything = gflow.ok("gjob", "events").splitlines()
    assert any("daemon_started" in line for line in everything)
    missing = gflow.run("gjob", "events", "4242")
    assert missing.returncode == 1 and "job 4242 does not exist" in missing.stderr


def test_gqueue_watch_redraws_on_a_change_not_on_a_timer(gflow: Gflow) -> None:
    """With an hour between timed redraws, a new job still shows at once: -w reads the stream."""
    import os
    import subprocess
    import threading

    from tests.helpers import BIN, wait_for

    proc = subprocess.Popen(
        [str(BIN / "gqueue"), "-w", "--interval", "3600", "-f", "JOBID,NAME"],
        env=gflow.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    out = bytearray()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [out.extend(c) for c in iter(
        lambda: os.read(proc.stdout.fileno(), 4096), b"")], daemon=True)  # type: ignore[union-attr]  # fmt: skip
    reader.start()
    try:
        wait_for(lambda: b"Last updated" in out, 15, "the first screen")
        job_id = gflow.submit("-J", "seen-at-once", "--hold", "true")
        wait_for(lambda: b"seen-at-once" in out, 10, f"job {job_id} on the watch screen")
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)


def test_an_open_stream_outlives_the_connection_timeouts(gflow: Gflow, stream: EventStream) -> None:
    """A stream has sent its whole request: neither the head nor the body timeout cuts it,
    and it still carries the next event after them."""
    from gflow.daemon.connections import BODY_GRACE, HEAD_TIMEOUT

    deadline = time.monotonic() + max(HEAD_TIMEOUT, BODY_GRACE) + 2
    while (left := deadline - time.monotonic()) > 0:
        assert stream.next(left) is None  # nothing happens; the connection must stay open
    job_id = gflow.submit("--hold", "true")
    assert take(stream, "submitted", job_id)[-1]["job_id"] == job_id


def test_a_streaming_connection_counts_as_busy_for_the_cap() -> None:
    """The cap drops only idle connections: one whose request aiohttp is answering (a
    stream) is busy, even though its head timer is off."""
    import asyncio

    from gflow.daemon.connections import Guard, Guards

    class Inner(asyncio.Protocol):
        _current_request: object | None = None

        def data_received(self, data: bytes) -> None:
            self._current_request = object()  # aiohttp has the request in hand

    class Transport:
        def abort(self) -> None: ...
        def is_closing(self) -> bool:
            return False

    async def check() -> bool:
        guard = Guard(Inner(), Guards())
        guard.transport = Transport()  # type: ignore[assignment]
        guard.data_received(b"GET /api/v1/events HTTP/1.0\r\nHost: g\r\n\r\n")
        return guard.idle

    assert asyncio.run(check()) is False


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "endd"}, "unknown event kind 'endd'"),
        ({"user": "no-such-user-xyz"}, "unknown user 'no-such-user-xyz'"),
        ({"job": "abc"}, "abc"),
        ({"after": "12x"}, "is not an event id"),
        ({"after": "9" * 40}, "is not an event id"),
    ],
)
def test_bad_stream_queries_are_one_line_400s(
    gflow: Gflow, query: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        EventStream(client_of(gflow), query)
    if "after" not in query:  # the history takes the filters, not a cursor
        with pytest.raises(InvalidInput, match=message):
            client_of(gflow).request("GET", "/events/history", query=query)


def test_history_limit_is_bounded(gflow: Gflow) -> None:
    client = client_of(gflow)
    for bad in ("0", "10001", "x"):
        with pytest.raises(InvalidInput):
            client.request("GET", "/events/history", query={"limit": bad})
    assert client.request("GET", "/events/history", query={"limit": "1"})["events"]


def test_gpu_changes_are_events(make_gflow: type[Gflow]) -> None:
    """A foreign process taking GPU 0 and leaving it, and gctl set-gpus: one event each."""
    import json

    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    stream = EventStream(client_of(gflow), {"kind": "gpu_blocked,gpu_available,gpus"})
    usage = gflow.home / "fake_gpus.json"
    try:
        usage.write_text(json.dumps({"0": {"used": "1G", "pids": [4194302]}}))
        blocked = take(stream, "gpu_blocked", 0)
        usage.write_text("{}")
        freed = take(stream, "gpu_available", 0)
        gflow.ok("gctl", "set-gpus", "1")
        changed = take(stream, "gpus", 0)
    finally:
        stream.close()
    assert [e["detail"] for e in blocked] == ["a foreign process holds GPU 0"]
    assert [(e["detail"], e["name"]) for e in freed] == [
        ("no foreign process on GPU 0", "gpu_available")
    ]
    assert [e["detail"] for e in changed] == ["usable GPUs: 1"]


def test_gjob_events_follow_carries_on_across_a_daemon_restart(gflow: Gflow) -> None:
    """-f prints the history, then each new event; a restart in between loses none."""
    import os
    import subprocess
    import threading

    from tests.helpers import BIN, wait_for

    job_id = gflow.submit("--hold", "true")
    proc = subprocess.Popen(
        [str(BIN / "gjob"), "events", "-f", str(job_id)],
        env=gflow.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    out = bytearray()
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    reader = threading.Thread(
        target=lambda: [out.extend(c) for c in iter(lambda: os.read(fd, 4096), b"")], daemon=True
    )
    reader.start()
    try:
        wait_for(lambda: b" submitted " in out, 15, "the history")
        gflow.ok("gflowd", "stop")
        gflow.start()
        gflow.ok("gjob", "release", str(job_id))
        wait_for(lambda: b" ended " in out, 30, "the end, after the restart")
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)
    kinds = [line.split()[3] for line in out.decode().splitlines()]
    assert kinds == ["submitted", "released", "started", "launched", "ended"]
