"""Watching a job's wrapper for its exit (pidfd on the event loop) and signalling its
processes: only processes proven to be the job's, from what the daemon itself recorded.

A pid alone names nothing for long: after the job ends, or after a reboot, the same number
is someone else's process. So a job's processes are named by `JobProcesses` (pid, start
time, boot), recorded by the daemon at launch, never by the pid file the job could write.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psutil

from gflow.core.model import JobProcesses
from gflow.runner.wrapper import start_ticks

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot's identity: start times in clock ticks mean nothing across a reboot."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def identify(wrapper_pid: int, boot: str) -> JobProcesses:
    """The wrapper as it is now, right after its launch reported `wrapper_pid`."""
    return JobProcesses(boot, wrapper_pid, start_ticks(wrapper_pid))


def wrapper_alive(procs: JobProcesses, boot: str) -> bool:
    """Is the recorded wrapper still that same process (same boot, same start time)?"""
    if procs.boot_id != boot or procs.wrapper_ticks is None:
        return False
    return start_ticks(procs.wrapper_pid) == procs.wrapper_ticks


def with_group(procs: JobProcesses, boot: str) -> JobProcesses:
    """Add the command's process group, found as the live wrapper's child that leads its
    own group (the wrapper forks the command into a new session): seen, not told."""
    if procs.group_id is not None or not wrapper_alive(procs, boot):
        return procs
    try:
        children = psutil.Process(procs.wrapper_pid).children()
    except psutil.Error:
        return procs
    for child in sorted(children, key=lambda c: c.pid):
        try:
            leads = os.getpgid(child.pid) == child.pid
        except OSError:
            continue
        ticks = start_ticks(child.pid)
        if leads and ticks is not None and wrapper_alive(procs, boot):
            return replace(procs, group_id=child.pid, group_ticks=ticks)
    return procs


def watch_exit(
    loop: asyncio.AbstractEventLoop, pid: int, on_exit: Callable[[], None]
) -> int | None:
    """Call `on_exit` once, as soon as process `pid` has exited (not by polling). Returns
    the pidfd (valid until `on_exit` has run), or None if the process is already gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        loop.call_soon(on_exit)
        return None

    def ready() -> None:
        loop.remove_reader(fd)
        try:
            on_exit()
        finally:
            os.close(fd)

    loop.add_reader(fd, ready)
    return fd


def signal_job(procs: JobProcesses, signum: int, boot: str, pidfd: int | None = None) -> None:
    """Send a signal to every proven process of the job, but not to its wrapper.

    The wrapper must live on to record how the job ended. Before it has forked the command
    there is no job process yet: the wrapper itself takes the signal (through its pidfd,
    which cannot name another process) and passes it on.
    """
    if procs.boot_id != boot:
        return  # a reboot ended every process the job had
    alive = wrapper_alive(procs, boot)
    sent = False
    if alive:
        try:
            # psutil checks each child's start time before signalling: a pid that was reused
            # between listing and sending is not hit.
            for child in psutil.Process(procs.wrapper_pid).children(recursive=True):
                try:
                    child.send_signal(signum)
                    sent = True
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
    sent = _signal_group(procs, signum) or sent
    if alive and not sent and pidfd is not None:
        try:
            signal.pidfd_send_signal(pidfd, signum)
        except OSError:
            pass


def _signal_group(procs: JobProcesses, signum: int) -> bool:
    """The job's process group, if it is still the one recorded: its leader with the same
    start time, or (leader gone) members that started after it. The kernel does not hand out
    a pid while a group of that id exists, so members left behind are the job's."""
    group = procs.group_id
    if group is None or procs.group_ticks is None:
        return False
    leader_ticks = start_ticks(group)
    if leader_ticks is not None and leader_ticks != procs.group_ticks:
        return False  # the number now leads a stranger's process
    if leader_ticks is None and not _group_members_since(group, procs.group_ticks):
        return False
    try:
        os.killpg(group, signum)
    except OSError:
        return False
    return True


def _group_members_since(group: int, since: int) -> bool:
    """The group has members, and every one of them started after its recorded leader."""
    found = False
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != group:
                continue
        except OSError:
            continue
        ticks = start_ticks(proc.pid)
        if ticks is not None and ticks < since:
            return False
        found = True
    return found
