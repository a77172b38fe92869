"""gqueue's views as a user sees them: -c, -n, --since, -r, -N, the time fields, -o csv|json,
-t, -w/--interval, and one-line usage errors for every bad value."""

from __future__ import annotations

import csv
import io
import json
import signal
import socket
import subprocess
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from gflow.cli import gqueue
from gflow.client import Client, parse_response
from gflow.core.errors import InvalidInput
from tests.helpers import BIN, Gflow, wait_for


def ids(gflow: Gflow, *args: str) -> list[int]:
    return [j["id"] for j in json.loads(gflow.ok("gqueue", "--json", *args))["jobs"]]


def http_get(gflow: Gflow, target: str) -> tuple[int, Any]:
    """One raw request to the daemon, to see the HTTP status itself."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(gflow.paths.socket))
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    status, body = parse_response(raw)
    return status, json.loads(body)


def ended(gflow: Gflow, *args: str, state: str = "") -> int:
    job = gflow.submit(*args)
    gflow.wait_state(job, *([state] if state else []))
    return job


# ---- -c, -n ---------------------------------------------------------------------------------


def test_completed_lists_only_ended_jobs(gflow: Gflow) -> None:
    """-c: Finished, Failed and Cancelled jobs, none that still waits; -a -s still go together."""
    done = ended(gflow, "true", state="Finished")
    failed = ended(gflow, "false", state="Failed")
    cancelled = gflow.submit("--hold", "true")
    gflow.ok("gcancel", str(cancelled))
    held = gflow.submit("--hold", "true")
    assert ids(gflow, "-c") == [done, failed, cancelled]
    assert ids(gflow, "--completed", "-j", f"{failed},{held}") == [failed]
    assert ids(gflow) == [held]
    assert ids(gflow, "-a", "-s", "H") == [held]


def test_limit_takes_first_or_last_after_sorting(gflow: Gflow) -> None:
    """-n N: the first N; -n -N: the last N; -n 0: all; counted after -r has sorted."""
    jobs = [gflow.submit("--hold", "-p", str(p), "true") for p in (5, 40, 20, 30)]
    assert ids(gflow, "-n", "2") == jobs[:2]
    assert ids(gflow, "-n", "-2") == jobs[2:]
    assert ids(gflow, "-n", "0") == jobs
    assert ids(gflow, "-n", "10") == jobs
    assert ids(gflow, "-r", "priority", "-n", "2") == [jobs[1], jobs[3]]
    assert ids(gflow, "-r", "priority", "-n", "-1") == [jobs[0]]
    table = gflow.ok("gqueue", "--limit", "-1").splitlines()
    assert [line.split()[0] for line in table] == ["JOBID", str(jobs[3])]


# ---- --since --------------------------------------------------------------------------------


def test_since_accepts_every_documented_form(gflow: Gflow) -> None:
    """Relative, calendar, ISO and Unix-time forms; a cut after the jobs shows none."""
    jobs = [gflow.submit("--hold", "true") for _ in range(2)]
    now = datetime.now().astimezone()
    for when in ("30m", "2h", "1d", "1w", "today", "yesterday", "2000-01-01", "1900-01-01"):
        assert ids(gflow, "--since", when) == jobs, when
    past = now - timedelta(hours=1)
    assert ids(gflow, "--since", past.strftime("%Y-%m-%dT%H:%M")) == jobs
    assert ids(gflow, "--since", str(int(past.timestamp()))) == jobs
    future = now + timedelta(days=2)
    assert ids(gflow, "--since", future.strftime("%Y-%m-%d")) == []
    assert ids(gflow, "--since", future.strftime("%Y-%m-%dT%H:%M")) == []
    assert ids(gflow, "--since", str(int(future.timestamp()))) == []


def test_since_filters_in_the_daemon_and_checks_its_value(gflow: Gflow) -> None:
    """since= is a Unix time (fractions allowed) compared with submitted_at; bad ones are 400."""
    first = gflow.submit("--hold", "true")
    first_at = gflow.job(first)["submitted_at"]
    wait_for(lambda: time.time() > first_at, what="the clock to pass the first submission")
    second = gflow.submit("--hold", "true")
    second_at = gflow.job(second)["submitted_at"]
    assert second_at > first_at
    middle = (first_at + second_at) / 2
    status, body = http_get(gflow, f"/api/v1/jobs?since={middle:.6f}")
    assert status == 200 and [j["id"] for j in body["jobs"]] == [second]
    status, body = http_get(gflow, f"/api/v1/jobs?since={int(first_at)}")
    assert status == 200 and [j["id"] for j in body["jobs"]] == [first, second]
    for bad in ("soon", "-5", "1e9", "nan", "1.", "999999999999999"):
        status, body = http_get(gflow, f"/api/v1/jobs?since={bad}")
        assert status == 400, bad
        assert body["error"]["code"] == "invalid_input" and "since" in body["error"]["message"]
    with pytest.raises(InvalidInput):
        Client(gflow.paths).list_jobs(since="yesterday")


# ---- -r, -N ---------------------------------------------------------------------------------


def test_sort_keys_order_the_list(gflow: Gflow) -> None:
    """state (lifecycle order), time (started; not started last), name, priority (highest
    first), submitted, id; ties keep id order."""
    done = ended(gflow, "-J", "delta", "true", state="Finished")
    failed = ended(gflow, "-J", "bravo", "-p", "30", "false", state="Failed")
    running = gflow.submit("-J", "charlie", "sleep", "300")
    gflow.wait_state(running, "Running")
    held = gflow.submit("--hold", "-J", "alpha", "-p", "30", "true")
    every = [done, failed, running, held]
    assert ids(gflow, "-a", "-r", "state") == [held, running, done, failed]
    assert ids(gflow, "-a", "-r", "time") == [done, failed, running, held]
    assert ids(gflow, "-a", "-r", "name") == [held, failed, running, done]
    assert ids(gflow, "-a", "-r", "priority") == [failed, held, done, running]
    assert ids(gflow, "-a", "-r", "submitted") == every
    assert ids(gflow, "-a", "-r", "ID") == every
    assert ids(gflow, "-a", "-r", "gpus") == every


def test_sort_by_gpus(make_gflow: Any) -> None:
    """-r gpus: fewest requested GPUs first."""
    gflow: Gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    two, none, one = (gflow.submit("--hold", "--gpus", n, "true") for n in ("2", "0", "1"))
    assert ids(gflow, "-r", "gpus") == [none, one, two]


def test_names_match_exactly(gflow: Gflow) -> None:
    """-N a,b: jobs named exactly a or b; blanks around names are ignored."""
    train = gflow.submit("--hold", "-J", "train", "true")
    gflow.submit("--hold", "-J", "train2", "true")
    evaluate = gflow.submit("--hold", "-J", "eval", "true")
    assert ids(gflow, "-N", "train") == [train]
    assert ids(gflow, "-N", " eval , train ") == [train, evaluate]
    assert ids(gflow, "--names", "trai") == []
    status, body = http_get(gflow, "/api/v1/jobs?names=%20eval%20,,")
    assert status == 200 and [j["id"] for j in body["jobs"]] == [evaluate]


# ---- fields and outputs -----------------------------------------------------------------------


def _local(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def test_submitted_started_ended_fields_are_local_times(gflow: Gflow) -> None:
    done = ended(gflow, "true", state="Finished")
    held = gflow.submit("--hold", "true")
    out = gflow.ok("gqueue", "-a", "-o", "csv", "-f", "JOBID,SUBMITTED,STARTED,ENDED,TIMELIMIT")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["JOBID", "SUBMITTED", "STARTED", "ENDED", "TIMELIMIT"]
    job = gflow.job(done)
    assert rows[1] == [
        str(done),
        _local(job["submitted_at"]),
        _local(job["started_at"]),
        _local(job["finished_at"]),
        "UNLIMITED",
    ]
    assert rows[2] == [str(held), _local(gflow.job(held)["submitted_at"]), "-", "-", "UNLIMITED"]


def test_csv_output(gflow: Gflow) -> None:
    """-o csv: a header of the fields (the default ones without -f), then one row per job,
    quoted so that any name survives."""
    assert gflow.ok("gqueue", "-o", "csv").splitlines() == [gqueue.DEFAULT_FORMAT]
    odd = gflow.submit("--hold", "-J", 'a,"b" c', "true")
    plain = gflow.submit("--hold", "-J", "plain", "-t", "1:00:00", "true")
    rows = list(csv.reader(io.StringIO(gflow.ok("gqueue", "-o", "csv"))))
    assert rows == [
        gqueue.DEFAULT_FORMAT.split(","),
        [str(odd), 'a,"b" c', "H", "-", "0", "(Held)"],
        [str(plain), "plain", "H", "-", "0", "(Held)"],
    ]
    rows = list(csv.reader(io.StringIO(gflow.ok("gqueue", "-o", "csv", "-f", "name,timelimit"))))
    assert rows == [["NAME", "TIMELIMIT"], ['a,"b" c', "UNLIMITED"], ["plain", "01:00:00"]]


def test_json_output_is_the_same_as_json_flag(gflow: Gflow) -> None:
    job = gflow.submit("--hold", "-J", "j", "true")
    assert json.loads(gflow.ok("gqueue", "-o", "json"))["jobs"][0]["id"] == job
    assert gflow.ok("gqueue", "-o", "json") == gflow.ok("gqueue", "--json", "-o", "json")
    assert json.loads(gflow.ok("gqueue", "-o", "json", "-N", "nothing")) == {"jobs": []}


# ---- -t -------------------------------------------------------------------------------------


def test_tree_branches_and_roots(gflow: Gflow) -> None:
    """Siblings get ├─ and a last ╰─, with │ carrying the line past a subtree; a job whose
    parent is not listed is a root; -f draws the tree in the first column of a table."""
    r1 = gflow.submit("--hold", "-J", "r1", "true")
    c1 = gflow.submit("--hold", "-J", "c1", "-d", str(r1), "true")
    c2 = gflow.submit("--hold", "-J", "c2", "-d", str(r1), "true")
    g1 = gflow.submit("--hold", "-J", "g1", "-d", str(c1), "true")
    r2 = gflow.submit("--hold", "-J", "r2", "true")
    assert gflow.ok("gqueue", "-t").splitlines() == [
        f"{r1} r1 [H]",
        f"├─ {c1} c1 [H]",
        f"│  ╰─ {g1} g1 [H]",
        f"╰─ {c2} c2 [H]",
        f"{r2} r2 [H]",
    ]
    assert gflow.ok("gqueue", "--tree", "-j", f"{c1},{g1},{r2}").splitlines() == [
        f"{c1} c1 [H]",
        f"╰─ {g1} g1 [H]",
        f"{r2} r2 [H]",
    ]
    table = gflow.ok("gqueue", "-t", "-f", "JOBID,ST").splitlines()
    assert table[0].split() == ["JOBID", "ST"]
    assert [line.rsplit(None, 1) for line in table[1:]] == [
        [str(r1), "H"],
        [f"├─ {c1}", "H"],
        [f"│  ╰─ {g1}", "H"],
        [f"╰─ {c2}", "H"],
        [str(r2), "H"],
    ]
    assert gflow.ok("gqueue", "-t", "-N", "none") == "No jobs found.\n"


def test_tree_references_a_job_with_several_parents(gflow: Gflow) -> None:
    a = gflow.submit("--hold", "-J", "a", "true")
    b = gflow.submit("--hold", "-J", "b", "true")
    both = gflow.submit("--hold", "-J", "both", "--depends-on-all", f"{a},{b}", "true")
    assert gflow.ok("gqueue", "-t").splitlines() == [
        f"{a} a [H]",
        f"╰─ {both} both [H]",
        f"{b} b [H]",
        f"╰─ {both} (see above)",
    ]


def _rows(parents: dict[int, list[int]]) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"j{i}", "state_short": "H", "depends_on": p} for i, p in parents.items()
    ]


def test_tree_survives_cycles_and_deep_chains() -> None:
    """The daemon refuses cycles, but a drawing must not loop on one; nor overflow on a chain
    of thousands of jobs (`gbatch --depends-on @` in a loop)."""
    assert gqueue.tree(_rows({1: [3], 2: [1], 3: [2]})).splitlines() == [
        "1 j1 [H]",
        "╰─ 2 j2 [H]",
        "   ╰─ 3 j3 [H]",
        "      ╰─ 1 (see above)",
    ]
    assert gqueue.tree(_rows({1: [1, 1]})) == "1 j1 [H]\n"
    depth = 5000
    lines = gqueue.tree(_rows({i: [i - 1] if i > 1 else [] for i in range(1, depth + 1)}))
    last = lines.splitlines()[-1]
    assert last == "   " * (depth - 2) + f"╰─ {depth} j{depth} [H]"


# ---- -w -------------------------------------------------------------------------------------


def test_watch_redraws_what_changed(gflow: Gflow, capsys: pytest.CaptureFixture[str]) -> None:
    """Each screen is cleared, then drawn with a "Last updated" line; it waits --interval
    between screens; a job submitted meanwhile is on the next one."""
    first = gflow.submit("--hold", "-J", "first", "true")
    waits: list[float] = []

    def between(seconds: float) -> None:
        waits.append(seconds)
        gflow.submit("--hold", "-J", "second", "true")

    args = gqueue.build_parser().parse_args(["-w", "--interval", "0.5", "-f", "JOBID,NAME"])
    assert gqueue.watch(Client(gflow.paths), args, iterations=2, sleep=between) == 0
    assert waits == [0.5]
    screens = capsys.readouterr().out.split("\033[H\033[2J")
    assert screens[0] == "" and len(screens) == 3
    for screen in screens[1:]:
        *_, stamp = screen.rstrip("\n").splitlines()
        assert stamp.startswith("Last updated: ")
        assert stamp.endswith(" (every 0.5s, Ctrl-C to stop)")
        time.strptime(stamp.split()[2], "%H:%M:%S")
    tables = [[line.split() for line in screen.splitlines()] for screen in screens[1:]]
    assert [str(first), "first"] in tables[0] and ["JOBID", "NAME"] in tables[0]
    assert "second" not in screens[1] and "second" in screens[2]


def test_watch_default_interval_and_a_daemon_restart(
    gflow: Gflow, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every 2 s by default; if gflowd stops while watching, the screen says so and the watch
    goes on; if it is not running at all, -w fails at once like gqueue does."""
    waits: list[float] = []

    def stop_daemon(seconds: float) -> None:
        waits.append(seconds)
        gflow.ok("gflowd", "stop")

    args = gqueue.build_parser().parse_args(["-w"])
    assert gqueue.watch(Client(gflow.paths), args, iterations=2, sleep=stop_daemon) == 0
    assert waits == [2.0]
    screens = capsys.readouterr().out.split("\033[H\033[2J")
    assert "No jobs found." in screens[1] and "(every 2s, Ctrl-C to stop)" in screens[1]
    assert "gqueue: gflowd is not running" in screens[2]
    done = gflow.run("gqueue", "-w")
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "not running" in done.stderr


