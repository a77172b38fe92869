"""The service: the only writer of state. Commands, scheduling passes, job starts and ends.

Everything here runs on the daemon's single asyncio loop. Each state change goes through
`_commit`, which writes the jobs and their events in one transaction before memory changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from gflow import __version__
from gflow.config import Config
from gflow.core.errors import Forbidden, InvalidInput, InvalidState, NotFound, Unavailable
from gflow.core.model import Event, Job, JobSpec
from gflow.core.outcome import job_outcome
from gflow.core.policy import schedule
from gflow.core.states import ACTIVE_STATES, JobState, Reason, ReasonKind, can_transition
from gflow.paths import Paths
from gflow.resources.gpu import GpuBackend
from gflow.runner.control import signal_job, watch_exit
from gflow.runner.executors import Launch, LaunchError, ProcessExecutor, TmuxExecutor
from gflow.runner.jobfiles import ExitRecord, read_exit, read_pid, wrapper_alive, write_spec
from gflow.store.db import JobFilter, NewJob, Store

log = logging.getLogger(__name__)

BASH = "/bin/bash" if os.path.exists("/bin/bash") else "bash"
# Most jobs stop within this on SIGTERM, so `gcancel` can answer "cancelled" right away.
CANCEL_ANSWER_WAIT = 2.0
RECORD_RETRY = 1.0


_PAST = {"cancel": "cancelled", "hold": "held", "release": "released"}


@dataclass(frozen=True)
class Caller:
    """Who sent a request: from the socket's peer credentials, never from $USER."""

    uid: int
    user: str


