"""Job arrays: one submission, one job per task, $GFLOW_ARRAY_TASK_ID, %N throttle."""

from __future__ import annotations

import json

from tests.helpers import Gflow


def test_array_tasks_see_their_task_id(gflow: Gflow) -> None:
    """Command mode expands '$GFLOW_ARRAY_TASK_ID' in the job; spaces stay one argument."""
    out = gflow.ok("gbatch", "--array", "1-7:3", "printf", "[%s]\\n", "$GFLOW_ARRAY_TASK_ID", "a b")
    assert out == "Submitted batch array of 3 jobs: 1-3\n"
    for job_id, task in ((1, 1), (2, 4), (3, 7)):
        job = gflow.wait_state(job_id)
        assert (job["state"], job["array_task_id"]) == ("Finished", task)
        assert gflow.ok("gjob", "log", str(job_id)) == f"[{task}]\n[a b]\n"


def test_array_throttle_runs_at_most_n_at_once(gflow: Gflow) -> None:
    """--array 1-4%2: the four tasks never have more than two running at a time."""
    ids = gflow.ok("gbatch", "--parsable", "--array", "1-4%2", "sleep", "0.3").strip()
    assert ids == "1-4"
    jobs = [gflow.wait_state(job_id) for job_id in range(1, 5)]
    assert all(job["state"] == "Finished" and job["max_concurrent"] == 2 for job in jobs)
    assert len({job["group_id"] for job in jobs}) == 1
    moments = sorted(
        [(job["started_at"], 1) for job in jobs] + [(job["finished_at"], -1) for job in jobs]
    )
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    assert peak <= 2


def test_array_is_submitted_all_or_nothing(make_gflow: type[Gflow]) -> None:
    """A request the machine cannot satisfy refuses the whole array: nothing is queued."""
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    done = gflow.run("gbatch", "--array", "1-5", "--gpus", "2", "true")
    assert done.returncode == 2
    assert json.loads(gflow.ok("gqueue", "-a", "--json"))["jobs"] == []
