"""What every route needs of a request: the app's keys, who is calling, which job, and
its body as JSON of exactly the fields it expects."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gflow.core.errors import GflowError, InvalidInput
from gflow.core.limits import MAX_JOB_ID
from gflow.core.parse import is_number, parse_int
from gflow.daemon.identity import AccessPolicy, Caller, caller_from_socket
from gflow.daemon.service import Service

SERVICE = web.AppKey("service", Service)
POLICY = web.AppKey("policy", AccessPolicy)
STOP = web.AppKey("stop", asyncio.Event)
# The Caller a dashboard session is (daemon/web/app.py sets it, only on the TCP site, only
# after checking the session's cookie and CSRF token; nothing else writes it).
WEB_CALLER = "gflow.web.caller"


def caller_of(request: web.Request) -> Caller:
    """Who is calling, as the kernel says (daemon/identity.py), never as the client says:
    the Unix socket's peer, or the Unix user whose socket issued this dashboard session."""
    sock: socket.socket | None = (
        request.transport.get_extra_info("socket") if request.transport else None
    )
    if sock is not None and sock.family == socket.AF_UNIX:
        return caller_from_socket(sock, request.app[POLICY])
    session_caller = request.get(WEB_CALLER)
    if isinstance(session_caller, Caller):
        return session_caller
    raise GflowError("requests must come over the Unix socket (or a dashboard session)")


def job_id_of(request: web.Request) -> int:
    raw = request.match_info["job_id"]
    if not is_number(raw):  # digits only: ' 1' or '+1' in a path is not job 1
        raise InvalidInput(f"invalid job id {raw[:40]!r}", hint=f"a number from 1 to {MAX_JOB_ID}")
    return parse_int(raw, "job id", 1, MAX_JOB_ID)


async def json_body(request: web.Request, loads: Callable[[str], Any] = json.loads) -> Any:
    try:
        return await request.json(loads=loads)
    except (ValueError, RecursionError):  # RecursionError: '[[[[…' nested 100,000 deep
        raise InvalidInput("the request body is not valid JSON (or nested too deeply)") from None


async def object_body(
    request: web.Request, fields: frozenset[str], required: bool = True, empty_ok: bool = False
) -> dict[str, Any]:
    """A JSON object of exactly these fields (all `required`, or any of them): a misspelt
    or missing field is refused rather than read as "not given". `empty_ok`: no body at all
    is {}."""
    if empty_ok and not request.can_read_body:
        return {}
    body = await json_body(request)
    keys = " and ".join(f'"{f}"' for f in sorted(fields))
    if not isinstance(body, dict):
        raise InvalidInput(f"expected a JSON object with {keys}")
    unknown = sorted(set(body) - fields)
    if unknown or (required and set(body) != fields):
        what = f"unknown field(s) {', '.join(map(repr, unknown))}" if unknown else "missing field"
        raise InvalidInput(f"{what}: expected a JSON object with {keys}")
    return body
