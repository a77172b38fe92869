"""taskflow: Taskflow's commands on gflow's queue: `run` (grun), `ps` (gqueue), `show` (gjob show).

`taskflow run [-m SIZE] [--gpu IDX:SIZE|any:SIZE]… [-p 0|100|200] [-d SECS] CMD…` keeps
Taskflow's habits: the command runs with the caller's environment once the memory is free.
Unlike Taskflow, the job gets CUDA_VISIBLE_DEVICES, and no start delay is needed (`-d` is
accepted and ignored): gflow books declared memory the moment it starts a job.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gflow.cli import gjob, gqueue, grun
from gflow.cli.common import Parser, run, usage_value
from gflow.cli.job_options import parse_gpu_slot
from gflow.client import Client
from gflow.core.errors import InvalidInput
from gflow.core.parse import parse_id_list, parse_int, parse_size_mb
from gflow.paths import Paths


def taskflow_priority(text: str) -> int:
    """Taskflow's 0 / 100 / 200 (low, normal, high) onto ours: 0 / 10 (default) / 20."""
    return parse_int(text, "priority", 0, 2550) // 10


def build_parser() -> Parser:
    p = Parser("taskflow", "Taskflow's commands, run by gflow.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="run a command when its memory is free (gflow's grun)")
    r.add_argument("-m", "--memory", type=usage_value(parse_size_mb), help="host RAM, e.g. 5G")
    r.add_argument(
        "--gpu",
        action="append",
        default=[],
        type=usage_value(parse_gpu_slot),
        metavar="IDX:SIZE",
        help="GPU memory on GPU IDX (or any:SIZE); repeatable",
    )
    r.add_argument(
        "-p",
        "--priority",
        type=usage_value(taskflow_priority),
        default=10,
        help="0 (low), 100 (normal, default) or 200 (high)",
    )
    r.add_argument(
        "-d",
        "--delay",
        type=usage_value(lambda t: parse_int(t, "delay", 0, 86400)),
        help="accepted and ignored: no start delay is needed",
    )
    r.add_argument("command", nargs=argparse.REMAINDER, help="the command")
    ps = sub.add_parser("ps", help="list tasks (gqueue)")
    ps.add_argument("-u", "--user", action="store_true", help="only mine")
    ps.add_argument("-r", "--running", action="store_true", help="only running")
    ps.add_argument("-p", "--pending", action="store_true", help="only pending")
    ps.add_argument("-o", "--output", choices=["table", "json"], default="table")
    ps.add_argument("--json", action="store_true", help="print JSON (same as -o json)")
    show = sub.add_parser("show", help="one task in detail (gjob show)")
    show.add_argument("id", type=usage_value(parse_id_list), help="job id")
    show.add_argument("--json", action="store_true", help="print JSON")
    return p


def run_command(args: argparse.Namespace) -> int:
    if not [word for word in args.command if word != "--"]:
        raise InvalidInput(
            "nothing to run", hint="taskflow run [-m SIZE] [--gpu IDX:SIZE] [-p PRIO] CMD ARGS…"
        )
    if args.delay is not None:
        print(
            "taskflow: -d ignored: gflow books a job's memory when it starts it, "
            "so no start delay is needed",
            file=sys.stderr,
        )
    argv = ["-p", str(args.priority)]
    if args.memory is not None:
        argv += ["--mem", f"{args.memory}M"]
    for index, size in args.gpu:
        argv += ["--gpu", f"{'any' if index is None else index}:{size}M"]
    return grun.foreground(grun.build_parser("taskflow run").parse_args([*argv, *args.command]))


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "run":
        return run_command(args)
    if args.action == "show":
        client = Client(Paths.for_client())
        return gjob.show(client, args.id, args.json, prog="taskflow show")
    query = ["-u", "" if args.user else "all"]
    if args.running or args.pending:
        query += ["-s", ",".join(s for s, on in (("R", args.running), ("PD", args.pending)) if on)]
    if args.output == "json" or args.json:
        query.append("--json")
    return gqueue.command(query)


def main(argv: Sequence[str] | None = None) -> int:
    return run("taskflow", command, argv)
