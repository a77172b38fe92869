"""gqueue's views: completed, limit, since, sort, names, project, csv, tree, watch."""

from __future__ import annotations

import csv
import io
import json

import pytest

from gflow.cli import gqueue
from gflow.client import Client
from tests.helpers import Gflow


def ids(gflow: Gflow, *args: str) -> list[int]:
    return [j["id"] for j in json.loads(gflow.ok("gqueue", "--json", *args))["jobs"]]


def test_filters_sorting_and_limits(gflow: Gflow) -> None:
    """-c, -P, -N, --since, -r and -n select and order what a user asked for."""
    done = gflow.submit("-J", "zeta", "-P", "vision", "true")
    gflow.wait_state(done)
    held = gflow.submit("--hold", "-J", "alpha", "-p", "50", "true")
    other = gflow.submit("--hold", "-J", "mid", "true")
    assert ids(gflow, "-c") == [done]
    assert ids(gflow, "-a", "-P", "vision") == [done]
    assert ids(gflow, "-a", "-N", "alpha,mid") == [held, other]
    assert ids(gflow, "-a", "--since", "1h") == [done, held, other]
    assert ids(gflow, "-a", "--since", "2099-01-01") == []
    assert ids(gflow, "-a", "-r", "name") == [held, other, done]
    assert ids(gflow, "-a", "-r", "priority") == [held, done, other]
    assert ids(gflow, "-a", "-n", "2") == [done, held]
    assert ids(gflow, "-a", "-n", "-1") == [other]


def test_csv_output_and_extra_fields(gflow: Gflow) -> None:
    """-o csv writes the chosen fields; PROJECT and SUBMITTED are fields."""
    job = gflow.submit("--hold", "-J", "x", "-P", "nlp", "true")
    out = gflow.ok("gqueue", "-o", "csv", "-f", "JOBID,NAME,PROJECT,SUBMITTED")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["JOBID", "NAME", "PROJECT", "SUBMITTED"]
    assert rows[1][:3] == [str(job), "x", "nlp"] and rows[1][3].startswith("20")


def test_dependency_tree(gflow: Gflow) -> None:
    """-t draws children under parents; a job with two parents is referenced the second time."""
    a = gflow.submit("--hold", "-J", "a", "true")
    b = gflow.submit("--hold", "-J", "b", "-d", str(a), "true")
    c = gflow.submit("--hold", "-J", "c", "-d", str(b), "true")
    d = gflow.submit("--hold", "-J", "d", "--depends-on-all", f"{b},{c}", "true")
    assert gflow.ok("gqueue", "-t").splitlines() == [
        f"{a} a [H]",
        f"╰─ {b} b [H]",
        f"   ├─ {c} c [H]",
        f"   │  ╰─ {d} d [H]",
        f"   ╰─ {d} (see above)",
    ]


def test_watch_redraws(gflow: Gflow, capsys: pytest.CaptureFixture[str]) -> None:
    """-w clears the screen and redraws with a timestamp line, each interval."""
    gflow.submit("--hold", "-J", "watched", "true")
    args = gqueue.build_parser().parse_args(["-w", "--interval", "0.01"])
    assert gqueue.watch(Client(gflow.paths), args, iterations=2) == 0
    out = capsys.readouterr().out
    assert out.count("\033[H\033[2J") == 2 and out.count("Last updated:") == 2
    assert "watched" in out


@pytest.mark.parametrize(
    "argv",
    [
        ("-c", "-a"),
        ("-r", "size"),
        ("-n", "x"),
        ("--since", "soon"),
        ("--interval", "1"),
        ("-w", "--interval", "0"),
        ("-o", "yaml"),
    ],
    ids=" ".join,
)
def test_bad_view_arguments_are_one_line_errors(gflow: Gflow, argv: tuple[str]) -> None:
    """Exit 2, one line, no traceback."""
    done = gflow.run("gqueue", *argv)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
