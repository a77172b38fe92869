"""HTTP routes of the team's rules: GPU reservations, quotas and fair-share (the rules in
core/sharing.py and core/reservations.py, applied by daemon/sharing.py and
daemon/reservations.py)."""

from __future__ import annotations

from aiohttp import web

from gflow.core.errors import InvalidInput
from gflow.core.limits import MAX_JOB_ID
from gflow.core.parse import is_number, parse_int
from gflow.daemon.requests import SERVICE, caller_of, object_body
from gflow.daemon.reservations import Request


def add_sharing_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/quota", quota)
    app.router.add_get("/api/v1/fairshare", fair_share)
    app.router.add_get("/api/v1/reservations", reservations)
    app.router.add_post("/api/v1/reservations", reserve)
    app.router.add_get("/api/v1/reservations/{reservation_id}", show_reservation)
    app.router.add_post("/api/v1/reservations/{reservation_id}/cancel", cancel_reservation)


RESERVE_FIELDS = frozenset({"user", "gpus", "gpu_ids", "start", "duration"})


async def reserve(request: web.Request) -> web.Response:
    caller = caller_of(request)
    body = await object_body(request, RESERVE_FIELDS, required=False)
    gpu_ids, gpus = body.get("gpu_ids") or [], body.get("gpus") or 0
    if bool(gpu_ids) == bool(gpus):
        raise InvalidInput('give exactly one of "gpus" (a count) or "gpu_ids" (indices)')
    if not isinstance(gpu_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1024 for i in gpu_ids
    ):
        raise InvalidInput('"gpu_ids" must be a list of GPU indices')
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= 1024:
        raise InvalidInput('"gpus" must be a count of GPUs')
    start, duration = body.get("start"), body.get("duration")
    for name, value in (("start", start), ("duration", duration)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**40:
            raise InvalidInput(f'"{name}" must be a number of seconds')
    user = body.get("user") or caller.user
    if not isinstance(user, str) or len(user) > 64:
        raise InvalidInput('"user" must be a user name')
    made = request.app[SERVICE].reserve(
        caller,
        Request(user, tuple(sorted(set(gpu_ids))), gpus, float(start), float(duration)),  # type: ignore[arg-type]
    )
    return web.json_response(made, status=201)


async def reservations(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].reservation_view())


def _reservation_id(request: web.Request) -> int:
    raw = request.match_info["reservation_id"]
    if not is_number(raw):
        raise InvalidInput(f"invalid reservation id {raw[:40]!r}")
    return parse_int(raw, "reservation id", 1, MAX_JOB_ID)


async def show_reservation(request: web.Request) -> web.Response:
    found = request.app[SERVICE].reservations.get(_reservation_id(request))
    return web.json_response({"reservation": found.to_dict()})


async def cancel_reservation(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    done = service.cancel_reservation(caller_of(request), _reservation_id(request))
    return web.json_response(done)


async def fair_share(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].fair_share())


async def quota(request: web.Request) -> web.Response:
    user = request.query.get("user") or None
    return web.json_response(request.app[SERVICE].quota(caller_of(request), user))
