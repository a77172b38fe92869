"""gjob update (waiting jobs) and gjob redo [--cascade] (ended jobs)."""

from __future__ import annotations

from tests.helpers import Gflow


def test_update_changes_a_waiting_job(gflow: Gflow) -> None:
    """Queued/Hold jobs take new priority, time limit, memory and dependencies."""
    held = gflow.submit("--hold", "-t", "10", "true")
    out = gflow.ok("gjob", "update", str(held), "-p", "50", "-t", "2:00:00", "-m", "100M")
    assert out == f"Job {held} updated: memory_mb, priority, time_limit.\n"
    job = gflow.job(held)
    assert (job["priority"], job["time_limit"], job["memory_mb"]) == (50, 7200, 100)
    assert [e["kind"] for e in job["events"]][-1] == "updated"
    gflow.ok("gjob", "update", str(held), "--clear-time-limit")
    assert gflow.job(held)["time_limit"] is None


def test_update_refuses_running_jobs_cycles_and_impossible_requests(gflow: Gflow) -> None:
    """Wrong state: exit 1 naming it; a cycle or an impossible request: exit 2; no change."""
    gate = gflow.workdir / "gate"
    running = gflow.submit("bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    gflow.wait_state(running, "Running")
    first = gflow.submit("--hold", "true")
    second = gflow.submit("--hold", "-d", str(first), "true")
    done = gflow.run("gjob", "update", str(running), "-p", "1")
    assert done.returncode == 1 and "it is Running" in done.stderr
    done = gflow.run("gjob", "update", str(first), "-d", str(second))
    assert done.returncode == 2 and "cycle" in done.stderr
    done = gflow.run("gjob", "update", str(first), "--gpus", "1")
    assert done.returncode == 2 and "GPU" in done.stderr
    assert gflow.job(first)["depends_on"] == [] and gflow.job(first)["gpus"] == 0
    gate.touch()


def test_redo_cascade_resubmits_the_cancelled_chain(gflow: Gflow) -> None:
    """redo --cascade: the failed job and the dependents it cancelled, rewired to the new ids."""
    flag = gflow.workdir / "ok"
    root = gflow.submit("bash", "-c", f"test -e {flag}")
    child = gflow.submit("-d", str(root), "echo", "child")
    grandchild = gflow.submit("-d", str(child), "echo", "grandchild")
    assert gflow.wait_state(grandchild)["reason"] == f"DependencyFailed:{child}"
    flag.touch()
    out = gflow.ok("gjob", "redo", str(root), "--cascade").splitlines()
    new_root, new_child, new_grandchild = 4, 5, 6
    assert out[0] == f"Job {root} resubmitted as job {new_root}."
    assert len(out) == 3
    assert gflow.wait_state(new_grandchild)["state"] == "Finished"
    assert gflow.job(new_child)["depends_on"] == [new_root]
    assert gflow.job(new_grandchild)["depends_on"] == [new_child]
    done = gflow.run("gjob", "redo", str(new_root + 100))
    assert done.returncode == 1


def test_redo_refuses_a_job_that_has_not_ended(gflow: Gflow) -> None:
    """Only ended jobs can be redone."""
    held = gflow.submit("--hold", "true")
    done = gflow.run("gjob", "redo", str(held))
    assert done.returncode == 1 and "it is Hold" in done.stderr
