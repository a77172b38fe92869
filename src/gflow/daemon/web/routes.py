"""The dashboard's own routes: the public event stream, a job's log as it grows, and the
submit form. Each acts through the same service calls and permission checks as the API
routes (daemon/app.py, daemon/identity.py); none decides on its own who may do what."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import pwd
from typing import Any

from aiohttp import web

from gflow.cli.common import Parser, one_line
from gflow.core.errors import GflowError, InvalidInput, Unavailable
from gflow.core.model import Job
from gflow.core.spec import JobSpec
from gflow.daemon import events as watch
from gflow.daemon.app import BUS, jobs_json
from gflow.daemon.identity import Caller, authorize_read
from gflow.daemon.joblogs import MAX_CHUNK, read_log
from gflow.daemon.requests import POLICY, SERVICE, caller_of, job_id_of, object_body
from gflow.store.events import EventFilter

# What a browser without a session may read of anyone's job: the queue's columns as
# `gqueue -u all` shows them (ids, names, owners, states, times, GPUs, reasons). Less than a
# local user may ask the socket for: no command line, script, directory, environment or
# log, since the TCP port may be reachable by more than this machine's users.
PUBLIC_FIELDS = frozenset(
    {"id", "name", "user", "state", "state_short", "project", "gpus", "gpu_ids", "priority"}
    | {"reason", "submitted_at", "started_at", "finished_at", "time_limit", "depends_on"}
    | {"array_job_id", "exit_code", "memory_mb"}
)
# The listing's caller for an anonymous request: no uid is -1, so it owns nothing.
ANONYMOUS = Caller(uid=-1, user="")
LOG_POLL = 0.25  # seconds between looks at a followed log that has not grown
MAX_LOG_STREAMS = 32
PAST_ANY_LOG = 1 << 50  # a read from here gives no bytes, only the log's size


class LogStreams:
    """How many logs browsers follow now (each holds a connection and a file read)."""

    def __init__(self) -> None:
        self.open = 0


LOG_STREAMS = web.AppKey("log_streams", LogStreams)
FORM_FIELDS = frozenset(
    {"command", "name", "gpus", "mem", "time", "depends_on", "project", "workdir"}
)
FORM_FLAGS = {
    "name": "--name",
    "gpus": "--gpus",
    "mem": "--mem",
    "time": "--time",
    "depends_on": "--depends-on",
    "project": "--project",
}


async def public_events(request: web.Request) -> web.StreamResponse:
    """Everyone's events without their details: enough for the queue to follow itself."""
    store = request.app[SERVICE].store
    return await watch.stream(request, store, request.app[BUS], EventFilter(), public=True)


async def log_stream(request: web.Request) -> web.StreamResponse:
    """A job's log as SSE from `offset=` (or its last `tail=` bytes): "chunk" events
    (base64, with their offset) as it grows, "end" once the job has ended and all of it
    was sent. Its owner and admins only, as `gjob log` (authorize_read)."""
    service = request.app[SERVICE]
    job_id = job_id_of(request)
    authorize_read(caller_of(request), service.get_job(job_id))
    raw = request.query.get("offset", "0")
    if not raw.isdigit() or len(raw) > 15:
        raise InvalidInput(f"offset={raw[:20]!r} is not a byte offset")
    offset = int(raw)
    tail = request.query.get("tail", "")
    if tail and (not tail.isdigit() or len(tail) > 15):
        raise InvalidInput(f"tail={tail[:20]!r} is not a number of bytes")
    streams = request.app[LOG_STREAMS]
    if streams.open >= MAX_LOG_STREAMS:
        raise Unavailable(f"{MAX_LOG_STREAMS} logs are being followed", hint="try again later")
    system = request.app[POLICY].system

    def owner_of(job: Job) -> int | None:
        """Whose file the log must be (system mode: the job's user's; joblogs.py)."""
        return job.uid if system else None

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    streams.open += 1
    try:
        await response.prepare(request)
        bus = request.app[BUS]
        if tail:  # a long log: start near its end (the page says what it left out)
            job = service.get_job(job_id)
            with contextlib.suppress(Unavailable):
                _, size = await asyncio.to_thread(read_log, job, PAST_ANY_LOG, owner_of(job))
                offset = max(offset, size - int(tail))
        while not bus.closed:
            job = service.get_job(job_id)
            try:
                data, _ = await asyncio.to_thread(read_log, job, offset, owner_of(job))
            except Unavailable:
                data = b""  # not started yet: no log file
            if data:
                chunk = {"offset": offset, "data": base64.b64encode(data).decode()}
                await response.write(f"event: chunk\ndata: {json.dumps(chunk)}\n\n".encode())
                offset += len(data)
                if len(data) == MAX_CHUNK:
                    continue
            elif not job.state.is_active:
                ended = json.dumps(job.state.value)
                await response.write(f"event: end\ndata: {ended}\n\n".encode())
                break
            await asyncio.sleep(LOG_POLL)
    except (ConnectionResetError, GflowError):
        pass  # the browser went away, or the job was purged meanwhile
    finally:
        streams.open -= 1
    return response


class FormParser(Parser):
    """gbatch's own parser, whose usage errors are raised instead of printed and exited:
    nothing a form says may end the daemon (argparse's --help and -V call exit)."""

    def error(self, message: str) -> Any:
        raise InvalidInput(one_line(message))

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise InvalidInput(one_line(message or "not a job"))

    def print_help(self, file: Any = None) -> None:
        raise InvalidInput("not a job")


def spec_from_form(form: dict[str, Any], home: str, user: str) -> dict[str, Any]:
    """The job the form describes, parsed by gbatch's flags (the CLI's messages)."""
    from gflow.cli.gbatch import build_parser
    from gflow.cli.job_options import job_options

    if not all(isinstance(v, str) for v in form.values()):
        raise InvalidInput("every form field is text")
    command = form.get("command", "")
    if not command.strip():
        raise InvalidInput("nothing to run", hint="type a command")
    argv = [f"{flag}={form[key]}" for key, flag in FORM_FLAGS.items() if form.get(key, "").strip()]
    # Every value as --flag=VALUE, so a value that looks like a flag is only a value.
    args = build_parser(FormParser).parse_args([*argv, f"--command={command}"])
    workdir = form.get("workdir", "").strip() or home
    env = {
        "HOME": home,
        "USER": user,
        "LOGNAME": user,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "GFLOW_UMASK": "0022",
    }
    spec = {"workdir": workdir, "env": env, **job_options(args), "command": command}
    spec["batch"]["submit_dir"] = workdir
    return spec


async def submit_form(request: web.Request) -> web.Response:
    """The dashboard's submit form, as `gbatch --command CMD` with the same flags; the job
    runs in the user's home unless the form names a directory."""
    caller = caller_of(request)
    form = await object_body(request, FORM_FIELDS, required=False)
    try:
        home = pwd.getpwuid(caller.uid).pw_dir
    except KeyError:
        raise InvalidInput(f"uid {caller.uid} has no home directory") from None
    spec = JobSpec.from_dict(spec_from_form(form, home, caller.user))
    service = request.app[SERVICE]
    _, notes = service.machine.resolve_gpu_models([spec])
    jobs = await service.submit_many(caller, [spec])
    return web.Response(text=jobs_json(jobs, notes), status=201, content_type="application/json")
