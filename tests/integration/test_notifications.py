"""Webhooks and e-mail: one notification per event, through the outbox, also after kill -9
between the commit and the delivery; a real HTTP receiver and a real SMTP server
(aiosmtpd), both on 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import Gflow, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """An HTTP server on 127.0.0.1 recording each POST; `answers` are the statuses it gives,
    in order (then 200); `hold` makes the next request wait until released."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.tries: list[int] = []  # event ids of every request, answered or not
        self.answers: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.tries.append(body["id"])
                receiver.hold.wait(30)
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    if status == 200:
                        receiver.got.append({**body, "headers": dict(self.headers)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, kind: str | None = None) -> list[tuple[int, str]]:
        with self.lock:
            return [(g["job_id"], g["event"]) for g in self.got if kind in (None, g["event"])]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class Mailbox:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Any]] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    made = Mailbox()
    try:
        yield made
    finally:
        made.close()


def webhook_config(url: str, events: str = '["*"]', extra: str = "") -> str:
    return f'[[notifications.webhooks]]\nurl = "{url}"\nevents = {events}\n{extra}\n'


def pending(gflow: Gflow) -> int:
    conn = sqlite3.connect(gflow.paths.database, timeout=10)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    finally:
        conn.close()


def test_a_webhook_gets_one_notification_per_event(
    make_gflow: type[Gflow], receiver: Receiver
) -> None:
    """Submitted, started, finished: each delivered once, with the event id as header."""
    events = '["job_submitted", "job_started", "ended"]'
    auth = 'headers = { Authorization = "Bearer t0ken" }'
    gflow = make_gflow(config=webhook_config(receiver.url, events, auth))
    gflow.start()
    job_id = gflow.submit("true")
    gflow.wait_state(job_id)
    wait_for(lambda: len(receiver.events()) >= 3 and pending(gflow) == 0, 20, "3 deliveries")
    assert receiver.events() == [
        (job_id, "job_submitted"),
        (job_id, "job_started"),
        (job_id, "job_finished"),
    ]
    assert len({g["id"] for g in receiver.got}) == 3
    first = receiver.got[0]
    assert first["headers"]["Authorization"] == "Bearer t0ken"
    assert first["headers"]["X-Gflow-Event-Id"] == str(first["id"])
    assert first["job"]["id"] == job_id and "env" not in first["job"]


def test_a_5xx_is_retried_and_a_4xx_is_not(make_gflow: type[Gflow], receiver: Receiver) -> None:
    """503 then 200: delivered once, on the second try. 400: given up, logged once."""
    gflow = make_gflow(config=webhook_config(receiver.url, '["job_held", "job_released"]'))
    gflow.start()
    job_id = gflow.submit("--hold", "true")
    receiver.answers = [503]
    gflow.ok("gjob", "release", str(job_id))
    wait_for(lambda: receiver.events("job_released") and pending(gflow) == 0, 20, "the retry")
    assert receiver.events() == [(job_id, "job_released")]
    assert len(receiver.tries) == 2 and len(set(receiver.tries)) == 1
    second = gflow.submit("--hold", "true")
    receiver.answers = [400]
    gflow.ok("gjob", "release", str(second))
    wait_for(lambda: pending(gflow) == 0 and len(receiver.tries) == 3, 20, "the 400")
    log = gflow.paths.daemon_log.read_text()
    assert log.count("failed (not retried): HTTP 400") == 1
    assert receiver.events() == [(job_id, "job_released")]


def test_kill_9_between_commit_and_delivery_still_delivers_once(
    make_gflow: type[Gflow], receiver: Receiver
) -> None:
    """The event is committed, its delivery is in flight, the daemon dies: after the restart
    the receiver gets it, once."""
    gflow = make_gflow(config=webhook_config(receiver.url, '["job_submitted"]'))
    gflow.start()
    receiver.hold.clear()  # the first delivery hangs in the receiver
    job_id = gflow.submit("--hold", "true")
    wait_for(lambda: receiver.tries, 20, "the delivery to start")
    gflow.kill_daemon()
    assert pending(gflow) == 1
    receiver.answers = [599]  # the interrupted request's late answer must not count
    receiver.hold.set()
    wait_for(lambda: not receiver.answers, 10, "the interrupted request to end")
    gflow.start()
    wait_for(lambda: receiver.events() and pending(gflow) == 0, 20, "the delivery after restart")
    assert receiver.events() == [(job_id, "job_submitted")]


