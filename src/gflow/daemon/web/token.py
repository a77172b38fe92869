"""POST /api/v1/web/token, on the Unix socket only: a one-time dashboard login for the
caller the kernel named (what `gflowd web` prints as a link)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from aiohttp import web

from gflow.core.errors import Forbidden, InvalidState
from gflow.daemon.requests import caller_of, object_body
from gflow.daemon.web.sessions import Sessions

SESSIONS = web.AppKey("sessions", Sessions)


@dataclass(frozen=True)
class WebSettings:
    listen: str  # HOST:PORT as configured; "" = no dashboard
    public: bool = True  # the queue and GPUs readable without a session


WEB = web.AppKey("web", WebSettings)


def login_url(listen: str, token: str) -> str:
    """The link to open: a wildcard listener is reached on this machine at 127.0.0.1."""
    from gflow.config import split_listen

    host, port = split_listen(listen)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    # In the fragment: never sent to the daemon by the browser, nor to anyone as a Referer.
    return f"http://{shown}:{port}/#login={token}"


async def web_token(request: web.Request) -> web.Response:
    sock: socket.socket | None = (
        request.transport.get_extra_info("socket") if request.transport else None
    )
    if sock is None or sock.family != socket.AF_UNIX:  # the TCP site has no such route
        raise Forbidden("a dashboard login is issued only over the Unix socket")
    caller = caller_of(request)
    await object_body(request, frozenset(), required=False, empty_ok=True)
    settings = request.app[WEB]
    if not settings.listen:
        raise InvalidState(
            "the dashboard is off",
            hint='set [web] listen = "127.0.0.1:9090" in gflow.toml, then gflowd reload',
        )
    token, ttl = request.app[SESSIONS].issue_token(caller)
    return web.json_response(
        {"url": login_url(settings.listen, token), "expires_in": ttl, "user": caller.user}
    )
