"""gqueue: list jobs (by default the caller's Queued, Hold and Running ones).

Filters run in the daemon (states, user, ids, project, exact names, --since), and so does
the limit (-n) when the jobs are in id order; sorting (-r), the limit after another sort,
the dependency tree (-t) and the watch loop (-w) run here, on the listed jobs. The columns
and sort keys are in columns.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence

from gflow.cli.columns import FIELDS, NEEDS, SORT_KEYS, SORT_NEEDS, TREE_NEEDS
from gflow.cli.common import EXIT_OK, Parser, format_table, run, usage_value
from gflow.cli.watching import Changes
from gflow.client import Client
from gflow.core.errors import InvalidInput, Unavailable
from gflow.core.parse import (
    SINCE_FORMS,
    format_id_list,
    parse_id_list,
    parse_since,
)
from gflow.core.states import ENDED_STATES, JobState
from gflow.paths import Paths

TYPE_CHECKING = False  # as in columns.py, where Row exists for mypy only (it needs typing)
if TYPE_CHECKING:
    from gflow.cli.columns import Row

DEFAULT_INTERVAL = 2.0
MAX_INTERVAL = 3600.0


DEFAULT_FORMAT = "JOBID,NAME,ST,TIME,NODES,NODELIST(REASON)"
ENDED = ",".join(s.value for s in JobState if s in ENDED_STATES)
TREE_MORE, TREE_LAST, TREE_PIPE, TREE_GAP = "├─ ", "╰─ ", "│  ", "   "


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
    states = [JobState.parse(s).value for s in text.split(",") if s.strip()]
    if not states:  # '' or ',' is a slip, not "any state"
        raise InvalidInput(f"no states in {text!r}", hint="a comma list of states: -s R,PD")
    return ",".join(states)


def parse_names(text: str) -> str:
    """-N: exact job names, comma separated (so a name with a comma cannot be asked for)."""
    names = dict.fromkeys(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InvalidInput(f"no job names in {text!r}", hint="a comma list of names: -N train,eval")
    return ",".join(names)


def _sort_key(text: str) -> str:
    key = text.strip().lower()
    if key not in SORT_KEYS:
        raise InvalidInput(f"unknown sort key {text!r}", hint=f"use one of {', '.join(SORT_KEYS)}")
    return key


def since_time(text: str) -> float:
    """--since WHEN as Unix time, relative to now (a watch re-reads it on every redraw)."""
    from datetime import datetime

    # Before 1970 means "everything": the daemon takes no negative times.
    return max(0.0, parse_since(text, datetime.now().astimezone()))


def _since(text: str) -> str:
    since_time(text)  # a bad WHEN is a usage error now, not on the first redraw
    return text


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
    if not 0 < value <= MAX_INTERVAL:  # NaN fails too
        raise InvalidInput(
            f"invalid interval {text!r}", hint=f"seconds, more than 0 and at most {MAX_INTERVAL:g}"
        )
    return value


def build_parser() -> Parser:
    p = Parser("gqueue", "List jobs. Default: your Queued, Hold and Running jobs.")
    p.add_argument("-a", "--all", action="store_true", help="include ended jobs")
    p.add_argument(
        "-c",
        "--completed",
        action="store_true",
        help="only ended jobs (Finished, Failed, Cancelled, Timeout)",
    )
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
    p.add_argument("-P", "--project", help="only this project's jobs")
    p.add_argument(
        "-N",
        "--names",
        type=usage_value(parse_names),
        help="only jobs with exactly these names (comma list)",
    )
    p.add_argument("--since", type=usage_value(_since), help=f"submitted since: {SINCE_FORMS}")
    p.add_argument("-n", "--limit", type=usage_value(lambda t: int_value(t)), default=0,
                   help="first N jobs, or last N if negative, after sorting (0: all)")  # fmt: skip
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
    p.add_argument(
        "--interval",
        type=usage_value(_interval),
        help=f"seconds between redraws with -w (default {DEFAULT_INTERVAL:g})",
    )
    p.add_argument("-o", "--output", choices=["table", "json", "csv"], help="default table")
    p.add_argument("--json", action="store_true", help="print JSON (same as -o json)")
    return p


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say: -c excludes -a and -s (which go together), and so on."""
    if args.completed and (args.all or args.states):
        other = "-a/--all" if args.all else "-s/--states"
        parser.error(f"argument -c/--completed: not allowed with argument {other}")
    if args.interval is not None and not args.watch:
        parser.error("argument --interval: needs -w/--watch")
    if args.json and args.output not in (None, "json"):
        parser.error(f"argument --json: not allowed with -o {args.output}")


def fetch(client: Client, args: argparse.Namespace) -> list[Row]:
    query = {
        "states": args.states or (ENDED if args.completed else ""),
        "all": "1" if args.all or args.jobs else "",
        "user": args.user,
        "ids": format_id_list(args.jobs) if args.jobs else "",
        "project": args.project or "",
        "names": args.names or "",
        "since": f"{since_time(args.since):.3f}" if args.since is not None else "",
    }
    if args.limit and args.sort == "id":  # the daemon's query stops at the limit
        query |= {"limit": str(abs(args.limit)), "last": "1" if args.limit < 0 else ""}
    fields = needed_fields(args)
    found = client.list_fields(fields, **query) if fields else client.list_jobs(**query)
    if "FAIRSHARE" in (args.format or ()):
        shares = client.request("GET", "/fairshare")["users"]
        for job in found:
            share = shares.get(job["user"])
            job["fairshare"] = (
                f"{share['usage_gpu_hours']:.1f}h ({share['share']:.0%})" if share else "0.0h (0%)"
            )
    jobs = sorted(found, key=SORT_KEYS[args.sort])
    if args.limit > 0:
        jobs = jobs[: args.limit]
    elif args.limit < 0:
        jobs = jobs[args.limit :]
    return jobs


