"""The pure parts of watching: event names, notification targets and rules, triage."""

from __future__ import annotations

import pytest

from gflow.core.errors import InvalidInput
from gflow.core.events import StreamEvent, parse_event_names
from gflow.core.notify import backoff, check_targets, parse_notify_on, retryable
from gflow.core.triage import diagnose


def event(kind: str, state: str = "Queued", detail: str = "") -> StreamEvent:
    return StreamEvent(1, 7, 0.0, kind, state, detail, "alice", 1000)


@pytest.mark.parametrize(
    ("kind", "state", "detail", "name"),
    [
        ("submitted", "Queued", "", "job_submitted"),
        ("submitted", "Queued", "attempt 2 of job 3", "job_retried"),
        ("started", "Running", "0", "job_started"),
        ("ended", "Finished", "", "job_finished"),
        ("ended", "Failed", "Lost", "job_failed"),
        ("ended", "Timeout", "TimeLimit", "job_timeout"),
        ("ended", "Cancelled", "CancelledByUser", "job_cancelled"),
        ("cancelled", "Cancelled", "", "job_cancelled"),
        ("held", "Hold", "", "job_held"),
        ("released", "Queued", "", "job_released"),
        ("updated", "Queued", "", "job_updated"),
        ("daemon_started", "", "pid 1", "daemon_started"),
    ],
)
def test_each_event_kind_has_its_notification_name(
    kind: str, state: str, detail: str, name: str
) -> None:
    assert event(kind, state, detail).name == name


def test_ended_matches_the_four_ends_only() -> None:
    ends = frozenset({"ended"})
    assert event("ended", "Timeout").matches(ends)
    assert event("cancelled", "Cancelled").matches(ends)
    assert not event("started", "Running").matches(ends)
    assert event("held", "Hold").matches(frozenset({"*"}))
    with pytest.raises(InvalidInput, match="unknown event name 'job_exploded'"):
        parse_event_names("job_exploded")


def test_backoff_doubles_up_to_an_hour_and_only_5xx_429_and_silence_retry() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(40) == 3600.0
    assert [retryable(s) for s in (None, 429, 500, 503, 400, 404, 410)] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip


def test_targets_are_checked_with_their_key_named() -> None:
    (hook, mail) = check_targets(
        [{"url": "https://hooks.example.org/x", "events": ["ended"], "max_retries": 2}],
        [{"smtp_url": "smtp+starttls://u:p%40ss@mail.example.org", "from": "g@example.org",
          "to": ["a@example.org"]}],
    )  # fmt: skip
    assert hook.key == "webhook:0" and hook.max_retries == 2
    assert (mail.key, mail.port, mail.username, mail.password) == ("email:0", 587, "u", "p@ss")
    with pytest.raises(InvalidInput, match=r"webhooks\[0\].events: unknown event 'done'"):
        check_targets([{"url": "http://x/", "events": ["done"]}], [])
    with pytest.raises(InvalidInput, match=r"unknown key notifications.webhooks\[0\].retries"):
        check_targets([{"url": "http://x/", "retries": 3}], [])
    with pytest.raises(InvalidInput, match="smtp_url must be smtp://"):
        check_targets([], [{"smtp_url": "imap://x", "from": "a@b", "to": []}])


def test_notify_on_words() -> None:
    assert parse_notify_on("failed") == {"job_failed", "job_timeout"}
    assert parse_notify_on("started,ended") == {"job_started", "ended"}
    with pytest.raises(InvalidInput, match="unknown --notify-on value 'often'"):
        parse_notify_on("often")


@pytest.mark.parametrize(
    ("job", "log", "cause"),
    [
        ({"state": "Failed", "exit_code": 1}, "torch.OutOfMemoryError: CUDA out of memory.",
         "CUDA out of memory"),
        ({"state": "Failed", "exit_code": 1}, "ModuleNotFoundError: No module named 'torch'",
         "missing module 'torch'"),
        ({"state": "Timeout", "reason": "TimeLimit", "time_limit": 60}, "", "time limit"),
        ({"state": "Failed", "signal": 9, "reason": "MemoryLimit"}, "", "out of memory (host"),
        ({"state": "Failed", "exit_code": 127}, "bash: trian.py: command not found",
         "was not found"),
    ],
)  # fmt: skip
def test_triage_names_the_likely_cause(job: dict[str, object], log: str, cause: str) -> None:
    causes = diagnose(job, log)
    assert causes and cause in causes[0]


def test_triage_of_a_clean_failure_says_nothing_it_cannot_back() -> None:
    assert diagnose({"state": "Failed", "exit_code": 3}, "assertion failed") == []


def test_a_user_watches_their_own_jobs_unless_admin() -> None:
    """Not an admin: user=all or another user is refused; an admin may ask for anyone."""
    import os
    import pwd

    from gflow.core.errors import Forbidden
    from gflow.daemon.events import event_filter

    me = os.getuid()
    other = 4242 if me != 4242 else 4243
    assert event_filter({}, other, admin=False).uid == other
    with pytest.raises(Forbidden, match="only an admin"):
        event_filter({"user": "all"}, other, admin=False)
    with pytest.raises(Forbidden):
        event_filter({"user": pwd.getpwuid(me).pw_name}, other, admin=False)
    assert event_filter({"user": "all"}, me, admin=True).uid is None
    where = event_filter({"job": "3-5", "kind": "ended,job_held"}, me, admin=True)
    assert where.job_ids == (3, 4, 5) and where.kinds == {"ended", "job_held"}


def test_past_the_stream_cap_a_new_stream_is_refused() -> None:
    """128 open streams: the 129th is a 503, so the rest of the connections stay for
    ordinary requests."""
    import asyncio
    from typing import Any, cast

    from gflow.core.errors import Unavailable
    from gflow.daemon.events import MAX_STREAMS, EventBus, stream
    from gflow.store.events import EventFilter

    class Request:
        def __init__(self) -> None:
            self.headers: dict[str, str] = {}
            self.query: dict[str, str] = {}

    async def open_one() -> None:
        bus = EventBus()
        bus.streams = MAX_STREAMS
        await stream(cast(Any, Request()), cast(Any, None), bus, EventFilter())

    with pytest.raises(Unavailable, match="128 event streams are open"):
        asyncio.run(open_one())
