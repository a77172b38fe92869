"""The service: what the API asks for, on top of the supervisor that owns job state and
running jobs (daemon/supervisor.py), composed of its parts:

- daemon/submitting.py: submissions and their checks;
- daemon/job_commands.py: cancel, hold, release, update, redo;
- daemon/views.py: listings, GPU/CPU status, reservations, fair share, quota, status;
- daemon/scheduling.py: scheduling passes and the resource tick;
- here: start-up and shutdown, admin settings (GPUs, ignored GPU processes, group
  limits, purge) and reservations.

Everything runs on the daemon's single asyncio loop; state changes go through the
supervisor's `_transition` and `_commit`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gflow.config import Config
from gflow.core.errors import InvalidInput
from gflow.core.model import Job
from gflow.core.states import ACTIVE_STATES, JobState
from gflow.daemon.backends import Backend, make_backend
from gflow.daemon.identity import Caller
from gflow.daemon.job_commands import JobCommands
from gflow.daemon.machine import MachineView
from gflow.daemon.reservations import Request, ReservationBook
from gflow.daemon.retention import HistoryKeeper
from gflow.daemon.scheduling import SchedulingPass
from gflow.daemon.sharing import EndedGpuUsage, RulesCache
from gflow.daemon.submitting import Submissions, exec_limit
from gflow.daemon.usage import UsageRecorder
from gflow.daemon.views import Views
from gflow.paths import Paths
from gflow.resources.cgroups import CgroupMemory
from gflow.runner.executors import ProcessExecutor, TmuxExecutor
from gflow.safefs import remove_entry
from gflow.store.db import JobFilter, Store

log = logging.getLogger(__name__)


class Service(Submissions, JobCommands, Views, SchedulingPass):
    """Commands from the API, scheduling passes and the resource tick, on top of the
    supervisor that owns job state and running jobs."""

    def __init__(
        self,
        paths: Paths,
        config: Config,
        store: Store,
        executor: TmuxExecutor | ProcessExecutor,
        machine: MachineView,
        clock: Callable[[], float] = time.time,
        job_umask: int = 0o022,
        memory: CgroupMemory | None = None,
    ) -> None:
        super().__init__(paths, config, store, executor, clock, job_umask, memory)
        self.machine = machine
        self.exec_limit = exec_limit()
        self.usage = UsageRecorder(store)
        self._rules = RulesCache(ended=EndedGpuUsage(config.fair_share_half_life))
        self.reservations = ReservationBook(store, clock)
        self._big_submission = asyncio.Lock()
        self.started_at = clock()
        self._pass_requested = False
        self._begin_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None
        self._release_memory = 0  # ticks left that give freed memory back
        self.on_pass: Callable[[float], None] | None = None  # seconds a pass took (metrics)
        self._trim_events_at = 0.0
        self.history = HistoryKeeper(store, config, clock, self._forget_files)
        self._blocked_gpus: frozenset[int] | None = None  # by foreign processes, last tick
        # Where jobs run: this machine, or a Slurm cluster (daemon/backends/).
        self.backend: Backend = make_backend(config.executor, self)

    # ---- start-up ----------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        active = self.store.list_jobs(JobFilter(states=ACTIVE_STATES))
        self.jobs = {job.id: job for job in active}
        self.release_memory_soon()  # what reading them took
        self.backend.start()  # local: reconcile running jobs; Slurm: mirror and adopt
        self.store.record_system_event(self.clock(), "daemon_started", f"pid {os.getpid()}")
        self.request_pass()
        self._tick()

    def close(self) -> None:
        super().close()
        for handle in (self._tick_timer, self._begin_timer):
            if handle is not None:
                handle.cancel()
        self.history.close()

    # ---- admin settings ------------------------------------------------------------------

    def purge(self, caller: Caller, older_than: float) -> int:
        """`gctl purge --before 30d`: forget ended jobs older than that, logs included."""
        self._admin(caller, "purge job history")
        purged = self.store.purge(self.clock() - older_than)
        self._forget_files(purged)
        return len(purged)

    def _forget_files(self, purged: list[Job]) -> None:
        """The logs and job directories of forgotten jobs, through directory descriptors:
        no link is ever followed."""
        for job in purged:
            log_file = Path(job.log_path)
            if log_file.parent == self._logs_of(Caller(job.uid, job.user)):
                remove_entry(log_file.parent, log_file.name)
            remove_entry(self.paths.jobs_dir, str(job.id))

    def set_gpus(self, caller: Caller, indices: list[int] | None) -> list[dict[str, Any]]:
        self._admin(caller, "change the usable GPUs")
        self.machine.set_allowed(indices)
        usable = "all" if indices is None else ",".join(map(str, indices))
        self.store.record_system_event(self.clock(), "gpus", f"usable GPUs: {usable}")
        self.request_pass()
        return self.gpu_status()

    def ignore_gpu_process(self, caller: Caller, pid: int, undo: bool) -> list[dict[str, Any]]:
        """`gctl ignore-gpu-process PID [--undo]` (admin): let whole-GPU jobs use a GPU that
        a stale foreign process pins, or stop doing so."""
        self._admin(caller, "change which GPU processes are ignored")
        if undo:
            self.machine.unignore(pid)
        else:
            self.machine.ignore(pid, caller.user, self.clock())
        self.request_pass()
        return self.machine.ignored_list()

    def set_group_limit(self, caller: Caller, job_or_group: int, limit: int) -> int:
        """`gctl set-limit`: at most `limit` of the group's jobs run at once."""
        group = self.get_job(job_or_group).group_id
        if group is None:
            raise InvalidInput(
                f"job {job_or_group} is not in a group",
                hint="groups are made by submitting with --max-concurrent",
            )
        self._admin(caller, "change a group's limit")
        changed = [
            self._transition_free(job, "limit", str(limit), max_concurrent=limit)
            for job in self.jobs.values()
            if job.group_id == group
        ]
        self._commit(changed)
        self.request_pass()
        return len(changed)

    # ---- reservations (daemon/reservations.py) -------------------------------------------

    def reserve(self, caller: Caller, request: Request) -> dict[str, Any]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        gpus = [g.index for g in self.machine.gpus()]
        made, warnings = self.reservations.create(
            self.config, caller.user, self._is_admin(caller), request, gpus, running
        )
        log.info("%s made %s", caller.user, made.describe())
        self.request_pass()
        return {"reservation": made.to_dict(), "warnings": warnings}

    def cancel_reservation(self, caller: Caller, reservation_id: int) -> dict[str, Any]:
        gone = self.reservations.cancel(reservation_id, caller.user, self._is_admin(caller))
        self.request_pass()
        return {"reservation": gone.to_dict()}

    def _is_admin(self, caller: Caller) -> bool:
        return caller.admin
