"""grun: run a command through the queue, in the foreground (Slurm's srun, Taskflow's run).

It submits exactly as gbatch does, waits (one status line while queued), streams the job's
output once it runs, and exits with the job's exit code (128+N for signal N). Ctrl-C,
SIGTERM or SIGHUP cancel the job and wait until it is gone. If the daemon restarts
meanwhile, grun reconnects and carries on.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence

from gflow.cli.common import EXIT_FAILED, EXIT_OK, Parser, run
from gflow.cli.gbatch import build_spec, load_script
from gflow.cli.job_options import add_job_options
from gflow.cli.watching import Changes
from gflow.client import Client
from gflow.core.errors import InvalidInput, Unavailable
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import IO, Any

POLL = 0.1  # seconds between looks at the log while the job runs
QUEUED_REFRESH = 2.0  # seconds between redraws of the queue position while nothing happens
RECHECK = 5.0  # seconds between looks at a running job that sent no event
RECONNECT_FOR = 120.0  # seconds to keep trying when the daemon is away


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum


def build_parser(prog: str = "grun") -> Parser:
    p = Parser(
        prog,
        "Run a command through the queue and wait for it in the foreground.",
        usage=f"{prog} [options] COMMAND [ARG ...]",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")
    p.add_argument("--command", dest="shell_string", metavar="'CMD'", help="one shell string")
    add_job_options(p, arrays=False)
    p.add_argument("--no-wait", action="store_true", help="submit and return, like gbatch")
    p.add_argument("-q", "--quiet", action="store_true", help="no status line while queued")
    return p


class Foreground:
    """Follows one job from queued to ended, through daemon restarts."""

    def __init__(self, client: Client, job_id: int, quiet: bool, prog: str = "grun") -> None:
        self.client = client
        self.prog = prog  # who speaks in the status line (gjob log -f uses this too)
        self.job_id = job_id
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last_status = ""
        self.log: IO[bytes] | None = None
        self.remote_offset = 0  # how much of the log the system daemon has sent
        self.changes: Changes | None = None  # the job's events: wake-ups instead of polls

    def wait_for_change(self, timeout: float) -> bool:
        """Until the job's next event (True) or `timeout` (False)."""
        if self.changes is None:
            self.changes = Changes(self.client, {"job": str(self.job_id)})
        return self.changes.wait(timeout)

    def close(self) -> None:
        if self.changes is not None:
            self.changes.close()

    def job(self) -> dict[str, Any]:
        """The job, retrying while the daemon is away (restarting, say)."""
        deadline = time.monotonic() + RECONNECT_FOR
        warned = False
        while True:
            try:
                job: dict[str, Any] = self.client.show_job(self.job_id)["job"]
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                if not warned:
                    self.status("gflowd is not answering; reconnecting…", force_line=True)
                    warned = True
                time.sleep(0.5)
                continue
            if warned:
                self.status("reconnected", force_line=True)
            return job

    def status(self, text: str, force_line: bool = False) -> None:
        if self.quiet or text == self.last_status:
            return
        self.last_status = text
        if self.tty and not force_line:
            sys.stderr.write(f"\r\033[K{self.prog}: {text}")
        else:
            sys.stderr.write(("\n" if self.tty else "") + f"{self.prog}: {text}\n")
        sys.stderr.flush()

    def position(self, job: dict[str, Any]) -> int:
        """How many queued jobs (anyone's) would start before this one."""
        queued = self.client.list_jobs(states="Queued", user="all")
        me = (-job["priority"], job["id"])
        return sum(1 for j in queued if (-j["priority"], j["id"]) < me)

    def wait(self) -> dict[str, Any]:
        if self.changes is None:  # before the first look: no change can slip in between
            self.changes = Changes(self.client, {"job": str(self.job_id)})
        while True:
            job = self.job()
            if job["state"] not in ("Queued", "Hold"):
                if self.tty and self.last_status and not self.quiet:
                    sys.stderr.write("\n")
                return job
            reason = job["reason"] or "Resources"
            where = f"position {self.position(job) + 1}" if job["state"] == "Queued" else "held"
            self.status(f"job {self.job_id} queued ({where}, waiting for {reason})")
            self.wait_for_change(QUEUED_REFRESH)

    def stream(self, job: dict[str, Any]) -> dict[str, Any]:
        """Copy the log to stdout until the job has ended and its log is drained."""
        recheck = time.monotonic() + RECHECK
        while True:
            ended = job["state"] not in ("Queued", "Hold", "Running")
            self.copy_new_output(job["log_path"])
            if ended:
                self.copy_new_output(job["log_path"])
                return job
            if self.wait_for_change(POLL) or time.monotonic() > recheck:
                job = self.job()  # it changed (or, to be sure, now and then)
                recheck = time.monotonic() + RECHECK

    def copy_new_output(self, path: str) -> None:
        if self.client.paths.system:  # the system daemon reads it for its owner
            self._copy_through_daemon()
            return
        if self.log is None:
            try:
                self.log = open(path, "rb")  # noqa: SIM115 - read across many calls
            except FileNotFoundError:
                return
        chunk = self.log.read()
        if chunk:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()

    def _copy_through_daemon(self) -> None:
        from gflow.cli.joblog import read_remote

        while True:
            try:
                data, self.remote_offset, _ = read_remote(
                    self.client, self.job_id, self.remote_offset
                )
            except Unavailable:  # no log yet (or the daemon restarting): the next poll
                return
            if not data:
                return
            sys.stdout.buffer.write(data)
            sys.stdout.flush()

    def cancel(self) -> dict[str, Any]:
        self.status(f"cancelling job {self.job_id}", force_line=True)
        try:
            self.client.job_action(self.job_id, "cancel")
        except Exception:
            pass  # it may have ended meanwhile; what counts is the state below
        while (job := self.job())["state"] in ("Queued", "Hold", "Running"):
            time.sleep(POLL)
        return job


def exit_code_of(job: dict[str, Any]) -> int:
    """The job's exit code as a shell would report it."""
    if job["signal"] is not None:
        return 128 + int(job["signal"])
    if job["exit_code"] is not None:
        return int(job["exit_code"])
    return EXIT_OK if job["state"] == "Finished" else EXIT_FAILED


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


def foreground(args: argparse.Namespace) -> int:
    if args.array is not None:
        raise InvalidInput("grun runs one job; submit arrays with gbatch --array")
    spec = build_spec(args, load_script(args, stdin_is_tty=True))
    client = Client(Paths.for_client())
    job_id = int(client.submit([spec])[0]["id"])
    if args.no_wait:
        print(f"Submitted batch job {job_id}")
        return EXIT_OK
    follower = Foreground(client, job_id, args.quiet)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupted)
    try:
        job = follower.stream(follower.wait())
    except Interrupted as stop:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # cancel once; a second Ctrl-C changes nothing
        job = follower.cancel()
        follower.status(f"job {job_id} {job['state'].lower()}", force_line=True)
        return 128 + stop.signum
    finally:
        follower.close()
    if job["state"] != "Finished":
        follower.status(f"job {job_id} {job['state']} ({job['reason']})", force_line=True)
    return exit_code_of(job)


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    return foreground(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run("grun", command, argv)
