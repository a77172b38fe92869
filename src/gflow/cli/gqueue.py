"""gqueue: list jobs (by default the caller's Queued, Hold and Running ones)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from gflow.cli.common import EXIT_OK, Parser, print_json, print_table, run, usage_value
from gflow.client import Client
from gflow.core.errors import InvalidInput
from gflow.core.parse import format_duration, format_size_mb, parse_id_list
from gflow.core.states import JobState
from gflow.paths import Paths

Row = dict[str, Any]


def _time(job: Row) -> str:
    if job["started_at"] is None:
        return "-"
    return format_duration((job["finished_at"] or time.time()) - job["started_at"])


def _nodelist(job: Row) -> str:
    if job["state"] == JobState.RUNNING.value:
        return ",".join(map(str, job["gpu_ids"])) or "-"
    return f"({job['reason']})" if job["reason"] else "-"


def _exit(job: Row) -> str:
    if job["signal"] is not None:
        return f"SIG{job['signal']}"
    return "-" if job["exit_code"] is None else str(job["exit_code"])


FIELDS: dict[str, Callable[[Row], str]] = {
    "JOBID": lambda j: str(j["id"]),
    "NAME": lambda j: j["name"],
    "ST": lambda j: j["state_short"],
    "STATE": lambda j: j["state"],
    "TIME": _time,
    "TIMELIMIT": lambda j: format_duration(j["time_limit"]) if j["time_limit"] else "UNLIMITED",
    "NODES": lambda j: str(j["gpus"]),
    "MEMORY": lambda j: format_size_mb(j["memory_mb"]),
    "GPUMEM": lambda j: format_size_mb(j["gpu_memory_mb"]),
    "GPUS": lambda j: ",".join(map(str, j["gpu_ids"])) or "-",
    "NODELIST(REASON)": _nodelist,
    "REASON": lambda j: j["reason"] or "-",
    "EXITCODE": _exit,
    "USER": lambda j: j["user"],
    "PRIORITY": lambda j: str(j["priority"]),
}
DEFAULT_FORMAT = "JOBID,NAME,ST,TIME,NODES,NODELIST(REASON)"


def parse_fields(text: str) -> list[str]:
    fields = [f.strip().upper() for f in text.split(",") if f.strip()]
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or not fields:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown) or repr(text)}",
            hint=f"valid fields: {', '.join(FIELDS)}",
        )
    return fields


def parse_states(text: str) -> str:
    return ",".join(JobState.parse(s).value for s in text.split(",") if s.strip())


def build_parser() -> Parser:
    p = Parser("gqueue", "List jobs. Default: your Queued, Hold and Running jobs.")
    p.add_argument("-a", "--all", action="store_true", help="include ended jobs")
    p.add_argument(
        "-s",
        "--states",
        type=usage_value(parse_states),
        help="comma list of states (Running, r, PD, finished…)",
    )
    p.add_argument(
        "-j", "--jobs", "--job", type=usage_value(parse_id_list), help="job ids: 5, 1,2,3, 4-9"
    )
    p.add_argument("-u", "--user", "--users", default="", help="a user name, or 'all'")
    p.add_argument(
        "-f",
        "--format",
        type=usage_value(parse_fields),
        help=f"comma list of fields (default {DEFAULT_FORMAT}); fields: {', '.join(FIELDS)}",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    query = {
        "states": args.states or "",
        "all": "1" if args.all or args.jobs else "",
        "user": args.user,
        "ids": ",".join(map(str, args.jobs)) if args.jobs else "",
    }
    jobs = Client(Paths.from_env()).list_jobs(**query)
    if args.json:
        print_json({"jobs": jobs})
        return EXIT_OK
    if not jobs:
        print("No jobs found.")
        return EXIT_OK
    fields = args.format or DEFAULT_FORMAT.split(",")
    print_table(fields, [[FIELDS[f](job) for f in fields] for job in jobs])
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("gqueue", command, argv)
