"""The daemon's book of GPU reservations: made, listed and cancelled through the API, kept
in the store, and handed to every scheduling pass (core/reservations.py has the rules)."""

from __future__ import annotations

import pwd
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gflow.config import Config
from gflow.core.errors import Forbidden, InvalidInput, NotFound
from gflow.core.model import Job
from gflow.core.reservations import Reservation, check_new
from gflow.store.db import Store


@dataclass(frozen=True)
class Request:
    """`gctl reserve create`: for whom, which GPUs (by index or by count), when."""

    user: str
    gpu_ids: tuple[int, ...]
    gpus: int
    start: float
    duration: float


class ReservationBook:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._items = store.reservations_not_over(clock())

    def current(self) -> tuple[Reservation, ...]:
        """Those not over yet (an ended one drops out as time passes)."""
        now = self.clock()
        self._items = [r for r in self._items if r.end > now]
        return tuple(self._items)

    def create(
        self,
        config: Config,
        by: str,
        admin: bool,
        request: Request,
        gpu_indices: Sequence[int],
        running: Sequence[Job],
    ) -> tuple[Reservation, list[str]]:
        """Check, store, and say which running jobs may delay it."""
        if request.user != by and not admin:
            raise Forbidden("only an admin may reserve GPUs for someone else")
        try:
            uid = pwd.getpwnam(request.user).pw_uid
        except (KeyError, ValueError):
            raise InvalidInput(f"unknown user {request.user!r}") from None
        now = self.clock()
        new = Reservation(
            0, request.user, uid, request.start, request.start + request.duration,
            request.gpu_ids, request.gpus, by, now,
        )  # fmt: skip
        if not admin:
            if not config.users_may_reserve:
                raise Forbidden(
                    "only an admin may reserve GPUs here",
                    hint="an admin can allow it: [reservations] users_may_reserve = true",
                )
            cap = config.max_reservation_gpu_hours
            if cap is not None and new.gpu_hours() > cap:
                raise Forbidden(
                    f"this reservation is {new.gpu_hours():.1f} GPU-hours; "
                    f"a user may reserve at most {cap:g}"
                )
        check_new(new, self.current(), gpu_indices, now)
        stored = self.store.insert_reservation(new)
        self._items.append(stored)
        self._items.sort(key=lambda r: (r.start, r.id))
        return stored, delays(stored, running)

    def get(self, reservation_id: int) -> Reservation:
        found = self.store.get_reservation(reservation_id)
        if found is None or found.end <= self.clock():
            raise NotFound(f"reservation {reservation_id} does not exist (or is over)")
        return found

    def cancel(self, reservation_id: int, by: str, admin: bool) -> Reservation:
        found = self.get(reservation_id)
        if found.user != by and not admin:
            raise Forbidden(f"reservation {reservation_id} belongs to {found.user}")
        self.store.cancel_reservation(found, self.clock())
        self._items = [r for r in self._items if r.id != reservation_id]
        return found


def delays(res: Reservation, running: Sequence[Job]) -> list[str]:
    """Running jobs of others on its GPUs whose time limit (or lack of one) may make the
    reservation start late: allowed (a running job is never pre-empted), but said."""
    warnings = []
    for job in running:
        if job.uid == res.uid or not job.gpu_ids:
            continue
        on_it = set(job.gpu_ids) & set(res.gpu_ids) if res.gpu_ids else set(job.gpu_ids)
        if not on_it:
            continue
        ends = job.ends_by()
        if ends is None:
            warnings.append(
                f"job {job.id} ({job.user}) holds GPU {min(on_it)} with no time limit: "
                "it may delay this reservation"
            )
        elif ends > res.start:
            warnings.append(
                f"job {job.id} ({job.user}) holds GPU {min(on_it)} until its time limit, "
                f"{ends - res.start:.0f} s after the reservation starts"
            )
    return warnings
