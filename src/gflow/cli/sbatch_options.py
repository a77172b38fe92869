"""gbatch's Slurm-shaped job flags: every GPU spelling as one request, CPU cores (tasks x
CPUs per task), memory per job / CPU / GPU, --exclusive, --nodes, and the batch options
(--output, --error, --signal, --chdir). The long forms are sbatch's; #SBATCH lines reach
them through core/sbatch.py."""

from __future__ import annotations

import argparse
import re

from gflow.cli.common import usage_value
from gflow.core.dependencies import Dependency, DependencyMode, parse_slurm_dependency
from gflow.core.errors import InvalidInput
from gflow.core.limits import MAX_GPUS
from gflow.core.parse import parse_int, parse_size_mb, parse_time_limit

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

MAX_CPUS = 4096
GPU_FORMS = "N or TYPE:N, e.g. 2 or a100:2"
NO_LIMIT = ("0", "unlimited", "infinite")  # Slurm's spellings of "no time limit"


# Plain classes, not NamedTuples: these are built on every gbatch's start-up path, and a
# NamedTuple class costs ~0.5 ms to create.
class GpuAsk:
    """Every GPU spelling (--gpus, -G, --gres=gpu…, --gpus-per-node/-task) as one request, so
    the command line's spelling wins over the script's, whichever each uses."""

    __slots__ = ("model", "number", "per_task")

    def __init__(self, number: int, model: str = "", per_task: bool = False) -> None:
        self.number, self.model, self.per_task = number, model, per_task

    def per_each_task(self) -> GpuAsk:
        return GpuAsk(self.number, self.model, True)


class MemAsk:
    """--mem, --mem-per-cpu and --mem-per-gpu: one request (the last given wins, as one)."""

    __slots__ = ("mb", "per")

    def __init__(self, mb: int, per: str = "job") -> None:
        self.mb = mb  # 0 with per "job": the whole machine (--mem=0)
        self.per = per  # job | cpu | gpu


def add_slurm_resources(group: argparse._ArgumentGroup) -> None:
    """The resource flags beyond gflow's own (--gpus, --gres, --mem stay in job_options)."""
    group.add_argument(
        "--gpus-per-task",
        dest="gpus",
        type=usage_value(lambda t: parse_gpus(t).per_each_task()),
        help="GPUs per task (times --ntasks)",
    )
    group.add_argument(
        "--mem-per-cpu",
        dest="memory",
        type=usage_value(lambda t: MemAsk(parse_size_mb(t), "cpu")),
        help="host RAM per CPU core booked",
    )
    group.add_argument(
        "--mem-per-gpu",
        dest="memory",
        type=usage_value(lambda t: MemAsk(parse_size_mb(t), "gpu")),
        help="host RAM per GPU",
    )
    group.add_argument(
        "--cpus-per-task",
        type=usage_value(lambda t: parse_int(t, "--cpus-per-task", 1, MAX_CPUS)),
        help="CPU cores per task, booked and pinned (Slurm's -c; on this command line "
        "-c is --conda-env)",
    )
    group.add_argument(
        "--ntasks",
        "--ntasks-per-node",
        dest="ntasks",
        type=usage_value(lambda t: parse_int(t, "--ntasks", 1, MAX_CPUS)),
        help="tasks (srun runs this many copies); each gets --cpus-per-task cores",
    )
    group.add_argument(
        "--ntasks-per-gpu",
        type=usage_value(lambda t: parse_int(t, "--ntasks-per-gpu", 1, MAX_CPUS)),
        help="tasks per GPU",
    )
    group.add_argument(
        "--cpus-per-gpu",
        type=usage_value(lambda t: parse_int(t, "--cpus-per-gpu", 1, MAX_CPUS)),
        help="CPU cores per GPU",
    )
    group.add_argument(
        "--mincpus",
        type=usage_value(lambda t: parse_int(t, "--mincpus", 1, MAX_CPUS)),
        help="at least this many CPU cores",
    )
    group.add_argument(
        "--exclusive",
        action="store_const",
        const="node",
        help="every GPU and core of the machine; nothing runs beside it",
    )
    group.add_argument(
        "--nodes",
        type=usage_value(parse_nodes),
        help="must be 1: gflow runs jobs on this one machine",
    )


def add_batch_options(p: argparse.ArgumentParser) -> None:
    out = p.add_argument_group("Slurm batch options")
    out.add_argument(
        "--output",
        metavar="PATTERN",
        help="also write the job's output here as it runs: %%j id, %%x name, %%A array id, "
        "%%a task, %%u user, %%N host (relative to the working directory)",
    )
    out.add_argument("--error", metavar="PATTERN", help="stderr here instead (same patterns)")
    out.add_argument("--open-mode", choices=["append", "truncate"], help="for --output/--error")
    out.add_argument(
        "--signal",
        type=usage_value(parse_signal_flag),
        metavar="[B:]SIG[@SECS]",
        help="send SIG SECS before the time limit to the job's srun steps (B: the script)",
    )
    out.add_argument("--chdir", metavar="DIR", help="the job's working directory")


