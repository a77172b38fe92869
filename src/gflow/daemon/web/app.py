"""The TCP site (`[web] listen`): the dashboard's static files, its login, and the API
routes a browser may use, each behind the session check.

Nothing here trusts the network, nor a cookie: browsers share a host's cookies across its
ports and let any page on any port set them, so another local user's server on
127.0.0.1 could read or plant one. A request is a Unix user only with the session's id in
`X-Gflow-Session` and its CSRF token in `X-CSRF-Token` (or `session=` and `csrf=` for an
EventSource, which cannot send headers), both kept in the page's origin's localStorage,
which no other port can read or write. They reach the page only in the answer to its own
same-origin `POST /web/api/login`, after the person confirmed who the link signs them in
as (a page of another port can send a browser to a login link of its own). Without a
session a request is anonymous: it may read the public queue (a fixed set of fields, as
`gqueue -u all` shows anyone), the GPUs and reservations, unless `[web] public = false`.
Every route is listed in `ACCESS` with who may use it; a route missing there is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gflow.config import split_listen
from gflow.core.errors import Forbidden, InvalidInput
from gflow.daemon import app as api
from gflow.daemon import events as watch
from gflow.daemon.httplog import quiet_bad_requests
from gflow.daemon.identity import AccessPolicy, Caller
from gflow.daemon.joblogs import job_log
from gflow.daemon.metrics import METRICS, Metrics, metrics_handler
from gflow.daemon.requests import POLICY, SERVICE, WEB_CALLER, object_body
from gflow.daemon.service import Service
from gflow.daemon.sharing_routes import reservations
from gflow.daemon.web import routes
from gflow.daemon.web.plots import stats_timeline
from gflow.daemon.web.sessions import Session, Sessions, csrf_matches
from gflow.daemon.web.streams import STREAMS, StreamCounts, capped
from gflow.daemon.web.token import SESSIONS, WEB, WebSettings

log = logging.getLogger(__name__)

SPENT = "this login link is spent or expired (each works once, for two minutes)"
AGAIN = "run `gflowd web` again for a new one"

SESSION_HEADER = "X-Gflow-Session"
CSRF_HEADER = "X-CSRF-Token"
STATIC = Path(__file__).parent / "static"
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# Who may use each route: "open" (anyone: the page), "login" (anyone, from this site's
# own page only), "public" (anyone while [web] public is on, else a session), "session" (a
# signed-in browser). Every other method but GET and HEAD needs a session.
ACCESS: dict[str, str] = {
    "/": "open",
    "/static/{name}": "open",
    "/web/api/login": "login",
    "/web/api/session": "open",
    "/web/logout": "session",
    "/metrics": "open",
    "/api/v1/jobs": "public",
    "/api/v1/gpus": "public",
    "/api/v1/reservations": "public",
    "/api/v1/stats/timeline": "public",
    "/web/api/events": "public",
    "/api/v1/jobs/{job_id}": "session",
    "/api/v1/jobs/{job_id}/log": "session",
    "/api/v1/jobs/{job_id}/redo": "session",
    "/api/v1/jobs/{job_id}/{action}": "session",
    "/api/v1/events": "session",
    "/api/v1/events/history": "session",
    "/web/api/jobs/{job_id}/log/stream": "session",
    "/web/api/submit": "session",
}
SESSION = "gflow.web.session"


@dataclass(frozen=True)
class Site:
    """What the guard and the file routes read: the Host names answered, the files."""

    hosts: frozenset[str] | None
    files: dict[str, tuple[bytes, str]]


SITE = web.AppKey("site", Site)


def allowed_hosts(listen: str) -> frozenset[str] | None:
    """The Host headers a loopback listener answers (a page whose name was rebound to
    127.0.0.1 sends its own name, and is refused); None: any (not on loopback)."""
    from gflow.config import web_exposure_warning

    host, port = split_listen(listen)
    if web_exposure_warning(listen):
        return None
    names = {"127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host}
    return frozenset(f"{name}:{port}" for name in names)


def session_of(request: web.Request) -> Session | None:
    """The session of a request with both its id and its CSRF token, else None."""
    sent_id = request.headers.get(SESSION_HEADER) or request.query.get("session")
    if not sent_id or len(sent_id) > 200:
        return None
    session = request.app[SESSIONS].lookup(sent_id)
    sent = request.headers.get(CSRF_HEADER) or request.query.get("csrf")
    if session is None or not csrf_matches(session, sent):
        return None
    return session


@web.middleware
async def guard(request: web.Request, handler: api.Handler) -> web.StreamResponse:
    """The one gate of the TCP site: the Host, the session, and the route's access."""
    hosts = request.app[SITE].hosts
    if hosts is not None and request.headers.get("Host", "") not in hosts:
        raise Forbidden("this dashboard answers only to its own address")
    resource = request.match_info.route.resource
    access = ACCESS.get(resource.canonical, "") if resource is not None else ""
    if not access:
        raise web.HTTPNotFound()
    session = session_of(request)
    if session is not None:
        request[SESSION] = session
        request[WEB_CALLER] = session.caller
    changes = request.method not in ("GET", "HEAD")
    origin = request.headers.get("Origin")
    own = f"http://{request.headers.get('Host')}"
    if changes and origin is not None and origin != own:
        raise Forbidden("a request from another site is refused")
    if access == "login":
        if origin != own:  # a browser's fetch always says where it comes from
            raise Forbidden("sign in from the dashboard's own page")
    elif session is None and (
        changes or access == "session" or (access == "public" and not request.app[WEB].public)
    ):
        raise Forbidden(
            "this needs a dashboard session (and its CSRF token)",
            hint="sign in with the link `gflowd web` prints",
        )
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def load_static() -> dict[str, tuple[bytes, str]]:
    """Every file the dashboard serves, read once: nothing outside this list is reachable."""
    return {
        path.name: (path.read_bytes(), TYPES[path.suffix])
        for path in sorted(STATIC.iterdir())
        if path.is_file() and path.suffix in TYPES
    }


