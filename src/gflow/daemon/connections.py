"""Bounded connections: how many, how slow, how big, before aiohttp sees a byte.

Every connection goes through a `Guard` that wraps aiohttp's own protocol. It keeps what a
runaway job, or a careless script, could otherwise do to the daemon within limits:

- at most MAX_CONNECTIONS open: past that, the oldest idle one (no whole request head yet,
  or between keep-alive requests) is dropped for the new one, so idle connections cannot
  lock the owner out; when every connection is busy the new one is answered 503 at once;
- a request head must arrive within HEAD_TIMEOUT seconds, and a body no slower than
  MIN_BODY_RATE bytes a second (after BODY_GRACE): else 408, and the connection closes;
- a body announced bigger than MAX_BODY is refused (413) before any of it is read, and a
  body without a Content-Length (chunked) is refused (411): nothing else sends one.

Idle keep-alive connections are closed by aiohttp after KEEPALIVE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 512
HEAD_TIMEOUT = 10.0  # seconds from the connection (or the request's first byte) to its head
BODY_GRACE = 10.0  # seconds any body may take, plus its size at MIN_BODY_RATE
MIN_BODY_RATE = 1024  # bytes a second
KEEPALIVE_TIMEOUT = 60.0  # idle seconds between requests
MAX_BODY = 256 * 1024 * 1024
MAX_HEAD = 64 * 1024  # aiohttp refuses far smaller header lines itself

_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,20})[ \t]*\r\n", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.I)


def http_error(status: int, reason: str, message: str, hint: str = "") -> bytes:
    """A whole HTTP error response in the API's JSON shape, for answers given before (or
    instead of) aiohttp."""
    code = {503: "unavailable", 413: "invalid_input", 411: "invalid_input"}.get(status, "http")
    body = json.dumps({"error": {"code": code, "message": message, "hint": hint}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class Guards:
    """The open connections, oldest first."""

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self.limit = limit
        self.open: dict[Guard, None] = {}

    def admit(self, guard: Guard) -> bool:
        """Make room for `guard` if it takes dropping a connection still waiting for its
        head; False when every open connection is busy with a request."""
        if len(self.open) >= self.limit:
            idle = next((g for g in self.open if g.idle), None)
            if idle is None:
                return False
            idle.drop("dropped for a newer connection (too many open)")
        self.open[guard] = None
        return True


class Guard(asyncio.Protocol):
    """One connection, checked on its way to aiohttp's protocol (`inner`)."""

    def __init__(self, inner: asyncio.Protocol, guards: Guards) -> None:
        self.inner = inner
        self.guards = guards
        self.inner_connected = False
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()  # the current request's head, while it arrives
        self.body_left = 0  # bytes of the current body still to come
        self.waiting_for_head = True
        self.requests = 0  # whole requests handed to aiohttp
        self.timer: asyncio.TimerHandle | None = None
        self.passing = True  # False once refused: nothing more reaches aiohttp

    # ---- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.guards.admit(self):
            self.refuse(
                http_error(
                    503,
                    "Service Unavailable",
                    f"gflowd is busy: {self.guards.limit} connections are open",
                    "try again in a moment",
                )
            )
            return
        self.inner.connection_made(transport)
        self.inner_connected = True
        self._expect_head()

    def data_received(self, data: bytes) -> None:
        if not self.passing:
            return
        view = memoryview(data)
        while view and self.passing:
            view = self._take(view)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.passing else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.guards.open.pop(self, None)
        if self.inner_connected:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # ---- the checks ------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No request of its own in hand: it never sent a whole head, or it sits between
        keep-alive requests (aiohttp has no current request). Such a connection can go."""
        if not self.waiting_for_head:
            return False
        if self.requests == 0:
            return True
        return not self.head and getattr(self.inner, "_current_request", 0) is None

    def _take(self, view: memoryview) -> memoryview:
        """Pass on what belongs to the current request; return what is left after it."""
        if not self.waiting_for_head:
            part = view[: self.body_left]
            self.body_left -= len(part)
            self.inner.data_received(bytes(part))
            if self.body_left == 0:
                self._request_done()
            return view[len(part) :]
        if not self.head:
            self._expect_head()  # a head's time counts from its first byte
        before = len(self.head)
        self.head += view
        end = self.head.find(_HEAD_END, max(0, before - 3))
        if end < 0:
            if len(self.head) > MAX_HEAD:
                self.drop("a request head over 64 KiB")
            else:
                self.inner.data_received(bytes(view))
            return view[:0]
        used = end + len(_HEAD_END) - before  # the bytes of `view` that end the head
        head = bytes(self.head[: end + len(_HEAD_END)])
        self.head.clear()
        if not self._body_allowed(head):
            return view[:0]
        self.inner.data_received(bytes(view[:used]))
        self.waiting_for_head = False
        self._expect_body()
        return view[used:]

    def _body_allowed(self, head: bytes) -> bool:
        if _CHUNKED.search(head):
            self.refuse(http_error(411, "Length Required", "a request body needs a Content-Length"))
            return False
        found = _CONTENT_LENGTH.search(head)
        length = int(found.group(1)) if found else 0
        if length > MAX_BODY:
            self.refuse(
                http_error(
                    413,
                    "Payload Too Large",
                    f"the request body is {length:,} bytes; at most {MAX_BODY:,}",
                    "submit fewer jobs at once",
                )
            )
            return False
        self.body_left = length
        return True

    def _expect_head(self) -> None:
        self._set_timer(HEAD_TIMEOUT, "no whole request head within {:.0f} s")

    def _expect_body(self) -> None:
        if self.body_left == 0:
            self._request_done()
            return
        allowed = BODY_GRACE + self.body_left / MIN_BODY_RATE
        self._set_timer(allowed, "the request body came slower than 1 KB/s ({:.0f} s)")

    def _request_done(self) -> None:
        """The request is in aiohttp's hands; from here its keep-alive timeout applies."""
        self._cancel_timer()
        self.requests += 1
        self.waiting_for_head = True

    def _set_timer(self, delay: float, why: str) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(delay, self._time_out, why.format(delay))

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _time_out(self, why: str) -> None:
        self.timer = None
        if self.waiting_for_head and not self.head:
            self.drop(why)  # nothing sent at all: no answer is owed
            return
        self.refuse(http_error(408, "Request Timeout", why))

    def drop(self, why: str) -> None:
        log.debug("connection closed: %s", why)
        self.passing = False
        if self.transport is not None:
            self.transport.abort()

    def refuse(self, response: bytes) -> None:
        """Answer here, instead of aiohttp, and close."""
        self.passing = False
        self._cancel_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def guarded(factory: Callable[[], asyncio.Protocol], guards: Guards) -> Callable[[], Guard]:
    return lambda: Guard(factory(), guards)


class AcceptErrorLog:
    """A loop exception handler that logs each kind of error once a minute, with a count of
    the ones it held back: out of file descriptors, asyncio retries accept() and reports
    every try, which once wrote 150 MB of the same traceback."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self.clock = clock
        self.last: dict[str, tuple[float, int]] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "error"))
        exc = context.get("exception")
        kind = f"{message} {type(exc).__name__ if exc else ''}".strip()
        now = self.clock()
        last, held = self.last.get(kind, (float("-inf"), 0))
        if now - last < self.every:
            self.last[kind] = (last, held + 1)
            return
        self.last[kind] = (now, 0)
        more = f" ({held} more like it held back)" if held else ""
        log.error("%s: %s%s", message, exc or "", more)
