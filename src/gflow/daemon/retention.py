"""[history] keep / keep_jobs: ended jobs forgotten (their logs and files too) within a
minute of their expiry, a small slice per transaction, the loop free between slices, so a
first sweep of a million old jobs never stalls the API. Events older than `keep` go too
(the newest 100,000 always stay: store/events.py); gstats' per-day totals stay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gflow.config import Config
from gflow.core.model import Job
from gflow.store.db import Store
from gflow.store.events import KEEP_SECONDS

log = logging.getLogger(__name__)

SWEEP_EVERY = 30.0  # seconds between sweeps at most: a job is forgotten within a minute
SLICE = 250  # jobs per transaction: ~20 ms of the loop each, on a year's store
PAUSE = 0.02  # seconds the loop is free between slices


class HistoryKeeper:
    """Sweeps the ended jobs past the configured bounds; `forget` removes a job's files."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], float],
        forget: Callable[[list[Job]], None],
    ) -> None:
        self._store = store
        self._keep = config.history_keep
        self._keep_jobs = config.history_keep_jobs
        self._clock = clock
        self._forget = forget
        # A short `keep` is kept to closely: a quarter of it between sweeps, a second at least.
        self._every = (
            SWEEP_EVERY if self._keep is None else max(1.0, min(SWEEP_EVERY, self._keep / 4))
        )
        self._next_sweep = 0.0
        self._sweeping = False
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self._keep is not None or self._keep_jobs is not None

    def tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called every second: start a sweep when one is due and none is going on."""
        if not self.enabled or self._sweeping or self._clock() < self._next_sweep:
            return
        self._next_sweep = self._clock() + self._every
        self._sweeping = True
        try:  # the count bound, found once a sweep: the newest jobs only grow meanwhile
            below = None if self._keep_jobs is None else self._store.oldest_kept(self._keep_jobs)
        except Exception:
            log.exception("finding the jobs past [history] keep_jobs failed")
            self._sweeping = False
            return
        self._slice(loop, below, 0)

    def close(self) -> None:
        """The store is about to close: the sweep under way stops after its slice."""
        self._closed = True

    def _slice(self, loop: asyncio.AbstractEventLoop, below: int | None, so_far: int) -> None:
        if self._closed:
            return
        try:
            before = None if self._keep is None else self._clock() - self._keep
            purged = self._store.purge(before, below, SLICE)
            self._forget(purged)
        except Exception:
            log.exception("forgetting old jobs failed")
            purged = []
        if len(purged) == SLICE:
            loop.call_later(PAUSE, self._slice, loop, below, so_far + SLICE)
            return
        self._sweeping = False
        if so_far + len(purged):
            log.info("forgot %d ended job(s) past [history] keep", so_far + len(purged))
        if self._keep is not None and self._keep < KEEP_SECONDS:  # events no older either
            self._store.trim_events(self._clock(), self._keep)
