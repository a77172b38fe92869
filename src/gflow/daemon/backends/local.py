"""This machine: the pure policy decides (core/policy.py) and the supervisor starts,
watches (a pidfd per wrapper) and stops the wrappers (daemon/supervisor.py). This backend
is the thin seam between the service and that code, which stays where it was."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gflow.core.model import Job
from gflow.core.reasons import ReasonKind

if TYPE_CHECKING:
    from gflow.daemon.service import Service


class LocalBackend:
    local = True

    def __init__(self, service: Service) -> None:
        self.service = service
        self.name = service.executor.name

    def start(self) -> None:
        self.service.reconcile_running_jobs()

    def dispatch(self) -> None:
        self.service.schedule_once()

    def stop(self, job: Job, why: ReasonKind, kill: bool) -> None:
        if job.stop_reason is None:
            self.service._stop(job, why)
        if kill:
            self.service._kill(job.id)

    def forget(self, jobs: list[Job]) -> None:
        """Nothing of a waiting job exists outside the store."""

    async def hold(self, job: Job) -> None:
        """Our own scheduler simply skips held jobs."""

    async def release(self, job: Job, at: float | None) -> None:
        """Our own scheduler looks at it again on the next pass."""

    async def update(self, job: Job, new: Job) -> None:
        """The next pass reads the new request."""

    def attach_hint(self, job: Job) -> str:
        return ""

    async def close(self) -> None:
        self.service.executor.close()
