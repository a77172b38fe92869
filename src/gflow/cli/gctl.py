"""gctl: runtime control; `gctl up|down|status` are the brief's gflowd start|stop|status."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gflow.cli import reserve
from gflow.cli.common import EXIT_OK, Parser, print_json, run, usage_value
from gflow.cli.ginfo import age_text, gpu_state, holders
from gflow.client import Client
from gflow.core.errors import InvalidInput
from gflow.core.parse import format_duration, parse_gpu_indices, parse_int, parse_time_limit
from gflow.paths import Paths


def _gpu_list(text: str) -> list[int] | None:
    """'all', or indices such as '0,2' or '0-3'."""
    if text.strip().lower() == "all":
        return None
    return parse_gpu_indices(text, "e.g. 0,2 or 0-3 or all")


def build_parser() -> Parser:
    p = Parser("gctl", "Control the scheduler at run time.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("up", help="start the daemon (gflowd start)")
    sub.add_parser("down", help="stop the daemon (gflowd stop)")
    status = sub.add_parser("status", help="daemon status (gflowd status)")
    status.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("show-gpus", help="each GPU: usable or not, and what holds it")
    show.add_argument("--json", action="store_true", help="print JSON")
    ignore = sub.add_parser(
        "ignore-gpu-process",
        help="let jobs use a GPU that this (stale, foreign) process pins; no PID: list them",
    )
    ignore.add_argument("pid", nargs="?", type=usage_value(_pid), help="a process id (ginfo)")
    ignore.add_argument("--undo", action="store_true", help="stop ignoring it")
    ignore.add_argument("--json", action="store_true", help="print JSON")
    set_gpus = sub.add_parser("set-gpus", help="which GPUs new jobs may use: 0,2 or all")
    set_gpus.add_argument("gpus", type=usage_value(_gpu_list), help="0,2 / 0-3 / all")
    purge = sub.add_parser("purge", help="forget ended jobs (and their logs) older than AGE")
    purge.add_argument("--before", required=True, type=usage_value(parse_time_limit),
                       metavar="AGE", help="e.g. 30d, 12h, 90 (minutes)")  # fmt: skip
    limit = sub.add_parser("set-limit", help="at most N jobs of a group run at once")
    limit.add_argument(
        "job",
        type=usage_value(lambda t: parse_int(t, "job id", 1, 2**53)),
        help="a job of the group (submitted with --max-concurrent)",
    )
    limit.add_argument("limit", type=usage_value(lambda t: parse_int(t, "limit", 1, 10**6)))
    reserve.add_parser(sub)
    quota = sub.add_parser("quota", help="quotas: gctl quota show [--user U]")
    quota.add_argument("quota_action", choices=["show"])
    quota.add_argument("-u", "--user", default="", help="whose (default: yours; others: admin)")
    quota.add_argument("--json", action="store_true", help="print JSON")
    notify = sub.add_parser("notify", help="notifications: test sends a sample to every target")
    notify.add_argument("what", choices=["test"], help="test: one sample event to every target")
    return p


def show_quota(client: Client, user: str, as_json: bool) -> None:
    info = client.request("GET", "/quota", query={"user": user} if user else None)
    if as_json:
        print_json(info)
        return
    limits = info["limits"] or {}

    def of(used: float, key: str, fmt: str = "{:g}") -> str:
        cap = limits.get(key)
        return fmt.format(used) + (f" of {cap:g}" if cap is not None else " (no cap)")

    print(f"User:          {info['user']}")
    print(f"Running jobs:  {of(info['running_jobs'], 'max_running_jobs')}")
    print(f"Running GPUs:  {of(info['running_gpus'], 'max_running_gpus')}")
    print(f"Queued jobs:   {of(info['queued_jobs'], 'max_queued_jobs')}")
    hours = of(info["gpu_hours_today"], "max_gpu_hours_per_day", "{:.2f}")
    print(f"GPU-hours/day: {hours} (the last 24 h)")


def _pid(text: str) -> int:
    return parse_int(text, "process id", 1, 2**22 - 1)


def show_gpus(client: Client, as_json: bool = False) -> None:
    gpus = client.gpus()
    if as_json:
        print_json({"gpus": gpus})
        return
    for gpu in gpus:
        print(f"{gpu['index']}\t{gpu_state(gpu)}\t{holders(gpu)}")


def ignore_gpu_process(client: Client, pid: int | None, undo: bool, as_json: bool) -> None:
    if pid is None:
        if undo:
            raise InvalidInput("--undo needs the PID to stop ignoring")
        listed = client.request("GET", "/gpus/ignored")["ignored"]
    else:
        body = {"pid": pid, "undo": undo}
        listed = client.request("POST", "/gpus/ignored", body)["ignored"]
        if not as_json:
            print(f"GPU process {pid} {'no longer ignored' if undo else 'ignored'}.")
    if as_json:
        print_json({"ignored": listed})
        return
    if pid is None and not listed:
        print("No GPU process is ignored.")
    now = time.time()
    for entry in listed if pid is None else []:
        started = f", up {age_text(now - entry['started_at'])}" if entry["started_at"] else ""
        alive = "" if entry["alive"] else " (gone: no longer matters)"
        print(f"pid {entry['pid']} ({entry['user']}{started}), ignored by {entry['added_by']} "
              f"{age_text(now - entry['added_at'])} ago{alive}")  # fmt: skip


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths.from_env()
    client = Client(Paths.for_client())
    if args.action == "show-gpus":
        show_gpus(client, args.json)
    elif args.action == "ignore-gpu-process":
        ignore_gpu_process(client, args.pid, args.undo, args.json)
    elif args.action == "set-gpus":
        client.request("POST", "/gpus", {"allowed": args.gpus})
        show_gpus(client)
    elif args.action == "purge":
        purged = client.request("POST", "/purge", {"older_than": args.before})["purged"]
        print(f"Purged {purged} ended job(s) older than {format_duration(args.before)}.")
    elif args.action == "reserve":
        return reserve.command(client, args)
    elif args.action == "quota":
        show_quota(client, args.user, args.json)
    elif args.action == "set-limit":
        body = {"max_concurrent": args.limit}
        changed = client.request("POST", f"/jobs/{args.job}/group-limit", body)["updated_jobs"]
        print(f"Group of job {args.job}: at most {args.limit} running ({changed} jobs updated).")
    elif args.action == "notify":
        sent = client.request("POST", "/notify/test")
        print(f"Test event {sent['event']} queued for {len(sent['targets'])} target(s): "
              f"{', '.join(sent['targets'])} (failures are logged in gflowd.log).")  # fmt: skip
    else:
        from gflow.cli import gflowd  # up, down, status: it imports subprocess and the config

        return gflowd.dispatch(args.action, paths, getattr(args, "json", False))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("gctl", command, argv)