def slurm_resources(args: argparse.Namespace) -> dict[str, Any]:
    """GPUs, CPU cores, memory and the batch options, as the API takes them."""
    ask: GpuAsk | None = args.gpus
    tasks = args.ntasks or 1
    gpus = None if ask is None else ask.number * (tasks if ask.per_task else 1)
    if args.ntasks_per_gpu and args.ntasks is None:
        tasks = args.ntasks_per_gpu * max(1, gpus or 0)
    asked = (args.cpus_per_task, args.ntasks, args.ntasks_per_gpu, args.mincpus, args.cpus_per_gpu)
    cpus = 0  # none asked for: not booked, not pinned
    if args.cpus_per_gpu is not None and not gpus:
        raise InvalidInput("--cpus-per-gpu needs GPUs (--gpus N)")
    if any(v is not None for v in asked):
        per_gpu = (args.cpus_per_gpu or 0) * (gpus or 0)
        cpus = max(tasks * (args.cpus_per_task or 1), args.mincpus or 0, per_gpu)
    res: dict[str, Any] = {
        "gpus": gpus or 0,
        "memory_mb": _memory_mb(args.memory, cpus, gpus or 0),
        "cpus": cpus,
        "exclusive": args.exclusive is not None,
        "gpu_model": ask.model if ask is not None else "",
        "batch": {
            "ntasks": tasks,
            "cpus_per_task": args.cpus_per_task or 0,
            "output": args.output or "",
            "error": args.error or "",
            "append": args.open_mode == "append",
            "signal": None if args.signal is None else list(args.signal),
        },
    }
    return res


def _memory_mb(ask: MemAsk | None, cpus: int, gpus: int) -> int | None:
    if ask is None:
        return None
    if ask.per == "gpu" and not gpus:
        raise InvalidInput("--mem-per-gpu needs GPUs (--gpus N)")
    return ask.mb * {"job": 1, "cpu": max(1, cpus), "gpu": gpus}[ask.per]


def parse_dependency_flag(text: str) -> tuple[list[Dependency], DependencyMode, bool]:
    """Slurm's --dependency, with `singleton` (after my other jobs of this name) taken out."""
    parts = re.split(r"([,?])", text.strip())
    kept = [p for p in parts[::2] if p.strip().lower() != "singleton"]
    singleton = len(kept) < len(parts[::2])
    separator = "?" if "?" in parts[1::2] else ","
    if not kept:
        return [], DependencyMode.ALL, singleton
    deps, mode = parse_slurm_dependency(separator.join(kept))
    return deps, mode, singleton


def parse_signal_flag(text: str) -> tuple[int, int, bool]:
    from gflow.core.sbatch import parse_signal  # its table costs every gbatch's start-up

    return parse_signal(text)


def parse_time_or_none(text: str) -> int | None:
    return None if text.strip().lower() in NO_LIMIT else parse_time_limit(text)


def parse_mem(text: str) -> MemAsk:
    return MemAsk(0 if text.strip() == "0" else parse_size_mb(text))


def parse_nodes(text: str) -> int:
    low = text.strip().split("-")[0].split(":")[0]
    if low != "1":
        raise InvalidInput(
            f"--nodes {text!r}: gflow runs a job on one machine", hint="use --nodes=1 or drop it"
        )
    return 1


def parse_gpus(text: str) -> GpuAsk:
    """--gpus / -G / --gpus-per-node: N or TYPE:N (Slurm's [type:]count)."""
    model, _, count = text.strip().rpartition(":")
    if not re.fullmatch(r"[\w.+-]*", model) or not count:
        raise InvalidInput(f"invalid GPU request {text!r}", hint=f"use {GPU_FORMS}")
    return GpuAsk(gpu_count(count), model)


def parse_gres(text: str) -> GpuAsk:
    """Slurm's --gres=gpu[:type][:count][,other…]: only GPUs are resources here."""
    found: GpuAsk | None = None
    for part in text.strip().split(","):
        m = re.fullmatch(r"(?:gres/)?gpu(?::([A-Za-z_][\w.+-]*))?(?::([0-9]+))?", part.strip())
        if not m:
            raise InvalidInput(
                f"invalid --gres {text!r}: only GPUs are a resource here",
                hint="use gpu[:TYPE][:N], e.g. gpu:2 or gpu:a100:2",
            )
        found = GpuAsk(gpu_count(m.group(2) or "1"), m.group(1) or "")
    assert found is not None
    return found


def gpu_count(text: str) -> int:
    return parse_int(text, "GPU count", 0, MAX_GPUS)
