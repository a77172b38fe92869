"""A job's log and tmux session, through the daemon (system mode: the CLI reads no file
itself), with ownership checked (daemon/identity.py).

The log's path is the user's choice, so it is untrusted: it is opened O_PATH without
following a link at its end (no device is opened, nothing blocks), checked to be a regular
file owned by the job's user, and only then read through that same descriptor. A link in
a directory above it can at most lead to another file of the user's own.
"""

from __future__ import annotations

import asyncio
import base64
import os
import stat

from aiohttp import web

from gflow.core.errors import Forbidden, Unavailable
from gflow.core.model import Job
from gflow.core.parse import parse_int
from gflow.daemon.identity import authorize_owner, authorize_read
from gflow.daemon.requests import POLICY, SERVICE, caller_of, job_id_of
from gflow.runner.as_user import RunAs

MAX_CHUNK = 1 << 20  # bytes of log per request; the CLI asks again from where it got to


def read_log(job: Job, offset: int, owner_uid: int | None) -> tuple[bytes, int]:
    """(bytes from `offset`, the file's size now). `owner_uid`: whose file it must be
    (the job's user in system mode; None: any of the daemon's own)."""
    try:
        fd = os.open(job.log_path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Unavailable(f"log of job {job.id} is missing ({job.log_path})") from None
    except OSError as exc:
        raise Unavailable(f"cannot open the log of job {job.id}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (owner_uid is not None and st.st_uid != owner_uid):
            raise Forbidden(
                f"the log of job {job.id} ({job.log_path}) is not a regular file of {job.user}'s"
            )
        data_fd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            size = os.fstat(data_fd).st_size
            return os.pread(data_fd, MAX_CHUNK, offset), size
        finally:
            os.close(data_fd)
    finally:
        os.close(fd)


async def job_log(request: web.Request) -> web.Response:
    """`?offset=N`: the job's log from byte N (at most MAX_CHUNK), for its owner and
    admins only: {"data": base64, "offset": N, "size": bytes now, "state": ...}."""
    service = request.app[SERVICE]
    job = service.get_job(job_id_of(request))
    authorize_read(caller_of(request), job)
    raw = request.query.get("offset")
    offset = parse_int(raw, "offset", 0, 2**50) if raw else 0
    owner = job.uid if request.app[POLICY].system else None
    data, size = await asyncio.to_thread(read_log, job, offset, owner)
    return web.json_response(
        {
            "data": base64.b64encode(data).decode(),
            "offset": offset,
            "size": size,
            "state": job.state.value,
        }
    )


async def job_attach(request: web.Request) -> web.Response:
    """The command that attaches the job's owner (only them) to its tmux session."""
    service = request.app[SERVICE]
    job = service.get_job(job_id_of(request))
    authorize_owner(caller_of(request), "attach to", job)
    if hint := service.backend.attach_hint(job):
        raise Unavailable(f"job {job.id} cannot be attached to here", hint=hint)
    if not job.session:
        raise Unavailable(f"job {job.id} has no tmux session", hint="use: gjob log -f")
    run_as = RunAs.of_uid(job.uid) if request.app[POLICY].system else None
    argv = service.executor.attach_command(job.session, run_as)
    if not argv:
        raise Unavailable(f"job {job.id} has no tmux session", hint="use: gjob log -f")
    return web.json_response({"argv": argv})
