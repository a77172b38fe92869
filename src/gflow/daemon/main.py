"""Start-up and shut-down of gflowd: lock, log, database, socket, service, signals."""

from __future__ import annotations

import asyncio
import fcntl
import io
import logging
import os
import resource
import signal
import sys
from contextlib import suppress
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

from aiohttp import web

from gflow.config import Config, load_config, split_listen, web_exposure_warning
from gflow.core.errors import Forbidden, GflowError, InvalidInput
from gflow.core.notify import check_targets
from gflow.daemon.app import make_app
from gflow.daemon.connections import KEEPALIVE_TIMEOUT, AcceptErrorLog, Guards, guarded
from gflow.daemon.events import EventBus
from gflow.daemon.identity import AccessPolicy
from gflow.daemon.machine import MachineView
from gflow.daemon.memory import one_heap
from gflow.daemon.metrics import Metrics
from gflow.daemon.notify.router import Router
from gflow.daemon.notify.worker import Deliveries
from gflow.daemon.service import Service
from gflow.daemon.web.app import make_web_app
from gflow.daemon.web.sessions import Sessions
from gflow.daemon.web.token import WebSettings
from gflow.paths import Paths
from gflow.resources import cgroups
from gflow.resources.gpu import make_gpu_backend
from gflow.runner.executors import make_executor
from gflow.safefs import ensure_private_dir, ensure_private_subdir, open_private, tighten_file
from gflow.store import outbox
from gflow.store.db import Store, StoreError
from gflow.store.integrity import check_integrity

log = logging.getLogger("gflow.daemon")
LAUNCH_SETTLE = 10.0  # seconds a stopping daemon waits for the launches under way

LOG_BYTES = 10 * 1024 * 1024  # gflowd.log rotates past this: a storm cannot fill the disk
LOG_BACKUPS = 3
BACKLOG = 512


class AlreadyRunning(Exception):
    pass


