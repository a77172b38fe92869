"""ginfo: the GPUs, their memory, and which job or foreign process holds each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gflow.cli.common import EXIT_OK, Parser, print_json, print_table, run
from gflow.client import Client
from gflow.core.parse import format_size_mb
from gflow.paths import Paths


def gpu_state(gpu: dict[str, Any]) -> str:
    if not gpu["allowed"]:
        return "restricted"
    if gpu["exclusive"]:
        return "allocated"
    if gpu["jobs"]:
        return "shared"
    return "busy" if gpu["foreign_pids"] else "idle"


def holders(gpu: dict[str, Any]) -> str:
    held = [f"job {job}" for job in gpu["jobs"]]
    held += [f"pid {pid} (not gflow)" for pid in gpu["foreign_pids"]]
    return ", ".join(held) or "-"


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


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    gpus = Client(Paths.from_env()).gpus()
    if args.json:
        print_json({"gpus": gpus})
    else:
        print_gpus(gpus)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("ginfo", command, argv)
