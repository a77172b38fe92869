"""What Slurm says, mirrored truthfully: one squeue per poll for all our jobs, then
`scontrol show job` (and sacct, where accounting runs) for jobs that have left the queue;
Slurm's states and reasons become ours (core/slurm.py), our wrapper's exit record gives
the exit code. Every change goes through the supervisor's `_transition` / `_commit`, so
events, metrics and notifications fire as for a local job."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from gflow.core.model import Event, Job
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.slurm import (
    Phase,
    SlurmRow,
    WrapperEnd,
    ended_outcome,
    never_runs,
    parse_mark,
    phase_of,
    wait_reason,
)
from gflow.core.states import JobState
from gflow.daemon.backends.slurm_commands import SlurmRefused, SlurmUnreachable
from gflow.daemon.supervisor import should_retry
from gflow.runner.jobfiles import read_exit, read_pid

if TYPE_CHECKING:
    from gflow.daemon.backends.slurm import SlurmBackend, Unit

log = logging.getLogger(__name__)

POLL = 1.0  # seconds between squeue calls while we have jobs in Slurm


def slurm_time(text: str) -> float | None:
    """Slurm's local '2026-12-02T00:37:43' as a Unix time; None for Unknown / N/A."""
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


class Mirror:
    def __init__(self, backend: SlurmBackend) -> None:
        self.backend = backend
        self.service = backend.service
        self.to_cancel: set[str] = set()  # Slurm ids whose scancel has not gone through

    async def poll_forever(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mirroring Slurm failed; trying again")
            await asyncio.sleep(POLL)

    async def poll_once(self) -> None:
        backend, jobs = self.backend, self.service.jobs
        lost = [j for j in jobs.values() if j.slurm_handing and j.id not in backend.in_flight]
        handed = [j for j in jobs.values() if j.slurm_job_id]
        if self.to_cancel:
            self.scancel(sorted(self.to_cancel))
        if not lost and not handed:
            return
        # Looking for a mark means reading every job; otherwise only ours, by id.
        ids = [] if lost else [j.slurm_job_id.split("_")[0] for j in handed]
        asked = time.monotonic()
        try:
            rows = await backend.call(backend.commands.squeue, ids)
        except SlurmUnreachable as exc:
            backend.unreachable(str(exc))
            return
        except SlurmRefused as exc:  # e.g. every id gone: Slurm calls the list invalid
            log.info("squeue: %s", exc)
            rows = []
        backend.reachable()
        if lost:
            self._adopt(lost, rows)
        by_id = {row.slurm_id: row for row in rows}
        for job in handed:
            row = by_id.get(job.slurm_job_id)
            if row is None:
                row = await self._left_queue(job.slurm_job_id)
            current = jobs.get(job.id)
            if backend.acted_at.get(job.id, 0.0) > asked:
                continue  # we changed it after that squeue was asked: the next one says
            if current is not None and current.slurm_job_id:
                self.apply(current, row)
        for job_id in [i for i in backend.acted_at if i not in jobs]:
            del backend.acted_at[job_id]

    async def _left_queue(self, slurm_id: str) -> SlurmRow | None:
        """A job squeue no longer shows: scontrol may still, accounting may."""
        commands = self.backend.commands
        try:
            for fn in (commands.show_job, commands.sacct):
                rows = await self.backend.call(fn, slurm_id)
                found = [row for row in rows if row.slurm_id == slurm_id]
                if found:
                    return found[0]
        except SlurmUnreachable:
            pass
        return None

    def _adopt(self, lost: list[Job], rows: list[SlurmRow]) -> None:
        """Jobs a killed daemon left 'being handed': the Slurm job with our mark is theirs;
        with no such job, sbatch never took them, and they are handed again."""
        from gflow.daemon.backends.slurm import Unit

        sup, store_id = self.service, self.backend.store_id
        units: dict[int, Unit] = {}
        for job in sorted(lost, key=lambda j: j.id):
            jobs = units[job.slurm_handing].jobs if job.slurm_handing in units else ()
            units[job.slurm_handing] = Unit(job.slurm_handing, (*jobs, job))
        found: dict[int, str] = {}
        for row in rows:
            mark_id = parse_mark(row.comment, store_id)
            unit = units.get(mark_id) if mark_id is not None else None
            if unit is None:
                continue
            _, _, task = row.slurm_id.partition("_")
            for job in unit.jobs:
                if (not task and not unit.is_array) or (
                    task.isdigit() and unit.is_array and unit.task_of(job) == int(task)
                ):
                    found[job.id] = row.slurm_id
        # The jobs as they are now (the squeue took a while): one cancelled meanwhile is not
        # written back; its Slurm job, if found, is cancelled too.
        current = {j.id: sup.jobs.get(j.id) for j in lost}
        still = [j for j in current.values() if j is not None and j.slurm_handing]
        changes = []
        for job in still:
            if job.id in found:
                log.info("job %d found in Slurm as %s (by its mark)", job.id, found[job.id])
                changes.append(self._with_id(job, found[job.id], "found by its mark"))
        sup._commit(changes)
        gone = [found[i] for i, job in current.items() if job is None and i in found]
        if gone:
            self.scancel(gone)
        missing = [j.id for j in still if j.id not in found and j.id not in self.backend.in_flight]
        if missing:
            self.backend._not_handed(missing)
            self.backend.mirror.cancel_stopped(missing)
            sup.request_pass()

    def _with_id(self, job: Job, slurm_id: str, how: str) -> tuple[Job, Event]:
        return self.service._transition_free(
            job, "slurm", f"Slurm job {slurm_id} ({how})", slurm_job_id=slurm_id, slurm_handing=0
        )

    def record_ids(self, unit: Unit, slurm_id: str, notes: list[str]) -> None:
        sup = self.service
        changes = []
        cancel = []
        for job in unit.jobs:
            sid = f"{slurm_id}_{unit.task_of(job)}" if unit.is_array else slurm_id
            current = sup.jobs.get(job.id)
            if current is None or job.id in self.backend.cancel_on_submit:
                self.backend.cancel_on_submit.discard(job.id)
                cancel.append(sid)
            if current is not None:
                how = "; ".join(["submitted", *notes])
                changes.append(self._with_id(current, sid, how))
        sup._commit(changes)
        if cancel:
            self.scancel(cancel)

    def cancel_stopped(self, ids: list[int]) -> None:
        """Jobs cancelled while an sbatch that did not take them ran: Cancelled now."""
        sup = self.service
        stopped = [sup.jobs[i] for i in ids if i in sup.jobs and sup.jobs[i].stop_reason]
        reason = Reason(ReasonKind.CANCELLED_BY_USER)
        sup._commit(
            [sup._transition(j, JobState.CANCELLED, "cancelled", reason=reason) for j in stopped]
        )
        self.backend.cancel_on_submit.difference_update(j.id for j in stopped)

    def refused(self, ids: list[int], why: str) -> None:
        """sbatch said no: the job can never run there. Cancelled, Slurm's words kept."""
        sup = self.service
        reason = Reason(ReasonKind.SLURM, "Rejected")
        changes = [
            sup._transition(sup.jobs[i], JobState.CANCELLED, "cancelled", why, reason=reason)
            for i in ids
            if i in sup.jobs and sup.jobs[i].state.is_active
        ]
        sup._commit(changes)
        sup.request_pass()  # its dependents cascade

    def set_reasons(self, reasons: list[tuple[Job, Reason | None]]) -> None:
        """Why waiting jobs wait: shown, not a state change (no event), as the local pass."""
        sup = self.service
        changed = [(j, r) for j, r in reasons if j.id in sup.jobs and sup.jobs[j.id].reason != r]
        if changed:
            sup.store.set_reasons((j.id, str(r) if r else None) for j, r in changed)
            for job, reason in changed:
                sup.jobs[job.id] = replace(sup.jobs[job.id], reason=reason)

    def scancel(self, slurm_ids: list[str], signal: str = "") -> None:
        """Off the loop; what does not go through is tried again at the next poll."""
        self.to_cancel.update(slurm_ids)
        done = self.service.loop.run_in_executor(
            self.backend._pool, self.backend.commands.scancel, slurm_ids, signal
        )

        def after(future: asyncio.Future[None]) -> None:
            try:
                future.result()
            except SlurmUnreachable as exc:
                log.warning("scancel %s: %s; trying again", " ".join(slurm_ids), exc)
                return
            except SlurmRefused as exc:  # already gone: nothing left to cancel
                log.info("scancel %s: %s", " ".join(slurm_ids), exc)
            self.to_cancel.difference_update(slurm_ids)

        done.add_done_callback(after)

    # ---- one job's row -------------------------------------------------------------------

    def apply(self, job: Job, row: SlurmRow | None) -> None:
        sup = self.service
        if row is None:  # gone from Slurm altogether: our wrapper's record is all there is
            self._end(self._running(job, None), None)
            return
        phase = phase_of(row)
        if phase is Phase.HELD and job.state is JobState.QUEUED:
            # Queued -> Hold (held in Slurm, by us or by scontrol)
            sup._commit([sup._transition(job, JobState.HOLD, "held", "in Slurm",
                                         reason=Reason(ReasonKind.HELD))])  # fmt: skip
        elif phase is Phase.PENDING and job.state is JobState.HOLD:
            # Hold -> Queued (released in Slurm)
            sup._commit([sup._transition(job, JobState.QUEUED, "released", "in Slurm",
                                         reason=wait_reason(row))])  # fmt: skip
        elif phase is Phase.PENDING and job.state is JobState.QUEUED:
            reason = wait_reason(row)
            if never_runs(row):
                reason = Reason(ReasonKind.DEPENDENCY, "NeverSatisfied")
            self.set_reasons([(job, reason)])
        elif phase is Phase.RUNNING and job.state is not JobState.RUNNING:
            self._running(job, row)
        elif phase is Phase.RUNNING and row.node and job.node != row.node:
            sup._commit([sup._transition_free(job, "slurm", f"on {row.node}", node=row.node)])
        elif phase is Phase.ENDED:
            started = read_pid(sup.jobdir(job.id)) is not None
            if job.state is not JobState.RUNNING and not started:
                self._never_ran(job, row)
            else:
                self._end(self._running(job, row), row)

    def _running(self, job: Job, row: SlurmRow | None) -> Job:
        """Hold -> Queued -> Running as Slurm says (a short job may have come and gone
        between two polls: it still ran, and its start is recorded)."""
        sup = self.service
        if job.state is JobState.HOLD:
            sup._commit([sup._transition(job, JobState.QUEUED, "released", "in Slurm")])
            job = sup.jobs[job.id]
        if job.state is JobState.QUEUED:
            started = (slurm_time(row.start) if row else None) or sup.clock()
            node = row.node if row and row.node not in ("", "(null)") else ""
            # Queued -> Running
            sup._commit([sup._transition(job, JobState.RUNNING, "started", node,
                                         started_at=started, node=node, reason=None)])  # fmt: skip
            job = sup.jobs[job.id]
        return job

    def _never_ran(self, job: Job, row: SlurmRow) -> None:
        """Cancelled (or failed) in Slurm before it started."""
        sup = self.service
        reason = Reason(ReasonKind.CANCELLED_BY_USER)
        if row.state.startswith("CANCELLED"):
            # Queued/Hold -> Cancelled
            sup._commit([sup._transition(job, JobState.CANCELLED, "cancelled", "in Slurm",
                                         reason=reason)])  # fmt: skip
            sup.request_pass()
        else:
            self._end(self._running(job, row), row)

    def _end(self, job: Job, row: SlurmRow | None) -> None:
        """Running -> Finished/Failed/Timeout/Cancelled, with the wrapper's exit record."""
        sup = self.service
        if job.state is not JobState.RUNNING:
            return
        record = read_exit(sup.jobdir(job.id), sup._record_owner(job))
        if row is None:
            if record is None:
                ended, reason, code, signum = JobState.FAILED, Reason(ReasonKind.LOST), None, None
            else:
                row = SlurmRow(job.slurm_job_id, "COMPLETED" if record.exit_code == 0 else
                               "FAILED", "", "", "", "", "")  # fmt: skip
        if row is not None:
            end = None
            if record is not None:
                end = WrapperEnd(
                    record.exit_code, record.signal, record.timed_out, record.launch_failed
                )
            ended, reason, code, signum = ended_outcome(row, end, job.stop_reason)
        now = sup.clock()
        slurm_end = slurm_time(row.end) if row is not None else None
        finished = record.ended_at if record else (slurm_end or now)
        finished = min(max(finished, job.started_at or 0.0), now)
        usage = job.usage.ended(record.cpu_seconds, record.max_rss_kb) if record else job.usage
        # Running -> Finished / Failed / Timeout / Cancelled
        change = sup._transition(
            job, ended, "ended", str(reason), reason=reason, usage=usage, exit_code=code,
            signal=signum, finished_at=finished, pid=None,
        )  # fmt: skip
        sup._commit([change], change[0] if should_retry(change[0]) else None)
        sup.job_ended(change[0])
        sup.request_pass()
