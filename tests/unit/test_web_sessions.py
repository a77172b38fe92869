"""Dashboard sessions (daemon/web/sessions.py): one-time tokens, idle expiry, CSRF."""

from __future__ import annotations

from gflow.daemon.identity import Caller
from gflow.daemon.web.sessions import TOKEN_TTL, Sessions, csrf_matches

ALICE = Caller(uid=1001, user="alice")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_opens_one_session_as_its_caller_and_is_spent() -> None:
    sessions = Sessions(Clock(), idle_timeout=3600)
    token, ttl = sessions.issue_token(ALICE)
    assert ttl == TOKEN_TTL
    opened = sessions.redeem(token)
    assert opened is not None and opened[1].caller == ALICE
    assert sessions.redeem(token) is None  # used once
    assert sessions.lookup(opened[0]) is not None


def test_an_expired_or_unknown_token_opens_nothing() -> None:
    clock = Clock()
    sessions = Sessions(clock, idle_timeout=3600)
    token, _ = sessions.issue_token(ALICE)
    clock.now += TOKEN_TTL
    assert sessions.redeem(token) is None
    assert sessions.redeem("") is None and sessions.redeem(token[:-1]) is None


def test_a_session_ends_after_its_idle_time_and_use_keeps_it_alive() -> None:
    clock = Clock()
    sessions = Sessions(clock, idle_timeout=100)
    opened = sessions.redeem(sessions.issue_token(ALICE)[0])
    assert opened is not None
    session_id = opened[0]
    for _ in range(5):
        clock.now += 99
        assert sessions.lookup(session_id) is not None
    clock.now += 100
    assert sessions.lookup(session_id) is None
    assert sessions.lookup(session_id) is None  # forgotten, not revived


def test_a_signed_out_session_is_gone_and_csrf_must_match_exactly() -> None:
    sessions = Sessions(Clock(), idle_timeout=100)
    opened = sessions.redeem(sessions.issue_token(ALICE)[0])
    assert opened is not None
    session_id, session = opened
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, session.csrf + "x")
    assert not csrf_matches(session, "\udcff")
    sessions.end(session_id)
    assert sessions.lookup(session_id) is None
