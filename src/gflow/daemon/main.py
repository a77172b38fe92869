"""Start-up and shut-down of gflowd: lock, log, database, socket, service, signals."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import sys
from contextlib import suppress
from typing import IO

from aiohttp import web

from gflow.config import Config, load_config
from gflow.core.errors import GflowError
from gflow.daemon.app import make_app
from gflow.daemon.machine import MachineView
from gflow.daemon.service import Service
from gflow.paths import Paths
from gflow.resources.gpu import make_gpu_backend
from gflow.runner.executors import make_executor
from gflow.store.db import Store, StoreError

log = logging.getLogger("gflow.daemon")


class AlreadyRunning(Exception):
    pass


def acquire_lock(paths: Paths) -> IO[str]:
    """One daemon per state directory: an exclusive flock held for the daemon's lifetime."""
    handle = open(paths.lock_file, "a+")  # noqa: SIM115 - held open until the process exits
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


def setup_logging(paths: Paths, foreground: bool) -> None:
    handlers: list[logging.Handler] = [logging.FileHandler(paths.daemon_log)]
    if foreground and sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


async def serve(paths: Paths, config: Config) -> None:
    store = Store.open(paths.database)
    executor = make_executor(config.executor, paths.tmux_socket_name)
    gpus = make_gpu_backend(config.fake_gpus, paths.fake_gpu_usage)
    service = Service(paths, config, store, executor, MachineView(gpus, store))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(service, stop), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    paths.socket.unlink(missing_ok=True)
    old_umask = os.umask(0o177)  # the socket is born 0600: only its owner may talk to it
    try:
        site = web.UnixSite(runner, str(paths.socket))
        await site.start()
    finally:
        os.umask(old_umask)
    service.start()
    log.info(
        "gflowd started: pid %d, executor %s, state %s", os.getpid(), executor.name, paths.state_dir
    )
    try:
        await stop.wait()
    finally:
        log.info("gflowd stopping; running jobs keep running")
        await runner.cleanup()
        paths.socket.unlink(missing_ok=True)
        executor.close()
        store.close()


def main(argv: list[str] | None = None) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT or a shutdown request."""
    paths = Paths.from_env()
    try:
        paths.check_socket_path()
        config = load_config(paths)
        for directory in (paths.state_dir, paths.logs_dir, paths.jobs_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = acquire_lock(paths)
    except (GflowError, AlreadyRunning) as exc:
        message = exc.message if isinstance(exc, GflowError) else str(exc)
        print(f"gflowd: {message}", file=sys.stderr)
        return 1
    setup_logging(paths, foreground=True)
    try:
        asyncio.run(serve(paths, config))
    except StoreError as exc:
        log.error("%s", exc)
        print(f"gflowd: {exc}", file=sys.stderr)
        return 1
    finally:
        with suppress(OSError):
            lock.close()
    return 0
