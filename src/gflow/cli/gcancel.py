"""gcancel: cancel jobs by id, list or range, or by user, state and name; running jobs get
SIGTERM, then SIGKILL (`--kill`: SIGKILL at once). --dry-run answers what the real run
would do, line for line and exit code included, dependents of the cascade too."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from gflow.cli.common import EXIT_FAILED, EXIT_OK, Parser, fail, run, usage_value
from gflow.cli.gqueue import parse_states
from gflow.client import Client
from gflow.core.errors import ERRORS_BY_CODE, GflowError, InvalidInput, InvalidState, NotFound
from gflow.core.parse import format_id_list, parse_id_list
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

ACTIVE = "Queued,Hold,Running"
CANCELLABLE = frozenset(ACTIVE.split(","))


def build_parser() -> Parser:
    p = Parser("gcancel", "Cancel jobs.")
    p.add_argument("ids", nargs="*", type=usage_value(parse_id_list), help="job ids: 5, 1,2,3, 4-9")
    p.add_argument("-u", "--user", help="every active job of this user ('all': everyone's)")
    p.add_argument(
        "-s", "--state", type=usage_value(parse_states), help="only jobs in these states"
    )
    p.add_argument("-n", "--name", help="only jobs with this name")
    p.add_argument("--dry-run", action="store_true", help="say what a real run would do")
    p.add_argument("--kill", action="store_true",
                   help="SIGKILL running jobs at once, without SIGTERM's grace period")  # fmt: skip
    p.add_argument("--cancel", action="store_true", help="the default (gflow's spelling)")
    return p


def select(client: Client, args: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """(the jobs to act on, the ids given that no job has). With -u / -s / -n, the jobs
    matching them (only active ones unless -s says otherwise); nothing matched is NotFound."""
    ids = sorted({i for group in args.ids for i in group})
    filters = args.user or args.state or args.name
    if not filters:
        if not ids:
            raise InvalidInput("give job ids, or -u USER / -s STATE / -n NAME")
        jobs = client.list_jobs(ids=format_id_list(ids), all="1", user="all")
        found = {job["id"] for job in jobs}
        return jobs, [i for i in ids if i not in found]
    query = {"states": args.state or ACTIVE, "user": args.user or ("all" if ids else "")}
    if ids:
        query["ids"] = format_id_list(ids)
    jobs = [j for j in client.list_jobs(**query) if not args.name or j["name"] == args.name]
    if not jobs:
        asked = " ".join(
            f"{flag} {value}"
            for flag, value in (("-u", args.user), ("-s", args.state), ("-n", args.name))
            if value
        )
        raise NotFound(f"no {'' if args.state else 'active '}job matches {asked}")
    return jobs, []


def cascade(client: Client, chosen: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Waiting jobs a cancel would cancel too: afterok dependents that auto-cancel, and
    theirs in turn, each with the job it depends on."""
    waiting = client.list_jobs(states="Queued,Hold", user="all")
    gone = {job["id"] for job in chosen}
    found: list[tuple[dict[str, Any], int]] = []
    changed = True
    while changed:
        changed = False
        for job in waiting:
            if job["id"] in gone or not job["auto_cancel"] or job["state"] != "Queued":
                continue
            parents = [d["job"] for d in job["dependencies"] if d["kind"] == "afterok"]
            hit = [p for p in parents if p in gone]
            if hit and (job["dependency_mode"] == "all" or set(job["depends_on"]) <= gone):
                found.append((job, hit[0]))
                gone.add(job["id"])
                changed = True
    return found


def refusal(job: dict[str, Any]) -> str | None:
    """What the daemon would answer instead of cancelling this job, or None if it would."""
    if job["state"] not in CANCELLABLE:
        return (
            f"cannot cancel job {job['id']}: it is {job['state']}; "
            "only Hold or Queued or Running jobs can be cancelled"
        )
    me = os.getuid()
    if me != 0 and job["uid"] != me:
        return f"job {job['id']} belongs to {job['user']}; you cannot cancel it"
    return None


def unknown_line(missing: list[int]) -> str:
    ids = format_id_list(missing)
    return f"gcancel: job {ids} does not exist" if len(missing) == 1 else (
        f"gcancel: jobs {ids} do not exist"
    )  # fmt: skip


def dry_run(client: Client, jobs: list[dict[str, Any]], missing: list[int]) -> int:
    status = EXIT_FAILED if missing else EXIT_OK
    if missing:  # refusals go where the real run's go: stderr
        print(unknown_line(missing), file=sys.stderr)
    chosen = []
    for job in jobs:
        why = refusal(job)
        if why is None:
            print(f"would cancel job {job['id']} ({job['name']}, {job['state']})")
            chosen.append(job)
        else:
            print(f"gcancel: {why}", file=sys.stderr)
            status = EXIT_FAILED
    for job, parent in cascade(client, chosen):
        print(f"  and then job {job['id']} ({job['name']}), which depends on job {parent}")
    return status


CANCEL_CHUNK = 20_000  # ids per request: a 20,000-job array is one transaction


def said(result: dict[str, Any], gone: set[int], kill: bool) -> bool:
    """Print what happened to one job; False for a refusal."""
    job_id, error = result["id"], result["error"]
    if error is None:
        if result["state"] == "Running":
            sent = "SIGKILL sent" if kill else "SIGTERM sent; SIGKILL follows if it ignores it"
            print(f"Job {job_id} is stopping ({sent}).")
        else:
            print(f"Job {job_id} cancelled.")
        gone.add(job_id)
        return True
    blocker = (result.get("reason") or "").removeprefix("DependencyFailed:")
    if error["code"] == InvalidState.code and blocker.isdigit() and int(blocker) in gone:
        print(f"Job {job_id} cancelled (its dependency, job {blocker}, was).")
        gone.add(job_id)
        return True
    cls = ERRORS_BY_CODE.get(error["code"], GflowError)
    fail("gcancel", cls(error["message"], error["hint"]))
    return False


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    client = Client(Paths.for_client())
    jobs, missing = select(client, args)
    if args.dry_run:
        return dry_run(client, jobs, missing)
    status = EXIT_OK
    if missing:  # one line for all of them: `gcancel 1000-3000` on a short history
        print(unknown_line(missing), file=sys.stderr)
        status = EXIT_FAILED
    # A dependent the daemon already cancelled with its parent is not an error when named
    # too (ids ascend, so the parent was handled first).
    gone: set[int] = set()
    ids = [job["id"] for job in jobs]
    for start in range(0, len(ids), CANCEL_CHUNK):  # one request (one transaction) each
        chunk = format_id_list(ids[start : start + CANCEL_CHUNK])
        body = {"ids": chunk, "kill": args.kill}
        for result in client.request("POST", "/jobs/cancel", body)["results"]:
            if not said(result, gone, args.kill):
                status = EXIT_FAILED
    return status


def main(argv: Sequence[str] | None = None) -> int:
    return run("gcancel", command, argv)
