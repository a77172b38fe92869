"""How many live streams (event streams, followed logs) each holder keeps open on the TCP
site: a signed-in Unix user, or all browsers without a session together. A stream is never
dropped as idle, so without a cap one holder could take every connection the site has
(64) and lock everyone else out, or every followed log (32) and stop others following
theirs. Past its cap a holder's next stream is refused with a one-line 503."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from gflow.core.errors import Unavailable
from gflow.daemon.requests import WEB_CALLER

ANONYMOUS_STREAMS = 16  # all browsers without a session together
USER_STREAMS = 8  # one signed-in user's: a tab holds one, two on a job's page

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StreamCounts:
    def __init__(self) -> None:
        self.open: Counter[int | str] = Counter()


STREAMS = web.AppKey("streams", StreamCounts)


def capped(handler: Handler) -> Handler:
    """`handler` (which streams until the browser goes) holding one of its caller's."""

    async def holding(request: web.Request) -> web.StreamResponse:
        caller = request.get(WEB_CALLER)
        who: int | str = caller.uid if caller is not None else "anonymous"
        cap = USER_STREAMS if caller is not None else ANONYMOUS_STREAMS
        counts = request.app[STREAMS].open
        if counts[who] >= cap:
            if caller is not None:
                raise Unavailable(f"{cap} live streams of yours are open",
                                  hint="close a dashboard tab")  # fmt: skip
            raise Unavailable(f"{cap} live streams of browsers without a session are open",
                              hint="sign in with the link `gflowd web` prints")  # fmt: skip
        counts[who] += 1
        try:
            return await handler(request)
        finally:
            counts[who] -= 1
            if not counts[who]:
                del counts[who]

    return holding
