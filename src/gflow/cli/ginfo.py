"""ginfo: the GPUs, their memory, and which job or foreign process holds each.

A GPU a whole-GPU job holds has nothing free for others (FREE 0); a foreign process is
named with its user and age, so a stale one pinning a GPU is found (and, by an admin,
ignored: `gctl ignore-gpu-process PID`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gflow.cli.common import EXIT_OK, Parser, print_json, print_table, run
from gflow.client import Client
from gflow.core.parse import format_size_mb
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any


def gpu_state(gpu: dict[str, Any]) -> str:
    if not gpu["allowed"]:
        return "restricted"
    if gpu["exclusive"]:
        return "allocated"
    if gpu["jobs"]:
        return "shared"
    return "busy" if gpu["foreign_pids"] else "idle"


def holders(gpu: dict[str, Any], now: float | None = None) -> str:
    """Our jobs on the GPU (whole or shared, and what each declared), then every other
    process: its pid, user, how long it has run, its memory, and whether it is ignored."""
    now = time.time() if now is None else now
    held = []
    for holder in gpu["holders"]:
        declared = format_size_mb(holder["declared_mb"]) if holder["declared_mb"] else ""
        if holder["shared"]:
            held.append(f"job {holder['job']} (shared, {declared} declared)")
        else:
            held.append(
                f"job {holder['job']} (whole GPU{', declared ' + declared if declared else ''})"
            )
    for proc in gpu["foreign"]:
        age = f", up {age_text(now - proc['started_at'])}" if proc["started_at"] else ""
        note = "ignored (gctl ignore-gpu-process)" if proc["ignored"] else "not gflow"
        user = proc["user"] or "not found here"
        held.append(f"pid {proc['pid']} ({user}{age}, {format_size_mb(proc['used_mb'])}, {note})")
    return ", ".join(held) or "-"


def age_text(seconds: float) -> str:
    """How long, roughly, as people say it: '40s', '12m', '3h 5m', '2d 4h'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def print_gpus(gpus: list[dict[str, Any]]) -> None:
    if not gpus:
        print("No GPUs.")
        return
    rows = [
        [
            str(g["index"]),
            g["name"],
            format_size_mb(g["total_mb"]),
            format_size_mb(max(0, g["free_mb"])),
            gpu_state(g),
            holders(g),
        ]
        for g in gpus
    ]
    print_table(["GPU", "NAME", "MEMORY", "FREE", "STATE", "HELD BY"], rows)


def build_parser() -> Parser:
    p = Parser("ginfo", "Show the GPUs: memory, and which job or foreign process holds each.")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def print_cpus(cpus: dict[str, Any]) -> None:
    """The cores jobs may be pinned to, how many are free, and which job holds which."""
    jobs = sorted(cpus["jobs"].items(), key=lambda item: int(item[0]))
    booked = sum(len(cores) for _, cores in jobs)
    held = "; ".join(f"job {job}: {_ranges(cores)}" for job, cores in jobs)
    total = len(cpus["cpus"])
    line = f"CPUs: {total} usable ({_ranges(cpus['cpus'])}), {total - booked} free"
    print(line + (f"; {held}" if held else ""))


def _ranges(cores: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    runs: list[list[int]] = []
    for core in sorted(cores):
        if runs and runs[-1][1] == core - 1:
            runs[-1][1] = core
        else:
            runs.append([core, core])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in runs) or "-"


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    answer = Client(Paths.for_client()).request("GET", "/gpus")
    if args.json:
        print_json(answer)
    else:
        print_gpus(answer["gpus"])
        if "cpus" in answer:
            print_cpus(answer["cpus"])
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("ginfo", command, argv)
