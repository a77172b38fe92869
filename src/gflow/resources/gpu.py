"""GPU backends behind one interface: NVML through nvidia-ml-py, or fake GPUs from config."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from gflow.core.errors import InvalidInput
from gflow.core.model import GpuInfo
from gflow.core.parse import parse_size_mb
from gflow.safefs import read_small_file

log = logging.getLogger(__name__)

MB = 1024 * 1024
USAGE_FILE_LIMIT = 1 << 20  # bytes: fake_gpus.json is a few lines
FAKE_FORMS = 'COUNTxSIZE[:MODEL] items joined by commas, e.g. "2x24G" or "2x24G:L4,1x80G:A100"'


class GpuBackend(Protocol):
    name: str

    def gpus(self) -> list[GpuInfo]: ...


class FakeGpuBackend:
    """GPUs described by a string such as '2x24G,1x80G', for machines without NVIDIA.

    What other processes use can be changed at run time, as a colleague's job would, by
    writing a JSON file (`usage_file`): {"0": {"used": "20G", "pids": [4242]}}.
    """

    name = "fake"

    def __init__(self, spec: str, usage_file: Path | None = None) -> None:
        self._gpus = parse_fake_gpus(spec)
        self._usage_file = usage_file

    def gpus(self) -> list[GpuInfo]:
        usage = self._read_usage()
        return [
            replace(gpu, **usage[gpu.index]) if gpu.index in usage else gpu for gpu in self._gpus
        ]

    def _read_usage(self) -> dict[int, dict[str, Any]]:
        """Each GPU's processes from fake_gpus.json: {"0": {"used": "20G", "pids": [4242]}}
        (the memory shared among the pids), or per pid, {"0": {"processes": {"4242":
        {"used": "6G", "util": 80}}}}."""
        if self._usage_file is None:
            return {}
        raw = read_small_file(self._usage_file, USAGE_FILE_LIMIT)  # no link, no FIFO
        if raw is None:
            return {}
        try:
            return {int(index): _fake_use(entry) for index, entry in json.loads(raw).items()}
        except (OSError, ValueError, TypeError, AttributeError, InvalidInput) as exc:
            log.warning("ignoring malformed fake GPU usage file %s: %s", self._usage_file, exc)
            return {}


def _fake_use(entry: dict[str, Any]) -> dict[str, Any]:
    """One GPU's entry of fake_gpus.json as GpuInfo fields."""
    if "processes" in entry:
        per_pid = {int(pid): p for pid, p in entry["processes"].items()}
        processes = tuple((pid, _used_mb(p.get("used", 0))) for pid, p in per_pid.items())
        util = tuple((pid, int(p["util"])) for pid, p in per_pid.items() if "util" in p)
        return {
            "used_mb": sum(used for _, used in processes),
            "processes": processes,
            "process_util": util,
            "utilization": min(100, sum(u for _, u in util)) if util else None,
        }
    used = _used_mb(entry.get("used", 0))
    pids = tuple(map(int, entry.get("pids", [])))
    share = used // len(pids) if pids else 0
    return {"used_mb": used, "processes": tuple((p, share) for p in pids)}


def parse_fake_gpus(spec: str) -> list[GpuInfo]:
    gpus: list[GpuInfo] = []
    for item in spec.split(","):
        # An optional model after a colon ("1x80G:A100") names the GPUs, as a real machine
        # with two kinds of GPU would (Slurm's gpu:TYPE:N picks among them).
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*([^\s:]+)(?::([\w.+-]{1,40}))?\s*", item)
        if not m or not 0 < int(m.group(1)) <= 64:
            raise InvalidInput(f"invalid fake GPU list {spec!r}", hint=f"use {FAKE_FORMS}")
        total = parse_size_mb(m.group(2))
        name = f"Fake {m.group(3)}" if m.group(3) else "Fake GPU"
        for _ in range(int(m.group(1))):
            gpus.append(GpuInfo(len(gpus), name, total))
    return gpus


def _used_mb(value: object) -> int:
    """'20G' or a number of MB; 0 / '0' means nothing used."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return 0 if value.strip() in ("", "0") else parse_size_mb(value)
    raise ValueError(f"bad 'used' value {value!r}")


class NvmlGpuBackend:
    """Real GPUs. Any NVML failure (no driver, no library) means 'no GPUs', said once."""

    name = "nvml"

    def __init__(self) -> None:
        self._nvml: Any = None
        self._warned = False
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
                processes = tuple(
                    (int(p.pid), int(p.usedGpuMemory or 0) // MB)
                    for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
                )
                found.append(
                    GpuInfo(
                        index=index,
                        name=name.decode() if isinstance(name, bytes) else str(name),
                        total_mb=int(memory.total) // MB,
                        used_mb=int(memory.used) // MB,
                        processes=processes,
                        utilization=self._device_util(handle),
                        process_util=self._process_util(handle),
                    )
                )
            self._warned = False
            return found
        except Exception as exc:  # a GPU fell off the bus, the driver was reloaded…
            if not self._warned:
                log.warning("NVML query failed (%s); reporting no GPUs until it works", exc)
                self._warned = True
            return []

    def _device_util(self, handle: Any) -> int | None:
        try:
            return int(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # NVMLError_NotSupported on some boards: no figure, not a failure
            return None

    def _process_util(self, handle: Any) -> tuple[tuple[int, int], ...]:
        """Per-process SM utilisation over the last few seconds, where the driver keeps it
        (accounting mode); () where it does not: the device figure stands in, said so."""
        try:
            samples = self._nvml.nvmlDeviceGetProcessUtilization(handle, 0)
        except Exception:  # not supported, or no samples yet
            return ()
        latest: dict[int, tuple[int, int]] = {}
        for sample in samples:
            pid, stamp = int(sample.pid), int(sample.timeStamp)
            if pid not in latest or stamp > latest[pid][0]:
                latest[pid] = (stamp, int(sample.smUtil))
        return tuple((pid, util) for pid, (_, util) in latest.items())


def make_gpu_backend(fake_spec: str, usage_file: Path | None = None) -> GpuBackend:
    return FakeGpuBackend(fake_spec, usage_file) if fake_spec else NvmlGpuBackend()
