"""Watching a job's wrapper for its exit (pidfd on the event loop) and signalling its processes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import psutil

from gflow.runner.jobfiles import PidRecord


def watch_exit(loop: asyncio.AbstractEventLoop, pid: int, on_exit: Callable[[], None]) -> None:
    """Call `on_exit` once, as soon as process `pid` has exited (not by polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        loop.call_soon(on_exit)
        return

    def ready() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        on_exit()

    loop.add_reader(fd, ready)


def signal_job(wrapper_pid: int, record: PidRecord | None, signum: int) -> None:
    """Send a signal to every process of the job, but not to its wrapper.

    The wrapper must live on to record how the job ended. Before the wrapper has forked the
    command there is no job process yet: the wrapper itself takes the signal and passes it on.
    """
    if record is None:
        _kill(wrapper_pid, signum)
        return
    try:
        children = psutil.Process(record.wrapper_pid).children(recursive=True)
    except psutil.Error:
        children = []
    for child in children:
        _kill(child.pid, signum)
    try:
        os.killpg(record.pgid, signum)
    except OSError:
        pass


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass
