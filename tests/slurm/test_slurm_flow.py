"""Arrays, dependencies, hold and release, update, through a real Slurm: each checked
against what scontrol and squeue say."""

from __future__ import annotations

import json

from tests.helpers import wait_for
from tests.slurm.conftest import SlurmGflow


def test_array_is_one_slurm_array_with_its_throttle(sgflow: SlurmGflow) -> None:
    """gbatch -a 1-4%2: one Slurm array (ArrayTaskThrottle=2), each task a gflow job whose
    log has its own task id, all Finished."""
    printed = sgflow.ok(
        "gbatch", "--parsable", "-a", "1-4%2",
        "echo task=$GFLOW_ARRAY_TASK_ID slurm=$SLURM_ARRAY_TASK_ID",
    )  # fmt: skip
    first, last = map(int, printed.strip().split("-"))
    ids = range(first, last + 1)
    assert len(ids) == 4
    jobs = [sgflow.wait_state(i, "Finished", timeout=40) for i in ids]
    slurm_ids = [j["slurm_job_id"] for j in jobs]
    master = slurm_ids[0].split("_")[0]
    assert slurm_ids == [f"{master}_{task}" for task in range(1, 5)]
    assert sgflow.scontrol(slurm_ids[0])["ArrayTaskThrottle"] == "2"
    for task, job_id in enumerate(ids, start=1):
        assert f"task={task} slurm={task}" in sgflow.ok("gjob", "log", str(job_id))
    assert sorted(sgflow.ours()) == sorted(slurm_ids)


def test_dependency_waits_in_slurm_then_runs(sgflow: SlurmGflow) -> None:
    """A child of a running parent is submitted with the parent's Slurm id as its
    dependency: Slurm holds it (Dependency), then runs it after the parent."""
    parent = sgflow.submit("sleep 6")  # long enough for a poll or two to see the child wait
    child = sgflow.submit("-d", f"afterok:{parent}", "echo child")
    wait_for(lambda: sgflow.job(child)["slurm_job_id"], what="the child in Slurm")
    p, c = sgflow.job(parent), sgflow.job(child)
    shown = sgflow.scontrol(c["slurm_job_id"])
    assert shown["Dependency"].startswith(f"afterok:{p['slurm_job_id']}")
    if p["state"] != "Finished":
        assert wait_for(lambda: sgflow.job(child)["reason"], what="a reason") == "Dependency"
    done = sgflow.wait_state(child, "Finished", timeout=40)
    assert done["started_at"] >= sgflow.job(parent)["finished_at"] - 1


def test_a_child_of_a_retried_parent_runs_after_the_attempt_that_succeeds(
    sgflow: SlurmGflow,
) -> None:
    """The parent fails once and is retried: the child, which Slurm would have tied to the
    failed attempt, runs after the second one."""
    marker = sgflow.workdir / "tried"
    fails_once = f"test -e {marker} || {{ touch {marker}; exit 1; }}"
    parent = sgflow.submit("--max-retries", "1", fails_once)
    child = sgflow.submit("-d", f"afterok:{parent}", "echo child ran")
    done = sgflow.wait_state(child, "Finished", timeout=60)
    first, second = sgflow.job(parent)["attempts"]
    assert sgflow.job(first)["state"] == "Failed"
    retried = sgflow.job(second)
    assert retried["state"] == "Finished" and retried["slurm_job_id"]
    assert done["started_at"] >= retried["finished_at"] - 1
    assert "child ran" in sgflow.ok("gjob", "log", str(child))


def test_failed_parent_cancels_children_slurm_would_leave_pending(sgflow: SlurmGflow) -> None:
    """Parent fails: Slurm would keep the child pending for good (DependencyNeverSatisfied);
    our cascade cancels it and its own child, in Slurm too."""
    parent = sgflow.submit("sleep 2; exit 1")
    child = sgflow.submit("-d", f"afterok:{parent}", "echo never")
    grandchild = sgflow.submit("-d", f"afterok:{child}", "echo never")
    wait_for(lambda: sgflow.job(child)["slurm_job_id"], what="the child in Slurm")
    assert sgflow.wait_state(parent, "Failed", timeout=30)["reason"] == "NonZeroExit:1"
    c = sgflow.wait_state(child, "Cancelled", timeout=20)
    assert c["reason"] == f"DependencyFailed:{parent}"
    g = sgflow.wait_state(grandchild, "Cancelled", timeout=20)
    assert g["reason"] == f"DependencyFailed:{child}"
    wait_for(lambda: sgflow.scontrol(c["slurm_job_id"])["JobState"] == "CANCELLED",
             what="Slurm to cancel the child")  # fmt: skip
    assert "never" not in sgflow.run("gjob", "log", str(child)).stdout


def test_hold_release_and_update_through_scontrol(sgflow: SlurmGflow) -> None:
    """--begin and --hold reach Slurm; gjob hold/release/update act through scontrol."""
    job_id = sgflow.submit("--begin", "now+1h", "-t", "10", "echo later")
    sid = wait_for(lambda: sgflow.job(job_id)["slurm_job_id"], what="the job in Slurm")
    wait_for(lambda: sgflow.job(job_id)["reason"] == "BeginTime", what="reason BeginTime")
    sgflow.ok("gjob", "hold", str(job_id))
    assert sgflow.scontrol(sid)["Reason"] == "JobHeldUser"
    assert sgflow.job(job_id)["state"] == "Hold"
    sgflow.ok("gjob", "update", str(job_id), "-t", "20", "--gpus", "1", "--memory", "200M")
    shown = sgflow.scontrol(sid)
    assert (shown["TimeLimit"], shown["MinMemoryNode"]) == ("00:20:00", "200M")
    assert "gpu:1" in shown["TresPerNode"]
    sgflow.ok("gjob", "release", str(job_id))
    assert sgflow.scontrol(sid)["Reason"] != "JobHeldUser"
    assert sgflow.job(job_id)["state"] == "Queued"
    sgflow.ok("gcancel", str(job_id))  # pending in Slurm: Cancelled here at once, scancel'd
    assert sgflow.job(job_id)["state"] == "Cancelled"
    wait_for(lambda: sgflow.scontrol(sid)["JobState"] == "CANCELLED", what="Slurm's cancel")
    held = sgflow.submit("--hold", "echo released")
    hsid = wait_for(lambda: sgflow.job(held)["slurm_job_id"], what="the held job in Slurm")
    assert sgflow.scontrol(hsid)["Reason"] == "JobHeldUser"
    sgflow.ok("gjob", "release", str(held))
    sgflow.wait_state(held, "Finished", timeout=30)
    assert "released" in sgflow.ok("gjob", "log", str(held))


def test_attach_says_what_to_use_and_show_names_slurm(sgflow: SlurmGflow) -> None:
    """gjob attach on a Slurm job: one line saying what to use instead; gjob show names
    the Slurm job id and node."""
    job_id = sgflow.submit("sleep 30")
    job = sgflow.wait_state(job_id, "Running", timeout=30)
    done = sgflow.run("gjob", "attach", str(job_id))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"srun --jobid={job['slurm_job_id']}" in done.stderr
    shown = sgflow.ok("gjob", "show", str(job_id))
    assert f"SlurmJobId={job['slurm_job_id']}" in shown and f"Node={job['node']}" in shown
    listed = json.loads(sgflow.ok("gqueue", "--json"))["jobs"]
    assert any(j["id"] == job_id and j["state"] == "Running" for j in listed)
    sgflow.ok("gcancel", str(job_id))
    short = sgflow.submit("sleep 1; echo followed")
    done = sgflow.run("gjob", "log", "-f", str(short), timeout=60)  # waits, follows, ends
    assert (done.returncode, done.stdout) == (0, "followed\n")


def test_waiting_for_resources_and_a_refused_request(sgflow: SlurmGflow) -> None:
    """Both GPUs busy: Slurm's PENDING (Resources) is our Queued, reason Resources. A job
    Slurm refuses at sbatch (3 GPUs on a 2-GPU node) is Cancelled with Slurm's words."""
    busy = sgflow.submit("--gpus", "2", "sleep 60")
    sgflow.wait_state(busy, "Running", timeout=30)
    waiting = sgflow.submit("--gpus", "2", "echo got them")
    wait_for(lambda: sgflow.job(waiting)["reason"] == "Resources", 20, "reason Resources")
    sid = sgflow.job(waiting)["slurm_job_id"]
    shown = sgflow.scontrol(sid)
    assert (shown["JobState"], shown["Reason"]) == ("PENDING", "Resources")
    tried = sgflow.run("gbatch", "--dry-run", "--gpus", "2", "true")  # no GPU here: Slurm's
    assert tried.returncode == 0 and "Slurm" in tried.stderr + tried.stdout
    refused = sgflow.submit("--gpus", "3", "echo never")
    job = sgflow.wait_state(refused, "Cancelled", timeout=30)
    assert job["reason"] == "Slurm:Rejected" and not job["slurm_job_id"]
    assert "not available" in sgflow.ok("gjob", "show", str(refused))
    sgflow.ok("gcancel", str(busy))
    sgflow.wait_state(waiting, "Finished", timeout=30)


def test_throttled_sweep_goes_as_one_slurm_array(sgflow: SlurmGflow) -> None:
    """--param with --max-concurrent: its jobs go as one Slurm array with that throttle,
    each running its own command."""
    printed = sgflow.ok("gbatch", "--parsable", "--param", "x=a,b,c", "--max-concurrent", "1",
                        "echo value={x}")  # fmt: skip
    first, last = map(int, printed.strip().split("-"))
    jobs = [sgflow.wait_state(i, "Finished", timeout=40) for i in range(first, last + 1)]
    master = jobs[0]["slurm_job_id"].split("_")[0]
    assert [j["slurm_job_id"] for j in jobs] == [f"{master}_{i}" for i in range(3)]
    assert sgflow.scontrol(jobs[0]["slurm_job_id"])["ArrayTaskThrottle"] == "1"
    for job, value in zip(jobs, "abc", strict=True):
        assert f"value={value}" in sgflow.ok("gjob", "log", str(job["id"]))
