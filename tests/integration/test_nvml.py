"""The NVML backend against a real GPU (runs only where one exists; CI machines have none)."""

from __future__ import annotations

import pytest

from gflow.resources.gpu import NvmlGpuBackend


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
