"""What a job really used: recorded as it runs and at its end, shown next to what it asked."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

from tests.helpers import Gflow, wait_for

MB = 150  # what the job allocates and touches
CPU = 2.0  # seconds of CPU the job burns

HOG = textwrap.dedent(
    f"""
    import os, sys, time
    block = bytearray({MB} * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touched: resident, not just reserved
    while time.process_time() < {CPU}:
        pass
    gate = sys.argv[1]
    if sys.argv[2] == "free":
        del block  # a big block goes back to the system: the RSS drops
    while not os.path.exists(gate):
        time.sleep(0.05)
    """
)


def hog(gflow: Gflow, tmp_path: Path, *options: str, free: bool = False) -> tuple[int, Path]:
    script = tmp_path / "hog.py"
    script.write_text(HOG)
    gate = tmp_path / "gate"
    job = gflow.submit(*options, "python3", str(script), str(gate), "free" if free else "keep")
    return job, gate


def test_memory_and_cpu_are_recorded_within_a_fifth(gflow: Gflow, tmp_path: Path) -> None:
    job, gate = hog(gflow, tmp_path, "--mem", "1G")
    # Live: the figures so far, while it runs.
    live = wait_for(
        lambda: (j := gflow.job(job))["max_rss_mb"] >= MB * 0.8 and j["cpu_seconds"] > 0 and j,
        timeout=30,
        what="the running job's memory to be seen",
    )
    assert live["state"] == "Running"
    gate.touch()
    ended = gflow.wait_state(job)
    assert ended["state"] == "Finished"
    assert MB * 0.8 <= ended["max_rss_mb"] <= MB * 1.2, ended["max_rss_mb"]
    assert CPU * 0.8 <= ended["cpu_seconds"] <= CPU * 1.2, ended["cpu_seconds"]
    shown = gflow.ok("gjob", "show", str(job))
    assert "MaxRSS=" in shown and "(of 1.00G asked)" in shown
    assert "Advice=memory: asked 1.00G, peaked at" in shown  # under a quarter of 1G
    seff = gflow.ok("gjob", "eff", str(job))
    assert "Memory Efficiency:" in seff and "of 1.00G" in seff
    assert "CPU Efficiency:" in seff
    listed = gflow.ok("gqueue", "-a", "-f", "JOBID,MAXRSS,CPUEFF")
    assert str(job) in listed and "M" in listed.splitlines()[-1]


def test_fake_gpu_use_lands_on_the_job_whose_process_it_is(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    job = gflow.submit("--gpus", "1", "--gpu-memory", "12G", "--shared", "sleep", "120")
    procs = wait_for(lambda: gflow.job_processes(job), what="the job's processes")
    usage = {
        "0": {
            "processes": {
                str(procs[0].pid): {"used": "6G", "util": 80},
                "999999": {"used": "1G", "util": 5},  # someone else's process
            }
        }
    }
    gflow.paths.fake_gpu_usage.write_text(json.dumps(usage))
    seen = wait_for(
        lambda: (j := gflow.job(job))["gpu_mem_peak_mb"] == 6 * 1024 and j,
        timeout=20,
        what="the job's GPU memory to be attributed",
    )
    (gpu,) = seen["gpu_usage"]
    assert (gpu["index"], gpu["mean_util"], gpu["source"]) == (0, 80.0, "process")
    assert "999999" in gflow.ok("ginfo")  # the other process stays foreign
    shown = gflow.ok("gjob", "show", str(job))
    assert "GPUMemPeak=0:6.00G" in shown and "GPUUtil=0:80% (process)" in shown
    gflow.ok("gcancel", str(job))


def test_figures_survive_a_daemon_restart_mid_job(gflow: Gflow, tmp_path: Path) -> None:
    job, gate = hog(gflow, tmp_path, free=True)

    def saved_peak() -> int:
        with sqlite3.connect(gflow.paths.database) as conn:
            (text,) = conn.execute("SELECT usage FROM jobs WHERE id = ?", (job,)).fetchone()
        return int(json.loads(text).get("max_rss_mb", 0))

    wait_for(lambda: saved_peak() >= MB * 0.8, timeout=30, what="the peak to be saved")
    gflow.kill_daemon()
    gflow.start()
    again = gflow.job(job)
    assert again["state"] == "Running"
    assert again["max_rss_mb"] >= MB * 0.8  # the peak from before the crash, not today's RSS
    gate.touch()
    assert gflow.wait_state(job)["max_rss_mb"] >= MB * 0.8
