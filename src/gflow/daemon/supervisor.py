"""The job supervisor: job state changes and the life of running jobs.

Every state change goes through `_transition` (is the move one of the nine allowed?) and
`_commit` (jobs and their events in one transaction, before memory changes and before
anyone hears of it). Running jobs are launched, watched through a pidfd, stopped with
SIGTERM then SIGKILL, and reconciled after a daemon restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

from gflow.config import Config
from gflow.core.errors import Forbidden, InvalidState, NotFound, Unavailable
from gflow.core.model import Event, Job, JobProcesses
from gflow.core.outcome import job_outcome
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.states import JobState, can_transition
from gflow.daemon.launcher import Launched, Launcher, PreparedLaunch
from gflow.daemon.slurm_launch import prepare_batch
from gflow.paths import Paths
from gflow.resources.cgroups import CgroupMemory
from gflow.runner.control import (
    boot_id,
    signal_job,
    watch_exit,
    with_group,
    wrapper_alive,
)
from gflow.runner.executors import LaunchError, ProcessExecutor, TmuxExecutor
from gflow.runner.jobfiles import (
    ExitRecord,
    read_exit,
    read_pid,
)
from gflow.store.db import Store

log = logging.getLogger(__name__)

RECORD_RETRY = 1.0  # seconds before trying again to record an end (a full disk, say)
LAUNCH_THREADS = 4  # wrappers being started at once
MAX_LAUNCHING = 8  # jobs handed to the launcher and not back yet


class JobSupervisor:
    """Owns job state: the one guarded transition, durable commits, and running jobs
    (launch, watch for the exit, time limits, stop, reconcile after a restart)."""

    def __init__(
        self,
        paths: Paths,
        config: Config,
        store: Store,
        executor: TmuxExecutor | ProcessExecutor,
        clock: Callable[[], float],
        job_umask: int = 0o022,
        memory: CgroupMemory | None = None,
    ) -> None:
        self.memory = memory  # job cgroups, kernel memory limits; None: RSS polling
        self._cgroups_left: set[int] = set()  # ended jobs' cgroups not removed yet
        self.paths = paths
        self.config = config
        self.store = store
        self.executor = executor
        self.clock = clock
        self.jobs: dict[int, Job] = {}  # active jobs only; ended ones live in the store
        self._timers: dict[int, list[asyncio.TimerHandle]] = {}
        self._end_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._launcher = ThreadPoolExecutor(LAUNCH_THREADS, thread_name_prefix="launch")
        self._launching: set[int] = set()  # started, wrapper not launched yet
        self._launches: set[asyncio.Future[Launched]] = set()  # in the launcher threads
        self.stopping = False  # the daemon is stopping: no new launches
        self.closed = False  # … and its store is closing: nothing more is recorded
        self._processes: dict[int, JobProcesses] = {}  # running jobs, as recorded at launch
        self._pidfds: dict[int, int] = {}  # watched wrappers
        self.boot = boot_id()
        self.job_umask = job_umask
        self.launcher = Launcher(paths, config, executor, memory, job_umask, self.boot, clock)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "start() not called"
        return self._loop

    def request_pass(self) -> None:
        """Something changed that may let a queued job start (the Service schedules)."""
        raise NotImplementedError

    def get_job(self, job_id: int) -> Job:
        job = self.jobs.get(job_id) or self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        return job

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

    def reconcile_running_jobs(self) -> None:
        """After a (re)start: watch live jobs again, record the ends we missed, never lose one.

        Whether a job's wrapper lives is judged from what the daemon recorded at launch
        (pid, start time, boot), and only processes proven to be the job's are killed."""
        self._processes = self.store.running_processes()
        for job in [j for j in self.jobs.values() if j.state is JobState.RUNNING]:
            record = read_exit(self.jobdir(job.id), self._record_owner(job))
            procs = self._processes.get(job.id) or self._legacy_processes(job)
            if record is not None:
                log.info("job %d ended while the daemon was away", job.id)
                self._end_job(job, record)
            elif procs is not None and wrapper_alive(procs, self.boot):
                log.info("job %d still running (wrapper pid %d)", job.id, procs.wrapper_pid)
                job = replace(job, pid=procs.wrapper_pid)
                self.jobs[job.id] = job
                self._watch(job)
                if job.stop_reason is not None:
                    self._stop(job, job.stop_reason)
            else:
                log.warning("job %d vanished without an exit record", job.id)
                if procs is not None:  # the wrapper died; its command must not live on
                    signal_job(procs, signal.SIGKILL, self.boot)
                else:  # the crash came mid-launch: a wrapper may be starting right now
                    self.executor.abandon(job.id, self.launcher.run_as(job))
                self._end_job(job, None)

    def _record_owner(self, job: Job) -> int | None:
        """Whose a job's records must be: its user's in system mode (their wrapper writes
        them); personal mode: anything in our private directory is ours."""
        return job.uid if self.paths.system else None

    def _legacy_processes(self, job: Job) -> JobProcesses | None:
        """A job launched before the daemon kept process records (schema < 6): its wrapper,
        if the pid file names a live process with the start time it recorded; its group is
        then found from the live wrapper, never taken from the file."""
        pid_record = read_pid(self.jobdir(job.id))
        if pid_record is None or pid_record.start_ticks is None or job.pid is None:
            return None
        procs = JobProcesses(self.boot, pid_record.wrapper_pid, pid_record.start_ticks)
        if pid_record.wrapper_pid != job.pid or not wrapper_alive(procs, self.boot):
            return None
        self._processes[job.id] = procs
        self.store.record_processes([(job.id, procs)])
        return procs

    # ---- state changes -------------------------------------------------------------------

    def _transition(
        self, job: Job, dst: JobState, kind: str, detail: str = "", **changes: object
    ) -> tuple[Job, Event]:
        """The one guarded state change: check the move is allowed, apply it, describe it."""
        if not can_transition(job.state, dst):
            raise InvalidState(f"job {job.id} cannot go from {job.state.value} to {dst.value}")
        now = self.clock()
        if dst.is_ended and "finished_at" not in changes:
            changes["finished_at"] = now
        new = replace(job, state=dst, **changes)  # type: ignore[arg-type]
        return new, Event(job.id, now, kind, dst, detail)

    def _transition_free(
        self, job: Job, kind: str, detail: str = "", **changes: object
    ) -> tuple[Job, Event]:
        """A change that keeps the job's state (a limit, a reason): still one event."""
        new = replace(job, **changes)  # type: ignore[arg-type]
        return new, Event(job.id, self.clock(), kind, job.state, detail)

    def _commit(
        self,
        changes: list[tuple[Job, Event]],
        retry_of: Job | None = None,
        processes: tuple[tuple[int, JobProcesses], ...] = (),
    ) -> None:
        """Durable first (one transaction), then memory, then whoever waits for an end.
        With `retry_of`, the same transaction queues that job's next attempt; `processes`
        records who a launched job's processes are."""
        if not changes:
            return
        retry = self.store.save(changes, retry_of, processes)
        self._processes.update(processes)
        if retry is not None:
            self.jobs[retry.id] = retry
        for job, _ in changes:
            if job.state.is_active:
                self.jobs[job.id] = job
            else:
                self.jobs.pop(job.id, None)
                self._processes.pop(job.id, None)
                for timer in self._timers.pop(job.id, []):
                    timer.cancel()
                for waiter in self._end_waiters.pop(job.id, []):
                    if not waiter.done():
                        waiter.set_result(None)

    # ---- running jobs ----------------------------------------------------------------------

    def jobdir(self, job_id: int) -> Path:
        return self.paths.jobs_dir / str(job_id)

    def _start_jobs(self, starts: list[tuple[Job, tuple[int, ...], tuple[int, ...]]]) -> None:
        """Record the starts, then launch each job's wrapper off the event loop.

        Queued -> Running is durable before any process exists: a crash in between shows
        up at restart as a job with no wrapper, which ends Lost instead of running twice.
        Launching (files, `tmux new-session`) runs in a few threads, so a burst of starts
        never stalls the API or the recording of jobs that end meanwhile.
        """
        now = self.clock()
        running = [
            self._transition(
                job,
                JobState.RUNNING,
                "started",
                ",".join(map(str, gpus)),
                started_at=now,
                gpu_ids=gpus,
                cpu_ids=cpus,
                reason=None,
            )
            for job, gpus, cpus in starts
        ]
        self._commit(running)
        for job, _ in running:
            self._launching.add(job.id)
            launch = self._prepare_launch(job)
            future = self.loop.run_in_executor(self._launcher, self.launcher.launch, launch)
            future.add_done_callback(partial(self._launched, job.id))
            self._launches.add(future)
            future.add_done_callback(self._launches.discard)

    def _prepare_launch(self, job: Job) -> PreparedLaunch:
        """What the launcher thread needs, read here: the store belongs to the loop's thread."""
        env, script_body, batch = self.store.get_launch_payload(job.id)
        env.update(
            GFLOW_JOB_ID=str(job.id),
            GFLOW_ARRAY_TASK_ID=str(job.array_task_id if job.array_task_id is not None else 0),
            CUDA_VISIBLE_DEVICES=",".join(map(str, job.gpu_ids)),
            CUDA_DEVICE_ORDER="PCI_BUS_ID",
        )
        python = (self.executor.python or sys.executable) if self.paths.system else ""
        bin_dir = self.paths.state_dir / "bin"
        extra = prepare_batch(job, batch, env, bin_dir, self.clock(), python)
        return PreparedLaunch(job, env, script_body, batch, extra)

    def _kernel_limited(self, job: Job) -> bool:
        """The job's --mem is the kernel's to enforce (its own memory cgroup)."""
        return (
            self.memory is not None
            and bool(job.resources.memory_mb)
            and bool(self.config.enforce_memory)
        )

    async def settle_launches(self, timeout: float) -> None:
        """The daemon is stopping: let the launches under way finish and be recorded
        (their jobs keep running, as every running job does), and start no more."""
        self.stopping = True
        if self._launches:
            await asyncio.wait(set(self._launches), timeout=timeout)
            await asyncio.sleep(0)  # their done-callbacks run on this turn of the loop

    def close(self) -> None:
        """Before the store closes: nothing of ours runs on the loop after this. Running
        jobs go on unwatched; the next daemon adopts them (and reads how they ended)."""
        self.stopping = self.closed = True
        for handles in self._timers.values():
            for handle in handles:
                handle.cancel()
        self._timers.clear()
        for pidfd in self._pidfds.values():
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
        self._pidfds.clear()

    def _launched(self, job_id: int, done: asyncio.Future[Launched]) -> None:
        """Back on the loop: record the wrapper's pid and watch it, or fail the job."""
        self._launching.discard(job_id)
        self.request_pass()  # room for the next launch
        job = self.jobs.get(job_id)
        if job is None:
            return
        try:
            launched = done.result()
        except (LaunchError, OSError, Forbidden) as exc:
            log.error("job %d could not start: %s", job_id, exc)
            self._record_launch_failure(job_id, str(exc))
            return
        pid, at = launched.processes.wrapper_pid, launched.at
        # The run time counts from the launch, not from the decision to start.
        job = replace(job, pid=pid, session=launched.session, started_at=at)
        event = Event(job.id, at, "launched", job.state, f"pid {pid}")
        try:
            self._commit([(job, event)], processes=((job.id, launched.processes),))
        except Unavailable as exc:  # a full disk: keep watching it from memory
            log.error("cannot record the launch of job %d (%s)", job_id, exc.message)
            self.jobs[job.id] = job
            self._processes[job.id] = launched.processes
        self._watch(job)
        if job.stop_reason is not None:  # cancelled while it was being launched
            self._stop(job, job.stop_reason)

    def _record_launch_failure(self, job_id: int, why: str) -> None:
        if self.closed:
            return
        job = self.jobs.get(job_id)
        if job is None or job.state is not JobState.RUNNING:
            return
        reason = Reason(ReasonKind.LAUNCH_FAILED)
        try:
            self._commit(
                [self._transition(job, JobState.FAILED, "launch failed", why, reason=reason)]
            )
        except Unavailable as exc:  # a full disk, say: the job is not running; say so later
            log.error("cannot record that job %d failed to start yet (%s)", job_id, exc.message)
            self.loop.call_later(RECORD_RETRY, self._record_launch_failure, job_id, why)
            return
        self.request_pass()

    def _watch(self, job: Job) -> None:
        assert job.pid is not None
        pidfd = watch_exit(self.loop, job.pid, lambda: self._on_wrapper_exit(job.id))
        if pidfd is not None:
            self._pidfds[job.id] = pidfd
        if job.time_limit is not None and job.started_at is not None:
            delay = job.started_at + job.time_limit - self.clock()
            self._add_timer(job.id, max(0.0, delay), self._on_time_limit, job.id)

    def _on_wrapper_exit(self, job_id: int) -> None:
        self._pidfds.pop(job_id, None)  # closed by watch_exit once this returns
        if self.closed:  # the next daemon reads its exit record
            return
        job = self.jobs.get(job_id)
        if job is None or job.state is not JobState.RUNNING:
            return
        if isinstance(self.executor, ProcessExecutor) and job.pid is not None:
            self.executor.reap(job.pid)
        try:
            self._end_job(job, read_exit(self.jobdir(job_id), self._record_owner(job)))
        except Unavailable as exc:  # e.g. a full disk: the exit record waits on disk for us
            log.error("cannot record the end of job %d yet (%s); retrying", job_id, exc.message)
            self.loop.call_later(RECORD_RETRY, self._on_wrapper_exit, job_id)

    def _end_job(self, job: Job, record: ExitRecord | None) -> None:
        exit_code = record.exit_code if record else None
        signum = record.signal if record else None
        stop_reason = job.stop_reason
        if self.memory is not None:
            if stop_reason is None and self.memory.oom_killed(job.id):
                log.info("job %d was killed by the kernel at its memory limit", job.id)
                stop_reason = ReasonKind.MEMORY_LIMIT
            # Whatever of the job outlived its wrapper ends with it, all at once.
            self.memory.kill(job.id, signal.SIGKILL)
            self._cgroups_left.add(job.id)
            self.sweep_cgroups()
        if stop_reason is None and record is not None and record.timed_out:
            stop_reason = ReasonKind.TIME_LIMIT  # the wrapper enforced it (no daemon, say)
        state, reason = job_outcome(
            stop_reason,
            exit_code,
            signum,
            record is not None,
            record is not None and record.hangup,
            record is not None and record.launch_failed,
        )
        # What the job's record says of its end, kept within its run (it could write it).
        now = self.clock()
        finished_at = min(max(record.ended_at, job.started_at or 0.0), now) if record else now
        usage = job.usage.ended(record.cpu_seconds, record.max_rss_kb) if record else job.usage
        ended = self._transition(
            job,
            state,
            "ended",
            str(reason),
            reason=reason,
            usage=usage,
            exit_code=exit_code,
            signal=signum,
            finished_at=finished_at,
            pid=None,
        )
        changes = [ended]
        # A retry is a new job, queued in the same transaction; dependents look at the
        # newest attempt of what they depend on (Store.states_of), so they simply wait.
        retry_of = ended[0] if should_retry(ended[0]) else None
        self._commit(changes, retry_of)
        self.job_ended(ended[0])
        self.request_pass()

    def job_ended(self, job: Job) -> None:
        """A job's end is committed: the service's hook (what it used counts from now)."""

    def sweep_cgroups(self) -> None:
        """Remove ended jobs' cgroups once empty (a killed process takes a moment)."""
        if self.memory is None:
            return
        for job_id in list(self._cgroups_left):
            if not self.memory.members(job_id):
                self.memory.remove(job_id)
                self._cgroups_left.discard(job_id)

    def _enforce_memory_limits(self, rss_mb: dict[int, int]) -> None:
        """Stop a job whose processes use more RAM than its --mem, where no kernel limit
        does it (`rss_mb`: this tick's look at every running job)."""
        for job in list(self.jobs.values()):
            limit = job.resources.memory_mb
            if (
                not self._kernel_limited(job)
                and job.state is JobState.RUNNING
                and limit
                and job.stop_reason is None
                and rss_mb.get(job.id, 0) > limit
            ):
                log.info("job %d exceeded its memory limit of %d MB", job.id, limit)
                self._stop(job, ReasonKind.MEMORY_LIMIT)

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
        procs = self._processes.get(job.id)
        if procs is None:
            log.warning("job %d: no recorded processes to signal", job.id)
            return
        self._record_groups([job.id])
        signal_job(self._processes[job.id], signum, self.boot, self._pidfds.get(job.id))
        if self.memory is not None and not wrapper_alive(procs, self.boot):
            # A live wrapper (a subreaper) has all of the job below it; a dead one left
            # orphans that only the cgroup still knows.
            self.memory.kill(job.id, signum)

    def _record_groups(self, job_ids: list[int]) -> None:
        """Note each running job's process group as soon as its wrapper has forked it, so a
        job whose wrapper dies can still be stopped whole (on the tick, and before a stop)."""
        found = []
        for job_id in job_ids:
            procs = self._processes.get(job_id)
            if procs is not None and procs.group_id is None:
                grouped = with_group(procs, self.boot)
                if grouped.group_id is not None:
                    found.append((job_id, grouped))
        if found:
            self._processes.update(found)
            try:
                self.store.record_processes(found)
            except Unavailable as exc:  # a full disk: memory has it; the next tick retries
                log.error("cannot record process groups (%s)", exc.message)

    def _add_timer(self, job_id: int, delay: float, fn: Callable[[int], None], arg: int) -> None:
        self._timers.setdefault(job_id, []).append(self.loop.call_later(delay, fn, arg))


def should_retry(job: Job) -> bool:
    """A failure (or, if asked, a timeout) with attempts left; a cancel never is."""
    if job.attempt > job.max_retries:
        return False
    return job.state is JobState.FAILED or (job.state is JobState.TIMEOUT and job.retry_on_timeout)
