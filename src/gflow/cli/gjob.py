"""gjob: one job at a time: show, log, attach, hold, release, update, redo, events.

A job may be named `@` (your last submission: every job of it for show/hold/release/update,
its last job for log/attach/redo) or `@~N` (the submission N before it)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gflow.cli.common import EXIT_FAILED, EXIT_OK, Parser, fail, print_json, run, usage_value
from gflow.cli.gjob_events import show_events
from gflow.cli.job_options import add_update_options, describe_update, update_fields
from gflow.cli.joblog import attach, show_log
from gflow.cli.refs import parse_job_ref, parse_job_refs, resolve, resolve_one
from gflow.client import Client
from gflow.core.errors import Forbidden, InvalidInput, InvalidState, NotFound
from gflow.core.parse import format_duration, format_size_mb, parse_begin, parse_int
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any


# datetime, and efficiency.py (core.usage: dataclasses, typing), are imported by the actions
# that need them: hold, release, log and the rest start without.


def _at(text: str) -> float:
    from datetime import datetime

    return parse_begin(text, datetime.now().astimezone())


def _count(text: str) -> int:
    return parse_int(text, "line count", 1, 10**9)


def build_parser() -> Parser:
    p = Parser("gjob", "Inspect and control one job.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", aliases=["s"], help="every field of a job")
    show.add_argument("ids", type=usage_value(parse_job_refs), help="job ids, @ or @~N")
    show.add_argument("--json", action="store_true", help="print JSON")
    log = sub.add_parser("log", aliases=["l"], help="the job's output")
    log.add_argument("id", type=usage_value(parse_job_ref), help="job id, @ or @~N")
    group = log.add_mutually_exclusive_group()
    group.add_argument("--first", type=usage_value(_count), metavar="N", help="first N lines")
    group.add_argument("--last", type=usage_value(_count), metavar="N", help="last N lines")
    log.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    attach = sub.add_parser("attach", aliases=["a"], help="attach to the job's tmux session")
    attach.add_argument("id", type=usage_value(parse_job_ref), help="job id, @ or @~N")
    hold = sub.add_parser("hold", aliases=["h"], help="hold queued jobs")
    hold.add_argument("ids", type=usage_value(parse_job_refs), help="ids: 5, 1,2, 4-9, @, @~N")
    release = sub.add_parser("release", aliases=["r"], help="release held jobs")
    release.add_argument("ids", type=usage_value(parse_job_refs), help="ids: 5, 1,2, 4-9, @, @~N")
    release.add_argument("--at", type=usage_value(_at), help="queue now, start not before TIME")
    update = sub.add_parser("update", aliases=["u"], help="change what a waiting job asks for")
    update.add_argument("ids", type=usage_value(parse_job_refs), help="ids: 5, 1,2, 4-9, @, @~N")
    add_update_options(update)
    eff = sub.add_parser("eff", help="what the job used of what it asked for (as seff)")
    eff.add_argument("id", type=usage_value(parse_job_ref), help="job id, @ or @~N")
    eff.add_argument("--json", action="store_true", help="print JSON")
    redo = sub.add_parser("redo", help="submit an ended job again")
    redo.add_argument("id", type=usage_value(parse_job_ref), help="job id, @ or @~N")
    redo.add_argument("--cascade", action="store_true",
                      help="also redo the dependents cancelled because of it")  # fmt: skip
    add_update_options(redo)  # gflow's overrides: --gpus --time --memory … --clear-deps
    events = sub.add_parser("events", aliases=["e"], help="the event history (-f: and new ones)")
    events.add_argument("id", nargs="?", type=usage_value(parse_job_ref), help="job id, @ or @~N")
    events.add_argument("-f", "--follow", action="store_true", help="then new events, until Ctrl-C")
    return p


def _when(ts: float | None) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds") if ts else "-"


def _dependencies(job: dict[str, Any]) -> str:
    deps = job["dependencies"]
    if not deps:
        return "-"
    joined = (" or " if job["dependency_mode"] == "any" else ", ").join(
        f"{d['kind']}:{d['job']}" for d in deps
    )
    return joined + ("" if job["auto_cancel"] else " (no auto-cancel)")


def show(client: Client, ids: list[int], as_json: bool, prog: str = "gjob") -> int:
    """`Key=Value` lines of each job (or JSON); `prog` names who speaks in errors."""
    from gflow.cli.efficiency import show_lines

    found: list[dict[str, Any]] = []
    status = EXIT_OK
    for job_id in ids:
        try:
            found.append(client.show_job(job_id))
        except NotFound as exc:
            fail(prog, exc)
            status = EXIT_FAILED
    if as_json:
        print_json(
            [
                {**item["job"], "events": item["events"], "attempts": item["attempts"]}
                for item in found
            ]
        )
        return status
    for n, item in enumerate(found):
        job = item["job"]
        if n:
            print()
        now = time.time()
        waited = (job["started_at"] or now) - job["submitted_at"]
        runtime = (job["finished_at"] or now) - job["started_at"] if job["started_at"] else None
        lines = [
            ("JobId", job["id"]),
            ("Name", job["name"]),
            ("User", f"{job['user']} ({job['uid']})"),
            ("State", f"{job['state']} ({job['state_short']})"),
            ("Reason", job["reason"] or "-"),
            ("ExitCode", "-" if job["exit_code"] is None else job["exit_code"]),
            ("Signal", job["signal"] if job["signal"] is not None else "-"),
            ("Priority", job["priority"]),
            ("Command" if job["command"] else "Script", job["command"] or job["script"]),
            ("WorkDir", job["workdir"]),
            ("GPUs", f"{job['gpus']}{' shared' if job['shared'] else ''}"),
            ("GPUMemory", format_size_mb(job["gpu_memory_mb"])),
            ("Memory", "all" if job["memory_mb"] == 0 else format_size_mb(job["memory_mb"])),
            ("GPUIDs", ",".join(map(str, job["gpu_ids"])) or "-"),
            ("GPUType", job["gpu_model"] or "-"),
            ("CPUs", "all (exclusive)" if job["exclusive"] else job["cpus"] or "-"),
            ("CPUIDs", ",".join(map(str, job["cpu_ids"])) or "-"),
            ("TimeLimit", format_duration(job["time_limit"]) if job["time_limit"] else "UNLIMITED"),
            ("DependsOn", _dependencies(job)),
            ("BeginAt", _when(job["begin_at"])),
            (
                "Group",
                f"{job['group_id']} (max {job['max_concurrent']} running)"
                if job["group_id"]
                else "-",
            ),
            ("ArrayTaskId", job["array_task_id"] if job["array_task_id"] is not None else "-"),
            ("Submission", job["submission"]),  # its first job's id: an array's id
            ("Submitted", _when(job["submitted_at"])),
            ("Started", f"{_when(job['started_at'])} (waited {format_duration(waited)})"),
            ("Ended", f"{_when(job['finished_at'])} (ran {format_duration(runtime)})"),
            ("Project", job["project"] or "-"),
            ("CondaEnv", job["conda_env"] or "-"),
            (
                "Retries",
                f"attempt {job['attempt']} of at most {job['max_retries'] + 1}"
                + (" (timeouts too)" if job["retry_on_timeout"] else ""),
            ),
            ("AttemptJobIds", _attempts(item["attempts"])),
            ("Executor", job["executor"]),
            *(
                [("SlurmJobId", job.get("slurm_job_id") or "-"), ("Node", job.get("node") or "-")]
                if job["executor"] == "slurm"
                else []
            ),
            ("Session", job["session"] or "-"),
            ("Log", job["log_path"]),
            *show_lines(job, now),
        ]
        for key, value in lines:
            print(f"{key}={value}")
        print("Events:")
        for event in item["events"]:
            detail = f" ({event['detail']})" if event["detail"] else ""
            print(f"  {_when(event['at'])}  {event['kind']}  {event['state']}{detail}")
    return status


def report_efficiency(client: Client, job_id: int, as_json: bool) -> int:
    """`gjob eff ID`: Slurm's `seff` report (with --json, the figures it is made of)."""
    from gflow.cli.efficiency import efficiency_of, seff, usage_of

    job = client.show_job(job_id)["job"]
    if job["started_at"] is None:
        raise InvalidState(f"job {job_id} is {job['state']}: it has not run yet")
    now = time.time()
    if as_json:
        eff = efficiency_of(job, now)
        usage = usage_of(job).to_dict()
        print_json({"id": job_id, "state": job["state"], **usage, **eff.__dict__})
        return EXIT_OK
    print(seff(job, now))
    return EXIT_OK


