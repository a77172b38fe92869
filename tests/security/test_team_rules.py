"""The team's rules on the shared daemon, with real users (alice and bob, made by useradd):
quotas hold under a burst from several users at once; fair-share puts the lighter user
first."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import wait_for
from tests.security.system import SystemGflow, Users, system, users

__all__ = ["system", "users"]  # fixtures


def running_of(gf: SystemGflow, name: str) -> int:
    listed = json.loads(gf.root_run("gqueue", "-u", name, "--json").stdout)["jobs"]
    return sum(1 for job in listed if job["state"] == "Running")


def test_quotas_hold_under_a_burst_from_several_users(
    system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    gf = system("[quota.default_user]\nmax_running_jobs = 1\nmax_queued_jobs = 3\n")
    gf.start()
    burst = [(who, n) for n in range(3) for who in (alice, bob)]
    with ThreadPoolExecutor(6) as pool:  # six submissions at once
        ids = list(pool.map(lambda w: gf.submit(w[0], "sleep", "120"), burst))
    wait_for(
        lambda: running_of(gf, alice.name) == 1 and running_of(gf, bob.name) == 1,
        what="one running job each",
    )
    waiting = [gf.job(i) for i in ids if gf.job(i)["state"] == "Queued"]
    assert len(waiting) == 4
    assert {j["reason"] for j in waiting} == {"Quota:running_jobs"}
    assert running_of(gf, alice.name) == running_of(gf, bob.name) == 1  # still
    # alice has 2 queued (Queued and Hold count) of max_queued_jobs = 3: 2 more is too many.
    refused = gf.as_user(alice, "gbatch", "--array", "1-2", "true")
    assert refused.returncode == 1 and "has 2 of 3 queued jobs" in refused.stderr
    shown = json.loads(gf.as_user(bob, "gctl", "quota", "show", "--json").stdout)
    assert shown["user"] == bob.name and shown["running_jobs"] == 1
    other = gf.as_user(bob, "gctl", "quota", "show", "--user", alice.name)
    assert other.returncode == 1 and "admin" in other.stderr  # a user sees their own
    gf.root_run("gcancel", *map(str, ids))


def test_fair_share_starts_the_lighter_users_job_first(
    system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    gf = system('[gpu]\nfake = "1x24G"\n[fair_share]\nenabled = true\nhalf_life = "7d"\n')
    gf.start()
    used = gf.submit(alice, "--gpus", "1", "sleep", "2")  # alice has used the GPU …
    assert gf.wait_state(used)["state"] == "Finished"
    holder = gf.submit(alice, "--gpus", "1", "sleep", "120")
    gf.wait_state(holder, "Running")
    first = gf.submit(alice, "--gpus", "1", "true")  # … so her earlier job waits
    second = gf.submit(bob, "--gpus", "1", "true")

    def scheduler_knows() -> bool:  # passes run every second while jobs wait
        shares = json.loads(gf.root_run("gstats", "-a", "--json").stdout)["fair_share"]
        return shares["scheduler_usage"].get(alice.name, 0) > 0

    wait_for(scheduler_knows, timeout=30, what="the scheduler to count alice's GPU time")
    gf.root_run("gcancel", str(holder))
    assert gf.wait_state(second)["state"] == "Finished"
    started = {i: gf.job(i)["started_at"] for i in (first, second)}
    assert gf.wait_state(first)["state"] == "Finished"
    started[first] = gf.job(first)["started_at"]
    assert started[second] < started[first], started  # bob (no usage) went first


def test_users_reserve_for_themselves_only_where_allowed_and_within_the_cap(
    system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    config = '[gpu]\nfake = "2x24G"\n[reservations]\nusers_may_reserve = true\nmax_gpu_hours = 2\n'
    gf = system(config)
    gf.start()
    ok = gf.as_user(bob, "gctl", "reserve", "create", "--gpus", "1", "--start", "now+10m",
                    "--duration", "1h")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    big = gf.as_user(bob, "gctl", "reserve", "create", "--gpus", "2", "--start", "now+2h",
                     "--duration", "2h")  # fmt: skip
    assert big.returncode == 1 and "at most 2" in big.stderr
    for_alice = gf.as_user(bob, "gctl", "reserve", "create", "--user", alice.name, "--gpus",
                           "1", "--start", "now+3h", "--duration", "1h")  # fmt: skip
    assert for_alice.returncode == 1 and "only an admin" in for_alice.stderr
    theirs = gf.as_user(alice, "gctl", "reserve", "cancel", "1")
    assert theirs.returncode == 1 and f"belongs to {bob.name}" in theirs.stderr
    assert gf.as_user(bob, "gctl", "reserve", "cancel", "1").returncode == 0
