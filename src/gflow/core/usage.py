"""What a job really used, next to what it asked for (SPEC §13).

`Usage` accumulates what the daemon sees of a running job each tick (peak RSS, CPU time so
far, each GPU's peak memory and utilisation) and what the wrapper reports at its end;
`efficiency` and `advice` say how that compares with the request, as Slurm's `seff` does.
Pure: the daemon samples, this only adds up and compares.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

WASTE_THRESHOLD = 0.25  # under a quarter of what was asked: worth one line of advice


class GpuSource(StrEnum):
    """Where a GPU figure came from: the job's own processes (NVML per-process accounting,
    or the fake backend's per-pid form), or the whole device (all its users together)."""

    PROCESS = "process"
    DEVICE = "device"


@dataclass(frozen=True)
class GpuSample:
    index: int
    used_mb: int  # by the job's processes
    util: float | None  # percent, None when nothing was measured
    source: GpuSource


@dataclass(frozen=True)
class Sample:
    """One look at a running job's processes."""

    rss_mb: int
    cpu_seconds: float  # user + system so far, children that already exited included
    gpus: tuple[GpuSample, ...] = ()


@dataclass(frozen=True)
class GpuUse:
    index: int
    peak_mb: int = 0
    util_total: float = 0.0  # the sum of the utilisation samples, for the mean
    util_samples: int = 0
    source: GpuSource = GpuSource.PROCESS

    @property
    def mean_util(self) -> float | None:
        return self.util_total / self.util_samples if self.util_samples else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "peak_mb": self.peak_mb,
            "mean_util": self.mean_util,
            "util_total": self.util_total,
            "util_samples": self.util_samples,
            "source": self.source.value,
        }


@dataclass(frozen=True)
class Usage:
    """What a job used, as seen so far (or in all, once it ended)."""

    max_rss_mb: int = 0
    cpu_seconds: float = 0.0
    gpus: tuple[GpuUse, ...] = ()

    @property
    def gpu_mem_peak_mb(self) -> int:
        return max((gpu.peak_mb for gpu in self.gpus), default=0)

    def observed(self, sample: Sample) -> Usage:
        """With one more sample: peaks are peaks, CPU time only grows."""
        gpus = {gpu.index: gpu for gpu in self.gpus}
        for seen in sample.gpus:
            gpu = gpus.get(seen.index, GpuUse(seen.index, source=seen.source))
            gpu = replace(gpu, peak_mb=max(gpu.peak_mb, seen.used_mb))
            if seen.util is not None:
                gpu = replace(
                    gpu,
                    util_total=gpu.util_total + seen.util,
                    util_samples=gpu.util_samples + 1,
                    # Once any sample was the job's own, the figure is the job's own.
                    source=GpuSource.PROCESS
                    if GpuSource.PROCESS in (gpu.source, seen.source)
                    else GpuSource.DEVICE,
                )
            gpus[seen.index] = gpu
        return Usage(
            max(self.max_rss_mb, sample.rss_mb),
            max(self.cpu_seconds, sample.cpu_seconds),
            tuple(gpus[i] for i in sorted(gpus)),
        )

    def ended(self, cpu_seconds: float | None, max_rss_kb: int | None) -> Usage:
        """With what the wrapper counted at the end: every process it reaped, also ones
        too short-lived for a sample."""
        return replace(
            self,
            max_rss_mb=max(self.max_rss_mb, (max_rss_kb or 0) // 1024),
            cpu_seconds=max(self.cpu_seconds, cpu_seconds or 0.0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_rss_mb": self.max_rss_mb,
            "cpu_seconds": self.cpu_seconds,
            "gpu_mem_peak_mb": self.gpu_mem_peak_mb,
            "gpus": [gpu.to_dict() for gpu in self.gpus],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        return cls(
            int(data.get("max_rss_mb", 0)),
            float(data.get("cpu_seconds", 0.0)),
            tuple(
                GpuUse(
                    int(g["index"]),
                    int(g.get("peak_mb", 0)),
                    float(g.get("util_total", 0.0)),
                    int(g.get("util_samples", 0)),
                    GpuSource(g.get("source", "process")),
                )
                for g in data.get("gpus", [])
            ),
        )


@dataclass(frozen=True)
class Efficiency:
    """Used against asked, as fractions (None where nothing was asked or measured)."""

    cores: int
    elapsed: float | None  # seconds run (so far)
    cpu: float | None  # CPU time / (cores × elapsed)
    memory: float | None  # peak RSS / --mem
    gpu_memory: float | None  # peak GPU memory / what it declared (or the GPUs' size)
    time: float | None  # run time / --time


def efficiency(
    usage: Usage,
    cores: int,
    elapsed: float | None,
    memory_mb: int | None,
    gpu_memory_mb: int | None,
    time_limit: int | None,
) -> Efficiency:
    """How much of what was asked was used. `gpu_memory_mb`: what the job declared per GPU
    (a shared job), or the size of the GPUs it held whole."""
    cores = max(1, cores)
    return Efficiency(
        cores=cores,
        elapsed=elapsed,
        cpu=usage.cpu_seconds / (cores * elapsed) if elapsed else None,
        memory=usage.max_rss_mb / memory_mb if memory_mb else None,
        gpu_memory=usage.gpu_mem_peak_mb / gpu_memory_mb if gpu_memory_mb and usage.gpus else None,
        time=elapsed / time_limit if elapsed is not None and time_limit else None,
    )


def advice(
    usage: Usage,
    eff: Efficiency,
    memory_mb: int | None,
    gpu_memory_mb: int | None,
    time_limit: int | None,
) -> list[str]:
    """One line per resource used under a quarter of what was asked (for an ended job)."""
    lines = []
    if eff.memory is not None and memory_mb and eff.memory < WASTE_THRESHOLD:
        lines.append(
            f"memory: asked {format_mb(memory_mb)}, peaked at {format_mb(usage.max_rss_mb)}"
        )
    if eff.gpu_memory is not None and gpu_memory_mb and eff.gpu_memory < WASTE_THRESHOLD:
        lines.append(
            f"GPU memory: asked {format_mb(gpu_memory_mb)}, "
            f"peaked at {format_mb(usage.gpu_mem_peak_mb)}"
        )
    if eff.time is not None and time_limit and eff.time < WASTE_THRESHOLD:
        lines.append(f"time: asked {_duration(time_limit)}, ran {_duration(eff.elapsed or 0.0)}")
    return lines


def format_mb(mb: float) -> str:
    """Sizes as seff writes them: 40.00G, 512.00M."""
    if mb >= 1024:
        return f"{mb / 1024:.2f}G"
    return f"{mb:.2f}M"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
