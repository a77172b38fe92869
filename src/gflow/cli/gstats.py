"""gstats: how your jobs (or everyone's, -a) went: counts, waits, run times, success rate."""

from __future__ import annotations

from collections.abc import Sequence

from gflow.cli.common import EXIT_OK, Parser, print_json, print_table, run, usage_value
from gflow.client import Client
from gflow.core.parse import SINCE_FORMS, format_duration, parse_since
from gflow.core.states import ENDED_STATES, JobState
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any


def _since(text: str) -> float:
    from datetime import datetime

    return parse_since(text, datetime.now().astimezone())


def top_jobs(jobs: list[dict[str, Any]], count: int = 5) -> list[dict[str, Any]]:
    """The longest runs, for 'where did the GPU time go'."""
    ran = [j for j in jobs if j["started_at"] is not None and j["finished_at"] is not None]
    ran.sort(key=lambda j: j["finished_at"] - j["started_at"], reverse=True)
    return [
        {"id": j["id"], "name": j["name"], "runtime_seconds": j["finished_at"] - j["started_at"],
         "gpus": len(j["gpu_ids"])}
        for j in ran[:count]
    ]  # fmt: skip


def summarize(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    from statistics import mean  # here: it imports decimal, fractions and random (~4 ms)

    counts = {state.value: 0 for state in JobState}
    for job in jobs:
        counts[job["state"]] += 1
    started = [j for j in jobs if j["started_at"] is not None]
    ran = [j for j in started if j["finished_at"] is not None]
    ended = sum(counts[s.value] for s in ENDED_STATES)
    return {
        "total": len(jobs),
        "counts": counts,
        "avg_wait_seconds": mean(j["started_at"] - j["submitted_at"] for j in started)
        if started
        else None,
        "avg_run_seconds": mean(j["finished_at"] - j["started_at"] for j in ran) if ran else None,
        "gpu_hours": sum(len(j["gpu_ids"]) * (j["finished_at"] - j["started_at"]) for j in ran)
        / 3600,
        "success_rate": counts[JobState.FINISHED.value] / ended if ended else None,
        "top_jobs": top_jobs(jobs),
    }


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
    jobs = client.list_jobs(all="1", user=user, project=args.project)
    if args.since is not None:
        jobs = [job for job in jobs if job["submitted_at"] >= args.since]
    if args.efficiency:
        return print_efficiency(jobs, args.json)
    stats = summarize(jobs)
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
