"""gflowd: start, stop, restart, reload (the config), inspect or run the daemon; `web`
prints a one-time dashboard login."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from gflow.cli.common import EXIT_FAILED, EXIT_OK, Parser, print_json, run
from gflow.client import Client, DaemonNotRunning
from gflow.config import load_config
from gflow.core.errors import Forbidden, GflowError, Unavailable
from gflow.core.parse import format_duration
from gflow.paths import Paths
from gflow.safefs import ensure_private_dir, open_private

START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


def build_parser(prog: str = "gflowd") -> Parser:
    parser = Parser(prog, "Manage the gflow daemon.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    system_help = "the shared system daemon (root): /etc/gflow, /var/lib/gflow, /run/gflow"
    for name, short, text in (
        ("start", ["up"], "start the daemon in the background"),
        ("stop", ["down"], "stop the daemon (running jobs keep running)"),
        ("restart", [], "stop, then start"),
        (
            "reload",
            [],
            "re-read the config: checked first, then the daemon restarts (jobs keep running)",
        ),
        ("run", [], "run the daemon in the foreground"),
    ):
        action = sub.add_parser(name, aliases=short, help=text)
        action.add_argument("--system", action="store_true", help=system_help)
    status = sub.add_parser("status", help="is it running, with what (and which one, why)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--system", action="store_true", help=system_help)
    sub.add_parser("init", help="write a commented default config file")
    sub.add_parser("web", help="print a one-time link that opens the dashboard as you")
    service = sub.add_parser("service", help="write a systemd unit (enables nothing)")
    service.add_argument("service_action", choices=["install"])
    service.add_argument("--system", action="store_true", help="the system daemon's unit")
    aliases = sub.add_parser(
        "slurm-aliases", help="install sbatch/squeue/scancel/sacct/scontrol front doors"
    )
    aliases.add_argument("alias_action", choices=["install", "uninstall"])
    aliases.add_argument("dir", nargs="?", default="", help="where (default ~/.local/bin)")
    return parser


def start(paths: Paths, say: bool = True) -> int:
    paths.check_socket_path()
    if paths.system:
        if os.geteuid() != 0:
            raise Forbidden(
                "only root can start the system daemon", hint="sudo gflowd start --system"
            )
        from gflow.daemon.main import check_system_install, prepare_state_dir

        prepare_state_dir(paths)
        check_system_install(load_config(paths))  # one line naming what users cannot run
    else:
        # Checked before anything is read or written there: ours, private, below nobody else's.
        ensure_private_dir(paths.state_dir)
    client = Client(paths, timeout=5)
    try:
        pid = client.health()["pid"]
        print(f"gflowd is already running (pid {pid})")
        return EXIT_OK
    except DaemonNotRunning:
        pass
    load_config(paths)  # a malformed config stops us here, naming file, line and key
    try:
        out = open_private(paths.daemon_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except OSError as exc:
        raise Unavailable(
            f"cannot open {paths.daemon_log}: {exc.strerror} (a link in its place?)",
            hint="remove it; gflowd creates it",
        ) from None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gflow.daemon", *(["--system"] if paths.system else [])],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    finally:
        os.close(out)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"gflowd failed to start: {_last_line(paths)}")
        try:
            pid = client.health()["pid"]
            if say:
                print(f"gflowd started (pid {pid})")
            return EXIT_OK
        except (DaemonNotRunning, Unavailable):
            time.sleep(0.02)
    raise Unavailable(f"gflowd did not answer within {START_TIMEOUT:.0f} s; see {paths.daemon_log}")


def stop(paths: Paths, say: bool = True) -> int:
    if paths.system and os.geteuid() != 0:
        raise Forbidden("only root can stop the system daemon", hint="sudo gflowd stop --system")
    client = Client(paths, timeout=10)
    try:
        pid = int(client.shutdown()["pid"])
    except DaemonNotRunning:
        print("gflowd is not running")
        return EXIT_OK
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            if say:
                print("gflowd stopped")
            return EXIT_OK
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    print(f"gflowd did not stop within {STOP_TIMEOUT:.0f} s; killed it (jobs keep running)")
    return EXIT_OK


def reload(paths: Paths) -> int:
    """`gflowd reload`: the config is checked before anything stops (a malformed one leaves
    the daemon as it is); then the daemon restarts and reads it. Jobs outlive the daemon,
    so running ones keep running and are watched again, as after `gflowd stop; start`."""
    client = Client(paths, timeout=5)
    try:
        old = client.health()["pid"]
    except DaemonNotRunning:
        raise DaemonNotRunning(
            "gflowd is not running: nothing to reload", hint="start it with: gflowd start"
        ) from None
    load_config(paths)
    stop(paths, say=False)
    start(paths, say=False)
    new = client.health()["pid"]
    print(f"gflowd reloaded its config (pid {old} -> {new}); running jobs kept running")
    return EXIT_OK


def status(paths: Paths, as_json: bool) -> int:
    try:
        info = Client(paths, timeout=10).status()
    except DaemonNotRunning:
        if as_json:
            print_json({"running": False, "mode": paths.mode, "why": paths.why})
        else:
            print("gflowd is not running")
            print(f"Mode:     {_mode_line(paths)}; {paths.why}")
        return EXIT_FAILED
    info["running"] = True
    info["why"] = paths.why
    if as_json:
        print_json(info)
        return EXIT_OK
    counts = info["jobs"]
    gpus = info["gpus"]
    print("Status:   running")
    print(f"Mode:     {_mode_line(paths)}; {paths.why}")
    print(f"PID:      {info['pid']}")
    print(f"Version:  {info['version']}")
    print(f"Uptime:   {format_duration(info['uptime'])}")
    print(f"Executor: {info['executor']}")
    print(f"State:    {info['state_dir']}")
    free = sum(1 for g in gpus if g["allowed"] and not g["jobs"] and not g["foreign_pids"])
    print(f"GPUs:     {len(gpus)} ({info['gpu_backend']}), {free} idle")
    print(f"Memory limits: {info.get('memory_limits', 'rss polling')}")
    print("Jobs:     " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    shown = info.get("web") or {}
    if shown.get("listen"):
        print(f"Dashboard: http://{shown['listen']}/ (sign in: gflowd web)")
    if shown.get("warning"):
        print(f"Warning:  {shown['warning']}")
    return EXIT_OK


def web_link(paths: Paths) -> int:
    """`gflowd web`: a login link the daemon issued to you over the Unix socket."""
    issued = Client(paths, timeout=10).request("POST", "/web/token")
    minutes = max(1, round(issued["expires_in"] / 60))
    print(f"Open the dashboard as {issued['user']} (the link works once, for {minutes} min):")
    print(issued["url"])
    return EXIT_OK


DEFAULT_CONFIG = """\
# gflow configuration. Every key is optional; these are the defaults.

