"""Where jobs run, behind one small interface the service talks to.

"This machine" (`local`: our scheduler decides, tmux or a detached process runs the
wrapper) and "a Slurm cluster" (`slurm`: Slurm decides and runs, we hand jobs over with
sbatch and mirror what squeue says) are the two backends; `[daemon] executor` picks one.
A third engine is one more module here with these methods.

Every state change a backend makes or observes goes through the supervisor's
`_transition` and `_commit`, so events, metrics and notifications are the same whoever
runs the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gflow.core.model import Job
from gflow.core.reasons import ReasonKind

if TYPE_CHECKING:
    from gflow.daemon.service import Service


class Backend(Protocol):
    name: str  # what a job's `executor` says: tmux, process, slurm
    local: bool  # jobs run on this machine: its GPUs, cores and RAM are booked here

    def start(self) -> None:
        """The daemon (re)starts with its active jobs loaded: find what it lost sight of."""
        ...

    def dispatch(self) -> None:
        """A pass: start (local) or hand over (Slurm) whatever waiting job may go now."""
        ...

    def stop(self, job: Job, why: ReasonKind, kill: bool) -> None:
        """Stop a running (or handed-over) job; its end is observed, not assumed."""
        ...

    def forget(self, jobs: list[Job]) -> None:
        """These waiting jobs were cancelled here: make sure they never run there."""
        ...

    async def hold(self, job: Job) -> None:
        """Before a Queued job is recorded Hold (raises if the engine refuses)."""
        ...

    async def release(self, job: Job, at: float | None) -> None:
        """Before a Hold job is recorded Queued (not before `at`)."""
        ...

    async def update(self, job: Job, new: Job) -> None:
        """Before a waiting job's changed request (`gjob update`) is recorded."""
        ...

    def attach_hint(self, job: Job) -> str:
        """'' where `gjob attach` works; else what to use instead."""
        ...

    async def close(self) -> None:
        """The daemon is stopping; jobs run on."""
        ...


def make_backend(name: str, service: Service) -> Backend:
    if name == "slurm":
        from gflow.daemon.backends.slurm import SlurmBackend

        return SlurmBackend(service)
    from gflow.daemon.backends.local import LocalBackend

    return LocalBackend(service)
