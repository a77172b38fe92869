"""gctl: runtime control; `gctl up|down|status` are the brief's gflowd start|stop|status."""

from __future__ import annotations

from collections.abc import Sequence

from gflow.cli import gflowd
from gflow.cli.common import EXIT_OK, Parser, run
from gflow.cli.ginfo import print_gpus
from gflow.client import Client
from gflow.paths import Paths


def build_parser() -> Parser:
    p = Parser("gctl", "Control the scheduler at run time.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("up", help="start the daemon (gflowd start)")
    sub.add_parser("down", help="stop the daemon (gflowd stop)")
    status = sub.add_parser("status", help="daemon status (gflowd status)")
    status.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("show-gpus", help="the GPUs the scheduler sees")
    return p


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths.from_env()
    if args.action == "show-gpus":
        print_gpus(Client(paths).status()["gpus"])
        return EXIT_OK
    return gflowd.dispatch(args.action, paths, getattr(args, "json", False))


def main(argv: Sequence[str] | None = None) -> int:
    return run("gctl", _main, argv)
