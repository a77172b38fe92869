"""HTTP routes under /api/v1: parse the request, call the service, answer JSON.

Errors are answered as {"error": {"code", "message", "hint"}} with the status mapped once here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gflow.core.errors import Forbidden, GflowError, InvalidInput, InvalidState
from gflow.core.limits import MAX_JOB_ID
from gflow.core.model import Job
from gflow.core.parse import parse_id_list, parse_int
from gflow.core.spec import JobSpec
from gflow.core.states import ACTIVE_STATES, JobState
from gflow.daemon import events as watch
from gflow.daemon.connections import MAX_BODY
from gflow.daemon.httplog import quiet_bad_requests
from gflow.daemon.identity import (
    AccessPolicy,
    Caller,
    require_admin,
)
from gflow.daemon.joblogs import job_attach, job_log
from gflow.daemon.metrics import METRICS, Metrics, metrics_handler
from gflow.daemon.notify.router import TEST_KIND, Router
from gflow.daemon.requests import (
    POLICY,
    SERVICE,
    STOP,
    caller_of,
    job_id_of,
    json_body,
    object_body,
)
from gflow.daemon.service import Service
from gflow.daemon.sharing_routes import add_sharing_routes
from gflow.daemon.web.plots import stats_timeline
from gflow.daemon.web.sessions import Sessions
from gflow.daemon.web.token import SESSIONS, WEB, WebSettings, web_token
from gflow.store.accounting import StatsFilter
from gflow.store.db import JobFilter

log = logging.getLogger(__name__)

BUS = web.AppKey("bus", watch.EventBus)
ROUTER = web.AppKey("router", Router)
MAX_JOBS_PER_REQUEST = 100_000
MAX_CANCEL = 100_000  # ids per cancel request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(code: str, message: str, hint: str = "") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint}}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GflowError as exc:
        return web.json_response(
            error_body(exc.code, exc.message, exc.hint), status=exc.http_status
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(error_body("http", exc.reason), status=exc.status)
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return web.json_response(
            error_body("internal", "the daemon hit an internal error; see gflowd.log"), status=500
        )


BIG_MESSAGE = 1 << 18  # bytes: a request or answer this big leaves MBs of freed memory


@web.middleware
async def release_memory_after_big(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    sent = response.content_length if isinstance(response, web.Response) else None
    if max(request.content_length or 0, sent or 0) > BIG_MESSAGE:
        request.app[SERVICE].release_memory_soon()
    return response


class SharedStrings:
    """A json `object_pairs_hook`: equal objects of strings decode to one dict.

    Every job of an array or sweep carries the submitter's environment (~40 variables):
    10,000 decoded copies of it took the daemon's peak RSS from 115 to 147 MB. The shared
    dicts are only read (validated, then stored as JSON). Only all-string objects are
    shared, since 1, 1.0 and true compare equal.
    """

    def __init__(self) -> None:
        self.seen: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        for _, value in pairs:
            if type(value) is not str:
                return dict(pairs)
        key = tuple(pairs)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = dict(pairs)
        return found


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].status())


async def submit(request: web.Request) -> web.Response:
    """`{"jobs": [spec…], "defaults": {field: value}}` (defaults optional: what every job of
    an array shares, sent once). A big body is decoded and validated off the loop, and its
    answer written there too, so the daemon answers others meanwhile."""
    caller = caller_of(request)
    raw = await request.read()
    big = len(raw) > BIG_MESSAGE
    specs = await asyncio.to_thread(parse_submission, raw) if big else parse_submission(raw)
    service = request.app[SERVICE]
    _, notes = service.machine.resolve_gpu_models(specs[:1])
    jobs = await service.submit_many(caller, specs)
    text = await asyncio.to_thread(jobs_json, jobs, notes) if big else jobs_json(jobs, notes)
    return web.Response(text=text, status=201, content_type="application/json")


async def test_submit(request: web.Request) -> web.Response:
    """`gbatch --dry-run`: could these jobs run, and when would the first start? (Stores
    nothing, like sbatch --test-only.)"""
    caller = caller_of(request)
    raw = await request.read()
    big = len(raw) > BIG_MESSAGE
    specs = await asyncio.to_thread(parse_submission, raw) if big else parse_submission(raw)
    return web.json_response(request.app[SERVICE].test_submit(caller, specs))


def parse_submission(raw: bytes) -> list[JobSpec]:
    try:
        body = json.loads(raw, object_pairs_hook=SharedStrings())
    except (ValueError, RecursionError):
        raise InvalidInput("the request body is not valid JSON (or nested too deeply)") from None
    if (
        not isinstance(body, dict)
        or not set(body) <= {"jobs", "defaults"}
        or not isinstance(body.get("jobs"), list)
        or not isinstance(body.get("defaults", {}), dict)
    ):
        raise InvalidInput('expected {"jobs": [ ... ], "defaults": { ... }} and nothing else')
    items, defaults = body["jobs"], body.get("defaults", {})
    if len(items) > MAX_JOBS_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_JOBS_PER_REQUEST:,} jobs per request")
    if not all(isinstance(item, dict) for item in items):
        raise InvalidInput("each job is a JSON object")
    return [JobSpec.from_dict({**defaults, **item} if defaults else item) for item in items]


def jobs_json(jobs: list[Job], notes: list[str]) -> str:
    """{"jobs": [...], "notes": [...]}, one job at a time: a 100,000-job answer in one
    json.dumps call would hold the interpreter for a second, even from a thread."""
    listed = ", ".join(json.dumps(job.to_dict()) for job in jobs)
    return f'{{"jobs": [{listed}], "notes": {json.dumps(notes)}}}'


async def list_jobs(request: web.Request) -> web.Response:
    caller = caller_of(request)
    query = request.query
    states: frozenset[JobState] | None = ACTIVE_STATES
    if query.get("states"):
        states = frozenset(JobState.parse(s) for s in query["states"].split(",") if s.strip())
    elif query.get("all") in ("1", "true"):
        states = None
    uid = _uid_query(query.get("user", ""), caller)
    ids = tuple(parse_id_list(query["ids"])) if query.get("ids") else None
    limit = _int_query(query.get("limit"), "limit")
    since = _unix_time_query(query.get("since"), "since")
    ended_since = _unix_time_query(query.get("ended_since"), "ended_since")
    names = _names_query(query.get("names"))
    where = JobFilter(
        states=states,
        uid=uid,
        ids=ids,
        limit=limit,
        submitted_since=since,
        ended_since=ended_since,
        project=query.get("project") or None,
        names=names,
        last=query.get("last") in ("1", "true"),
    )
    if query.get("fields"):  # a table's columns only: {"fields": [...], "rows": [[...], ...]}
        listing = request.app[SERVICE].list_fields_json(where, query["fields"].split(","))
        return web.Response(text=listing, content_type="application/json")
    jobs = request.app[SERVICE].list_jobs(where)
    return web.json_response({"jobs": [job.to_dict() for job in jobs]})


async def job_stats(request: web.Request) -> web.Response:
    """gstats: totals of the matching jobs, ended ones from the per-day totals."""
    query = request.query
    where = StatsFilter(
        uid=_uid_query(query.get("user", ""), caller_of(request)),
        project=query.get("project") or None,
        since=_unix_time_query(query.get("since"), "since"),
    )
    return web.json_response(request.app[SERVICE].store.stats(where))


def _uid_query(user: str, caller: Caller) -> int | None:
    """`user=`: the caller (empty), everyone ('all'), or that user."""
    if user in ("all", "*"):
        return None
    if not user:
        return caller.uid
    try:
        return pwd.getpwnam(user).pw_uid
    except (KeyError, ValueError):  # ValueError: a NUL in the name
        raise InvalidInput(f"unknown user {user!r}", hint="give a user name or 'all'") from None


def _int_query(raw: str | None, name: str) -> int | None:
    return parse_int(raw, name, 0, MAX_JOB_ID) if raw else None


MAX_UNIX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z


def _unix_time_query(raw: str | None, name: str) -> float | None:
    """A Unix time in seconds (fractions allowed), from 0 to the year 9999."""
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,9})?", raw) or float(raw) > MAX_UNIX_TIME:
        raise InvalidInput(
            f"invalid {name} {raw[:40]!r}", hint="a Unix time in seconds, e.g. 1764000000"
        )
    return float(raw)


def _names_query(raw: str | None) -> tuple[str, ...] | None:
    """`names=a,b`: exact job names; blanks around each are not part of it."""
    names = tuple(dict.fromkeys(n.strip() for n in (raw or "").split(",") if n.strip()))
    return names or None


async def resolve(request: web.Request) -> web.Response:
    """`?ref=@` / `@~N`: the ids of the caller's submission it names (`gjob … @`)."""
    ref = request.query.get("ref", "")
    if ref != "@" and not re.fullmatch(r"@~[0-9]{1,9}", ref):
        raise InvalidInput(f"invalid reference {ref[:40]!r}", hint="@ or @~N")
    ids = request.app[SERVICE].resolve(caller_of(request), ref)
    return web.json_response({"ids": ids})


