"""Connections are bounded: a flood of idle ones, a slow head or body, a huge announced body
leave the daemon answering its owner. Local socket only; every loop bounded."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import time
from pathlib import Path

from gflow.daemon.connections import MAX_BODY, Guards
from tests.helpers import BIN, Gflow, wait_for

FLOOD = 1100


def start_with_file_limit(gflow: Gflow, limit: int) -> None:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    done = subprocess.run(
        [str(BIN / "gflowd"), "start"],
        env=gflow.env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lower,
    )
    assert done.returncode == 0, done.stderr


def connect(gflow: Gflow) -> socket.socket:
    """One connection; while the daemon's backlog is full, try again (a flood would)."""
    deadline = time.monotonic() + 30
    while True:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(30)
        try:
            sock.connect(str(gflow.paths.socket))
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing, or None while the connection is open."""
    sock.settimeout(0.05)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


def test_a_flood_of_idle_connections_leaves_the_owner_served(make_gflow: type[Gflow]) -> None:
    """1,100 idle connections against a daemon limited to 1,024 open files froze it: the CLI
    hung, scheduling stopped and gflowd.log filled with tracebacks."""
    gflow = make_gflow()
    start_with_file_limit(gflow, 1024)
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):
            flood.append(connect(gflow))
        listed = gflow.run("gqueue", timeout=30)
        assert listed.returncode == 0, listed.stderr
        job = gflow.submit("echo", "during-the-flood", timeout=30)
        assert gflow.wait_state(job, timeout=30)["state"] == "Finished"
        assert gflow.paths.daemon_log.stat().st_size < 1_000_000
    finally:
        for sock in flood:
            sock.close()


def test_slow_heads_and_bodies_are_cut_off(gflow: Gflow) -> None:
    slow_head = connect(gflow)
    slow_head.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
    slow_body = connect(gflow)
    slow_body.sendall(
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: gflowd\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    deadline = time.monotonic() + 40
    answers: dict[str, bytes] = {}
    while len(answers) < 2 and time.monotonic() < deadline:
        for name, sock in (("head", slow_head), ("body", slow_body)):
            if name in answers:
                continue
            try:
                sock.sendall(b" ")  # one byte a second: slower than any real client
            except OSError:
                pass
            got = closed_by_server(sock)
            if got is not None:
                answers[name] = got
        time.sleep(1)
    assert set(answers) == {"head", "body"}, "a slow connection was never cut off"
    assert b" 408 " in answers["body"]
    assert json.loads(gflow.ok("gflowd", "status", "--json"))["running"]


def test_a_huge_announced_body_is_refused_before_it_is_read(gflow: Gflow) -> None:
    sock = connect(gflow)
    sock.sendall(
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: gflowd\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    answer = wait_for(lambda: closed_by_server(sock), timeout=10, what="an answer")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert f"at most {MAX_BODY:,}" in json.loads(body)["error"]["message"]


class FakeGuard:
    def __init__(self, idle: bool) -> None:
        self.idle = idle
        self.dropped = False

    def drop(self, why: str) -> None:
        self.dropped = True


def test_past_the_cap_the_oldest_idle_connection_makes_room() -> None:
    guards = Guards(limit=2)
    busy, idle, newer = FakeGuard(False), FakeGuard(True), FakeGuard(True)
    assert guards.admit(busy) and guards.admit(idle)  # type: ignore[arg-type]
    assert guards.admit(newer)  # type: ignore[arg-type]
    assert idle.dropped and not busy.dropped


def test_past_the_cap_with_every_connection_busy_the_new_one_is_refused() -> None:
    guards = Guards(limit=1)
    assert guards.admit(FakeGuard(False))  # type: ignore[arg-type]
    assert not guards.admit(FakeGuard(True))  # type: ignore[arg-type]


def test_the_cli_prints_one_busy_line(tmp_path: Path) -> None:
    """What the CLI makes of the daemon's 503: one line, exit 1."""
    from gflow.client import parse_response
    from gflow.daemon.connections import http_error

    status, body = parse_response(http_error(503, "Service Unavailable", "gflowd is busy"))
    assert status == 503 and json.loads(body)["error"]["code"] == "unavailable"
