"""GPU backends behind one interface: NVML through nvidia-ml-py, or fake GPUs from config."""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from gflow.core.errors import InvalidInput
from gflow.core.model import GpuInfo
from gflow.core.parse import parse_size_mb

log = logging.getLogger(__name__)

FAKE_FORMS = 'COUNTxSIZE items joined by commas, e.g. "2x24G" or "2x24G,1x80G"'


class GpuBackend(Protocol):
    name: str

    def gpus(self) -> list[GpuInfo]: ...


class FakeGpuBackend:
    """GPUs described by a string such as '2x24G,1x80G', for machines without NVIDIA."""

    name = "fake"

    def __init__(self, spec: str) -> None:
        self._gpus = parse_fake_gpus(spec)

    def gpus(self) -> list[GpuInfo]:
        return list(self._gpus)


def parse_fake_gpus(spec: str) -> list[GpuInfo]:
    gpus: list[GpuInfo] = []
    for item in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\S+)\s*", item)
        if not m or not 0 < int(m.group(1)) <= 64:
            raise InvalidInput(f"invalid fake GPU list {spec!r}", hint=f"use {FAKE_FORMS}")
        total = parse_size_mb(m.group(2))
        for _ in range(int(m.group(1))):
            gpus.append(GpuInfo(len(gpus), "Fake GPU", total))
    return gpus


class NvmlGpuBackend:
    """Real GPUs. Any NVML failure (no driver, no library) means 'no GPUs', said once."""

    name = "nvml"

    def __init__(self) -> None:
        self._nvml: Any = None
        try:
            import pynvml  # provided by the nvidia-ml-py package

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception as exc:  # NVMLError, ImportError, OSError: all mean no GPUs here
            log.warning("no NVIDIA GPUs available (%s); GPU jobs will wait", exc)

    def gpus(self) -> list[GpuInfo]:
        nvml = self._nvml
        if nvml is None:
            return []
        try:
            found = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                name = nvml.nvmlDeviceGetName(handle)
                found.append(
                    GpuInfo(
                        index=index,
                        name=name.decode() if isinstance(name, bytes) else str(name),
                        total_mb=int(memory.total) // (1024 * 1024),
                        used_mb=int(memory.used) // (1024 * 1024),
                    )
                )
            return found
        except Exception as exc:
            log.warning("NVML query failed (%s); reporting no GPUs", exc)
            return []


def make_gpu_backend(fake_spec: str) -> GpuBackend:
    return FakeGpuBackend(fake_spec) if fake_spec else NvmlGpuBackend()