def needed_fields(args: argparse.Namespace) -> list[str] | None:
    """The job fields this view shows, sorts and draws by; None (all) for JSON output."""
    if args.json or args.output == "json":
        return None
    keys = ["id", SORT_NEEDS.get(args.sort, args.sort)]
    for column in args.format or DEFAULT_FORMAT.split(","):
        keys += NEEDS[column]
    if args.tree and args.output != "csv":
        keys += TREE_NEEDS
    return list(dict.fromkeys(keys))


def render(jobs: list[Row], args: argparse.Namespace) -> str:
    fields = args.format or DEFAULT_FORMAT.split(",")
    if args.json or args.output == "json":
        return json.dumps({"jobs": jobs}, indent=2, sort_keys=True) + "\n"
    if args.output == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")  # csv's default is CRLF
        writer.writerow(fields)
        writer.writerows(cells(jobs, fields))
        return out.getvalue()
    if not jobs:
        return "No jobs found.\n"
    if args.tree:
        return tree(jobs, args.format)
    return format_table(fields, cells(jobs, fields))


def cells(jobs: list[Row], fields: list[str]) -> list[tuple[str, ...]]:
    """The table's text, computed a column at a time (one C-level map per field, not a
    Python loop per job)."""
    columns = [list(map(FIELDS[field], jobs)) for field in fields]
    return list(zip(*columns, strict=True))


def tree_rows(jobs: list[Row]) -> list[tuple[str, Row, bool]]:
    """(indent, job, is_reference) in drawing order. Roots are the jobs with no parent among
    those listed; a job with several parents is drawn under the first it is reached from and
    referenced under the others; anything only reachable through a cycle is drawn at the end.
    Iterative, so a chain thousands of jobs deep draws as well as a short one."""
    listed = {job["id"]: job for job in jobs}

    def parents(job: Row) -> list[int]:
        return [p for p in dict.fromkeys(job["depends_on"]) if p in listed and p != job["id"]]

    children: dict[int, list[int]] = {}
    for job in jobs:
        for parent in parents(job):
            children.setdefault(parent, []).append(job["id"])
    rows: list[tuple[str, Row, bool]] = []
    drawn: set[int] = set()

    def draw(root: int) -> None:
        stack = [(root, "", "")]  # (job id, indent of its parent's children, its branch)
        while stack:
            job_id, indent, branch = stack.pop()
            if job_id in drawn:
                rows.append((indent + branch, listed[job_id], True))
                continue
            drawn.add(job_id)
            rows.append((indent + branch, listed[job_id], False))
            inner = indent + {"": "", TREE_LAST: TREE_GAP}.get(branch, TREE_PIPE)
            kids = children.get(job_id, [])
            for n in reversed(range(len(kids))):
                stack.append((kids[n], inner, TREE_LAST if n == len(kids) - 1 else TREE_MORE))

    for job in jobs:
        if not parents(job):
            draw(job["id"])
    for job in jobs:
        if job["id"] not in drawn:
            draw(job["id"])
    return rows


def tree(jobs: list[Row], fields: list[str] | None = None) -> str:
    """`ID NAME [ST]` lines; with -f, a table whose first column carries the tree."""
    rows = tree_rows(jobs)
    if fields is None:
        return "".join(
            f"{indent}{job['id']} (see above)\n"
            if ref
            else f"{indent}{job['id']} {job['name']} [{job['state_short']}]\n"
            for indent, job, ref in rows
        )
    cells = [
        [f"{indent}{job['id']} (see above)", *[""] * (len(fields) - 1)]
        if ref
        else [indent + FIELDS[fields[0]](job), *(FIELDS[f](job) for f in fields[1:])]
        for indent, job, ref in rows
    ]
    return format_table(fields, cells)


def watch(
    client: Client,
    args: argparse.Namespace,
    iterations: int | None = None,
    sleep: Callable[[float], object] | None = None,
) -> int:
    """Clear the screen and redraw on every change (the event stream) and at least every
    --interval seconds, until Ctrl-C (exit 0, quietly).

    `iterations` and `sleep` are for tests: stop after that many screens, wait with that.
    If gflowd goes away after the first screen (a restart), the screen says so and the
    watch goes on; a first screen that fails is an error like without -w."""
    every = args.interval or DEFAULT_INTERVAL
    done = 0
    changes = Changes(client) if sleep is None else None
    try:
        while True:
            try:
                screen = render(fetch(client, args), args)
            except Unavailable as exc:
                if not done:
                    raise
                screen = f"gqueue: {exc.message}\n"
            stamp = time.strftime("%H:%M:%S")
            sys.stdout.write(f"\033[H\033[2J{screen}\nLast updated: {stamp} "
                             f"(every {every:g}s, Ctrl-C to stop)\n")  # fmt: skip
            sys.stdout.flush()
            done += 1
            if iterations is not None and done >= iterations:
                break
            if changes is not None:
                changes.wait(every)
            else:
                assert sleep is not None
                sleep(every)
    except KeyboardInterrupt:
        pass
    finally:
        if changes is not None:
            changes.close()
    return EXIT_OK


def command(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check(parser, args)
    client = Client(Paths.for_client())
    if args.watch:
        return watch(client, args)
    sys.stdout.write(render(fetch(client, args), args))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("gqueue", command, argv)
