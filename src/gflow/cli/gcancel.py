"""gcancel: cancel jobs by id, list or range, or by user, state and name; running jobs get
SIGTERM, then SIGKILL. --dry-run shows what would go, dependents of the cascade included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gflow.cli.common import EXIT_FAILED, EXIT_OK, Parser, fail, run, usage_value
from gflow.cli.gqueue import parse_states
from gflow.client import Client
from gflow.core.errors import Forbidden, InvalidInput, InvalidState, NotFound
from gflow.core.parse import parse_id_list
from gflow.paths import Paths

ACTIVE = "Queued,Hold,Running"


def build_parser() -> Parser:
    p = Parser("gcancel", "Cancel jobs.")
    p.add_argument("ids", nargs="*", type=usage_value(parse_id_list), help="job ids: 5, 1,2,3, 4-9")
    p.add_argument("-u", "--user", help="every active job of this user ('all': everyone's)")
    p.add_argument(
        "-s", "--state", type=usage_value(parse_states), help="only jobs in these states"
    )
    p.add_argument("-n", "--name", help="only jobs with this name")
    p.add_argument("--dry-run", action="store_true", help="list what would be cancelled")
    return p


def select(client: Client, args: Any) -> list[int]:
    """The ids to cancel: the ones given (the daemon refuses each it cannot cancel, naming
    its state), narrowed or found by -u / -s / -n."""
    ids = sorted({i for group in args.ids for i in group})
    filters = args.user or args.state or args.name
    if not filters:
        if not ids:
            raise InvalidInput("give job ids, or -u USER / -s STATE / -n NAME")
        return ids
    query = {"states": args.state or ACTIVE, "user": args.user or ("all" if ids else "")}
    if ids:
        query["ids"] = ",".join(map(str, ids))
    jobs = client.list_jobs(**query)
    return [job["id"] for job in jobs if not args.name or job["name"] == args.name]


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


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    client = Client(Paths.from_env())
    ids = select(client, args)
    if args.dry_run:
        jobs = client.list_jobs(ids=",".join(map(str, ids)), all="1", user="all") if ids else []
        for job in jobs:
            print(f"would cancel job {job['id']} ({job['name']}, {job['state']})")
        for job, parent in cascade(client, jobs):
            print(f"  and then job {job['id']} ({job['name']}), which depends on job {parent}")
        return EXIT_OK
    status = EXIT_OK
    # A dependent the daemon already cancelled with its parent is not an error when named
    # too (ids ascend, so the parent was handled first).
    gone: set[int] = set()
    for job_id in ids:
        try:
            result = client.job_action(job_id, "cancel")
        except InvalidState as exc:
            reason = client.show_job(job_id)["job"]["reason"] or ""
            blocker = reason.removeprefix("DependencyFailed:")
            if blocker.isdigit() and int(blocker) in gone:
                print(f"Job {job_id} cancelled (its dependency, job {blocker}, was).")
                gone.add(job_id)
                continue
            fail("gcancel", exc)
            status = EXIT_FAILED
            continue
        except (NotFound, Forbidden) as exc:  # others stop the whole command
            fail("gcancel", exc)
            status = EXIT_FAILED
            continue
        if result["state"] == "Running":
            print(f"Job {job_id} is stopping (SIGTERM sent; SIGKILL follows if it ignores it).")
        else:
            print(f"Job {job_id} cancelled.")
        gone.add(job_id)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    return run("gcancel", command, argv)