def act(client: Client, ids: list[int], action: str, at: float | None = None) -> int:
    status = EXIT_OK
    done = {"hold": "put on hold", "release": "released"}[action]
    if at is not None:
        done += f"; it starts at {_when(at)} at the earliest"
    for job_id in ids:
        try:
            client.job_action(job_id, action, {"at": at} if at is not None else None)
            print(f"Job {job_id} {done}.")
        except (NotFound, InvalidState, Forbidden) as exc:
            fail("gjob", exc)
            status = EXIT_FAILED
    return status


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    client = Client(Paths.for_client())
    action = {
        "s": "show",
        "l": "log",
        "a": "attach",
        "h": "hold",
        "r": "release",
        "e": "events",
    }.get(args.action, args.action)
    if action == "log":
        return show_log(client, resolve_one(client, args.id), args.first, args.last, args.follow)
    if action == "events":
        job_id = resolve_one(client, args.id) if args.id is not None else None
        return show_events(client, job_id, args.follow)
    if action == "attach":
        return attach(client, resolve_one(client, args.id))
    if action == "eff":
        return report_efficiency(client, resolve_one(client, args.id), args.json)
    if action == "redo":
        return redo(client, resolve_one(client, args.id), args.cascade, update_fields(args))
    if action in ("update", "u"):
        fields = update_fields(args)
        if not fields:
            raise InvalidInput("nothing to update", hint="see gjob update --help")
        return update(client, resolve(client, args.ids), fields)
    ids = resolve(client, args.ids)
    if action == "show":
        return show(client, ids, args.json)
    return act(client, ids, action, getattr(args, "at", None))


