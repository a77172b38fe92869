"""Resource-aware scheduling through the real daemon, with fake GPUs."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.helpers import ENDED, Gflow, wait_for

GPU_JOB = "echo cuda=$CUDA_VISIBLE_DEVICES; while [ ! -e {gate} ]; do sleep 0.02; done"


@pytest.fixture
def two_gpus(make_gflow: Callable[..., Gflow]) -> Gflow:
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    return gflow


def gated(gflow: Gflow, *flags: str, gate: str = "gate") -> int:
    """A job that prints its CUDA_VISIBLE_DEVICES and runs until its gate file appears."""
    path = gflow.workdir / gate
    return gflow.submit(*flags, "bash", "-c", GPU_JOB.format(gate=path))


def open_gate(gflow: Gflow, gate: str = "gate") -> None:
    (gflow.workdir / gate).touch()


def cuda_of(gflow: Gflow, job_id: int) -> str:
    """The CUDA_VISIBLE_DEVICES the job saw (it may already have ended)."""
    gflow.wait_state(job_id, "Running", *ENDED)
    log = gflow.paths.logs_dir / f"{job_id}.log"
    line = wait_for(lambda: log.exists() and log.read_text().split("\n")[0], what="job output")
    return str(line).removeprefix("cuda=")


def test_exclusive_jobs_get_distinct_gpus_and_a_third_waits(two_gpus: Gflow) -> None:
    """Two 1-GPU jobs on two GPUs see different CUDA_VISIBLE_DEVICES; the third waits."""
    first, second = gated(two_gpus, "--gpus", "1"), gated(two_gpus, "--gpus", "1")
    third = gated(two_gpus, "--gpus", "1", gate="gate3")
    assert {cuda_of(two_gpus, first), cuda_of(two_gpus, second)} == {"0", "1"}
    assert two_gpus.job(third)["reason"] == "Resources:GPU"
    open_gate(two_gpus)
    assert cuda_of(two_gpus, third) in ("0", "1")
    open_gate(two_gpus, "gate3")


def test_shared_jobs_fit_by_declared_memory(make_gflow: Callable[..., Gflow]) -> None:
    """Three 10G shared jobs on one 24G GPU: two run together, the third waits."""
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    shared = ("--gpus", "1", "--shared", "--gpu-memory", "10G")
    jobs = [gated(gflow, *shared), gated(gflow, *shared), gated(gflow, *shared, gate="g3")]
    assert cuda_of(gflow, jobs[0]) == cuda_of(gflow, jobs[1]) == "0"
    assert gflow.job(jobs[2])["reason"] == "Resources:GPUMemory"
    exclusive = gated(gflow, "--gpus", "1", gate="never")
    open_gate(gflow)
    assert cuda_of(gflow, jobs[2]) == "0"
    assert gflow.job(jobs[2])["state"] == "Running"
    assert gflow.job(exclusive)["reason"] == "Resources:GPU"  # never beside a shared job
    open_gate(gflow, "g3")
    gflow.wait_state(exclusive, "Running")
    gflow.ok("gcancel", str(exclusive))


def test_taskflow_gpu_slot_pins_the_gpu(two_gpus: Gflow) -> None:
    """Taskflow's --gpu 1:10G runs on GPU 1 with CUDA_VISIBLE_DEVICES=1."""
    job_id = gated(two_gpus, "--gpu", "1:10G", "-m", "100M")
    assert cuda_of(two_gpus, job_id) == "1"
    job = two_gpus.job(job_id)
    assert (job["shared"], job["gpu_memory_mb"], job["memory_mb"]) == (True, 10240, 100)
    open_gate(two_gpus)


def test_foreign_process_keeps_exclusive_jobs_off_its_gpu(two_gpus: Gflow) -> None:
    """A colleague's process appears on GPU 0: new exclusive jobs avoid it, then wait."""
    two_gpus.paths.fake_gpu_usage.write_text(json.dumps({"0": {"used": "2G", "pids": [4242]}}))
    first = gated(two_gpus, "--gpus", "1")
    assert cuda_of(two_gpus, first) == "1"
    second = gated(two_gpus, "--gpus", "1", gate="gate2")
    wait_for(lambda: two_gpus.job(second)["reason"] == "Resources:GPU", what="second to wait")
    info = json.loads(two_gpus.ok("ginfo", "--json"))["gpus"]
    assert info[0]["foreign_pids"] == [4242] and info[1]["jobs"] == [first]
    assert "pid 4242 (not found here, 2G, not gflow)" in two_gpus.ok("ginfo")
    two_gpus.paths.fake_gpu_usage.write_text("{}")  # the colleague's process ends
    assert cuda_of(two_gpus, second) == "0"  # picked up by the resource tick
    open_gate(two_gpus)
    open_gate(two_gpus, "gate2")


def test_priority_decides_who_gets_the_freed_gpu(make_gflow: Callable[..., Gflow]) -> None:
    """Higher priority first, then submission order."""
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    blocker = gated(gflow, "--gpus", "1")
    gflow.wait_state(blocker, "Running")
    low = gated(gflow, "--gpus", "1", "-p", "5", gate="g-low")
    high = gated(gflow, "--gpus", "1", "-p", "50", gate="g-high")
    open_gate(gflow)
    gflow.wait_state(high, "Running")
    assert gflow.job(low)["state"] == "Queued"
    open_gate(gflow, "g-high")
    gflow.wait_state(low, "Running")
    open_gate(gflow, "g-low")


