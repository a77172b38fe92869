"""`gjob log` and `gjob attach`: a job's output, and its tmux session.

Lines are `\\n`-terminated, as `head` and `tail` count them: a progress bar's `\\r` redraws
are part of one line. `log -f` of a job that has not started waits for it (as grun does)
and then follows it; `attach` of a waiting job says so, and what to run instead.
"""

from __future__ import annotations

import os
import sys
import time

from gflow.cli.common import EXIT_FAILED, EXIT_OK
from gflow.client import Client
from gflow.core.errors import InvalidState, Unavailable
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

FOLLOW_INTERVAL = 0.2
WAITING = ("Queued", "Hold")


def show_log(client: Client, job_id: int, first: int | None, last: int | None, follow: bool) -> int:
    job = client.show_job(job_id)["job"]
    if follow and job["state"] in WAITING:
        return _wait_then_follow(client, job_id)
    if client.paths.system:  # through the daemon, which checks whose job it is
        return _show_remote(client, job_id, job, first, last, follow)
    path = job["log_path"]
    try:
        with open(path, "rb") as f:
            data = f.read()
            if not follow:
                _print_lines(data, first, last)
                return EXIT_OK
            _print_lines(data, None, last)
            return _follow(client, job_id, f)
    except FileNotFoundError:
        if job["state"] in WAITING:
            raise Unavailable(
                f"job {job_id} has not started yet ({job['state']}); no log",
                hint=f"gjob log -f {job_id} waits for it to start and follows it",
            ) from None
        raise Unavailable(f"log of job {job_id} is missing ({path})") from None


def read_remote(client: Client, job_id: int, offset: int) -> tuple[bytes, int, str]:
    """(bytes of the job's log from `offset`, the next offset, the job's state): the
    system daemon reads it for its owner."""
    import base64

    answer = client.request("GET", f"/jobs/{job_id}/log", query={"offset": str(offset)})
    data = base64.b64decode(answer["data"])
    return data, offset + len(data), answer["state"]


def _show_remote(
    client: Client, job_id: int, job: dict[str, Any], first: int | None, last: int | None,
    follow: bool,
) -> int:  # fmt: skip
    if job["state"] in WAITING:
        raise Unavailable(
            f"job {job_id} has not started yet ({job['state']}); no log",
            hint=f"gjob log -f {job_id} waits for it to start and follows it",
        )
    chunks, offset = [], 0
    while True:
        data, offset, state = read_remote(client, job_id, offset)
        if not data:
            break
        chunks.append(data)
    if not follow:
        _print_lines(b"".join(chunks), first, last)
        return EXIT_OK
    _print_lines(b"".join(chunks), None, last)
    while True:
        data, offset, state = read_remote(client, job_id, offset)
        if data:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        elif state not in ("Queued", "Hold", "Running"):
            return EXIT_OK
        else:
            time.sleep(FOLLOW_INTERVAL)


def split_lines(data: bytes) -> list[bytes]:
    """Lines as `head`/`tail` count them: ended by `\\n` only (the last may lack one)."""
    lines = [line + b"\n" for line in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _print_lines(data: bytes, first: int | None, last: int | None) -> None:
    if first is not None or last is not None:
        lines = split_lines(data)
        data = b"".join(lines[:first] if first is not None else lines[-(last or 0) :])
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def _follow(client: Client, job_id: int, f: Any) -> int:
    """Print new output as it comes, until the job has ended and the log is drained."""
    while True:
        ended = client.show_job(job_id)["job"]["state"] not in ("Queued", "Hold", "Running")
        chunk = f.read()
        if chunk:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        elif ended:
            return EXIT_OK
        else:
            time.sleep(FOLLOW_INTERVAL)


def _wait_then_follow(client: Client, job_id: int) -> int:
    """A waiting job: one status line until it starts (grun's), then its output."""
    from gflow.cli.grun import Foreground  # only here: grun's imports cost a cold start

    foreground = Foreground(client, job_id, quiet=not sys.stderr.isatty(), prog="gjob")
    job = foreground.wait()
    if job["started_at"] is None:  # cancelled (or its dependency failed) while waiting
        print(f"gjob: job {job_id} ended {job['state']} before it started; no log",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    foreground.stream(job)
    return EXIT_OK


def attach(client: Client, job_id: int) -> int:
    job = client.show_job(job_id)["job"]
    if job["state"] in WAITING:
        why = f", waiting for {job['reason']}" if job["reason"] else ""
        raise InvalidState(
            f"job {job_id} has not started yet ({job['state']}{why}): no session to attach to",
            hint=f"gjob log -f {job_id} waits for it to start and follows its output",
        )
    if job["executor"] == "slurm":  # the daemon says what to use instead (it fails here)
        client.request("GET", f"/jobs/{job_id}/attach")
    if job["executor"] != "tmux" or not job["session"]:
        raise Unavailable(f"job {job_id} has no tmux session", hint="use: gjob log -f")
    if job["state"] != "Running" and not job["keep_session"]:
        raise InvalidState(
            f"job {job_id} is {job['state']}; its session is closed", hint=f"use: gjob log {job_id}"
        )
    if client.paths.system:  # the daemon names the owner's own tmux server, to them only
        tmux = client.request("GET", f"/jobs/{job_id}/attach")["argv"]
    else:
        socket = str(Paths.from_env().tmux_socket)
        tmux = ["tmux", "-S", socket, "attach-session", "-t", job["session"]]
    os.execvp("tmux", tmux)
