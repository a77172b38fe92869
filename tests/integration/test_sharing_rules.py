"""The team's rules end to end on one daemon (its owner as the user): projects, quotas."""

from __future__ import annotations

import json

from tests.helpers import Gflow, wait_for


def test_projects_known_and_required_refuse_the_whole_submission(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(
        config='[projects]\nknown_projects = ["vision", "nlp"]\nrequire_project = true\n'
    )
    gflow.start()
    missing = gflow.run("gbatch", "--array", "1-3", "true")
    assert missing.returncode == 1
    assert "requires a project" in missing.stderr and "vision, nlp" in missing.stderr
    unknown = gflow.run("gbatch", "-P", "speech", "true")
    assert unknown.returncode == 1 and "unknown project 'speech'" in unknown.stderr
    assert gflow.ok("gqueue", "-a").strip() == "No jobs found."  # all or nothing
    job = gflow.submit("-P", "vision", "true")
    gflow.wait_state(job)
    assert "vision" in gflow.ok("gqueue", "-a", "-P", "vision", "-f", "JOBID,PROJECT")
    stats = json.loads(gflow.ok("gstats", "-P", "vision", "--json"))
    assert stats["total"] == 1


def test_a_running_cap_makes_jobs_wait_with_the_quota_as_reason(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(config="[quota.default_user]\nmax_running_jobs = 1\n")
    gflow.start()
    first = gflow.submit("sleep", "60")
    second = gflow.submit("sleep", "60")
    gflow.wait_state(first, "Running")
    waiting = wait_for(
        lambda: (j := gflow.job(second))["reason"] == "Quota:running_jobs" and j,
        what="the second job to wait for the quota",
    )
    assert waiting["state"] == "Queued"
    shown = json.loads(gflow.ok("gctl", "quota", "show", "--json"))
    assert shown["running_jobs"] == 1 and shown["limits"]["max_running_jobs"] == 1
    assert "Running jobs:  1 of 1" in gflow.ok("gctl", "quota", "show")
    gflow.ok("gcancel", str(first))
    assert gflow.wait_state(second, "Running")["state"] == "Running"
    gflow.ok("gcancel", str(second))


def test_queued_and_gpu_caps_refuse_at_submission_with_the_numbers(make_gflow: type[Gflow]) -> None:
    config = "[quota.default_user]\nmax_queued_jobs = 2\nmax_running_gpus = 1\n"
    gflow = make_gflow(config=config, fake_gpus="2x24G")
    gflow.start()
    too_many = gflow.run("gbatch", "--hold", "--array", "1-3", "true")
    assert too_many.returncode == 1
    assert "has 0 of 2 queued jobs; 3 more would be too many" in too_many.stderr
    never = gflow.run("gbatch", "--gpus", "2", "true")
    assert never.returncode == 1 and "at most 1 GPU(s) at once" in never.stderr
    assert gflow.ok("gqueue", "-a").strip() == "No jobs found."
    gflow.ok("gbatch", "--hold", "--array", "1-2", "true")
    full = gflow.run("gbatch", "--hold", "true")
    assert full.returncode == 1 and "has 2 of 2 queued jobs" in full.stderr


def test_a_malformed_quota_stops_the_daemon_naming_file_line_and_key(
    make_gflow: type[Gflow],
) -> None:
    gflow = make_gflow(config="[quota.default_user]\nmax_runing_jobs = 1\n")
    done = gflow.run("gflowd", "start")
    assert done.returncode == 2
    assert "gflow.toml:2: unknown key quota.default_user.max_runing_jobs" in done.stderr


def test_fair_share_usage_is_shown_per_user(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(config='[fair_share]\nenabled = true\nhalf_life = "7d"\n', fake_gpus="1x24G")
    gflow.start()
    job = gflow.submit("--gpus", "1", "sleep", "60")
    gflow.wait_state(job, "Running")
    wait_for(lambda: gflow.job(job)["started_at"], what="a start time")
    listed = gflow.ok("gqueue", "-f", "JOBID,USER,FAIRSHARE")
    assert "h (100%)" in listed  # the only user with GPU time
    stats = json.loads(gflow.ok("gstats", "--json"))["fair_share"]
    assert stats["enabled"] is True and stats["half_life"] == 7 * 86400
    (only,) = stats["users"].values()
    assert only["share"] == 1.0 and only["usage_gpu_hours"] > 0
    assert "Fair-share (on; half-life" in gflow.ok("gstats")
    gflow.ok("gcancel", str(job))