def test_big_job_is_not_starved_by_small_ones(two_gpus: Gflow) -> None:
    """A 2-GPU job waiting for GPU 0 reserves the GPUs: a 1-GPU job without a time limit
    may not take GPU 1, but one whose limit ends before the reservation may."""
    running = gated(two_gpus, "--gpus", "1", "--time", "1:00:00")
    two_gpus.wait_state(running, "Running")
    big = gated(two_gpus, "--gpus", "2", "-p", "20", gate="g-big")
    unlimited = gated(two_gpus, "--gpus", "1", gate="g-small")
    short = two_gpus.submit("--gpus", "1", "--time", "5:00", "true")
    assert two_gpus.wait_state(short)["state"] == "Finished"  # backfilled: ends in time
    assert two_gpus.job(big)["reason"] == "Resources:GPU"
    assert two_gpus.job(unlimited)["reason"] == "Priority"
    open_gate(two_gpus)
    assert cuda_of(two_gpus, big) == "0,1"
    assert two_gpus.job(unlimited)["state"] == "Queued"
    open_gate(two_gpus, "g-big")
    two_gpus.wait_state(unlimited, "Running")
    open_gate(two_gpus, "g-small")


def test_slurm_dependency_kinds_and_cascade(gflow: Gflow) -> None:
    """afternotok runs after a failure; afterok dependents are cancelled transitively;
    --no-auto-cancel keeps waiting."""
    failing = gflow.submit("false")
    on_failure = gflow.submit("--dependency", f"afternotok:{failing}", "true")
    on_success = gflow.submit("--dependency", f"afterok:{failing}", "true")
    grandchild = gflow.submit("-d", str(on_success), "true")
    patient = gflow.submit("--no-auto-cancel", "-d", str(failing), "true")
    anyway = gflow.submit("--dependency", f"afterany:{failing}", "true")
    assert gflow.wait_state(on_failure)["state"] == "Finished"
    assert gflow.wait_state(anyway)["state"] == "Finished"
    assert gflow.wait_state(on_success)["reason"] == f"DependencyFailed:{failing}"
    assert gflow.wait_state(grandchild)["reason"] == f"DependencyFailed:{on_success}"
    assert gflow.job(patient)["state"] == "Queued"
    assert gflow.job(patient)["reason"] == "Dependency"


def test_depends_on_any(gflow: Gflow) -> None:
    """--depends-on-any starts as soon as one parent has succeeded."""
    ok = gflow.submit("true")
    bad = gflow.submit("false")
    gated_parent = gated(gflow)
    child = gflow.submit("--depends-on-any", f"{bad},{gated_parent},{ok}", "true")
    assert gflow.wait_state(child)["state"] == "Finished"
    assert gflow.job(child)["dependency_mode"] == "any"
    open_gate(gflow)


def test_begin_time_and_release_at(gflow: Gflow) -> None:
    """--begin keeps a job Queued (BeginTime) until its time; release --at does the same."""
    later = gflow.submit("--begin", "now+2s", "true")
    assert gflow.job(later)["reason"] == "BeginTime"
    held = gflow.submit("--hold", "true")
    out = gflow.ok("gjob", "release", str(held), "--at", "now+1s")
    assert out.startswith(f"Job {held} released; it starts at ")
    assert gflow.wait_state(held)["state"] == "Finished"
    job = gflow.wait_state(later)
    assert job["state"] == "Finished" and job["started_at"] >= job["begin_at"]


def test_set_gpus_restricts_new_jobs(two_gpus: Gflow) -> None:
    """gctl set-gpus 1: new jobs go to GPU 1 only; show-gpus says GPU 0 is restricted."""
    shown = two_gpus.ok("gctl", "set-gpus", "1")
    assert shown.splitlines()[0].split("\t")[:2] == ["0", "restricted"]
    first = gated(two_gpus, "--gpus", "1")
    assert cuda_of(two_gpus, first) == "1"
    second = gated(two_gpus, "--gpus", "1", gate="g2")
    wait_for(lambda: two_gpus.job(second)["reason"] == "Resources:GPU", what="second to wait")
    two_gpus.ok("gctl", "set-gpus", "all")
    assert cuda_of(two_gpus, second) == "0"
    open_gate(two_gpus)
    open_gate(two_gpus, "g2")


def test_memory_limit_is_enforced(gflow: Gflow) -> None:
    """A job using more RAM than its --mem is stopped: Failed, reason MemoryLimit."""
    hog = "import signal; data = bytearray(300 * 1024 * 1024); signal.pause()"
    job_id = gflow.submit("--mem", "100M", "python3", "-c", hog)
    job = gflow.wait_state(job_id, timeout=30)
    assert (job["state"], job["reason"]) == ("Failed", "MemoryLimit")


BAD_RESOURCE_REQUESTS = [
    ("--gpus", "-1"),
    ("--gpus", "99"),
    ("--gpus", "1", "--gpu-memory", "0"),
    ("--gpu", "7:10G"),
    ("--gpu", "0"),
    ("--mem", "10T"),
    ("--gpus", "1", "--gpu-memory", "100G"),
    ("--shared", "--gpus", "1"),
    ("--dependency", "afterfoo:1"),
    ("--begin", "yesterday-ish"),
    ("--max-concurrent", "0"),
]


@pytest.mark.parametrize("flags", BAD_RESOURCE_REQUESTS, ids=" ".join)
def test_impossible_requests_are_refused_at_submission(two_gpus: Gflow, flags: tuple[str]) -> None:
    """One line, exit 2, nothing queued."""
    done = two_gpus.run("gbatch", *flags, "true")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert two_gpus.ok("gqueue", "-a") == "No jobs found.\n"
