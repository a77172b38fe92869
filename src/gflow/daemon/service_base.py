"""What every part of the Service shares: the state that `Service.__init__`
(daemon/service.py) sets up, declared once for the parts' mixins, and the one check
more than one of them makes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gflow.daemon.backends import Backend
from gflow.daemon.identity import Caller, require_admin
from gflow.daemon.machine import MachineView
from gflow.daemon.reservations import ReservationBook
from gflow.daemon.retention import HistoryKeeper
from gflow.daemon.sharing import RulesCache
from gflow.daemon.supervisor import JobSupervisor
from gflow.daemon.usage import UsageRecorder


class ServiceBase(JobSupervisor):
    """The supervisor plus the service's state: the base of each of the Service's parts
    (daemon/submitting.py, job_commands.py, views.py, scheduling.py)."""

    # Set by Service.__init__, which says what each is for.
    machine: MachineView
    exec_limit: int
    usage: UsageRecorder
    _rules: RulesCache
    reservations: ReservationBook
    _big_submission: asyncio.Lock
    started_at: float
    _pass_requested: bool
    _begin_timer: asyncio.TimerHandle | None
    _tick_timer: asyncio.TimerHandle | None
    _release_memory: int
    on_pass: Callable[[float], None] | None
    _trim_events_at: float
    history: HistoryKeeper
    _blocked_gpus: frozenset[int] | None
    backend: Backend

    def _admin(self, caller: Caller, what: str) -> None:
        require_admin(caller, what)
