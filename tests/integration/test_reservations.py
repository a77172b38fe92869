"""GPU reservations end to end: the daemon's owner (an admin) reserves GPUs for another
local user; the owner's own jobs are then the ones kept off them."""

from __future__ import annotations

import json

from tests.helpers import Gflow, wait_for
from tests.users import LocalUser


def reserve(gflow: Gflow, *args: str) -> dict[str, object]:
    made: dict[str, object] = json.loads(gflow.ok("gctl", "reserve", "create", *args, "--json"))
    return made


def test_an_active_reservation_keeps_others_off_its_gpus(
    make_gflow: type[Gflow], eve: LocalUser
) -> None:
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    made = reserve(
        gflow, "--user", eve.name, "--gpu-ids", "0", "--start", "now", "--duration", "1h"
    )
    rid = made["reservation"]["id"]  # type: ignore[index]
    first = gflow.submit("--gpus", "1", "sleep", "120")
    assert gflow.wait_state(first, "Running")["gpu_ids"] == [1]
    second = gflow.submit("--gpus", "1", "sleep", "120")
    waiting = wait_for(
        lambda: (j := gflow.job(second))["reason"] == "Reservation" and j,
        what="the second job to wait for the reservation",
    )
    assert waiting["state"] == "Queued"
    listed = gflow.ok("gctl", "reserve", "list", "--active")
    assert eve.name in listed and "active" in listed
    assert "R" in gflow.ok("gctl", "reserve", "list", "--timeline", "--range", "2h")
    gflow.ok("gflowd", "restart")  # reservations survive a restart
    assert gflow.job(second)["state"] == "Queued"
    gflow.ok("gctl", "reserve", "cancel", str(rid))
    assert gflow.wait_state(second, "Running")["gpu_ids"] == [0]
    events = gflow.ok("gjob", "events")  # one event each, as every committed change
    assert "reservation_created" in events and "reservation_cancelled" in events
    gflow.ok("gcancel", str(first), str(second))


def test_before_it_starts_only_jobs_that_end_in_time_may_use_its_gpus(
    make_gflow: type[Gflow], eve: LocalUser
) -> None:
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    reserve(gflow, "--user", eve.name, "--gpus", "1", "--start", "now+60m", "--duration", "1h")
    unbounded = gflow.submit("--gpus", "1", "sleep", "120")
    assert wait_for(lambda: gflow.job(unbounded)["reason"] == "Reservation", what="no backfill")
    bounded = gflow.submit("--gpus", "1", "-t", "10m", "sleep", "120")
    assert gflow.wait_state(bounded, "Running")["state"] == "Running"  # ends before the start
    gflow.ok("gcancel", str(bounded), str(unbounded))


def test_a_reservation_ends_on_time_and_the_waiting_job_starts(
    make_gflow: type[Gflow], eve: LocalUser
) -> None:
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    reserve(gflow, "--user", eve.name, "--gpus", "1", "--start", "now", "--duration", "3s")
    job = gflow.submit("--gpus", "1", "sleep", "120")
    assert wait_for(lambda: gflow.job(job)["reason"] == "Reservation", what="the reservation")
    assert gflow.wait_state(job, "Running", timeout=15)["state"] == "Running"
    gflow.ok("gcancel", str(job))


def test_impossible_and_conflicting_reservations_are_refused(
    make_gflow: type[Gflow], eve: LocalUser
) -> None:
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    holder = gflow.submit("--gpus", "1", "sleep", "120")
    gflow.wait_state(holder, "Running")
    made = reserve(
        gflow, "--user", eve.name, "--gpu-ids", "0", "--start", "now", "--duration", "2h"
    )
    assert any(f"job {holder}" in w and "no time limit" in w for w in made["warnings"])  # type: ignore[attr-defined]
    clash = gflow.run("gctl", "reserve", "create", "--user", eve.name, "--gpu-ids", "0",
                      "--start", "now+30m", "--duration", "1h")  # fmt: skip
    assert clash.returncode == 1 and "reservation 1" in clash.stderr
    too_many = gflow.run("gctl", "reserve", "create", "--user", eve.name, "--gpus", "3",
                         "--start", "now", "--duration", "1h")  # fmt: skip
    assert too_many.returncode == 2 and "has 2" in too_many.stderr
    past = gflow.run("gctl", "reserve", "create", "--gpus", "1", "--start", "2020-01-01 10:00",
                     "--duration", "1h")  # fmt: skip
    assert past.returncode == 2 and "past" in past.stderr
    nobody = gflow.run("gctl", "reserve", "create", "--user", "no-such-user-x", "--gpus", "1",
                       "--start", "now", "--duration", "1h")  # fmt: skip
    assert nobody.returncode == 2 and "unknown user" in nobody.stderr
    shown = json.loads(gflow.ok("gctl", "reserve", "show", "1", "--json"))
    assert shown["user"] == eve.name and shown["gpu_ids"] == [0]
    gflow.ok("gcancel", str(holder))
