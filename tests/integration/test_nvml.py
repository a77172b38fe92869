"""The NVML backend against a real GPU (runs only where one exists; CI machines have none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gflow.resources.gpu import NvmlGpuBackend
from tests.helpers import Gflow, wait_for


def _nvml_available() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return bool(pynvml.nvmlDeviceGetCount())
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _nvml_available(), reason="no NVIDIA GPU / driver on this machine")
def test_nvml_backend_reports_real_gpus() -> None:
    """Every GPU has an index, a name, a total above its used memory, and a process list."""
    gpus = NvmlGpuBackend().gpus()
    assert gpus and [g.index for g in gpus] == list(range(len(gpus)))
    for gpu in gpus:
        assert gpu.name and gpu.total_mb > 0 and 0 <= gpu.used_mb <= gpu.total_mb
        assert all(pid > 0 and used >= 0 for pid, used in gpu.processes)


def test_nvml_backend_without_a_driver_means_no_gpus() -> None:
    """Where NVML cannot start (no driver), the backend reports no GPUs instead of failing."""
    if _nvml_available():
        pytest.skip("this machine has a GPU")
    assert NvmlGpuBackend().gpus() == []


@pytest.mark.gpu
@pytest.mark.skipif(not _nvml_available(), reason="no NVIDIA GPU / driver on this machine")
def test_a_jobs_peak_gpu_memory_is_recorded_on_a_real_gpu(gflow: Gflow) -> None:
    """A job holds 512 MB on GPU 0 through the driver alone; NVML's per-process figure lands
    on that job, and stays after it ended."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_alloc.py"
    job = gflow.submit("--gpus", "1", "python3", str(script), "512", "8")
    seen = wait_for(
        lambda: (j := gflow.job(job))["gpu_mem_peak_mb"] >= 500 and j,
        timeout=60,
        what="the job's GPU memory to be seen through NVML",
    )
    assert seen["gpu_usage"][0]["index"] == seen["gpu_ids"][0]
    ended = gflow.wait_state(job, timeout=60)
    assert ended["state"] == "Finished" and ended["gpu_mem_peak_mb"] >= 500
