"""Submitting jobs: `gbatch` (in one transaction, or a big one in slices), its dry run,
and the checks a submission passes before anything is stored."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path
from typing import Any

from gflow.core.dependencies import Dependency, DependencyKind
from gflow.core.errors import InvalidInput
from gflow.core.limits import MAX_ARG_MAX, MIN_ARG_MAX
from gflow.core.model import Job
from gflow.core.spec import JobSpec, exec_size_problem
from gflow.daemon import trial
from gflow.daemon.identity import Caller
from gflow.daemon.references import resolve_dependencies, submission_of
from gflow.daemon.service_base import ServiceBase
from gflow.daemon.sharing import check_submission
from gflow.store.db import NewJob
from gflow.store.submissions import Payloads

SUBMIT_SLICE = 2000  # jobs written per transaction of a big submission

# Room for what the daemon adds to a job's environment and command line (GFLOW_*, CUDA_*,
# the shell and the conda prelude).
EXEC_RESERVE = 16 * 1024


def exec_limit() -> int:
    """How many bytes of arguments and environment execve takes here: a quarter of the
    stack limit, within the kernel's floor and cap (fs/exec.c)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY:
        return MAX_ARG_MAX
    return max(MIN_ARG_MAX, min(MAX_ARG_MAX, soft // 4))


class Submissions(ServiceBase):
    """`submit`, `submit_many` and `test_submit`, and what '@' names (`resolve`)."""

    def submit(self, caller: Caller, specs: list[JobSpec]) -> list[Job]:
        """All of these jobs or none, in one transaction."""
        new_jobs = self._new_jobs(caller, specs)
        jobs = self.store.insert_jobs(new_jobs, self.clock(), self._logs_of(caller))
        self.jobs.update((job.id, job) for job in jobs)
        self.request_pass()
        return jobs

    async def submit_many(self, caller: Caller, specs: list[JobSpec]) -> list[Job]:
        """Like submit, but a big submission is written in slices, the loop serving others
        in between; it stays invisible until its last slice is in (store/submissions.py)."""
        if len(specs) <= SUBMIT_SLICE:
            return self.submit(caller, specs)
        async with self._big_submission:  # one at a time: each holds its id range hidden
            new_jobs = self._new_jobs(caller, specs)
            now, count = self.clock(), len(new_jobs)
            first = self.store.stage(count)
            try:
                payloads = Payloads()
                for offset in range(0, count, SUBMIT_SLICE):
                    part = new_jobs[offset : offset + SUBMIT_SLICE]
                    self.store.insert_staged(
                        first, offset, part, now, self._logs_of(caller), payloads
                    )
                    await asyncio.sleep(0)
                jobs = []
                for offset in range(0, count, SUBMIT_SLICE):
                    last = min(first + offset + SUBMIT_SLICE, first + count) - 1
                    jobs += self.store.read_staged(first + offset, last)
                    await asyncio.sleep(0)
                self.store.publish(first)
            except BaseException:
                self.store.discard_staged()
                raise
        self.jobs.update((job.id, job) for job in jobs)
        self.request_pass()
        return jobs

    def _logs_of(self, caller: Caller) -> Path:
        """Where a job's default log goes: logs/ (personal), logs/<uid>/ (system: the
        user's 0700 directory, made at launch)."""
        if self.paths.system:
            return self.paths.logs_dir / str(caller.uid)
        return self.paths.logs_dir

    def _new_jobs(self, caller: Caller, specs: list[JobSpec]) -> list[NewJob]:
        """The specs checked as a whole (could they ever run, be started), '@' resolved."""
        if not specs:
            raise InvalidInput("nothing to submit")
        if self.backend.local:  # a cluster's GPUs and nodes are Slurm's to judge
            specs, _ = self.machine.resolve_gpu_models(specs)
            self.machine.check_feasible(specs)
        self._check_exec_sizes(specs)
        check_submission(self.config, self.jobs.values(), caller.user, caller.uid, specs)
        new_jobs = []
        cache: dict[tuple[int | str, bool], list[int]] = {}
        # Jobs of an array that ask for the same dependencies share one resolved tuple: a
        # 2,000-task array after `-d @` on another 2,000 would otherwise hold 4M pairs.
        shared: dict[tuple[Dependency, ...], tuple[tuple[int, DependencyKind], ...]] = {}
        for spec in specs:
            deps = shared.get(spec.dependencies)
            if deps is None:
                deps = shared[spec.dependencies] = resolve_dependencies(
                    self.store, self.jobs, caller.uid, spec.dependencies, cache
                )
            deps += trial.singleton_dependencies(self.jobs.values(), caller.uid, spec)
            new_jobs.append(NewJob(spec, caller.user, caller.uid, deps, self.backend.name))
        return new_jobs

    def _check_exec_sizes(self, specs: list[JobSpec]) -> None:
        """Refuse, now, a job that could never be started (execve's E2BIG), rather than
        accept it and fail it hours later. An array's jobs share one env dict: checked once."""
        checked: set[int] = set()
        for spec in specs:
            if id(spec.env) in checked:
                continue
            checked.add(id(spec.env))
            argv = len(spec.command.encode(errors="surrogatepass")) + EXEC_RESERVE
            problem = exec_size_problem(spec.env, argv, self.exec_limit)
            if problem:
                raise InvalidInput(problem, hint="unset what the job does not need, then submit")

    def test_submit(self, caller: Caller, specs: list[JobSpec]) -> dict[str, Any]:
        """`gbatch --dry-run` (sbatch --test-only): see daemon/trial.py."""
        return trial.answer(self, caller, specs)

    def resolve(self, caller: Caller, ref: str) -> list[int]:
        """'@' / '@~N' as the ids of the caller's submission it names."""
        return submission_of(self.store, caller.uid, "@" if ref == "@~0" else ref)
