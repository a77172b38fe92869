"""ginfo says who holds each GPU, and a stale foreign process can be ignored (issue 14)."""

from __future__ import annotations

import json
import subprocess

from tests.helpers import Gflow, wait_for


def test_a_whole_gpu_job_leaves_nothing_free_and_says_what_it_declared(
    make_gflow: type[Gflow],
) -> None:
    """ginfo: FREE 0 on a GPU a whole-GPU job holds, and the job named as whole-GPU."""
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    gate = gflow.workdir / "gate"
    job = gflow.submit("--gpus", "1", "bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    gflow.wait_state(job, "Running")
    line = gflow.ok("ginfo").splitlines()[1]
    assert line.split()[4] == "0M" and f"job {job} (whole GPU)" in line, line  # FREE
    gate.touch()


def test_stale_foreign_process_is_named_and_can_be_ignored(make_gflow: type[Gflow]) -> None:
    """A foreign process pinning GPU 0 is named with its user and age; `gctl
    ignore-gpu-process PID` lets a whole-GPU job start there, is listed, survives a daemon
    restart, and `--undo` ends it."""
    gflow = make_gflow(fake_gpus="1x24G")
    stale = subprocess.Popen(["sleep", "600"])
    try:
        (gflow.home / "fake_gpus.json").write_text(
            json.dumps({"0": {"used": "642M", "pids": [stale.pid]}})
        )
        gflow.start()
        info = gflow.ok("ginfo")
        user = gflow.job(gflow.submit("--hold", "true"))["user"]
        assert f"pid {stale.pid} ({user}, up " in info and "642M, not gflow" in info, info
        blocked = gflow.submit("--gpus", "1", "true")
        wait_for(lambda: gflow.job(blocked)["reason"] == "Resources:GPU", what="GPU reason")
        out = gflow.ok("gctl", "ignore-gpu-process", str(stale.pid))
        assert out == f"GPU process {stale.pid} ignored.\n"
        assert gflow.wait_state(blocked)["state"] == "Finished"
        assert "ignored (gctl ignore-gpu-process)" in gflow.ok("ginfo")
        gflow.ok("gflowd", "stop")
        gflow.start()
        listed = json.loads(gflow.ok("gctl", "ignore-gpu-process", "--json"))["ignored"]
        assert [(e["pid"], e["alive"]) for e in listed] == [(stale.pid, True)]
        gflow.ok("gctl", "ignore-gpu-process", str(stale.pid), "--undo")
        assert gflow.ok("gctl", "ignore-gpu-process") == "No GPU process is ignored.\n"
        again = gflow.submit("--gpus", "1", "true")
        wait_for(lambda: gflow.job(again)["reason"] == "Resources:GPU", what="blocked again")
        done = gflow.run("gctl", "ignore-gpu-process", "4194303")
        assert done.returncode == 1 and "no process 4194303" in done.stderr
        shown = json.loads(gflow.ok("gctl", "show-gpus", "--json"))["gpus"]
        assert shown[0]["foreign"][0]["pid"] == stale.pid
    finally:
        stale.kill()
        stale.wait()


def test_a_gpu_pid_from_another_namespace_can_be_ignored(make_gflow: type[Gflow]) -> None:
    """A pid on a GPU that this machine's /proc does not show (a container's) can still be
    ignored while it is on the GPU; a pid on no GPU and in no /proc is refused."""
    gflow = make_gflow(fake_gpus="1x24G")
    (gflow.home / "fake_gpus.json").write_text(json.dumps({"0": {"used": "1G", "pids": [4194302]}}))
    gflow.start()
    blocked = gflow.submit("--gpus", "1", "true")
    wait_for(lambda: gflow.job(blocked)["reason"] == "Resources:GPU", what="GPU reason")
    gflow.ok("gctl", "ignore-gpu-process", "4194302")
    assert gflow.wait_state(blocked)["state"] == "Finished"
    done = gflow.run("gctl", "ignore-gpu-process", "4194301")
    assert done.returncode == 1 and "no process 4194301" in done.stderr
