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
from typing import IO

from aiohttp import web

from gflow.config import Config, load_config, split_listen
from gflow.core.errors import Forbidden, GflowError
from gflow.core.notify import check_targets
from gflow.daemon.app import make_app, make_tcp_app
from gflow.daemon.connections import KEEPALIVE_TIMEOUT, AcceptErrorLog, Guards, guarded
from gflow.daemon.events import EventBus
from gflow.daemon.machine import MachineView
from gflow.daemon.metrics import Metrics
from gflow.daemon.notify.router import Router
from gflow.daemon.notify.worker import Deliveries
from gflow.daemon.service import Service
from gflow.paths import Paths
from gflow.resources.gpu import make_gpu_backend
from gflow.runner.executors import make_executor
from gflow.safefs import ensure_private_dir, ensure_private_subdir, open_private, tighten_file
from gflow.store import outbox
from gflow.store.db import Store, StoreError

log = logging.getLogger("gflow.daemon")

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
    store = Store.open(paths.database)
    executor = make_executor(config.executor, paths.tmux_socket)
    gpus = make_gpu_backend(config.fake_gpus, paths.fake_gpu_usage)
    machine = MachineView(gpus, store)
    service = Service(paths, config, store, executor, machine, job_umask=job_umask)
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
    runner = web.AppRunner(
        make_app(service, stop, bus, metrics, router),
        access_log=None,
        shutdown_timeout=2.0,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    assert runner.server is not None
    paths.socket.unlink(missing_ok=True)
    old_umask = os.umask(0o177)  # the socket is born 0600: only its owner may talk to it
    try:
        server = await loop.create_unix_server(
            guarded(runner.server, Guards()), str(paths.socket), backlog=BACKLOG
        )
    finally:
        os.umask(old_umask)
    tcp = await serve_tcp(config, metrics) if config.web_listen else None
    service.start()
    if targets or outbox.pending(store):
        deliveries.start()  # also to send (or drop) what a crash left owed
    log.info(
        "gflowd started: pid %d, executor %s, state %s", os.getpid(), executor.name, paths.state_dir
    )
    try:
        await stop.wait()
    finally:
        log.info("gflowd stopping; running jobs keep running")
        bus.close()  # open event streams end
        await deliveries.close()
        server.close()
        if tcp is not None:
            tcp[1].close()
            await tcp[0].cleanup()
        await runner.cleanup()
        paths.socket.unlink(missing_ok=True)
        executor.close()
        store.close()


async def serve_tcp(
    config: Config, metrics: Metrics
) -> tuple[web.AppRunner, asyncio.AbstractServer]:
    """`[web] listen = "127.0.0.1:PORT"`: /metrics over TCP, through the same connection
    bounds as the socket."""
    host, port = split_listen(config.web_listen)
    runner = web.AppRunner(make_tcp_app(metrics), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(guarded(runner.server, Guards(64)), host, port)
    log.info("serving /metrics on %s", config.web_listen)
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
    goes through directories only we can change."""
    real = ensure_private_dir(paths.state_dir)
    checked = Paths(paths.config_file, real)
    checked.check_socket_path()
    for name in ("logs", "jobs"):
        ensure_private_subdir(real, name)
    for file in (checked.database, checked.daemon_log, checked.lock_file):
        tighten_file(file)
    for suffix in ("-wal", "-shm"):
        tighten_file(checked.database.with_name(checked.database.name + suffix))
    return checked


def main(argv: list[str] | None = None) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT or a shutdown request."""
    # Everything the daemon creates is private (db, logs, job files); jobs get back the
    # umask gflowd was started with, their owner's.
    job_umask = os.umask(0o077)
    try:
        paths = prepare_state_dir(Paths.from_env())
        config = load_config(paths)
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