def test_e_mail_through_a_local_smtp_server(make_gflow: type[Gflow], mailbox: Mailbox) -> None:
    """events = ["job_failed"]: a failed job sends one mail, a finished one none."""
    gflow = make_gflow(
        config=(
            "[[notifications.emails]]\n"
            f'smtp_url = "smtp://127.0.0.1:{mailbox.port}"\n'
            'from = "gflow@example.org"\nto = ["ops@example.org"]\n'
            'events = ["job_failed"]\nsubject_prefix = "[lab]"\n'
        )
    )
    gflow.start()
    good = gflow.submit("true")
    bad = gflow.submit("-J", "doomed", "false")
    gflow.wait_state(good)
    gflow.wait_state(bad)
    wait_for(lambda: mailbox.mails and pending(gflow) == 0, 20, "the mail")
    ((rcpt, mail),) = mailbox.mails
    assert rcpt == ["ops@example.org"]
    assert mail["Subject"] == f"[lab] job {bad} failed (doomed)"
    assert "State:   Failed" in mail.get_payload()


def test_gctl_notify_test_reaches_every_target(
    make_gflow: type[Gflow], receiver: Receiver, mailbox: Mailbox
) -> None:
    gflow = make_gflow(
        config=webhook_config(receiver.url, '["job_failed"]') + "[[notifications.emails]]\n"
        f'smtp_url = "smtp://127.0.0.1:{mailbox.port}"\n'
        'from = "gflow@example.org"\nto = ["me@example.org"]\n'
    )
    gflow.start()
    out = gflow.ok("gctl", "notify", "test")
    assert "2 target(s)" in out
    wait_for(lambda: receiver.got and mailbox.mails, 20, "both samples")
    assert receiver.got[0]["event"] == "notify_test"
    assert "notify test" in mailbox.mails[0][1]["Subject"]


def test_without_targets_notify_test_says_so(gflow: Gflow) -> None:
    done = gflow.run("gctl", "notify", "test")
    assert done.returncode == 1
    assert "no notification targets are configured" in done.stderr


def test_a_bad_webhook_stops_gflowd_start(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(config=webhook_config("ftp://example.org/x"))
    done = gflow.run("gflowd", "start")
    assert done.returncode != 0
    assert "notifications.webhooks[0].url must be an http:// or https:// URL" in done.stderr


def test_per_job_notify_email_and_slurm_mail_options(
    make_gflow: type[Gflow], mailbox: Mailbox
) -> None:
    """--notify-email/--notify-on and #SBATCH --mail-user/--mail-type go through the first
    e-mail transport, to the job's own address only."""
    gflow = make_gflow(
        config=(
            "[[notifications.emails]]\n"
            f'smtp_url = "smtp://127.0.0.1:{mailbox.port}"\n'
            'from = "gflow@example.org"\nto = ["ops@example.org"]\nevents = []\n'
        )
    )
    gflow.start()
    ok = gflow.submit("--notify-email", "me@example.org", "--notify-on", "failed", "true")
    bad = gflow.submit("--notify-email", "me@example.org", "--notify-on", "failed", "false")
    script = gflow.workdir / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --mail-user=you@example.org\n#SBATCH --mail-type=BEGIN,END\ntrue\n"
    )
    slurm = gflow.submit(str(script))
    for job_id in (ok, bad, slurm):
        gflow.wait_state(job_id)
    wait_for(lambda: len(mailbox.mails) >= 3 and pending(gflow) == 0, 20, "three mails")
    got = sorted((rcpt[0], mail["Subject"]) for rcpt, mail in mailbox.mails)
    assert got == sorted(
        [
            ("me@example.org", f"[gflow] job {bad} failed (false)"),
            ("you@example.org", f"[gflow] job {slurm} started (job.sbatch)"),
            ("you@example.org", f"[gflow] job {slurm} finished (job.sbatch)"),
        ]
    )


def test_notify_on_without_an_address_is_bad_input(gflow: Gflow) -> None:
    done = gflow.run("gbatch", "--notify-on", "failed", "true")
    assert done.returncode == 2
    assert "needs --notify-email" in done.stderr
    done = gflow.run("gbatch", "--notify-email", "x@y", "--notify-on", "sometimes", "true")
    assert done.returncode == 2 and "invalid --notify-on 'sometimes'" in done.stderr
