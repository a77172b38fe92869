"""gcancel of many jobs at once: one request, one transaction, each job answered."""

from __future__ import annotations

import json

from tests.helpers import Gflow


def test_a_big_held_array_is_cancelled_in_one_go(gflow: Gflow) -> None:
    out = gflow.ok("gbatch", "--parsable", "--hold", "--array", "1-5000", "true").strip()
    first, last = map(int, out.split("-"))
    done = gflow.run("gcancel", f"{first}-{last}", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("cancelled.") == 5000
    listed = json.loads(gflow.ok("gqueue", "-a", "--json"))["jobs"]
    assert {j["state"] for j in listed} == {"Cancelled"} and len(listed) == 5000


def test_running_waiting_ended_and_unknown_jobs_each_get_their_answer(gflow: Gflow) -> None:
    ended = gflow.submit("true")
    gflow.wait_state(ended)
    running = gflow.submit("sleep", "300")
    gflow.wait_state(running, "Running")
    held = gflow.submit("--hold", "true")
    done = gflow.run("gcancel", str(ended), str(running), str(held), "4242")
    assert done.returncode == 1
    assert f"Job {held} cancelled." in done.stdout
    assert f"Job {running} is stopping" in done.stdout or f"Job {running} cancelled." in done.stdout
    assert f"cannot cancel job {ended}: it is Finished" in done.stderr
    assert "4242" in done.stderr
    assert gflow.wait_state(running)["state"] == "Cancelled"