async def show_job(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    job_id = job_id_of(request)
    job = service.get_job(job_id)
    events = [event.to_dict() for event in service.store.events_of(job_id)]
    attempts = service.store.attempts_of(job.first_attempt or job.id)
    shown = {**job.to_dict(), "job_dir": str(service.jobdir(job_id))}
    return web.json_response({"job": shown, "events": events, "attempts": attempts})


async def job_action(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    caller = caller_of(request)
    job_id = job_id_of(request)
    action = request.match_info["action"]
    if action == "cancel":
        body = await object_body(request, frozenset({"kill"}), required=False, empty_ok=True)
        kill = body.get("kill", False)
        if not isinstance(kill, bool):
            raise InvalidInput('expected {"kill": true|false}')
        job = await service.cancel(caller, job_id, kill)
    elif action == "hold":
        job = await service.hold_job(caller, job_id)
    elif action == "release":
        body = await object_body(request, frozenset({"at"}), required=False, empty_ok=True)
        at = body.get("at")
        if at is not None and (
            isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at < 2**40
        ):
            raise InvalidInput("release 'at' must be a Unix time")
        job = await service.release_job(caller, job_id, float(at) if at is not None else None)
    else:
        raise web.HTTPNotFound(reason=f"unknown action {action!r}")
    return web.json_response({"job": job.to_dict()})


async def cancel_jobs(request: web.Request) -> web.Response:
    """POST /jobs/cancel {"ids": "1-20000,20005", "kill": false}: many at once."""
    body = await object_body(request, frozenset({"ids", "kill"}), required=False)
    ids, kill = body.get("ids"), body.get("kill", False)
    if not isinstance(ids, str) or not isinstance(kill, bool):
        raise InvalidInput('expected {"ids": "1,3-5", "kill": true|false}')
    chosen = parse_id_list(ids)
    if len(chosen) > MAX_CANCEL:
        raise InvalidInput(f"at most {MAX_CANCEL:,} jobs per request")
    results = await request.app[SERVICE].cancel_many(caller_of(request), chosen, kill)
    return web.json_response({"results": results})


async def update_job(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object of the fields to change")
    job = await request.app[SERVICE].update_job(caller_of(request), job_id_of(request), body)
    return web.json_response({"job": job.to_dict()})


async def redo_job(request: web.Request) -> web.Response:
    fields = frozenset({"cascade", "changes"})
    body = await object_body(request, fields, required=False, empty_ok=True)
    cascade, changes = body.get("cascade", False), body.get("changes", {})
    if not isinstance(cascade, bool):
        raise InvalidInput('expected {"cascade": true|false}')
    if not isinstance(changes, dict):
        raise InvalidInput('expected {"changes": {field: value, …}} (what gjob update takes)')
    jobs = request.app[SERVICE].redo(caller_of(request), job_id_of(request), cascade, changes)
    return web.json_response({"jobs": [job.to_dict() for job in jobs]}, status=201)


async def purge(request: web.Request) -> web.Response:
    older = (await object_body(request, frozenset({"older_than"})))["older_than"]
    if isinstance(older, bool) or not isinstance(older, int | float) or not 0 <= older < 2**40:
        raise InvalidInput('expected {"older_than": seconds}')
    purged = request.app[SERVICE].purge(caller_of(request), float(older))
    return web.json_response({"purged": purged})


async def gpus(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response({"gpus": service.gpu_status(), "cpus": service.cpu_status()})


async def set_gpus(request: web.Request) -> web.Response:
    allowed = (await object_body(request, frozenset({"allowed"})))["allowed"]
    if allowed is not None and (
        not isinstance(allowed, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in allowed)
    ):
        raise InvalidInput('expected {"allowed": [GPU indices] or null}')
    described = request.app[SERVICE].set_gpus(caller_of(request), allowed)
    return web.json_response({"gpus": described})


async def ignored_gpu_processes(request: web.Request) -> web.Response:
    return web.json_response({"ignored": request.app[SERVICE].machine.ignored_list()})


async def ignore_gpu_process(request: web.Request) -> web.Response:
    """{"pid": N, "undo": false}: `gctl ignore-gpu-process` (admin)."""
    body = await object_body(request, frozenset({"pid", "undo"}))
    pid, undo = body["pid"], body["undo"]
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**22:
        raise InvalidInput("expected a process id", hint='{"pid": 4242, "undo": false}')
    if not isinstance(undo, bool):
        raise InvalidInput('expected {"undo": true|false}')
    listed = request.app[SERVICE].ignore_gpu_process(caller_of(request), pid, undo)
    return web.json_response({"ignored": listed})


async def set_group_limit(request: web.Request) -> web.Response:
    limit = (await object_body(request, frozenset({"max_concurrent"})))["max_concurrent"]
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 1_000_000:
        raise InvalidInput('expected {"max_concurrent": N} with N of 1 or more')
    changed = request.app[SERVICE].set_group_limit(caller_of(request), job_id_of(request), limit)
    return web.json_response({"updated_jobs": changed})


async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events, resumable with Last-Event-ID (daemon/events.py)."""
    caller = caller_of(request)
    where = watch.event_filter(request.query, caller.uid, caller.admin)
    return await watch.stream(request, request.app[SERVICE].store, request.app[BUS], where)


async def event_history(request: web.Request) -> web.Response:
    caller = caller_of(request)
    where = watch.event_filter(request.query, caller.uid, caller.admin)
    limit = _int_query(request.query.get("limit"), "limit")
    limit = 100 if limit is None else limit
    return web.json_response(watch.history(request.app[SERVICE].store, where, limit))


async def notify_test(request: web.Request) -> web.Response:
    """`gctl notify test`: one sample event, delivered to every configured target."""
    caller = caller_of(request)
    require_admin(caller, "send a test notification")
    router = request.app.get(ROUTER)
    if router is None or not router.targets:
        raise InvalidState(
            "no notification targets are configured",
            hint="add [[notifications.webhooks]] or [[notifications.emails]] to gflow.toml",
        )
    service = request.app[SERVICE]
    detail = f"a test notification sent by {caller.user}"
    service.store.record_system_event(service.clock(), TEST_KIND, detail)
    targets = [t.key for t in router.targets]
    return web.json_response({"event": service.store.event_head, "targets": targets})


async def shutdown(request: web.Request) -> web.Response:
    caller = caller_of(request)
    if request.app[POLICY].system and caller.uid != 0:
        raise Forbidden("only root can stop the system daemon")
    require_admin(caller, "stop the daemon")
    request.app[STOP].set()
    return web.json_response({"status": "stopping", "pid": os.getpid()})


def make_app(
    service: Service,
    stop: asyncio.Event,
    bus: watch.EventBus,
    metrics: Metrics,
    router: Router,
    policy: AccessPolicy | None = None,
    sessions: Sessions | None = None,
    web_settings: WebSettings | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[metrics.middleware(), errors_as_json, release_memory_after_big],
        client_max_size=MAX_BODY,
    )
    app[METRICS] = metrics
    app[ROUTER] = router
    app[SERVICE] = service
    app[POLICY] = policy or AccessPolicy(owner_uid=os.getuid())
    app[STOP] = stop
    app[BUS] = bus
    app[SESSIONS] = sessions or Sessions(service.clock, 12 * 3600.0)
    app[WEB] = web_settings or WebSettings("")
    quiet_bad_requests()
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/api/v1/jobs", list_jobs)
    app.router.add_post("/api/v1/jobs", submit)
    app.router.add_post("/api/v1/jobs/test", test_submit)
    app.router.add_post("/api/v1/jobs/cancel", cancel_jobs)  # before /jobs/{job_id}
    app.router.add_get("/api/v1/jobs/{job_id}", show_job)
    app.router.add_get("/api/v1/stats", job_stats)
    app.router.add_patch("/api/v1/jobs/{job_id}", update_job)
    app.router.add_post("/api/v1/jobs/{job_id}/redo", redo_job)
    # Before {action}, which would take it (routes match in the order they are added).
    app.router.add_post("/api/v1/jobs/{job_id}/group-limit", set_group_limit)
    app.router.add_get("/api/v1/jobs/{job_id}/log", job_log)
    app.router.add_get("/api/v1/jobs/{job_id}/attach", job_attach)
    app.router.add_post("/api/v1/jobs/{job_id}/{action}", job_action)
    app.router.add_get("/api/v1/resolve", resolve)
    app.router.add_post("/api/v1/purge", purge)
    app.router.add_get("/api/v1/gpus", gpus)
    app.router.add_post("/api/v1/gpus", set_gpus)
    app.router.add_get("/api/v1/gpus/ignored", ignored_gpu_processes)
    app.router.add_post("/api/v1/gpus/ignored", ignore_gpu_process)
    add_sharing_routes(app)
    app.router.add_post("/api/v1/shutdown", shutdown)
    app.router.add_get("/api/v1/events", event_stream)
    app.router.add_get("/api/v1/events/history", event_history)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_post("/api/v1/notify/test", notify_test)
    app.router.add_get("/api/v1/stats/timeline", stats_timeline)
    app.router.add_post("/api/v1/web/token", web_token)
    return app
