"""A 1,000-job array of `true`: every job ends Finished, none Failed, no tmux session left."""

from __future__ import annotations

import time

import pytest

from gflow.client import Client
from tests.helpers import Gflow, wait_for

SIZE = 1000


@pytest.mark.timeout(400)
def test_thousand_job_array_all_finish_and_leave_no_session(gflow: Gflow) -> None:
    began = time.monotonic()
    gflow.ok("gbatch", "--array", f"1-{SIZE}", "true")
    client = Client(gflow.paths)

    def all_ended() -> list[dict[str, object]] | None:
        jobs = client.list_jobs(all="1")
        return jobs if all(j["state"] in ("Finished", "Failed") for j in jobs) else None

    jobs = wait_for(all_ended, 360, f"all {SIZE} jobs to end")
    took = time.monotonic() - began
    states = [j["state"] for j in jobs]
    assert len(jobs) == SIZE
    assert states.count("Finished") == SIZE, {s: states.count(s) for s in set(states)}
    assert sorted(int(str(j["array_task_id"])) for j in jobs) == list(range(1, SIZE + 1))
    wait_for(lambda: not gflow.tmux_sessions(), what="every tmux session to close")
    print(f"\nburst: {SIZE} jobs, {states.count('Finished')} Finished, 0 left, {took:.1f} s")
