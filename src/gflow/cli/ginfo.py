"""ginfo: the machine's GPUs as the scheduler sees them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gflow.cli.common import EXIT_OK, Parser, print_json, print_table, run
from gflow.client import Client
from gflow.core.parse import format_size_mb
from gflow.paths import Paths


def print_gpus(gpus: list[dict[str, Any]]) -> None:
    if not gpus:
        print("No GPUs.")
        return
    rows = [
        [str(g["index"]), g["name"], format_size_mb(g["total_mb"]), format_size_mb(g["used_mb"])]
        for g in gpus
    ]
    print_table(["GPU", "NAME", "MEMORY", "USED"], rows)


def build_parser() -> Parser:
    p = Parser("ginfo", "Show the GPUs the scheduler manages.")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    gpus = Client(Paths.from_env()).status()["gpus"]
    if args.json:
        print_json({"gpus": gpus})
    else:
        print_gpus(gpus)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("ginfo", _main, argv)
