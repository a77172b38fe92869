"""The team's rules in the scheduler: quotas keep jobs waiting, fair-share orders users."""

from __future__ import annotations

import math
from dataclasses import replace

from gflow.core.policy import schedule
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.sharing import (
    Quota,
    SharingRules,
    decayed_gpu_hours,
    gpu_hours_since,
    never_allowed,
)
from tests.unit.test_policy import NOW, gpus24, make_job, running

ALICE, BOB = 1000, 1001


def bobs(job):  # type: ignore[no-untyped-def]
    return replace(job, uid=BOB, user="bob")


def test_a_running_jobs_cap_keeps_the_rest_waiting_with_its_reason() -> None:
    rules = SharingRules(user_quotas={ALICE: Quota(max_running_jobs=2)})
    queued = [make_job(i) for i in (2, 3, 4)]
    decision = schedule(queued, [running(1)], {}, gpus24(0), NOW, rules)
    assert [s.job_id for s in decision.starts] == [2]
    assert decision.waiting[3] == decision.waiting[4] == Reason(ReasonKind.QUOTA, "running_jobs")
    assert str(decision.waiting[3]) == "Quota:running_jobs"


def test_a_gpu_cap_counts_what_a_job_would_add() -> None:
    rules = SharingRules(user_quotas={ALICE: Quota(max_running_gpus=2)})
    queued = [make_job(2, gpus=2), make_job(3, gpus=1)]
    decision = schedule(queued, [running(1, [0])], {}, gpus24(4), NOW, rules)
    assert [s.job_id for s in decision.starts] == [3]
    assert decision.waiting[2] == Reason(ReasonKind.QUOTA, "running_gpus")


def test_quotas_are_per_user_and_per_project() -> None:
    rules = SharingRules(
        user_quotas={ALICE: Quota(max_running_jobs=1)},
        project_quotas={"vision": Quota(max_running_jobs=1)},
    )
    queued = [
        make_job(1),
        make_job(2),
        bobs(make_job(3)),
        replace(bobs(make_job(4)), project="vision"),
    ]
    queued += [replace(bobs(make_job(5)), project="vision")]
    decision = schedule(queued, [], {}, gpus24(0), NOW, rules)
    assert sorted(s.job_id for s in decision.starts) == [1, 3, 4]
    assert decision.waiting[2] == Reason(ReasonKind.QUOTA, "running_jobs")
    assert decision.waiting[5] == Reason(ReasonKind.QUOTA, "running_jobs")


def test_a_daily_gpu_hours_cap_waits_once_spent() -> None:
    rules = SharingRules(
        user_quotas={ALICE: Quota(max_gpu_hours_per_day=4)}, user_gpu_hours_today={ALICE: 4.0}
    )
    decision = schedule(
        [make_job(1, gpus=1), bobs(make_job(2, gpus=1))], [], {}, gpus24(2), NOW, rules
    )
    assert [s.job_id for s in decision.starts] == [2]
    assert decision.waiting[1] == Reason(ReasonKind.QUOTA, "gpu_hours_per_day")


def test_fair_share_puts_the_lighter_user_first_within_a_priority() -> None:
    usage = {ALICE: 30.0, BOB: 2.0}
    queued = [make_job(1, gpus=1), bobs(make_job(2, gpus=1)), make_job(3, gpus=1, priority=50)]
    plain = schedule(queued, [], {}, gpus24(2), NOW)
    fair = schedule(
        queued, [], {}, gpus24(2), NOW, SharingRules(fair_share_usage=usage, fair_share=True)
    )
    assert [s.job_id for s in plain.starts] == [3, 1]
    assert [s.job_id for s in fair.starts] == [3, 2]  # priority still first


def test_decayed_usage_halves_with_each_half_life() -> None:
    day = 86400.0
    recent = decayed_gpu_hours([(ALICE, NOW - 3600, NOW, 1)], NOW, 7 * day)
    old = decayed_gpu_hours([(BOB, NOW - 7 * day - 3600, NOW - 7 * day, 1)], NOW, 7 * day)
    assert math.isclose(recent[ALICE], 1.0, rel_tol=1e-2)
    assert math.isclose(old[BOB], 0.5, rel_tol=1e-2)
    running_now = decayed_gpu_hours([(ALICE, NOW - 1800, NOW + 9999, 2)], NOW, 7 * day)
    assert math.isclose(running_now[ALICE], 1.0, rel_tol=1e-2)  # credited as it runs


def test_gpu_hours_of_the_last_day_count_only_what_falls_in_it() -> None:
    spans = [(ALICE, NOW - 90000.0, NOW - 82800.0, 2), (ALICE, NOW - 3600.0, NOW, 1)]
    hours = gpu_hours_since(spans, NOW - 86400, NOW)
    assert math.isclose(hours[ALICE], 2 * (3600.0 / 3600) + 1.0)


def test_a_request_no_cap_could_ever_allow_is_named() -> None:
    assert never_allowed(4, [("alice", Quota(max_running_gpus=2))]) == (
        "alice may run at most 2 GPU(s) at once"
    )
    assert never_allowed(1, [("alice", Quota(max_running_gpus=2))]) is None


def test_an_active_reservation_keeps_bob_off_alices_gpus() -> None:
    from gflow.core.reservations import Reservation

    res = Reservation(1, "alice", ALICE, NOW - 60, NOW + 3600, gpu_ids=(0,))
    rules = SharingRules(reservations=(res,))
    decision = schedule(
        [bobs(make_job(1, gpus=1)), bobs(make_job(2, gpus=1))], [], {}, gpus24(2), NOW, rules
    )
    assert [(s.job_id, s.gpu_ids) for s in decision.starts] == [(1, (1,))]
    assert decision.waiting[2] == Reason(ReasonKind.RESERVATION)
    alices = schedule([make_job(3, gpus=2)], [], {}, gpus24(2), NOW, rules)
    assert [s.gpu_ids for s in alices.starts] == [(0, 1)]  # her own: all of it


def test_before_a_reservation_starts_bob_backfills_only_if_he_ends_in_time() -> None:
    from gflow.core.reservations import Reservation

    res = Reservation(1, "alice", ALICE, NOW + 1800, NOW + 5400, gpus=1)
    rules = SharingRules(reservations=(res,))
    quick = bobs(make_job(1, gpus=1, time_limit=600))
    endless = bobs(make_job(2, gpus=1))
    decision = schedule([quick, endless], [], {}, gpus24(2), NOW, rules)
    assert [s.job_id for s in decision.starts] == [1]  # it ends before the reservation
    assert decision.waiting[2] == Reason(ReasonKind.RESERVATION)  # it might not: it waits
    alone = schedule([endless], [], {}, gpus24(1), NOW, rules)
    assert alone.waiting[2] == Reason(ReasonKind.RESERVATION)
