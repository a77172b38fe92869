"""What the API reads without changing anything: job listings, the GPUs and CPUs, the
reservation timeline, fair share, quotas and the daemon's status."""

from __future__ import annotations

import os
import pwd
from typing import Any

from gflow import __version__
from gflow.config import web_exposure_warning
from gflow.core.errors import InvalidInput
from gflow.core.model import Job
from gflow.core.states import JobState
from gflow.daemon.identity import Caller
from gflow.daemon.service_base import ServiceBase
from gflow.daemon.sharing import fair_share_report, quota_status
from gflow.resources.cgroups import RSS_POLLING
from gflow.store.db import JobFilter


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class Views(ServiceBase):
    """Read-only answers, from the active jobs in memory and the store."""

    def list_jobs(self, where: JobFilter) -> list[Job]:
        return self.store.list_jobs(where)

    def list_fields_json(self, where: JobFilter, fields: list[str]) -> str:
        return self.store.list_fields_json(where, fields)

    def gpu_status(self) -> list[dict[str, Any]]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        return self.machine.describe(running)

    def cpu_status(self) -> dict[str, Any]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        return self.machine.describe_cpus(running)

    def reservation_view(self) -> dict[str, Any]:
        """Every reservation not over, the GPUs, and running jobs' expected ends (for the
        timeline)."""
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        return {
            "reservations": [r.to_dict() for r in self.reservations.current()],
            "gpus": [g.index for g in self.machine.gpus()],
            "running": [
                {"id": j.id, "user": j.user, "gpu_ids": list(j.gpu_ids), "ends_by": j.ends_by()}
                for j in running
                if j.gpu_ids
            ],
            "now": self.clock(),
        }

    def fair_share(self) -> dict[str, Any]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        report = fair_share_report(
            self.config, self.store, running, self.clock(), self._rules.ended, _user_name
        )
        # What the scheduler orders by now (recomputed at most every few seconds).
        report["scheduler_usage"] = {_user_name(u): h for u, h in self._rules.usage.items()}
        report["scheduler_computed_at"] = self._rules.at if self._rules.at > 0 else None
        return report

    def quota(self, caller: Caller, user: str | None) -> dict[str, Any]:
        """`gctl quota show [--user U]`: your own, or (admin) anyone's."""
        name = user or caller.user
        if name != caller.user:
            self._admin(caller, "see another user's quota")
        try:
            uid = pwd.getpwnam(name).pw_uid
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            raise InvalidInput(f"unknown user {name!r}", hint="give a user name") from None
        return quota_status(self.config, self.jobs.values(), self.store, name, uid)

    def status(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime": self.clock() - self.started_at,
            "executor": self.backend.name,
            "state_dir": str(self.paths.state_dir),
            "mode": self.paths.mode,
            "memory_limits": self.memory.describe()
            if self.memory is not None
            else RSS_POLLING
            if self.config.enforce_memory
            else "off",
            "socket": str(self.paths.socket),
            "gpu_backend": self.machine.backend.name,
            "gpus": self.gpu_status(),
            "jobs": self.store.count_by_state(),
            "web": {
                "listen": self.config.web_listen,
                "warning": web_exposure_warning(self.config.web_listen),
            },
        }