class Service:
    def __init__(
        self,
        paths: Paths,
        config: Config,
        store: Store,
        executor: TmuxExecutor | ProcessExecutor,
        gpus: GpuBackend,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.paths = paths
        self.config = config
        self.store = store
        self.executor = executor
        self.gpu_backend = gpus
        self.clock = clock
        self.started_at = clock()
        self.jobs: dict[int, Job] = {}  # active jobs only; ended ones live in the store
        self._timers: dict[int, list[asyncio.TimerHandle]] = {}
        self._end_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._pass_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "Service.start() not called"
        return self._loop

    # ---- start-up ----------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        active = self.store.list_jobs(JobFilter(states=ACTIVE_STATES))
        self.jobs = {job.id: job for job in active}
        self.reconcile_running_jobs()
        self.request_pass()

    def reconcile_running_jobs(self) -> None:
        """After a (re)start: watch live jobs again, record the ends we missed, never lose one."""
        for job in [j for j in self.jobs.values() if j.state is JobState.RUNNING]:
            jobdir = self.jobdir(job.id)
            record = read_exit(jobdir)
            pid_record = read_pid(jobdir)
            if record is not None:
                log.info("job %d ended while the daemon was away", job.id)
                self._end_job(job, record)
            elif pid_record is not None and wrapper_alive(pid_record):
                log.info("job %d still running (wrapper pid %d)", job.id, pid_record.wrapper_pid)
                job = replace(job, pid=pid_record.wrapper_pid)
                self.jobs[job.id] = job
                self._watch(job)
                if job.stop_reason is not None:
                    self._stop(job, job.stop_reason)
            else:
                log.warning("job %d vanished without an exit record", job.id)
                if pid_record is not None:  # the wrapper died; its command must not live on
                    signal_job(pid_record.wrapper_pid, pid_record, signal.SIGKILL)
                self._end_job(job, None)

    # ---- commands (API handlers call these) --------------------------------------------

    def submit(self, caller: Caller, specs: list[JobSpec]) -> list[Job]:
        if not specs:
            raise InvalidInput("nothing to submit")
        gpu_count = len(self.gpu_backend.gpus())
        new_jobs = []
        for spec in specs:
            if spec.gpus > gpu_count:
                raise InvalidInput(
                    f"the job asks for {spec.gpus} GPU(s) but this machine has {gpu_count}",
                    hint="lower --gpus",
                )
            deps = tuple(self._resolve_dependency(caller, dep) for dep in spec.depends_on)
            new_jobs.append(NewJob(spec, caller.user, caller.uid, deps, self.executor.name))
        jobs = self.store.insert_jobs(new_jobs, self.clock(), self.paths.logs_dir)
        self.jobs.update((job.id, job) for job in jobs)
        self.request_pass()
        return jobs

    def _resolve_dependency(self, caller: Caller, dep: int | str) -> int:
        if isinstance(dep, str):  # '@' or '@~N'
            nth = 1 if dep == "@" else int(dep[2:])
            found = self.store.nth_last_job_of(caller.uid, nth)
            if found is None:
                raise InvalidInput(f"dependency {dep}: you have no such earlier job")
            return found
        if dep not in self.jobs and not self.store.states_of([dep]):
            raise InvalidInput(f"dependency job {dep} does not exist")
        return dep

    def get_job(self, job_id: int) -> Job:
        job = self.jobs.get(job_id) or self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        return job

    def list_jobs(self, where: JobFilter) -> list[Job]:
        return self.store.list_jobs(where)

    async def cancel(self, caller: Caller, job_id: int) -> Job:
        job = self._owned(caller, job_id, "cancel", ACTIVE_STATES)
        if job.state is JobState.RUNNING:
            if job.stop_reason is None:
                self._stop(job, ReasonKind.CANCELLED_BY_USER)
            await self.wait_until_ended(job_id, CANCEL_ANSWER_WAIT)
            return self.get_job(job_id)
        # Queued/Hold -> Cancelled
        self._commit([self._transition(job, JobState.CANCELLED, "cancelled",
                                       reason=Reason(ReasonKind.CANCELLED_BY_USER))])  # fmt: skip
        self.request_pass()  # its dependents may now be impossible
        return self.get_job(job_id)

    def hold(self, caller: Caller, job_id: int) -> Job:
        job = self._owned(caller, job_id, "hold", {JobState.QUEUED})
        # Queued -> Hold
        self._commit([self._transition(job, JobState.HOLD, "held", reason=Reason(ReasonKind.HELD))])
        self.request_pass()
        return self.jobs[job_id]

    def release(self, caller: Caller, job_id: int) -> Job:
        job = self._owned(caller, job_id, "release", {JobState.HOLD})
        # Hold -> Queued
        self._commit([self._transition(job, JobState.QUEUED, "released", reason=None)])
        self.request_pass()
        return self.jobs[job_id]

    def _owned(self, caller: Caller, job_id: int, action: str, allowed: Iterable[JobState]) -> Job:
        """The job, if the caller may act on it and its state allows the action."""
        job = self.get_job(job_id)
        if caller.uid not in (job.uid, 0, os.getuid()):
            raise Forbidden(f"job {job_id} belongs to {job.user}; you cannot {action} it")
        allowed = set(allowed)
        if job.state not in allowed:
            names = " or ".join(sorted(s.value for s in allowed))
            raise InvalidState(
                f"cannot {action} job {job_id}: it is {job.state.value}",
                hint=f"only {names} jobs can be {_PAST[action]}",
            )
        return job

    def status(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime": self.clock() - self.started_at,
            "executor": self.executor.name,
            "state_dir": str(self.paths.state_dir),
            "gpu_backend": self.gpu_backend.name,
            "gpus": [gpu.to_dict() for gpu in self.gpu_backend.gpus()],
            "jobs": self.store.count_by_state(),
        }

    async def wait_until_ended(self, job_id: int, timeout: float) -> None:
        job = self.jobs.get(job_id)
        if job is None or not job.state.is_active:
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._end_waiters.setdefault(job_id, []).append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            pass

    # ---- state changes -------------------------------------------------------------------

    def _transition(self, job: Job, dst: JobState, kind: str, detail: str = "",
                    **changes: object) -> tuple[Job, Event]:  # fmt: skip
        """The one guarded state change: check the move is allowed, apply it, describe it."""
        if not can_transition(job.state, dst):
            raise InvalidState(f"job {job.id} cannot go from {job.state.value} to {dst.value}")
        now = self.clock()
        if dst.is_ended and "finished_at" not in changes:
            changes["finished_at"] = now
        new = replace(job, state=dst, **changes)  # type: ignore[arg-type]
        return new, Event(job.id, now, kind, dst, detail)

    def _commit(self, changes: list[tuple[Job, Event]]) -> None:
        """Durable first (one transaction), then memory, then whoever waits for an end."""
        if not changes:
            return
        self.store.save(changes)
        for job, _ in changes:
            if job.state.is_active:
                self.jobs[job.id] = job
            else:
                self.jobs.pop(job.id, None)
                for timer in self._timers.pop(job.id, []):
                    timer.cancel()
                for waiter in self._end_waiters.pop(job.id, []):
                    if not waiter.done():
                        waiter.set_result(None)

    # ---- scheduling ------------------------------------------------------------------------

    def request_pass(self) -> None:
        """Run a scheduling pass soon; many requests in one loop turn make one pass."""
        if not self._pass_requested and self._loop is not None:
            self._pass_requested = True
            self._loop.call_soon(self._run_pass)

    def _run_pass(self) -> None:
        self._pass_requested = False
        try:
            self.schedule_once()
        except Exception:
            log.exception("scheduling pass failed; retrying in 1 s")
            self.loop.call_later(1.0, self.request_pass)

    def schedule_once(self) -> None:
        queued = [j for j in self.jobs.values() if j.state is JobState.QUEUED]
        if not queued:
            return
        running = [j for j in self.jobs.values() if j.state is JobState.RUNNING]
        deps = {dep for job in queued for dep in job.depends_on}
        dep_states = {d: self.jobs[d].state for d in deps if d in self.jobs}
        dep_states.update(self.store.states_of(deps - dep_states.keys()))
        decision = schedule(queued, running, dep_states, [g.index for g in self.gpu_backend.gpus()])

        self._commit([
            self._transition(self.jobs[job_id], JobState.CANCELLED, "cancelled", str(reason),
                             reason=reason)
            for job_id, reason in decision.cancels.items()
        ])  # fmt: skip
        changed = [(i, r) for i, r in decision.waiting.items() if self.jobs[i].reason != r]
        if changed:
            self.store.set_reasons((i, str(r)) for i, r in changed)
            for job_id, reason in changed:
                self.jobs[job_id] = replace(self.jobs[job_id], reason=reason)
        starts = [(self.jobs[s.job_id], s.gpu_ids) for s in decision.starts]
        if starts:
            self._start_jobs(starts)

    # ---- running jobs ----------------------------------------------------------------------

    def jobdir(self, job_id: int) -> Path:
        return self.paths.jobs_dir / str(job_id)

    def _start_jobs(self, starts: list[tuple[Job, tuple[int, ...]]]) -> None:
        # Queued -> Running is durable before any process exists: a crash in between shows
        # up at restart as a job with no wrapper, which ends Lost instead of running twice.
        now = self.clock()
        running = [
            self._transition(job, JobState.RUNNING, "started", ",".join(map(str, gpus)),
                             started_at=now, gpu_ids=gpus, reason=None)
            for job, gpus in starts
        ]  # fmt: skip
        self._commit(running)
        launched: list[tuple[Job, Event]] = []
        failed: list[tuple[Job, Event]] = []
        for job, _ in running:
            try:
                pid, session = self._launch(job)
            except (LaunchError, OSError) as exc:
                log.error("job %d could not start: %s", job.id, exc)
                reason = Reason(ReasonKind.LAUNCH_FAILED)
                failed.append(
                    self._transition(job, JobState.FAILED, "launch failed", str(exc), reason=reason)
                )
                continue
            job = replace(job, pid=pid, session=session)
            launched.append((job, Event(job.id, self.clock(), "launched", job.state, f"pid {pid}")))
        self._commit(launched + failed)
        for job, _ in launched:
            self._watch(job)
        if failed:
            self.request_pass()

    def _launch(self, job: Job) -> tuple[int, str]:
        env, script_body = self.store.get_launch_data(job.id)
        jobdir = self.jobdir(job.id)
        env.update(
            GFLOW_JOB_ID=str(job.id),
            GFLOW_ARRAY_TASK_ID=str(job.array_task_id if job.array_task_id is not None else 0),
            CUDA_VISIBLE_DEVICES=",".join(map(str, job.gpu_ids)),
            CUDA_DEVICE_ORDER="PCI_BUS_ID",
        )
        if job.script:
            jobdir.mkdir(parents=True, exist_ok=True)
            (jobdir / "script.sh").write_text(script_body)
            argv = [BASH, str(jobdir / "script.sh")]
        else:
            argv = [BASH, "-c", job.command]
        write_spec(jobdir, argv, env, job.workdir, job.log_path)
        return self.executor.start(Launch(job.id, jobdir, job.keep_session))

    def _watch(self, job: Job) -> None:
        assert job.pid is not None
        watch_exit(self.loop, job.pid, lambda: self._on_wrapper_exit(job.id))
        if job.time_limit is not None and job.started_at is not None:
            delay = job.started_at + job.time_limit - self.clock()
            self._add_timer(job.id, max(0.0, delay), self._on_time_limit, job.id)

    def _on_wrapper_exit(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.state is not JobState.RUNNING:
            return
        if isinstance(self.executor, ProcessExecutor) and job.pid is not None:
            self.executor.reap(job.pid)
        try:
            self._end_job(job, read_exit(self.jobdir(job_id)))
        except Unavailable as exc:  # e.g. a full disk: the exit record waits on disk for us
            log.error("cannot record the end of job %d yet (%s); retrying", job_id, exc.message)
            self.loop.call_later(RECORD_RETRY, self._on_wrapper_exit, job_id)

    def _end_job(self, job: Job, record: ExitRecord | None) -> None:
        exit_code = record.exit_code if record else None
        signum = record.signal if record else None
        state, reason = job_outcome(job.stop_reason, exit_code, signum, record is not None)
        finished_at = record.ended_at if record else self.clock()
        self._commit([
            self._transition(job, state, "ended", str(reason), reason=reason, exit_code=exit_code,
                             signal=signum, finished_at=finished_at, pid=None)
        ])  # fmt: skip
        self.request_pass()

    def _on_time_limit(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state is JobState.RUNNING and job.stop_reason is None:
            log.info("job %d reached its time limit", job_id)
            self._stop(job, ReasonKind.TIME_LIMIT)

    def _stop(self, job: Job, why: ReasonKind) -> None:
        """SIGTERM the job's processes now, SIGKILL after the grace period.

        Why it stops is recorded first, so a daemon restart in the middle still ends the job
        as Cancelled or Timeout, and finishes the kill.
        """
        if job.stop_reason is None:
            job = replace(job, stop_reason=why, reason=Reason(ReasonKind.STOPPING, why.value))
            self._commit([(job, Event(job.id, self.clock(), "stop", job.state, why.value))])
        self._signal(job, signal.SIGTERM)
        self._add_timer(job.id, self.config.kill_grace, self._kill, job.id)

    def _kill(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state is JobState.RUNNING:
            log.info("job %d ignored SIGTERM; sending SIGKILL", job_id)
            self._signal(job, signal.SIGKILL)

    def _signal(self, job: Job, signum: int) -> None:
        if job.pid is not None:
            signal_job(job.pid, read_pid(self.jobdir(job.id)), signum)

    def _add_timer(self, job_id: int, delay: float, fn: Callable[[int], None], arg: int) -> None:
        self._timers.setdefault(job_id, []).append(self.loop.call_later(delay, fn, arg))
