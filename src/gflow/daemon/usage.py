"""Keeping what running jobs use: a look at their processes every tick, saved every few.

The figures live on the jobs in memory (`Job.usage`) and are written to the store every
SAVE_EVERY ticks and, in the same transaction as the end, when a job ends; a daemon that
dies loses at most those few seconds of peaks. Sampling never touches a job: a look that
fails is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import replace

from gflow.core.errors import Unavailable
from gflow.core.model import GpuInfo, Job, JobProcesses
from gflow.core.states import JobState
from gflow.runner.sampling import sample_all
from gflow.store.db import Store

log = logging.getLogger(__name__)

SAVE_EVERY = 5  # ticks (seconds) between saves of the figures so far


class UsageRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.rss_mb: dict[int, int] = {}  # each running job's RSS at the last look
        self._unsaved: set[int] = set()
        self._ticks = 0

    def tick(
        self,
        jobs: MutableMapping[int, Job],
        processes: Mapping[int, JobProcesses],
        gpus: Callable[[], list[GpuInfo]],
        boot: str,
    ) -> None:
        """Look at every running job; the jobs in `jobs` get their new figures. `gpus` is
        asked only when a job runs."""
        running = {
            job.id: (processes[job.id], job.gpu_ids)
            for job in jobs.values()
            if job.state is JobState.RUNNING and job.id in processes
        }
        self.rss_mb = {}
        looks = sample_all(running, gpus(), boot) if running else {}
        for job_id, (tree, sample) in looks.items():
            self.rss_mb[job_id] = tree.rss_mb
            job = jobs[job_id]
            usage = job.usage.observed(sample)
            if usage != job.usage:
                jobs[job_id] = replace(job, usage=usage)
                self._unsaved.add(job_id)
        self._ticks += 1
        if self._ticks % SAVE_EVERY == 0:
            self.save(jobs)

    def save(self, jobs: Mapping[int, Job]) -> None:
        figures = [(i, jobs[i].usage) for i in self._unsaved if i in jobs]
        if not figures:
            self._unsaved.clear()
            return
        try:
            self.store.save_usage(figures)
        except Unavailable as exc:  # a full disk: the figures stay in memory, tried again
            log.error("cannot save what running jobs used (%s)", exc.message)
            return
        self._unsaved.clear()
