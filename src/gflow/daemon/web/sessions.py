"""Browser sessions: one-time login tokens issued over the Unix socket, and the sessions
they open.

A token is issued to the `Caller` the kernel named on the Unix socket (SO_PEERCRED); the
browser that redeems it becomes that caller until the session has been idle for
`idle_timeout`. Secrets are kept only as SHA-256 digests: a dict is looked up by digest
(the attacker cannot steer which digest a guess hashes to) and the found entry is checked
again with `hmac.compare_digest`, so no comparison leaks a secret's prefix through time.
Everything lives in memory: a restarted daemon has forgotten every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from gflow.daemon.identity import Caller

TOKEN_TTL = 120.0  # seconds a login token may wait for its browser
MAX_TOKENS = 1000  # unredeemed tokens kept at most (the oldest go first)
MAX_SESSIONS = 10_000
# Per Unix user: past these, that user's own oldest goes, never another user's (one user
# asking for 1,000 tokens, or opening 10,000 sessions, once voided everyone else's).
MAX_TOKENS_PER_USER = 20
MAX_SESSIONS_PER_USER = 100


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Session:
    """A browser that is `caller`; `csrf` must come back in a header on every change."""

    caller: Caller
    csrf: str
    last_seen: float


@dataclass(frozen=True)
class _Token:
    digest: bytes
    caller: Caller
    expires: float


class Sessions:
    """Login tokens and sessions; `clock` is the daemon's (seconds)."""

    def __init__(self, clock: Callable[[], float], idle_timeout: float) -> None:
        self.clock = clock
        self.idle_timeout = idle_timeout
        self._tokens: dict[bytes, _Token] = {}
        self._sessions: dict[bytes, tuple[bytes, Session]] = {}

    def issue_token(self, caller: Caller) -> tuple[str, float]:
        """A new one-time token for this caller, and how many seconds it stays valid."""
        now = self.clock()
        self._tokens = {d: t for d, t in self._tokens.items() if t.expires > now}
        mine = [d for d, t in self._tokens.items() if t.caller.uid == caller.uid]
        for digest in mine[: max(0, len(mine) - MAX_TOKENS_PER_USER + 1)]:
            del self._tokens[digest]
        while len(self._tokens) >= MAX_TOKENS:
            del self._tokens[next(iter(self._tokens))]
        token = secrets.token_urlsafe(32)
        digest = _digest(token)
        self._tokens[digest] = _Token(digest, caller, now + TOKEN_TTL)
        return token, TOKEN_TTL

    def peek(self, token: str) -> Caller | None:
        """Whom a valid token would sign in, spending nothing (what the login page asks
        the person to confirm)."""
        digest = _digest(token)
        found = self._tokens.get(digest)
        if found is None or not hmac.compare_digest(found.digest, digest):
            return None
        return found.caller if found.expires > self.clock() else None

    def redeem(self, token: str) -> tuple[str, Session] | None:
        """The session a valid token opens (the token is spent, whatever happens next), or
        None for a token that is unknown, spent or expired."""
        digest = _digest(token)
        found = self._tokens.pop(digest, None)
        if found is None or not hmac.compare_digest(found.digest, digest):
            return None
        now = self.clock()
        if found.expires <= now:
            return None
        self._forget_idle(now)
        uid = found.caller.uid
        mine = [k for k, (_, s) in self._sessions.items() if s.caller.uid == uid]
        for key in mine[: max(0, len(mine) - MAX_SESSIONS_PER_USER + 1)]:
            del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        session = Session(found.caller, secrets.token_urlsafe(24), now)
        key = _digest(session_id)
        self._sessions[key] = (key, session)
        return session_id, session

    def lookup(self, session_id: str) -> Session | None:
        """The live session this cookie names (its idle clock restarted), or None."""
        key = _digest(session_id)
        found = self._sessions.get(key)
        if found is None or not hmac.compare_digest(found[0], key):
            return None
        now = self.clock()
        if now - found[1].last_seen >= self.idle_timeout:
            del self._sessions[key]
            return None
        session = replace(found[1], last_seen=now)
        self._sessions[key] = (key, session)
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(_digest(session_id), None)

    def _forget_idle(self, now: float) -> None:
        self._sessions = {
            k: v for k, v in self._sessions.items() if now - v[1].last_seen < self.idle_timeout
        }


def csrf_matches(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(
        session.csrf.encode(), sent.encode("utf-8", "surrogateescape")
    )