[daemon]
# "tmux": each job in its own tmux session (gjob attach works).
# "process": a detached process group, for machines without tmux.
# "slurm": every job handed to a Slurm cluster with sbatch (see [slurm] below).
executor = "tmux"
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
kill_grace = 30
# Stop a job (reason MemoryLimit) whose processes use more RAM than its --mem
# (by the kernel, in the job's cgroup, where the daemon runs as root).
enforce_memory = true
# Who may act on every job and run gctl (root always may); "@group" for its members.
# admins = ["alice", "@gpu-admins"]
# System mode (gflowd start --system) only:
# socket_group = "gpu-users"           # only this group may connect (default: everyone)
# wrapper_python = "/usr/bin/python3"  # runs each job's wrapper as its user

[slurm]
# With executor = "slurm": where jobs go, and any other sbatch options.
# partition = "gpu"
# account = "lab"
# qos = "normal"
# extra = ["--constraint=a100"]

[gpu]
# Fake GPUs for machines without NVIDIA, e.g. "2x24G" (or set GFLOW_FAKE_GPUS).
# fake = "2x24G"

[web]
# The dashboard (and /metrics) over TCP; `gflowd web` prints a one-time login link.
# listen = "127.0.0.1:9090"
# public = true          # the queue and GPUs read-only without signing in
# session_idle = "12h"   # a browser session ends after this long unused

[history]
# Forget ended jobs (their logs, job directories and events too) once this old, in any
# time form ("90d", "2-00:00:00"), and/or all but the newest keep_jobs of them. gstats
# keeps per-day totals, so its counts outlive them. Unset: kept until `gctl purge`.
# keep = "90d"
# keep_jobs = 100000
"""


def init(paths: Paths) -> int:
    if paths.config_file.exists():
        print(f"{paths.config_file} already exists; left unchanged")
        return EXIT_OK
    if paths.config_file.parent == paths.state_dir:  # GFLOW_HOME: config and state together
        ensure_private_dir(paths.state_dir)
    else:
        paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    fd = open_private(paths.config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(fd, "w") as out:
        out.write(DEFAULT_CONFIG)
    print(f"wrote {paths.config_file}")
    return EXIT_OK


def _mode_line(paths: Paths) -> str:
    """`personal (<state dir>)` or `system (/run/gflow/gflowd.sock)`."""
    return f"system ({paths.socket})" if paths.system else f"personal ({paths.state_dir})"


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its new parent (init) to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"


def _last_line(paths: Paths) -> str:
    try:
        fd = open_private(paths.daemon_log, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return "no log"
    with os.fdopen(fd, "rb") as log:
        log.seek(max(0, os.fstat(fd).st_size - 65536))
        lines = log.read().decode(errors="replace").strip().splitlines()
    return lines[-1].removeprefix("gflowd: ") if lines else "no output"


def dispatch(action: str | None, paths: Paths, as_json: bool = False) -> int:
    if action in ("start", "up"):
        return start(paths)
    if action in ("stop", "down"):
        return stop(paths)
    if action == "restart":
        stop(paths)
        return start(paths)
    if action == "reload":
        return reload(paths)
    if action == "status":
        return status(paths, as_json)
    if action == "init":
        return init(paths)
    if action == "web":
        return web_link(paths)
    if action == "run":
        from gflow.daemon.main import main as run_daemon

        return run_daemon(["--system"] if paths.system else [])
    raise GflowError(f"unknown action {action!r}")


def command(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.action is None:
        parser.print_help()
        return EXIT_OK
    if args.action == "service":
        from gflow.cli.service_unit import install

        return install(args.system)
    if args.action == "slurm-aliases":
        from gflow.cli.slurm_front import aliases_command

        return aliases_command(args.alias_action, args.dir)
    if getattr(args, "system", False):
        paths = Paths.for_system()
    elif args.action in ("status", "web"):
        paths = Paths.for_client()  # the one the other commands would talk to, and why
    else:
        paths = Paths.from_env()
    return dispatch(args.action, paths, getattr(args, "json", False))


def main(argv: Sequence[str] | None = None) -> int:
    return run("gflowd", command, argv)
