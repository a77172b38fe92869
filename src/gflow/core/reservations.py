"""GPU reservations: GPUs kept for one user for a while (a demo, a deadline).

Pure rules: which reservations conflict, and what a job of someone else may use now. A
reservation names GPUs by index (`--gpu-ids 0,2`) or by count (`--gpus 2`, out of the
pool). While it is active only its user's jobs may use its GPUs; before it starts another
job may use them only if its time limit ends in time (backfill); a running job is never
pre-empted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gflow.core.errors import Forbidden, InvalidInput


@dataclass(frozen=True)
class Reservation:
    id: int
    user: str
    uid: int
    start: float
    end: float
    gpu_ids: tuple[int, ...] = ()  # by index; empty: `gpus` out of the pool
    gpus: int = 0
    created_by: str = ""
    created_at: float = 0.0

    @property
    def count(self) -> int:
        return len(self.gpu_ids) or self.gpus

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def overlaps(self, start: float, end: float) -> bool:
        return self.start < end and start < self.end

    def gpu_hours(self) -> float:
        return self.count * (self.end - self.start) / 3600

    def describe(self) -> str:
        what = f"GPUs {','.join(map(str, self.gpu_ids))}" if self.gpu_ids else f"{self.gpus} GPU(s)"
        return f"reservation {self.id} ({self.user}, {what})"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "user": self.user,
            "uid": self.uid,
            "start": self.start,
            "end": self.end,
            "gpu_ids": list(self.gpu_ids),
            "gpus": self.count,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


def check_new(
    new: Reservation, existing: Iterable[Reservation], gpu_indices: Sequence[int], now: float
) -> None:
    """Refuse an impossible reservation (InvalidInput) or one that collides with another
    (Forbidden, naming it)."""
    if new.start < now - 1:
        raise InvalidInput("a reservation cannot start in the past", hint="use now, +30m, 22:00 …")
    if new.end <= new.start:
        raise InvalidInput("a reservation needs a duration of more than 0")
    unknown = sorted(set(new.gpu_ids) - set(gpu_indices))
    if unknown:
        raise InvalidInput(
            f"there is no GPU {unknown[0]} here",
            hint=f"GPUs: {','.join(map(str, gpu_indices)) or 'none'}",
        )
    if not new.gpu_ids and not 0 < new.gpus <= len(gpu_indices):
        raise InvalidInput(f"cannot reserve {new.gpus} GPU(s): this machine has {len(gpu_indices)}")
    overlapping = [r for r in existing if r.overlaps(new.start, new.end)]
    for other in overlapping:
        shared = set(other.gpu_ids) & set(new.gpu_ids)
        if shared:
            raise Forbidden(
                f"GPU {min(shared)} is already reserved then by {other.describe()}",
                hint="gctl reserve list --timeline",
            )
    # Every overlapping reservation at once must fit in the machine's GPUs.
    taken = sum(r.count for r in overlapping)
    if taken + new.count > len(gpu_indices):
        other = overlapping[-1]
        raise Forbidden(
            f"only {len(gpu_indices) - taken} GPU(s) are left to reserve then: "
            f"{other.describe()} overlaps",
            hint="gctl reserve list --timeline",
        )


@dataclass(frozen=True)
class KeptFrom:
    """What reservations keep from one job now: GPUs it may not take, and how many idle
    GPUs it must leave (count reservations)."""

    gpu_ids: frozenset[int] = frozenset()
    keep_idle: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.gpu_ids or self.keep_idle)


NOTHING_KEPT = KeptFrom()


def kept_from(
    reservations: Iterable[Reservation], uid: int, now: float, ends_at: float
) -> KeptFrom:
    """What other users' reservations keep from a job of `uid` that would run until
    `ends_at` (inf without a time limit): the active ones, and those starting before it ends."""
    gpu_ids: set[int] = set()
    keep_idle = 0
    for res in reservations:
        if res.uid == uid or res.end <= now or res.start >= ends_at:
            continue  # its own, over, or starting after the job is surely done: backfill
        if res.gpu_ids:
            gpu_ids.update(res.gpu_ids)
        else:
            keep_idle += res.gpus
    return KeptFrom(frozenset(gpu_ids), keep_idle)


def next_boundary(reservations: Iterable[Reservation], now: float) -> float | None:
    """The next start or end of a reservation: when a pass must run."""
    times = [t for r in reservations for t in (r.start, r.end) if t > now]
    return min(times, default=None)
