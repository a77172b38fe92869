"""gqueue: list jobs (by default the caller's Queued, Hold and Running ones)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from gflow.cli.common import EXIT_OK, Parser, format_table, run, usage_value
from gflow.client import Client
from gflow.core.errors import InvalidInput
from gflow.core.parse import (
    SINCE_FORMS,
    format_duration,
    format_size_mb,
    parse_id_list,
    parse_since,
)
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


def _clock(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


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
    "PROJECT": lambda j: j["project"] or "-",
    "SUBMITTED": lambda j: _clock(j["submitted_at"]),
    "STARTED": lambda j: _clock(j["started_at"]),
    "ENDED": lambda j: _clock(j["finished_at"]),
}
SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "id": lambda j: j["id"],
    "state": lambda j: j["state"],
    "time": lambda j: j["started_at"] or float("inf"),
    "name": lambda j: j["name"],
    "gpus": lambda j: j["gpus"],
    "priority": lambda j: -j["priority"],
    "submitted": lambda j: j["submitted_at"],
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


def _sort_key(text: str) -> str:
    key = text.strip().lower()
    if key not in SORT_KEYS:
        raise InvalidInput(f"unknown sort key {text!r}", hint=f"use one of {', '.join(SORT_KEYS)}")
    return key


def _since(text: str) -> float:
    from datetime import datetime

    return parse_since(text, datetime.now().astimezone())


def build_parser() -> Parser:
    p = Parser("gqueue", "List jobs. Default: your Queued, Hold and Running jobs.")
    which = p.add_mutually_exclusive_group()
    which.add_argument("-a", "--all", action="store_true", help="include ended jobs")
    which.add_argument("-c", "--completed", action="store_true", help="only ended jobs")
    which.add_argument(
        "-s",
        "--states",
        type=usage_value(parse_states),
        help="comma list of states (Running, r, PD, finished…)",
    )
    p.add_argument(
        "-j", "--jobs", "--job", type=usage_value(parse_id_list), help="job ids: 5, 1,2,3, 4-9"
    )
    p.add_argument("-u", "--user", "--users", default="", help="a user name, or 'all'")
    p.add_argument("-P", "--project", help="only this project's jobs")
    p.add_argument("-N", "--names", help="only jobs with these names (comma list)")
    p.add_argument("--since", type=usage_value(_since), help=f"submitted since: {SINCE_FORMS}")
    p.add_argument("-n", "--limit", type=usage_value(lambda t: int_value(t)), default=0,
                   help="first N jobs (or last N if negative)")  # fmt: skip
    p.add_argument("-r", "--sort", type=usage_value(_sort_key), default="id",
                   help=f"order by {', '.join(SORT_KEYS)}")  # fmt: skip
    p.add_argument(
        "-f",
        "--format",
        type=usage_value(parse_fields),
        help=f"comma list of fields (default {DEFAULT_FORMAT}); fields: {', '.join(FIELDS)}",
    )
    p.add_argument("-t", "--tree", action="store_true", help="show dependencies as a tree")
    p.add_argument("-w", "--watch", action="store_true", help="redraw until Ctrl-C")
    p.add_argument("--interval", type=usage_value(_interval), help="seconds between redraws")
    p.add_argument("-o", "--output", choices=["table", "json", "csv"], default="table")
    p.add_argument("--json", action="store_true", help="print JSON (same as -o json)")
    return p


def int_value(text: str) -> int:
    raw = text.strip()
    if not re.fullmatch(r"-?[0-9]{1,9}", raw):
        raise InvalidInput(f"invalid number {text!r}", hint="a whole number, e.g. 20 or -20")
    return int(raw)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 0 < value <= 3600:
        raise InvalidInput(f"invalid interval {text!r}", hint="seconds, more than 0")
    return value


def fetch(client: Client, args: argparse.Namespace) -> list[Row]:
    query = {
        "states": args.states or ("Finished,Failed,Cancelled,Timeout" if args.completed else ""),
        "all": "1" if args.all or args.jobs else "",
        "user": args.user,
        "ids": ",".join(map(str, args.jobs)) if args.jobs else "",
        "project": args.project or "",
        "names": args.names or "",
        "since": str(int(args.since)) if args.since is not None else "",
    }
    jobs = sorted(client.list_jobs(**query), key=SORT_KEYS[args.sort])
    if args.limit > 0:
        jobs = jobs[: args.limit]
    elif args.limit < 0:
        jobs = jobs[args.limit :]
    return jobs


def render(jobs: list[Row], args: argparse.Namespace) -> str:
    fields = args.format or DEFAULT_FORMAT.split(",")
    if args.json or args.output == "json":
        return json.dumps({"jobs": jobs}, indent=2, sort_keys=True) + "\n"
    if args.output == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(fields)
        writer.writerows([FIELDS[f](job) for f in fields] for job in jobs)
        return out.getvalue()
    if not jobs:
        return "No jobs found.\n"
    if args.tree:
        return tree(jobs)
    return format_table(fields, [[FIELDS[f](job) for f in fields] for job in jobs])


def tree(jobs: list[Row]) -> str:
    """Dependencies as a tree: roots are jobs with no parent among those listed; a job with
    several parents is drawn under the first and referenced under the others."""
    listed = {job["id"]: job for job in jobs}
    children: dict[int, list[int]] = {}
    for job in jobs:
        for parent in job["depends_on"]:
            if parent in listed:
                children.setdefault(parent, []).append(job["id"])
    lines: list[str] = []
    drawn: set[int] = set()

    def draw(job_id: int, prefix: str, branch: str) -> None:
        job = listed[job_id]
        label = f"{job_id} {job['name']} [{job['state_short']}]"
        if job_id in drawn:
            lines.append(f"{prefix}{branch}{job_id} (see above)")
            return
        drawn.add(job_id)
        lines.append(f"{prefix}{branch}{label}")
        kids = children.get(job_id, [])
        inner = prefix + ("" if not branch else ("   " if branch.startswith("╰") else "│  "))
        for n, kid in enumerate(kids):
            draw(kid, inner, "╰─ " if n == len(kids) - 1 else "├─ ")

    roots = [j["id"] for j in jobs if not any(p in listed for p in j["depends_on"])]
    for root in roots:
        draw(root, "", "")
    for job in jobs:  # anything only reachable through a cycle
        if job["id"] not in drawn:
            draw(job["id"], "", "")
    return "\n".join(lines) + "\n"


def watch(client: Client, args: argparse.Namespace, iterations: int | None = None) -> int:
    """Redraw every --interval seconds until Ctrl-C (or `iterations`, for tests)."""
    every = args.interval or 2.0
    done = 0
    try:
        while iterations is None or done < iterations:
            screen = render(fetch(client, args), args)
            stamp = time.strftime("%H:%M:%S")
            sys.stdout.write(f"\033[H\033[2J{screen}\nLast updated: {stamp} "
                             f"(every {every:g}s, Ctrl-C to stop)\n")  # fmt: skip
            sys.stdout.flush()
            done += 1
            if iterations is None or done < iterations:
                time.sleep(every)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.interval is not None and not args.watch:
        raise InvalidInput("--interval needs -w/--watch")
    client = Client(Paths.from_env())
    if args.watch:
        return watch(client, args)
    sys.stdout.write(render(fetch(client, args), args))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("gqueue", command, argv)
