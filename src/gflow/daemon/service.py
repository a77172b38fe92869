"""The service: what the API asks for (submit, cancel, hold, release, GPU and group
settings), scheduling passes and the resource tick.

Everything runs on the daemon's single asyncio loop; state changes go through the
supervisor's `_transition` and `_commit` (daemon/supervisor.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gflow import __version__
from gflow.config import Config, web_exposure_warning
from gflow.core.dependencies import Dependency, DependencyKind
from gflow.core.errors import GflowError, InvalidInput, InvalidState
from gflow.core.limits import MAX_ARG_MAX, MIN_ARG_MAX
from gflow.core.model import Event, Job, JobSpec, exec_size_problem
from gflow.core.policy import schedule
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.reservations import next_boundary
from gflow.core.states import ACTIVE_STATES, ENDED_STATES, JobState
from gflow.daemon import trial
from gflow.daemon.backends import Backend, make_backend
from gflow.daemon.edits import UPDATABLE, checked_redo_changes, refuse_cycle, request_of
from gflow.daemon.identity import Caller, authorize, require_admin
from gflow.daemon.machine import MachineView
from gflow.daemon.memory import release_free_memory
from gflow.daemon.references import resolve_dependencies, submission_of
from gflow.daemon.reservations import Request, ReservationBook
from gflow.daemon.retention import HistoryKeeper
from gflow.daemon.sharing import (
    EndedGpuUsage,
    RulesCache,
    check_submission,
    fair_share_report,
    quota_status,
    rules_for,
)
from gflow.daemon.supervisor import MAX_LAUNCHING, JobSupervisor
from gflow.daemon.usage import UsageRecorder
from gflow.paths import Paths
from gflow.resources.cgroups import RSS_POLLING, CgroupMemory
from gflow.runner.executors import ProcessExecutor, TmuxExecutor
from gflow.safefs import remove_entry
from gflow.store.db import JobFilter, NewJob, Store
from gflow.store.submissions import Payloads

log = logging.getLogger(__name__)

# Most jobs stop within this on SIGTERM, so `gcancel` can answer "cancelled" right away.
CANCEL_ANSWER_WAIT = 2.0
TICK = 1.0  # seconds between resource checks
TRIM_EVERY = 3600.0  # seconds between trims of the event history (store/events.py)
SUBMIT_SLICE = 2000  # jobs written per transaction of a big submission


_PAST = {
    "cancel": "cancelled",
    "hold": "held",
    "release": "released",
    "update": "updated",
    "redo": "redone",
}


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


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class Service(JobSupervisor):
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

    # ---- commands (API handlers call these) --------------------------------------------

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

    def list_jobs(self, where: JobFilter) -> list[Job]:
        return self.store.list_jobs(where)

    def list_fields_json(self, where: JobFilter, fields: list[str]) -> str:
        return self.store.list_fields_json(where, fields)

    async def cancel(self, caller: Caller, job_id: int, kill: bool = False) -> Job:
        """Queued/Hold: Cancelled at once; Running: SIGTERM, SIGKILL after the grace
        (`kill`: SIGKILL now, `gcancel --kill`)."""
        job = self._owned(caller, job_id, "cancel", ACTIVE_STATES)
        if job.state is JobState.RUNNING or job.slurm_handing:
            self.backend.stop(job, ReasonKind.CANCELLED_BY_USER, kill)
            await self.wait_until_ended(job_id, CANCEL_ANSWER_WAIT)
            return self.get_job(job_id)
        # Queued/Hold -> Cancelled
        self._commit(
            [
                self._transition(
                    job,
                    JobState.CANCELLED,
                    "cancelled",
                    reason=Reason(ReasonKind.CANCELLED_BY_USER),
                )
            ]
        )
        self.backend.forget([job])
        self.request_pass()  # its dependents may now be impossible
        return self.get_job(job_id)

    async def cancel_many(
        self, caller: Caller, ids: Sequence[int], kill: bool = False
    ) -> list[dict[str, Any]]:
        """`gcancel 1-20000`: every waiting job named is cancelled in one transaction, every
        running one is stopped; each id answers its new state, or the refusal in words."""
        results: dict[int, dict[str, Any]] = {}
        waiting: list[Job] = []
        running: list[Job] = []
        for job_id in ids:
            try:
                job = self._owned(caller, job_id, "cancel", ACTIVE_STATES)
            except GflowError as exc:
                found = self.jobs.get(job_id) or self.store.get_job(job_id)
                results[job_id] = {
                    "id": job_id,
                    "error": {"code": exc.code, "message": exc.message, "hint": exc.hint},
                    "reason": str(found.reason) if found and found.reason else None,
                }
                continue
            (running if job.state is JobState.RUNNING or job.slurm_handing else waiting).append(job)
        reason = Reason(ReasonKind.CANCELLED_BY_USER)
        self._commit(
            [self._transition(j, JobState.CANCELLED, "cancelled", reason=reason) for j in waiting]
        )
        self.backend.forget(waiting)
        for job in running:
            self.backend.stop(job, ReasonKind.CANCELLED_BY_USER, kill)
        await asyncio.gather(*(self.wait_until_ended(j.id, CANCEL_ANSWER_WAIT) for j in running))
        if waiting:
            self.request_pass()  # their dependents may now be impossible
        for job in waiting:  # committed above: no need to read 20,000 jobs back
            results[job.id] = {"id": job.id, "state": JobState.CANCELLED.value, "error": None}
        for job in running:
            now = self.get_job(job.id)
            results[job.id] = {"id": job.id, "state": now.state.value, "error": None}
        return [results[i] for i in ids if i in results]

    async def hold_job(self, caller: Caller, job_id: int) -> Job:
        """`gjob hold`: the engine first (Slurm: scontrol hold), then our record."""
        await self.backend.hold(self._owned(caller, job_id, "hold", {JobState.QUEUED}))
        return self.hold(caller, job_id)

    async def release_job(self, caller: Caller, job_id: int, at: float | None = None) -> Job:
        await self.backend.release(self._owned(caller, job_id, "release", {JobState.HOLD}), at)
        return self.release(caller, job_id, at)

    async def update_job(self, caller: Caller, job_id: int, changes: dict[str, Any]) -> Job:
        """`gjob update`: validated, then the engine's (Slurm: scontrol update), then ours."""
        job, updated = self._updated(caller, job_id, changes)
        await self.backend.update(job, updated[0])
        return self.update(caller, job_id, changes)

    def hold(self, caller: Caller, job_id: int) -> Job:
        job = self._owned(caller, job_id, "hold", {JobState.QUEUED})
        # Queued -> Hold
        self._commit([self._transition(job, JobState.HOLD, "held", reason=Reason(ReasonKind.HELD))])
        self.request_pass()
        return self.jobs[job_id]

    def release(self, caller: Caller, job_id: int, at: float | None = None) -> Job:
        """Hold -> Queued, now or (`gjob release --at`) not before `at`."""
        job = self._owned(caller, job_id, "release", {JobState.HOLD})
        begin_at = at if at is not None else job.begin_at
        if at is None and any(
            e.kind == "released" and e.detail.startswith("not before")
            for e in self.store.events_of(job_id)
        ):
            begin_at = None  # that time was an earlier `release --at`'s: a plain one is now
        detail = f"not before {at:.0f}" if at is not None else ""
        # Hold -> Queued
        self._commit(
            [
                self._transition(
                    job, JobState.QUEUED, "released", detail, reason=None, begin_at=begin_at
                )
            ]
        )
        self.request_pass()
        return self.jobs[job_id]

    def update(self, caller: Caller, job_id: int, changes: dict[str, Any]) -> Job:
        """`gjob update`: change what a Queued or Hold job asks for, validated as a new
        submission would be."""
        _, updated = self._updated(caller, job_id, changes)
        self._commit([updated])
        self.request_pass()
        return self.jobs[job_id]

    def _updated(
        self, caller: Caller, job_id: int, changes: dict[str, Any]
    ) -> tuple[Job, tuple[Job, Event]]:
        """The job and its change as `gjob update` asks for it, checked, not yet committed."""
        job = self._owned(caller, job_id, "update", {JobState.QUEUED, JobState.HOLD})
        unknown = set(changes) - UPDATABLE
        if unknown or not changes:
            raise InvalidInput(
                f"cannot update {', '.join(sorted(unknown)) or 'nothing'}",
                hint=f"updatable: {', '.join(sorted(UPDATABLE))}",
            )
        spec = JobSpec.from_dict({**request_of(job), **changes})
        if self.backend.local:
            self.machine.check_feasible([spec])
        deps = resolve_dependencies(self.store, self.jobs, job.uid, spec.dependencies)
        refuse_cycle(self.jobs, job_id, deps)
        updated = self._transition_free(
            job,
            "updated",
            ", ".join(sorted(changes)),
            priority=spec.priority,
            resources=spec.resources,
            time_limit=spec.time_limit,
            dependencies=deps,
            dependency_mode=spec.dependency_mode,
            auto_cancel=spec.auto_cancel,
            conda_env=spec.conda_env,
            max_retries=spec.max_retries,
        )
        return job, updated

    def _checked_changes(self, uid: int, job: Job, changes: dict[str, Any]) -> dict[str, Any]:
        return checked_redo_changes(self.store, self.jobs, self.machine, uid, job, changes)

    def redo(
        self, caller: Caller, job_id: int, cascade: bool, changes: dict[str, Any] | None = None
    ) -> list[Job]:
        """`gjob redo`: submit an ended job again, with `changes` (gflow's overrides: GPUs,
        time, memory, dependencies…) checked as `gjob update` checks them, before anything
        is stored; with `cascade`, also the dependents that were cancelled because of it,
        their dependencies pointing at the new jobs."""
        # A malformed override is a usage error (2) whatever the job's state (1).
        original = self.get_job(job_id)
        changes = self._checked_changes(original.uid, original, changes or {})
        job = self._owned(caller, job_id, "redo", ENDED_STATES)
        now = self.clock()
        # The owner stays the job's, whoever asks: an admin's redo never makes it theirs.
        new = [self.store.insert_redo(job, job.dependencies, now, job.user, job.uid)]
        if changes:
            self.jobs[new[0].id] = new[0]
            new[0] = self.update(caller, new[0].id, changes)
        renamed = {job.id: new[0].id}
        queue = [job.id] if cascade else []
        while queue:
            parent = queue.pop(0)
            for child in self.store.cancelled_because_of(parent):
                deps = tuple((renamed.get(d, d), k) for d, k in child.dependencies)
                redone = self.store.insert_redo(child, deps, now, child.user, child.uid)
                renamed[child.id] = redone.id
                new.append(redone)
                queue.append(child.id)
        self.jobs.update((j.id, j) for j in new)
        self.request_pass()
        return new

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

    def _admin(self, caller: Caller, what: str) -> None:
        require_admin(caller, what)

    def gpu_status(self) -> list[dict[str, Any]]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        return self.machine.describe(running)

    def cpu_status(self) -> dict[str, Any]:
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        return self.machine.describe_cpus(running)

    def _owned(self, caller: Caller, job_id: int, action: str, allowed: Iterable[JobState]) -> Job:
        """The job, if the caller may act on it and its state allows the action."""
        job = self.get_job(job_id)
        authorize(caller, action, job)
        allowed = set(allowed)
        if job.state not in allowed:
            names = " or ".join(sorted(s.value for s in allowed))
            raise InvalidState(
                f"cannot {action} job {job_id}: it is {job.state.value}",
                hint=f"only {names} jobs can be {_PAST[action]}",
            )
        return job

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

    def job_ended(self, job: Job) -> None:
        if job.gpu_ids:  # GPU-hours changed: fair-share and daily caps look again soon
            self._rules.stale = True
            self._rules.ended.add(job)

    def _is_admin(self, caller: Caller) -> bool:
        return caller.admin

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

    # ---- scheduling ------------------------------------------------------------------------

    def request_pass(self) -> None:
        """Run a scheduling pass soon; many requests in one loop turn make one pass."""
        if not self._pass_requested and self._loop is not None:
            self._pass_requested = True
            self._loop.call_soon(self._run_pass)

    def _run_pass(self) -> None:
        self._pass_requested = False
        if self.stopping:
            return
        start = time.perf_counter()
        try:
            self.backend.dispatch()  # local: schedule_once()
            if self.on_pass is not None:
                self.on_pass(time.perf_counter() - start)
        except Exception:
            log.exception("scheduling pass failed; retrying in 1 s")
            self.loop.call_later(1.0, self.request_pass)

    def schedule_once(self) -> None:
        # One walk over the active jobs (10,000 of them, every pass).
        queued: list[Job] = []
        running: list[Job] = []
        names: dict[int, str] = {}
        for job in self.jobs.values():
            if job.state is JobState.QUEUED:
                queued.append(job)
            elif job.state is JobState.RUNNING:
                running.append(job)
            names[job.uid] = job.user
        if not queued:
            return
        deps = {dep for job in queued if job.dependencies for dep, _ in job.dependencies}
        dep_states = {d: self.jobs[d].state for d in deps if d in self.jobs}
        dep_states.update(self.store.states_of(deps - dep_states.keys()))
        now = self.clock()
        reservations = self.reservations.current()
        rules = rules_for(
            self.config, self.store, queued, running, now, self._rules,
            lambda uid: names.get(uid, str(uid)), reservations,
        )  # fmt: skip
        machine = self.machine.snapshot(running)
        decision = schedule(queued, running, dep_states, machine, now, rules)
        wakes = [t for t in (decision.next_begin, next_boundary(reservations, now)) if t]
        self._wake_at(min(wakes, default=None))

        self._commit(
            [
                self._transition(
                    self.jobs[job_id], JobState.CANCELLED, "cancelled", str(reason), reason=reason
                )
                for job_id, reason in decision.cancels.items()
            ]
        )
        # `is not` first: a waiting job mostly keeps the very reason object it was given.
        changed = [
            (i, r)
            for i, r in decision.waiting.items()
            if (was := self.jobs[i].reason) is not r and was != r
        ]
        if changed:
            self.store.set_reasons((i, str(r)) for i, r in changed)
            for job_id, reason in changed:
                self.jobs[job_id] = replace(self.jobs[job_id], reason=reason)
        # A burst (a 1,000-job array) starts a few at a time: each finished launch asks for
        # the next pass, and the API stays responsive in between.
        room = max(0, MAX_LAUNCHING - len(self._launching))
        starts = [(self.jobs[s.job_id], s.gpu_ids, s.cpu_ids) for s in decision.starts[:room]]
        if starts:
            self._start_jobs(starts)

    def _wake_at(self, when: float | None) -> None:
        """A pass at the earliest --begin time, precisely (not at the next tick)."""
        if self._begin_timer is not None:
            self._begin_timer.cancel()
            self._begin_timer = None
        if when is not None:
            delay = max(0.0, when - self.clock())
            self._begin_timer = self.loop.call_later(delay, self.request_pass)

    def close(self) -> None:
        super().close()
        for handle in (self._tick_timer, self._begin_timer):
            if handle is not None:
                handle.cancel()
        self.history.close()

    def _tick(self) -> None:
        """Every second: notice what nobody announces (foreign GPU use, free RAM, job RSS)."""
        self._tick_timer = self.loop.call_later(TICK, self._tick)
        try:
            self._record_groups([j.id for j in self.jobs.values() if j.state is JobState.RUNNING])
            self.usage.tick(self.jobs, self._processes, self.machine.gpus, self.boot)
            if self.config.enforce_memory:
                self._enforce_memory_limits(self.usage.rss_mb)
            self.sweep_cgroups()
            if any(j.state is JobState.QUEUED for j in self.jobs.values()):
                self.request_pass()
            if self._release_memory:
                self._release_memory -= 1
                release_free_memory()
            self._note_gpu_changes()
            self.history.tick(self.loop)
            if self.clock() >= self._trim_events_at:  # the event history stays bounded
                self._trim_events_at = self.clock() + TRIM_EVERY
                self.store.trim_events(self.clock())
        except Exception:
            log.exception("resource tick failed")

    def _note_gpu_changes(self) -> None:
        """One event when foreign processes take a GPU or leave it (gpu_available)."""
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        blocked = self.machine.blocked_gpus(running)
        before, self._blocked_gpus = self._blocked_gpus, blocked
        if before is None or blocked == before:
            return
        if freed := before - blocked:
            detail = "no foreign process on GPU " + ",".join(map(str, sorted(freed)))
            self.store.record_system_event(self.clock(), "gpu_available", detail)
        if taken := blocked - before:
            detail = "a foreign process holds GPU " + ",".join(map(str, sorted(taken)))
            self.store.record_system_event(self.clock(), "gpu_blocked", detail)

    def release_memory_soon(self) -> None:
        """A big request was answered: give what it freed back to the system on the next
        two ticks (a tick overdue after a long request can come before its answer is sent
        and freed; the second comes after)."""
        self._release_memory = 2
