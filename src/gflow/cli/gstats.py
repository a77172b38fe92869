"""gstats: how your jobs (or everyone's, -a) went: counts, waits, run times, success rate."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import mean
from typing import Any

from gflow.cli.common import EXIT_OK, Parser, print_json, run, usage_value
from gflow.client import Client
from gflow.core.parse import SINCE_FORMS, format_duration, parse_since
from gflow.core.states import ENDED_STATES, JobState
from gflow.paths import Paths


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
    p.add_argument(
        "-t", "--since", type=usage_value(_since), help=f"jobs submitted since: {SINCE_FORMS}"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    user = "all" if args.all_users else args.user
    jobs = Client(Paths.for_client()).list_jobs(all="1", user=user)
    if args.since is not None:
        jobs = [job for job in jobs if job["submitted_at"] >= args.since]
    stats = summarize(jobs)
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
    if stats["top_jobs"]:
        print("Longest runs:")
        for job in stats["top_jobs"]:
            print(f"  {job['id']:>6}  {format_duration(job['runtime_seconds'])}  "
                  f"{job['gpus']} GPU(s)  {job['name']}")  # fmt: skip
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("gstats", command, argv)
