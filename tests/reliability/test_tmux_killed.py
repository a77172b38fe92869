"""The tmux server dies under running jobs: they end Failed, NodeFail; the queue goes on."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import Gflow, wait_for


@pytest.mark.timeout(120)
def test_killing_the_tmux_server_fails_running_jobs_and_queued_ones_still_start(
    make_gflow: type[Gflow],
) -> None:
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    running = [gflow.submit("--gpus", "1", "sleep", "300") for _ in range(2)]
    queued = gflow.submit("--gpus", "2", "echo", "started-later")
    for job_id in running:
        gflow.wait_state(job_id, "Running")
    procs = [p for job_id in running for p in gflow.job_processes(job_id)]
    assert gflow.job(queued)["state"] == "Queued"

    subprocess.run(
        ["tmux", "-S", str(gflow.paths.tmux_socket), "kill-server"], check=True, timeout=30
    )

    for job_id in running:
        job = gflow.wait_state(job_id)
        assert (job["state"], job["reason"]) == ("Failed", "NodeFail"), job
    wait_for(lambda: not any(p.is_running() for p in procs), what="the jobs' processes to die")
    assert gflow.wait_state(queued)["state"] == "Finished"
    assert "started-later" in (gflow.paths.logs_dir / f"{queued}.log").read_text()
    wait_for(lambda: not gflow.tmux_sessions(), what="no session left")


@pytest.mark.timeout(60)
def test_a_job_that_survives_the_hangup_and_succeeds_is_finished(gflow: Gflow) -> None:
    """The truth is what the job did: NodeFail only when the hangup ended it."""
    gate = gflow.workdir / "gate"
    job_id = gflow.submit("bash", "-c", f"trap '' HUP; while [ ! -e {gate} ]; do sleep 0.05; done")
    wait_for(  # sleeping in its loop: the trap is set
        lambda: any(p.name() == "sleep" for p in gflow.job_processes(job_id)),
        what="the job's loop",
    )
    subprocess.run(
        ["tmux", "-S", str(gflow.paths.tmux_socket), "kill-server"], check=True, timeout=30
    )
    gate.touch()
    assert gflow.wait_state(job_id)["state"] == "Finished"