def acquire_lock(paths: Paths) -> IO[str]:
    """One daemon per state directory: an exclusive flock held for the daemon's lifetime."""
    try:
        fd = open_private(paths.lock_file, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise Forbidden(
            f"cannot open {paths.lock_file}: {exc.strerror} (a link in its place?)",
            hint="remove it; gflowd creates it",
        ) from None
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(
            f"gflowd is already running (pid {pid}) for {paths.state_dir}"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class PrivateRotatingLog(RotatingFileHandler):
    """gflowd.log, bounded (LOG_BYTES, then .1 … .LOG_BACKUPS) and opened without
    following a link."""

    def _open(self) -> io.TextIOWrapper:
        fd = open_private(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


def setup_logging(paths: Paths, foreground: bool) -> None:
    handlers: list[logging.Handler] = [
        PrivateRotatingLog(paths.daemon_log, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)
    ]
    if foreground and sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


async def serve(paths: Paths, config: Config, job_umask: int) -> None:
    # The integrity check (seconds on a year's history) runs in a thread beside the rest of
    # the set-up; nothing is written, nor the socket opened, before it has passed.
    store = Store.open(paths.database, check=False)
    checked = asyncio.create_task(asyncio.to_thread(check_integrity, paths.database))
    executor = make_executor(
        config.executor,
        paths.tmux_socket,
        paths.users_dir if paths.system else None,
        wrapper_python(config),
    )
    gpus = make_gpu_backend(config.fake_gpus, paths.fake_gpu_usage)
    machine = MachineView(gpus, store)
    memory = None
    if config.enforce_memory:
        memory = cgroups.detect(cgroups.state_tag(paths.state_dir))
    service = Service(paths, config, store, executor, machine, job_umask=job_umask, memory=memory)
    policy = AccessPolicy.from_config(os.geteuid(), paths.system, config.admins)
    stop = asyncio.Event()
    bus = EventBus(store.event_head)
    store.on_events = bus.published  # the one event source: after each commit
    metrics = Metrics(service)
    service.on_pass = metrics.passes.observe
    targets = check_targets(config.webhooks, config.emails)
    router = Router(targets, service.clock)
    if targets:
        store.outbox = router  # deliveries owed are written with their events
    deliveries = Deliveries(store, targets, service.clock)
    bus.subscribe(deliveries.poke)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    loop.set_exception_handler(AcceptErrorLog())
    # Dashboard sessions: issued over the socket, used over TCP (daemon/web/).
    sessions = Sessions(service.clock, config.web_session_idle)
    settings = WebSettings(config.web_listen, config.web_public)
    runner = web.AppRunner(
        make_app(service, stop, bus, metrics, router, policy, sessions, settings),
        access_log=None,
        shutdown_timeout=2.0,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    assert runner.server is not None
    try:
        await checked
    except StoreError:
        store.close()
        raise
    paths.socket.unlink(missing_ok=True)
    # Personal: the socket is born 0600, only its owner may talk to it. System: every local
    # user (0666), or one group's members (0660); who calls is the kernel's to say.
    group = socket_gid(config) if paths.system else None
    old_umask = os.umask(0o177 if not paths.system else 0o117 if group is not None else 0o111)
    try:
        server = await loop.create_unix_server(
            guarded(runner.server, Guards()), str(paths.socket), backlog=BACKLOG
        )
        if group is not None:
            os.chown(paths.socket, 0, group, follow_symlinks=False)
    finally:
        os.umask(old_umask)
    tcp = None
    if config.web_listen:
        site = make_web_app(service, bus, metrics, policy, sessions, settings)
        tcp = await serve_tcp(config, site)
    service.start()
    if targets or outbox.pending(store):
        deliveries.start()  # also to send (or drop) what a crash left owed
    log.info(
        "gflowd started (%s mode): pid %d, executor %s, state %s",
        paths.mode,
        os.getpid(),
        executor.name,
        paths.state_dir,
    )
    try:
        await stop.wait()
    finally:
        log.info("gflowd stopping; running jobs keep running")
        await service.settle_launches(LAUNCH_SETTLE)
        bus.close()  # open event streams end
        await deliveries.close()
        server.close()
        if tcp is not None:
            tcp[1].close()
            await tcp[0].cleanup()
        await runner.cleanup()
        paths.socket.unlink(missing_ok=True)
        await service.backend.close()  # local: the executor's close
        if memory is not None:
            memory.close()
        service.close()
        store.close()


async def serve_tcp(
    config: Config, site: web.Application
) -> tuple[web.AppRunner, asyncio.AbstractServer]:
    """`[web] listen = "127.0.0.1:PORT"`: the dashboard and /metrics over TCP
    (daemon/web/app.py), through the same connection bounds as the socket."""
    host, port = split_listen(config.web_listen)
    runner = web.AppRunner(
        site, access_log=None, shutdown_timeout=1.0, keepalive_timeout=KEEPALIVE_TIMEOUT
    )
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(guarded(runner.server, Guards(64)), host, port)
    log.info("serving the dashboard and /metrics on http://%s/", config.web_listen)
    if warning := web_exposure_warning(config.web_listen):
        log.warning("%s", warning)
    return runner, server


def raise_file_limit() -> None:
    """The soft limit on open files up to the hard one: each connection costs one, and the
    1,024 many systems start with was once run out of by idle connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def prepare_state_dir(paths: Paths) -> Paths:
    """The state directory checked and private, with its real path: everything after this
    goes through directories only we can change.

    System mode: /var/lib/gflow and its jobs/ and logs/ are root's 0711 (users pass
    through to their own jobs/<id>/ and logs/<uid>/, which they cannot list around);
    /run/gflow and users/ root's 0755."""
    if not paths.system:
        real = ensure_private_dir(paths.state_dir)
        checked = Paths(paths.config_file, real)
        sub_mode = 0o700
    else:
        for parent in (paths.state_dir.parent, paths.run_dir.parent):
            _make_public_parents(parent)
        real = ensure_private_dir(paths.state_dir, mode=0o711)
        run = ensure_private_dir(paths.run_dir, mode=0o755)
        ensure_private_subdir(run, "users", mode=0o755)
        checked = Paths(paths.config_file, real, run, system=True, why=paths.why)
        sub_mode = 0o711
    checked.check_socket_path()
    for name in ("logs", "jobs"):
        ensure_private_subdir(real, name, mode=sub_mode)
    for file in (checked.database, checked.daemon_log, checked.lock_file):
        tighten_file(file)
    for suffix in ("-wal", "-shm"):
        tighten_file(checked.database.with_name(checked.database.name + suffix))
    return checked


def _make_public_parents(path: Path) -> None:
    """/var/lib, /run (or their stand-ins under GFLOW_SYSTEM_ROOT): made 0755 if missing,
    so users can pass through to the daemon's directories."""
    old = os.umask(0o022)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    finally:
        os.umask(old)


def wrapper_python(config: Config) -> str:
    """The interpreter that runs jobs' wrappers: the config's, or the daemon's own."""
    return config.wrapper_python or sys.executable


def check_system_install(config: Config) -> None:
    """Jobs run as their users: the wrapper's interpreter and package must be theirs to
    run and read (a venv whose python lives under a 0700 /root fails every job)."""
    from gflow.runner.as_user import runnable_by_all
    from gflow.runner.executors import WRAPPER

    python = Path(wrapper_python(config))
    if blocked := runnable_by_all(python):
        raise Forbidden(
            f"other users cannot run the wrapper's interpreter {python} ({blocked} stops them)",
            hint='set [daemon] wrapper_python = "/usr/bin/python3" (or install gflow in a '
            "tree every user can read, e.g. /opt/gflow)",
        )
    for needed in (WRAPPER, WRAPPER.parent):
        if blocked := runnable_by_all(needed):
            raise Forbidden(
                f"other users cannot read the job wrapper {needed} ({blocked} stops them)",
                hint="install gflow in a tree every user can read, e.g. /opt/gflow",
            )


def socket_gid(config: Config) -> int | None:
    if not config.socket_group:
        return None
    import grp

    try:
        return grp.getgrnam(config.socket_group).gr_gid
    except KeyError:
        raise InvalidInput(
            f"daemon.socket_group: no group {config.socket_group!r}",
            hint="create it (groupadd) or leave socket_group out: every user may connect",
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT or a shutdown request.
    `--system`: the shared daemon (root only), its layout in /etc, /var/lib and /run."""
    args = sys.argv[1:] if argv is None else argv
    system = "--system" in args
    one_heap()  # before any thread starts
    # Everything the daemon creates is private (db, logs, job files); jobs get back the
    # umask gflowd was started with, their owner's (system mode: their submitter's).
    job_umask = os.umask(0o077)
    try:
        if system and os.geteuid() != 0:
            raise Forbidden("only root can run the system daemon (gflowd start --system)")
        paths = prepare_state_dir(Paths.for_system() if system else Paths.from_env())
        config = load_config(paths)
        if system:
            check_system_install(config)
            socket_gid(config)
        lock = acquire_lock(paths)
        raise_file_limit()
    except (GflowError, AlreadyRunning) as exc:
        message = exc.message if isinstance(exc, GflowError) else str(exc)
        print(f"gflowd: {message}", file=sys.stderr)
        return 1
    setup_logging(paths, foreground=True)
    try:
        asyncio.run(serve(paths, config, job_umask))
    except StoreError as exc:
        log.error("%s", exc)
        print(f"gflowd: {exc}", file=sys.stderr)
        return 1
    finally:
        with suppress(OSError):
            lock.close()
    return 0
