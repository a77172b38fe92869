"""gstats: how your jobs (or everyone's, -a) went: counts, waits, run times, success rate."""

from __future__ import annotations

from collections.abc import Sequence

from gflow.cli.common import EXIT_OK, Parser, print_json, print_table, run, usage_value
from gflow.client import Client
from gflow.core.parse import SINCE_FORMS, format_duration, parse_since
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any


def _since(text: str) -> float:
    from datetime import datetime

    return parse_since(text, datetime.now().astimezone())


def build_parser() -> Parser:
    p = Parser("gstats", "Job accounting.")
    p.add_argument("-a", "--all-users", action="store_true", help="every user's jobs")
    p.add_argument("-u", "--user", default="", help="this user's jobs (default: yours)")
    p.add_argument("-P", "--project", default="", help="only this project's jobs")
    p.add_argument(
        "-t", "--since", type=usage_value(_since), help=f"jobs submitted since: {SINCE_FORMS}"
    )
    p.add_argument(
        "--efficiency",
        action="store_true",
        help="asked against used (GPU-hours, memory) per user and project; the most unused",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    user = "all" if args.all_users else args.user
    client = Client(Paths.for_client())
    since = "" if args.since is None else f"{args.since:.3f}"
    if args.efficiency:
        jobs = client.list_jobs(all="1", user=user, project=args.project, since=since)
        return print_efficiency(jobs, args.json)
    # Counted by the daemon: ended jobs from its per-day totals, which outlive the jobs.
    query = {"user": user, "project": args.project, "since": since}
    stats = client.request("GET", "/stats", query={k: v for k, v in query.items() if v})
    stats["fair_share"] = shares = client.request("GET", "/fairshare")
    if args.json:
        print_json(stats)
        return EXIT_OK
    print(f"Jobs: {stats['total']}")
    for state, count in stats["counts"].items():
        print(f"  {state:<10} {count}")
    print(f"Average wait:  {format_duration(stats['avg_wait_seconds'])}")
    print(f"Average run:   {format_duration(stats['avg_run_seconds'])}")
    print(f"GPU-hours:     {stats['gpu_hours']:.2f}")
    rate = stats["success_rate"]
    print(f"Success rate:  {'-' if rate is None else f'{rate:.0%}'}")
    if shares["users"]:
        state = "on" if shares["enabled"] else "off (shown only)"
        print(f"Fair-share ({state}; half-life {format_duration(shares['half_life'])}):")
        for name, share in shares["users"].items():
            print(f"  {name:<12} {share['usage_gpu_hours']:8.2f} GPU-h  {share['share']:.0%}")
    if stats["top_jobs"]:
        print("Longest runs:")
        for job in stats["top_jobs"]:
            print(f"  {job['id']:>6}  {format_duration(job['runtime_seconds'])}  "
                  f"{job['gpus']} GPU(s)  {job['name']}")  # fmt: skip
    return EXIT_OK


def print_efficiency(jobs: list[dict[str, Any]], as_json: bool) -> int:
    import time

    from gflow.cli.efficiency import efficiency_report

    report = efficiency_report(jobs, time.time())
    if as_json:
        print_json(report)
        return EXIT_OK
    for by, title in (("by_user", "User"), ("by_project", "Project")):
        rows = [
            [name, str(t["jobs"]), f"{t['gpu_hours_asked']:.2f}", f"{t['gpu_hours_used']:.2f}",
             _share(t["gpu_hours_used"], t["gpu_hours_asked"]),
             f"{t['memory_gb_hours_asked']:.2f}", f"{t['memory_gb_hours_used']:.2f}",
             _share(t["memory_gb_hours_used"], t["memory_gb_hours_asked"])]
            for name, t in report[by].items()
        ]  # fmt: skip
        heads = [title.upper(), "JOBS", "GPU-H ASKED", "GPU-H USED", "GPU EFF",
                 "MEM GB-H ASKED", "MEM GB-H USED", "MEM EFF"]  # fmt: skip
        print_table(heads, rows)
        print()
    if report["most_unused"]:
        print("Most left unused:")
        for job in report["most_unused"]:
            asked = job["memory_mb_asked"]
            memory = f"mem {job['max_rss_mb']}M of {asked}M" if asked else "no --mem"
            print(f"  {job['id']:>6}  {job['user']}  GPU-h {job['gpu_hours_used']:.2f} of "
                  f"{job['gpu_hours_asked']:.2f}  {memory}  {job['name']}")  # fmt: skip
    return EXIT_OK


def _share(used: float, asked: float) -> str:
    return f"{used / asked:.0%}" if asked else "-"


def main(argv: Sequence[str] | None = None) -> int:
    return run("gstats", command, argv)
