"""Usage adds up samples; efficiency and advice compare it with the request."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from gflow.core.model import JobProcesses
from gflow.core.usage import GpuSample, GpuSource, Sample, Usage, advice, efficiency
from gflow.runner.control import boot_id
from gflow.runner.sampling import look_at
from gflow.runner.wrapper import start_ticks


def test_peaks_stay_peaks_and_cpu_only_grows() -> None:
    usage = Usage().observed(Sample(100, 1.0, (GpuSample(0, 500, 50.0, GpuSource.PROCESS),)))
    usage = usage.observed(Sample(40, 0.5, (GpuSample(0, 300, 100.0, GpuSource.PROCESS),)))
    assert (usage.max_rss_mb, usage.cpu_seconds) == (100, 1.0)
    (gpu,) = usage.gpus
    assert (gpu.peak_mb, gpu.mean_util) == (500, 75.0)
    assert Usage.from_dict(usage.to_dict()) == usage


def test_the_wrappers_count_at_the_end_covers_what_no_sample_saw() -> None:
    usage = Usage(10, 0.2).ended(cpu_seconds=3.5, max_rss_kb=300 * 1024)
    assert (usage.max_rss_mb, usage.cpu_seconds) == (300, 3.5)


def test_device_figures_are_said_to_be_the_devices() -> None:
    usage = Usage().observed(Sample(1, 0.0, (GpuSample(1, 0, 30.0, GpuSource.DEVICE),)))
    assert usage.gpus[0].source is GpuSource.DEVICE


def test_efficiency_and_one_line_of_advice_per_wasted_resource() -> None:
    usage = Usage(max_rss_mb=3174, cpu_seconds=60.0)
    eff = efficiency(usage, 2, 120.0, 40 * 1024, None, 4 * 3600)
    assert eff.cpu == 0.25 and round(eff.memory or 0, 3) == 0.077
    lines = advice(usage, eff, 40 * 1024, None, 4 * 3600)
    assert lines == ["memory: asked 40.00G, peaked at 3.10G", "time: asked 04:00:00, ran 00:02:00"]


def test_a_process_tree_is_read_from_its_wrapper_down(tmp_path: Path) -> None:
    """A shell (standing for the wrapper) with a child that holds memory and burns CPU (0.6 s:
    /proc counts in clock ticks, a little under what the process itself measures)."""
    script = tmp_path / "busy.py"
    script.write_text(
        "import time\nb = bytearray(64 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        "while time.process_time() < 0.6: pass\ntime.sleep(30)\n"
    )
    shell = subprocess.Popen(["sh", "-c", f"python3 {script}; :"])
    try:
        procs = JobProcesses(boot_id(), shell.pid, start_ticks(shell.pid))
        deadline = time.monotonic() + 20
        while True:
            tree = look_at(procs, boot_id())
            assert tree is not None
            if tree.cpu_seconds >= 0.5 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert tree.rss_mb >= 60 and tree.cpu_seconds >= 0.5
        assert shell.pid not in tree.pids and len(tree.pids) == 1
        stranger = JobProcesses(boot_id(), shell.pid, (start_ticks(shell.pid) or 0) + 1)
        assert look_at(stranger, boot_id()) is None  # not the recorded wrapper: nothing read
    finally:
        for child in _children(shell.pid):
            os.kill(child, 9)
        shell.kill()
        shell.wait()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]
