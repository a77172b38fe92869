"""The delivery worker: sends what the outbox owes, once, off the loop's critical path.

It wakes when a commit adds events (the bus), and when the next retry is due. A target
gets one job's deliveries one at a time, in event order (other jobs' and targets' in
parallel); only a retry is overtaken: a delivery that failed is sent again after later
ones. A delivery
is deleted from the outbox once sent (or given up: a 4xx but 429, or `max_retries` spent,
logged once with the reason); a retry waits 1, 2, 4 … s (at most an hour). What a crash
leaves in the outbox is sent after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

from gflow.core.notify import EmailTarget, Target, Webhook, backoff
from gflow.daemon.notify.send import Sent, payload, post, send_mail
from gflow.store import outbox
from gflow.store.db import Store

log = logging.getLogger(__name__)

BATCH = 16  # deliveries read from the outbox at once
IDLE = 60.0  # seconds between looks at the outbox when nothing wakes the worker


class Deliveries:
    def __init__(self, store: Store, targets: tuple[Target, ...], clock: Callable[[], float]):
        self.store = store
        self.targets = {t.key: t for t in targets}
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="notifications")

    def poke(self, _head: int = 0) -> None:
        """Something was committed: the outbox may owe deliveries now."""
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            try:
                batch = outbox.due(self.store, self.clock(), BATCH)
                if batch:
                    groups = _in_order(batch, self._job_of(batch))
                    await asyncio.gather(*(self._deliver_in_order(group) for group in groups))
                    continue
                when = outbox.next_due(self.store)
            except Exception:
                log.exception("notification worker: the outbox could not be read")
                when = self.clock() + 5.0
            delay = IDLE if when is None else max(0.0, min(IDLE, when - self.clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _job_of(self, batch: list[outbox.Delivery]) -> dict[int, int]:
        """Each delivery's event's job (events of no job, or gone, count as job 0)."""
        found = self.store.events_by_id([d.event_id for d in batch])
        return {event.id: event.job_id for event in found}

    async def _deliver_in_order(self, deliveries: list[outbox.Delivery]) -> None:
        for delivery in deliveries:
            await self._deliver(delivery)

    async def _deliver(self, delivery: outbox.Delivery) -> None:
        target = self.targets.get(delivery.target)
        found = self.store.events_by_id([delivery.event_id])
        if target is None or not found:
            why = "its target is no longer configured" if target is None else "its event is gone"
            log.warning("notification %s for event %d dropped: %s", delivery.target,
                        delivery.event_id, why)  # fmt: skip
            outbox.done(self.store, delivery.id)
            return
        event = found[0]
        job = self.store.get_job(event.job_id) if event.job_id else None
        body = payload(event.to_dict(), job.to_dict() if job else None)
        if body["job"] is not None:
            body["job"].pop("env", None)
        result = await self._send(target, delivery, body)
        attempts = delivery.attempts + 1
        if result.ok:
            self.sent += 1
            outbox.done(self.store, delivery.id)
        elif result.retry and attempts <= target.max_retries:
            log.debug("notification %s for event %d: %s; retrying", target.key,
                      event.id, result.why)  # fmt: skip
            outbox.later(self.store, delivery.id, attempts, self.clock() + backoff(attempts))
        else:
            tries = f"after {attempts} tries" if attempts > 1 else "not retried"
            log.warning("notification to %s for event %d (%s of job %d) failed (%s): %s",
                        _where(target), event.id, event.name, event.job_id, tries,
                        result.why)  # fmt: skip
            outbox.done(self.store, delivery.id)

    async def _send(
        self, target: Target, delivery: outbox.Delivery, body: dict[str, object]
    ) -> Sent:
        if isinstance(target, Webhook):
            if self._session is None:
                self._session = aiohttp.ClientSession()
            return await post(self._session, target, body)
        to = (delivery.address,) if delivery.address else target.to
        return await send_mail(target, to, body)


def _in_order(batch: list[outbox.Delivery], job_of: dict[int, int]) -> list[list[outbox.Delivery]]:
    """One list per (target, job), in the outbox's order: a receiver gets a job's submitted
    before its started, however quickly they were committed, while different jobs and
    targets do not wait on each other (a slow receiver still gets 16 at once)."""
    groups: dict[tuple[str, int], list[outbox.Delivery]] = {}
    for delivery in batch:
        key = (delivery.target, job_of.get(delivery.event_id, 0))
        groups.setdefault(key, []).append(delivery)
    return list(groups.values())


def _where(target: Target) -> str:
    if isinstance(target, EmailTarget):
        return f"{target.key} (smtp {target.host}:{target.port})"
    return f"{target.key} ({target.url})"
