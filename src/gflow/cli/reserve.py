"""`gctl reserve create|list|show|cancel`: GPU reservations, and a text timeline of them."""

from __future__ import annotations

import argparse
import time

from gflow.cli.common import EXIT_OK, print_json, print_table, usage_value
from gflow.client import Client
from gflow.core.parse import format_duration, parse_gpu_indices, parse_int, parse_time_limit

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

TIMELINE_WIDTH = 48  # columns of the chart


def _start(text: str) -> float:
    from datetime import datetime

    from gflow.core.parse import parse_begin

    return parse_begin(text, datetime.now().astimezone())


def _gpu_ids(text: str) -> list[int]:
    return parse_gpu_indices(text)


def add_parser(sub: Any) -> None:
    reserve = sub.add_parser("reserve", help="GPU reservations: create, list, show, cancel")
    actions = reserve.add_subparsers(dest="reserve_action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="keep GPUs for a user for a while")
    create.add_argument("--user", default="", help="for whom (default: you; others: admin)")
    which = create.add_mutually_exclusive_group(required=True)
    which.add_argument("--gpus", type=usage_value(lambda t: parse_int(t, "GPU count", 1, 1024)),
                       help="how many GPUs, out of the pool")  # fmt: skip
    which.add_argument("--gpu-ids", type=usage_value(_gpu_ids), help="which GPUs: 0,2 or 0-3")
    create.add_argument("--start", required=True, type=usage_value(_start),
                        help="now, now+30m, 22:00, 2026-01-28 14:00 …")  # fmt: skip
    create.add_argument("--duration", required=True, type=usage_value(parse_time_limit),
                        help="2h, 90 (minutes), 1-00:00:00 …")  # fmt: skip
    create.add_argument("--json", action="store_true", help="print JSON")
    listing = actions.add_parser("list", help="reservations not over yet")
    listing.add_argument("--active", action="store_true", help="only those active now")
    listing.add_argument("--timeline", action="store_true", help="a chart of GPUs over time")
    listing.add_argument("--range", type=usage_value(parse_time_limit), default=48 * 3600,
                         help="the timeline's span (default 48h)")  # fmt: skip
    listing.add_argument("--json", action="store_true", help="print JSON")
    for name, what in (("show", "one reservation"), ("cancel", "end a reservation now")):
        one = actions.add_parser(name, help=what)
        one.add_argument("id", type=usage_value(lambda t: parse_int(t, "reservation id", 1, 2**53)))
        one.add_argument("--json", action="store_true", help="print JSON")


def command(client: Client, args: argparse.Namespace) -> int:
    action = args.reserve_action
    if action == "create":
        body = {
            "user": args.user or None,
            "gpus": args.gpus,
            "gpu_ids": args.gpu_ids,
            "start": args.start,
            "duration": args.duration,
        }
        made = client.request("POST", "/reservations", body)
        if args.json:
            print_json(made)
            return EXIT_OK
        print(f"Created {_describe(made['reservation'])}.")
        for warning in made["warnings"]:
            print(f"warning: {warning}")
        return EXIT_OK
    if action in ("show", "cancel"):
        path = f"/reservations/{args.id}" + ("/cancel" if action == "cancel" else "")
        found = client.request("POST" if action == "cancel" else "GET", path)["reservation"]
        if args.json:
            print_json(found)
        else:
            print(("Cancelled " if action == "cancel" else "") + _describe(found))
        return EXIT_OK
    view = client.request("GET", "/reservations")
    items = view["reservations"]
    if args.active:
        items = [r for r in items if r["start"] <= view["now"] < r["end"]]
    if args.json:
        print_json(items)
        return EXIT_OK
    if args.timeline:
        print(timeline(view, items, args.range))
        return EXIT_OK
    if not items:
        print("No reservations.")
        return EXIT_OK
    rows = [
        [str(r["id"]), r["user"], _gpus(r), _clock(r["start"]), _clock(r["end"]),
         "active" if r["start"] <= view["now"] else "planned"]
        for r in items
    ]  # fmt: skip
    print_table(["ID", "USER", "GPUS", "START", "END", "STATE"], rows)
    return EXIT_OK


def _gpus(r: dict[str, Any]) -> str:
    return ",".join(map(str, r["gpu_ids"])) if r["gpu_ids"] else f"{r['gpus']} (any)"


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _describe(r: dict[str, Any]) -> str:
    what = f"GPUs {_gpus(r)}" if r["gpu_ids"] else f"{r['gpus']} GPU(s)"
    span = format_duration(r["end"] - r["start"])
    return f"reservation {r['id']}: {what} for {r['user']}, {_clock(r['start'])} for {span}"


def timeline(view: dict[str, Any], items: list[dict[str, Any]], span: float) -> str:
    """GPUs down, time across: `R` reserved (by index; `r` a count reservation, shown on
    the lowest GPUs), `J` a running job until its time limit (`J…` without one), `.` free."""
    now, step = view["now"], span / TIMELINE_WIDTH
    rows = {gpu: ["."] * TIMELINE_WIDTH for gpu in view["gpus"]}
    for job in view["running"]:
        ends = job["ends_by"] or now + span
        for gpu in job["gpu_ids"]:
            _mark(rows.get(gpu), now, step, now, ends, "J")
    for r in items:
        gpus = r["gpu_ids"] or sorted(rows)[: r["gpus"]]
        for gpu in gpus:
            _mark(rows.get(gpu), now, step, r["start"], r["end"], "R" if r["gpu_ids"] else "r")
    scale = (
        f"{'now':<{TIMELINE_WIDTH // 2}}{'+' + format_duration(span / 2):<{TIMELINE_WIDTH // 2}}"
    )
    lines = [f"GPU  {scale}+{format_duration(span)}"]
    lines += [f"{gpu:<4} {''.join(cells)}" for gpu, cells in sorted(rows.items())]
    lines.append(f"     one column = {format_duration(step)}; R reserved, r reserved (by count), "
                 "J a running job until its time limit, . free")  # fmt: skip
    legend = [f"  {r['id']}: {r['user']} {_gpus(r)} {_clock(r['start'])} → {_clock(r['end'])}"
              for r in items]  # fmt: skip
    return "\n".join(lines + legend)


def _mark(cells: list[str] | None, now: float, step: float, start: float, end: float,
          mark: str) -> None:  # fmt: skip
    if cells is None:
        return
    for column in range(len(cells)):
        at = now + column * step
        if start < at + step and at < end:
            cells[column] = mark