def _attempts(ids: list[int]) -> str:
    """The ids of every attempt of this job, said as such (one id: never retried)."""
    if len(ids) == 1:
        return f"{ids[0]} (one attempt: never retried)"
    return f"{','.join(map(str, ids))} ({len(ids)} attempts)"


def update(client: Client, ids: list[int], fields: dict[str, Any]) -> int:
    status = EXIT_OK
    for job_id in ids:
        try:
            client.request("PATCH", f"/jobs/{job_id}", fields)
            print(f"Job {job_id} updated: {describe_update(fields)}.")
        except (NotFound, InvalidState, Forbidden) as exc:
            fail("gjob", exc)
            status = EXIT_FAILED
    return status


def redo(client: Client, job_id: int, cascade: bool, changes: dict[str, Any]) -> int:
    """`gjob redo ID [--cascade] [overrides]`: the overrides apply to the job redone."""
    body = {"cascade": cascade, "changes": changes}
    jobs = client.request("POST", f"/jobs/{job_id}/redo", body)["jobs"]
    changed = f" with {describe_update(changes)}" if changes else ""
    print(f"Job {job_id} resubmitted as job {jobs[0]['id']}{changed}.")
    for job in jobs[1:]:
        print(f"  dependent job resubmitted as job {job['id']} ({job['name']}).")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("gjob", command, argv)