async def index(request: web.Request) -> web.Response:
    return _file(request, "index.html")


async def static_file(request: web.Request) -> web.Response:
    return _file(request, request.match_info["name"])


def _file(request: web.Request, name: str) -> web.Response:
    found = request.app[SITE].files.get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, kind = found
    response = web.Response(body=body, content_type=kind)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def login(request: web.Request) -> web.Response:
    """POST /web/api/login {"token", "confirm"}: the page of a login link asks whom the
    token signs in (nothing spent), and once the person confirmed, spends it for a
    session: its id and CSRF token are in this answer only."""
    body = await object_body(request, frozenset({"token", "confirm"}))
    token, confirm = body.get("token"), body.get("confirm", False)
    if not isinstance(token, str) or not 0 < len(token) <= 100 or not isinstance(confirm, bool):
        raise InvalidInput('give {"token": "…", "confirm": true|false}')
    sessions = request.app[SESSIONS]
    if not confirm:
        caller = sessions.peek(token)
        if caller is None:
            raise Forbidden(SPENT, hint=AGAIN)
        return web.json_response({"user": caller.user, "admin": caller.admin})
    opened = sessions.redeem(token)
    if opened is None:
        raise Forbidden(SPENT, hint=AGAIN)
    session_id, session = opened
    log.info("dashboard session opened for %s", session.caller.user)
    return web.json_response(
        {"user": session.caller.user, "session": session_id, "csrf": session.csrf}
    )


async def logout(request: web.Request) -> web.Response:
    request.app[SESSIONS].end(request.headers.get(SESSION_HEADER, ""))
    return web.json_response({"signed_out": True})


async def whoami(request: web.Request) -> web.Response:
    session: Session | None = request.get(SESSION)
    caller: Caller | None = session.caller if session else None
    return web.json_response(
        {
            "user": caller.user if caller else None,
            "admin": caller.admin if caller else False,
            "public": request.app[WEB].public,
            "system": request.app[POLICY].system,
        }
    )


async def jobs_listing(request: web.Request) -> web.Response:
    """GET /api/v1/jobs: a session's is the socket's; an anonymous one only the public
    fields, of everyone's jobs."""
    if WEB_CALLER in request:
        return await api.list_jobs(request)
    asked = [f for f in request.query.get("fields", "").split(",") if f]
    if not asked or not set(asked) <= routes.PUBLIC_FIELDS:
        raise Forbidden(
            "without a session only these job fields are shown: "
            + ",".join(sorted(routes.PUBLIC_FIELDS)),
            hint="give fields=…, or sign in with the link `gflowd web` prints",
        )
    if request.query.get("user") not in ("all", "*"):
        raise InvalidInput("without a session, list everyone's jobs (user=all)")
    request[WEB_CALLER] = routes.ANONYMOUS  # read only by list_jobs, for this one listing
    return await api.list_jobs(request)


def make_web_app(
    service: Service,
    bus: watch.EventBus,
    metrics: Metrics,
    policy: AccessPolicy,
    sessions: Sessions,
    settings: WebSettings,
) -> web.Application:
    app = web.Application(middlewares=[api.errors_as_json, guard], client_max_size=1 << 20)
    app[METRICS] = metrics
    app[SERVICE] = service
    app[POLICY] = policy
    app[api.BUS] = bus
    app[SESSIONS] = sessions
    app[WEB] = settings
    app[SITE] = Site(allowed_hosts(settings.listen), load_static())
    app[routes.LOG_STREAMS] = routes.LogStreams()
    app[STREAMS] = StreamCounts()
    quiet_bad_requests()
    add = app.router
    add.add_get("/", index)
    add.add_get("/static/{name}", static_file)
    add.add_post("/web/api/login", login)
    add.add_post("/web/logout", logout)
    add.add_get("/web/api/session", whoami)
    add.add_get("/web/api/events", capped(routes.public_events))
    add.add_get("/web/api/jobs/{job_id}/log/stream", capped(routes.log_stream))
    add.add_post("/web/api/submit", routes.submit_form)
    add.add_get("/metrics", metrics_handler)
    add.add_get("/api/v1/jobs", jobs_listing)
    add.add_get("/api/v1/jobs/{job_id}", api.show_job)
    add.add_get("/api/v1/jobs/{job_id}/log", job_log)
    add.add_post("/api/v1/jobs/{job_id}/redo", api.redo_job)
    add.add_post("/api/v1/jobs/{job_id}/{action}", api.job_action)
    add.add_get("/api/v1/gpus", api.gpus)
    add.add_get("/api/v1/reservations", reservations)
    add.add_get("/api/v1/stats/timeline", stats_timeline)
    add.add_get("/api/v1/events", capped(api.event_stream))
    add.add_get("/api/v1/events/history", api.event_history)
    missing = {r.canonical for r in app.router.resources()} - set(ACCESS)
    assert not missing, f"routes without an access rule: {missing}"
    return app
