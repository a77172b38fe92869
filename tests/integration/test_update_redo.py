"""gjob update (waiting jobs) and gjob redo [--cascade] (ended jobs)."""

from __future__ import annotations

from tests.helpers import Gflow


def test_update_changes_a_waiting_job(gflow: Gflow) -> None:
    """Queued/Hold jobs take new priority, time limit, memory and dependencies."""
    held = gflow.submit("--hold", "-t", "10", "true")
    out = gflow.ok("gjob", "update", str(held), "-p", "50", "-t", "2:00:00", "-m", "100M")
    assert out == f"Job {held} updated: time limit 02:00:00, priority 50, memory 100M.\n"
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


def test_redo_with_gflows_overrides(gflow: Gflow) -> None:
    """`gjob redo ID -t … -p … -m … --clear-deps` (what gflow's docs say after a timeout):
    the new job asks for that; a bad override changes nothing."""
    parent = gflow.submit("true")
    gflow.wait_state(parent, "Finished")
    slow = gflow.submit("-d", str(parent), "-t", "1s", "sleep", "30")
    assert gflow.wait_state(slow)["state"] == "Timeout"
    out = gflow.ok(
        "gjob", "redo", str(slow), "-t", "1:00:00", "-p", "40", "-m", "50M", "--clear-deps"
    )
    new = slow + 1
    assert out == (f"Job {slow} resubmitted as job {new} with time limit 01:00:00, priority 40, "
                   "memory 50M, dependencies none.\n")  # fmt: skip
    job = gflow.job(new)
    assert (job["time_limit"], job["priority"], job["memory_mb"], job["depends_on"]) == (
        3600,
        40,
        50,
        [],
    )
    gflow.ok("gcancel", str(new))
    done = gflow.run("gjob", "redo", str(slow), "--gpus", "1")  # no GPUs on this machine
    assert done.returncode == 2 and "GPU" in done.stderr
    assert gflow.run("gjob", "show", str(new + 1)).returncode == 1  # nothing was submitted


def test_update_names_a_two_job_cycle(gflow: Gflow) -> None:
    """A cycle through another job is said as one, with the way round."""
    first = gflow.submit("--hold", "true")
    second = gflow.submit("--hold", "-d", str(first), "true")
    done = gflow.run("gjob", "update", str(first), "-d", str(second))
    assert done.returncode == 2
    assert f"({first} -> {second} -> {first})" in done.stderr
    done = gflow.run("gjob", "update", str(first), "-d", str(first))
    assert "would depend on itself" in done.stderr


def test_gjob_takes_at_for_the_last_submission(gflow: Gflow) -> None:
    """`gjob show|log|redo|hold @`: show and hold take every job of the last submission,
    log and redo its last job; `@~1` the submission before."""
    done_job = gflow.submit("echo", "hello")
    gflow.wait_state(done_job, "Finished")
    assert gflow.ok("gjob", "log", "@") == "hello\n"
    out = gflow.ok("gjob", "redo", "@")
    assert out == f"Job {done_job} resubmitted as job {done_job + 1}.\n"
    gflow.wait_state(done_job + 1, "Finished")
    first = int(gflow.ok("gbatch", "--parsable", "--hold", "--array", "1-2", "true")
                .split("-")[0])  # fmt: skip
    shown = gflow.ok("gjob", "show", "@").count("JobId=")
    assert shown == 2
    assert f"JobId={done_job + 1}\n" in gflow.ok("gjob", "show", "@~1")
    assert gflow.ok("gjob", "release", "@") == f"Job {first} released.\nJob {first + 1} released.\n"
    done = gflow.run("gjob", "show", "@~9")
    assert done.returncode == 1 and "no submission 9 before your last" in done.stderr
