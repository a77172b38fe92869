"""The scheduling pass and the resource tick: when a pass runs (requested, at a --begin
time or a reservation's edge, every tick while jobs wait), what it decides
(core/policy.py) and what it commits; and what the tick notices that nobody announces."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from gflow.core.model import Job
from gflow.core.policy import schedule
from gflow.core.reservations import next_boundary
from gflow.core.states import JobState
from gflow.daemon.memory import release_free_memory
from gflow.daemon.service_base import ServiceBase
from gflow.daemon.sharing import rules_for
from gflow.daemon.supervisor import MAX_LAUNCHING

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between resource checks
TRIM_EVERY = 3600.0  # seconds between trims of the event history (store/events.py)


class SchedulingPass(ServiceBase):
    """One pass at a time, soon after it is asked for, and the tick every second."""

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

    def job_ended(self, job: Job) -> None:
        if job.gpu_ids:  # GPU-hours changed: fair-share and daily caps look again soon
            self._rules.stale = True
            self._rules.ended.add(job)
