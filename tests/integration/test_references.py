"""`@`, `@~N`, id ranges and an array's id in dependencies, and `gjob … @` (issue 14)."""

from __future__ import annotations

import pytest

from gflow.client import Client
from gflow.core.errors import InvalidInput, NotFound
from tests.helpers import Gflow


def first_id(gflow: Gflow, *args: str) -> int:
    """The first job's id of a submission (`--parsable` prints an array as FIRST-LAST)."""
    return int(gflow.ok("gbatch", "--parsable", *args).split("-")[0])


def test_at_after_an_array_waits_for_every_task(gflow: Gflow) -> None:
    """`--depends-on @` after a 3-task array depends on all three and starts after the last."""
    gates = gflow.workdir
    wait = f"while [ ! -e {gates}/gate$GFLOW_ARRAY_TASK_ID ]; do sleep 0.02; done"
    array = first_id(gflow, "--array", "1-3", "bash", "-c", wait)
    tasks = [array, array + 1, array + 2]
    evaluation = gflow.submit("--depends-on", "@", "true")
    assert gflow.job(evaluation)["depends_on"] == tasks
    (gates / "gate3").touch()
    gflow.wait_state(tasks[2], "Finished")
    assert gflow.job(evaluation)["state"] == "Queued"
    for n in (1, 2):
        (gates / f"gate{n}").touch()
    ended = gflow.wait_state(evaluation)
    assert ended["state"] == "Finished"
    assert ended["started_at"] >= max(gflow.job(t)["finished_at"] for t in tasks)


def test_at_tilde_n_counts_submissions_back_as_git_does(gflow: Gflow) -> None:
    """`@~0` is `@`; `@~1` the submission before the last; a sweep counts as one."""
    first = gflow.submit("--hold", "true")
    sweep = first_id(gflow, "--hold", "--param", "x=1,2", "echo", "{x}")
    last = gflow.submit("--hold", "true")
    assert gflow.job(gflow.submit("--hold", "-d", "@~0", "true"))["depends_on"] == [last]
    # The job just submitted is now the last submission: @~2 is the sweep, @~3 `first`.
    job = gflow.job(gflow.submit("--hold", "--depends-on-all", "@~2,@~3", "true"))
    assert job["depends_on"] == [sweep, sweep + 1, first]
    done = gflow.run("gbatch", "-d", "@~40", "true")
    assert done.returncode == 2 and "@~40" in done.stderr


def test_id_ranges_and_an_arrays_id(gflow: Gflow) -> None:
    """`--depends-on-all 1-3`, `afterok:1-3` and Slurm's `afterok:<array id>` name all three
    tasks; gflow's bare `--depends-on <id>` names that one job."""
    array = first_id(gflow, "--hold", "--array", "0-2", "true")
    tasks = [array, array + 1, array + 2]
    span = f"{array}-{array + 2}"
    for flags in (["--depends-on-all", span], ["--dependency", f"afterok:{span}"],
                  ["--dependency", f"afterok:{array}"], ["--depends-on", span]):  # fmt: skip
        assert gflow.job(gflow.submit("--hold", *flags, "true"))["depends_on"] == tasks, flags
    assert gflow.job(gflow.submit("--hold", "--depends-on", str(array), "true"))["depends_on"] == [
        array
    ]
    # A later task's id is that task only, in every form.
    only = gflow.submit("--hold", "--dependency", f"afterany:{array + 1}", "true")
    assert gflow.job(only)["dependencies"] == [{"job": array + 1, "kind": "afterany"}]
    done = gflow.run("gbatch", "--depends-on-all", f"{array}-{array + 50}", "true")
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_resolve_route_refuses_what_is_not_a_reference(gflow: Gflow) -> None:
    """GET /resolve takes '@' or '@~N' only: anything else is a 400, not a guess."""
    client = Client(gflow.paths)
    for ref in ("", "x", "@~", "@~-1", "12"):
        with pytest.raises(InvalidInput):
            client.request("GET", "/resolve", query={"ref": ref})
    with pytest.raises(NotFound):
        client.request("GET", "/resolve", query={"ref": "@"})  # nothing submitted yet


def test_show_names_the_submission_a_job_came_in(gflow: Gflow) -> None:
    """Every task of an array shows its first job's id as its submission (the array's id)."""
    array = first_id(gflow, "--hold", "--array", "1-2", "true")
    assert f"Submission={array}\n" in gflow.ok("gjob", "show", str(array + 1))
    assert gflow.job(array + 1)["submission"] == array
