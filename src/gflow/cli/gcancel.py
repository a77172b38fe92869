"""gcancel: cancel jobs by id, list or range; running jobs get SIGTERM, then SIGKILL."""

from __future__ import annotations

from collections.abc import Sequence

from gflow.cli.common import EXIT_FAILED, EXIT_OK, Parser, fail, run, usage_value
from gflow.client import Client
from gflow.core.errors import Forbidden, InvalidState, NotFound
from gflow.core.parse import parse_id_list
from gflow.paths import Paths


def build_parser() -> Parser:
    p = Parser("gcancel", "Cancel jobs.")
    p.add_argument("ids", nargs="+", type=usage_value(parse_id_list), help="job ids: 5, 1,2,3, 4-9")
    return p


def command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    client = Client(Paths.from_env())
    status = EXIT_OK
    for job_id in sorted({i for group in args.ids for i in group}):
        try:
            job = client.job_action(job_id, "cancel")
        except (NotFound, InvalidState, Forbidden) as exc:  # others stop the whole command
            fail("gcancel", exc)
            status = EXIT_FAILED
            continue
        if job["state"] == "Running":
            print(f"Job {job_id} is stopping (SIGTERM sent; SIGKILL follows if it ignores it).")
        else:
            print(f"Job {job_id} cancelled.")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    return run("gcancel", command, argv)