def test_watch_stops_quietly_on_ctrl_c(gflow: Gflow) -> None:
    """The real command: it redraws until SIGINT, then exits 0 without a traceback."""
    gflow.submit("--hold", "-J", "watched", "true")
    screen = gflow.workdir / "screen"
    with screen.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "gqueue"), "-w", "--interval", "0.05"],
            env=gflow.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            # A shell may start background jobs with SIGINT ignored; a terminal's would not be.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            wait_for(lambda: screen.read_text().count("Last updated: ") >= 2, what="two screens")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0 and err == ""
    assert "watched" in screen.read_text()


# ---- usage errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("-c", "-a"), "-a/--all"),
        (("-c", "-s", "r"), "-s/--states"),
        (("-n", "x"), "whole number"),
        (("-n", "1.5"), "whole number"),
        (("--since", "soon"), "today, yesterday"),
        (("--since", "3"), "Nh, Nd, Nw"),
        (("--since", "2026-13-40"), "YYYY-MM-DD"),
        (("-r", "size"), "id, state, time, name, gpus, priority, submitted"),
        (("-f", "JOBID,WHEN"), "SUBMITTED, STARTED, ENDED"),
        (("-N", " , "), "comma list"),
        (("-o", "yaml"), "table"),
        (("--json", "-o", "csv"), "--json"),
        (("--interval", "1"), "-w/--watch"),
        (("-w", "--interval", "0"), "more than 0"),
        (("-w", "--interval", "nan"), "more than 0"),
        (("-w", "--interval", "9999"), "at most 3600"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_bad_values_are_one_line_usage_errors(gflow: Gflow, argv: tuple[str], named: str) -> None:
    """Exit 2, nothing on stdout, one stderr line naming what is accepted, no traceback."""
    done = gflow.run("gqueue", *argv)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert named in done.stderr and "Traceback" not in done.stderr
