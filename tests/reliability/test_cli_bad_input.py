"""Every flag of every command, given malformed values: exit 2, one line, no traceback, no change.

The table is generated from the commands' own argparse parsers (each option that takes a
value, each typed positional, every subcommand), crossed with malformed values chosen by
the flag's kind (its parser function). A new flag is covered automatically; one whose kind
is not known here, or a free-text flag not listed below, fails `test_every_flag_is_covered`
until it is given values (or a reason why any text is fine).

Commands run as a user types them, against one daemon. After each: the job listing, the
GPU settings and the events table are as they were.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from gflow.client import Client
from tests.helpers import Gflow

COMMANDS = [
    "gbatch", "gqueue", "gcancel", "gjob", "gctl", "ginfo", "gstats", "gflowd", "grun",
    "taskflow",
]  # fmt: skip

# Malformed for every kind of value: empty, a newline (a message must stay one line), bytes
# that are not UTF-8 (a message must still print), 40 digits, a non-ASCII digit, and
# `--flag=--` (Python 3.11's argparse hands the flag an empty list).
GENERIC = ["", "1\n2", "\udcff", "9" * 40, "\u0661", "--"]

# Malformed values by the flag's parser function (its __name__).
BY_KIND: dict[str, list[str]] = {
    "parse_time_limit": ["abc", "0", "-1", "1:90:00", "1:2:3:4", "10y", "1.5.5h", "36601d", "h",
                         "nan", "infh", "1e3"],
    "_priority": ["-1", "256", "1.5", "high", "0x10"],
    "taskflow_priority": ["-1", "2551", "high", "1.5"],
    "_gpu_count": ["-1", "1025", "two", "1.5", "3"],  # 3: more than the machine has
    "parse_gres": ["gpu", "gpu:", "gpu:x", "gpu:-1", "tpu:1", "gpu:99999", "gpu:3"],
    "parse_size_mb": ["0", "-1", "10X", "1.5.5G", "1025T", "G", "nan", "infG", "1e3G"],
    "parse_gpu_slot": ["0", "x:10G", "0:", ":10G", "-1:10G", "1024:1G", "0:0", "any:abc",
                       "0:10G"],  # 0:10G: no GPU 0 here
    "parse_slurm_dependency": ["abc", "@~01", "afterok:", "afterfoo:1", "0", "-1", "4242",
                               "afterok:1:x", "@~", "afterok:@~01", "7-3"],
    "parse_dependency_list": ["abc", "1,,2", "0", "@~01", "4242", ",", "1-4242"],
    "_begin": ["abc", "25:00", "now+", "2026-13-01", "now+999999999d", "yesterday", "+-1"],
    "_at": ["abc", "25:00", "now+", "2026-13-01", "now+999999999d"],
    "_concurrency": ["0", "-1", "1000001", "1.5"],
    "parse_array": ["0-", "5-1", "1-10:0", "1-10%0", "a", "1-1000000", "1,,2", "%4", "-1"],
    "parse_param": ["lr", "=1", "lr=", "lr=1:2:0", "1x=2", "lr=nan:1", "lr=0:1:nan", "lr=0:inf",
                    "lr=,", "lr=1:100000000"],
    "parse_states": ["runing", ",", "R,x", "all"],
    "parse_id_list": ["0", "-1", "1-", "3-1", "1-200000", "a", "1,,2", "1.5"],
    "_since": ["abc", "-1h", "2026-13-01", "1x", "99999999999999"],
    "_sort_key": ["bogus", "id,name"],
    "parse_fields": ["NMAE", "JOBID,NOPE", ","],
    "_interval": ["0", "-1", "3601", "nan", "inf", "abc"],
    "_job_id": ["0", "1,2", "1-3", "abc", "-1"],
    "parse_job_refs": ["0", "-1", "1-", "3-1", "1-200000", "a", "1,,2", "@x", "@~", "@~01"],
    "parse_job_ref": ["0", "1,2", "1-3", "abc", "-1", "@x", "@~", "@~01"],
    "_count": ["0", "-1", "1000000001", "1.5"],
    "_pid": ["0", "-1", "abc", "1.5", "4194304"],
    "_gpu_list": ["0-x", "2-1", "-1", "1024", "a", "0,,1", "0"],  # 0: no GPU 0 here
    "int_value": ["1.5", "abc", "9999999999"],
    "parse_time_or_none": ["abc", "-1", "1:90:00", "1:2:3:4", "10y", "1.5.5h", "36601d", "h", "nan",
                    "infh", "1e3", "unlimitedd"],
    "parse_gpus": ["-1", "1025", "two", "1.5", "3", "a b:1", "x:", "a100:3"],
    "parse_dependency_flag": ["abc", "@~01", "afterok:", "afterfoo:1", "0", "-1", "4242",
                              "afterok:1:x", "@~", "afterok:@~01", "singleton,abc"],
    "parse_nodes": ["2", "0", "abc", "2-4", "-1"],
    "parse_signal_flag": ["NOPE", "USR1@", "@5", "B:", "0", "65", "USR1@abc", "X:USR1"],
    "_start": ["abc", "25:00", "now+", "2026-13-01", "now+999999999d", "yesterday", "+-1"],
    "_gpu_ids": ["0-x", "2-1", "-1", "1024", "a", "0,,1", "9"],  # 9: no GPU 9 here
    "notify_on": ["sometimes", ",", "END", "ended,often"],
    "mail_type": ["NEVER", ",", "END,NOPE", "BEGIN,SOMETIMES"],
}  # fmt: skip

# Flags parsed by a lambda: by command and destination.
BY_DEST: dict[tuple[str, str], list[str]] = {
    ("gbatch", "max_retries"): ["-1", "101", "1.5", "abc"],
    ("grun", "max_retries"): ["-1", "101", "1.5", "abc"],
    ("gjob update", "max_retries"): ["-1", "101", "1.5", "abc"],
    ("gjob redo", "max_retries"): ["-1", "101", "1.5", "abc"],
    ("gqueue", "limit"): ["1.5", "abc", "9999999999", "--"],
    ("gctl set-limit", "job"): ["0", "-1", "abc", "99999999999999999"],
    ("gctl set-limit", "limit"): ["0", "-1", "1000001", "abc"],
    ("taskflow run", "delay"): ["-1", "86401", "abc", "1.5"],
    ("gctl reserve create", "gpus"): ["0", "-1", "1025", "abc", "1.5", "1"],  # 1: none here
    **{(f"gctl reserve {a}", "id"): ["0", "-1", "abc", "99999999999999999"]
       for a in ("show", "cancel")},
    **{(cmd, "gpus"): ["-1", "1025", "two", "1.5", "3", "gpu:x"] for cmd in ("gbatch", "grun")},
    **{(cmd, "memory"): ["-1", "10X", "1025T", "G", "nan"] for cmd in ("gbatch", "grun")},
    **{(cmd, dest): ["0", "-1", "4097", "abc", "1.5", "99"]  # 99: more than the machine
       for cmd in ("gbatch", "grun")
       for dest in ("cpus_per_task", "ntasks", "ntasks_per_gpu", "mincpus", "cpus_per_gpu")},
}  # fmt: skip

# Free text: the edges each one refuses (the daemon refuses most of them: still exit 2).
FREE_EDGES: dict[tuple[str, str], list[str]] = {
    **{(cmd, "name"): ["x" * 201, "a\nb", "\x1b[31mred"] for cmd in ("gbatch", "grun")},
    **{(cmd, "project"): ["a,b", "x" * 65, "a\nb"] for cmd in ("gbatch", "grun")},
    **{(cmd, "conda_env"): ["a b", "x" * 201, "../x", "a\nb"]
       for cmd in ("gbatch", "grun", "gjob update", "gjob redo")},
    **{(cmd, "shell_string"): ["", "   "] for cmd in ("gbatch", "grun")},
    ("gbatch", "param_file"): ["/nonexistent.csv", "", "/"],
    ("gbatch", "export_slurm"): ["/nonexistent-dir/job.sh", "", "/", "a\nb", "\x1b[31m.sh"],
    ("gbatch", "name_template"): ["run_{lr}"],  # without --param
    ("gqueue", "user"): ["no_such_user_hopefully", "\udcff", "a\nb"],
    ("gcancel", "user"): ["no_such_user_hopefully", "a\nb"],
    ("gstats", "user"): ["no_such_user_hopefully", "a\nb"],
    ("gctl reserve create", "user"): ["no_such_user_hopefully", "a\nb"],
    ("gctl quota", "user"): ["no_such_user_hopefully", "a\nb"],
    **{(cmd, flag): ["no/such/dir/%j.out", "a\nb"]
       for cmd in ("gbatch", "grun") for flag in ("output", "error")},
    **{(cmd, "chdir"): ["/nonexistent-dir", ""] for cmd in ("gbatch", "grun")},
    **{(cmd, "notify_email"): ["not-an-address", "a\nb@c", "a b@c", "x" * 300 + "@c"]
       for cmd in ("gbatch", "grun")},
}  # fmt: skip

# Free text where any string is a valid answer.
FREE_ANY = {
    ("gqueue", "project"): "a filter: a project no job has lists no jobs",
    ("gqueue", "names"): "a filter of exact names (only an empty list is refused: NAMES_EDGES)",
    ("gcancel", "name"): "a filter: a name no job has cancels nothing (exit 1, one line)",
    ("gflowd slurm-aliases", "dir"): "any folder is a place to install the front doors into",
    ("gstats", "project"): "a filter: a project no job has counts no jobs",
}

NAMES_EDGES = [",", " , ", "--"]

# The command's own words: everything after the flags is the job's.
REMAINDER = {"command"}
CHOICE_BAD = ["bogus", "", "JSON"]


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(prog path, parser) for every command and subcommand."""
    for command in COMMANDS:
        yield from _walk(command, importlib.import_module(f"gflow.cli.{command}").build_parser())


def _walk(prog: str, parser: argparse.ArgumentParser) -> Iterator[tuple[str, Any]]:
    yield prog, parser
    for action in parser._actions:  # argparse has no public API for this
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases share a parser
                    seen.add(id(sub))
                    yield from _walk(f"{prog} {name}", sub)


def values_for(prog: str, action: argparse.Action) -> list[str] | None:
    """The malformed values for this flag, or None when this file does not know it."""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return CHOICE_BAD
    if (prog, action.dest) in BY_DEST:
        return BY_DEST[(prog, action.dest)] + GENERIC
    if (prog, action.dest) in FREE_EDGES:
        return FREE_EDGES[(prog, action.dest)]
    if (prog, action.dest) in FREE_ANY:
        return NAMES_EDGES if action.dest == "names" else []
    name = getattr(action.type, "__name__", None)
    if name in BY_KIND:
        return BY_KIND[name] + GENERIC
    return None


def takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0 and not isinstance(
        action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction
    )


# Valid positionals for each command path (after the flag under test); "1" is a held job.
POSITIONALS: dict[str, list[str]] = {
    "gbatch": ["true"],
    "grun": ["true"],
    "taskflow run": ["true"],
    "gjob show": ["1"],
    "gjob s": ["1"],
    "gjob log": ["1"],
    "gjob attach": ["1"],
    "gjob hold": ["1"],
    "gjob release": ["1"],
    "gjob update": ["1"],
    "gjob redo": ["1"],
    "gctl set-gpus": ["all"],
    "gctl set-limit": ["1", "2"],
    "gctl quota": ["show"],
    "taskflow show": ["1"],
}


def cases() -> list[tuple[str, str, list[list[str]]]]:
    """(prog path, flag, argv lists) for every option and typed positional."""
    table = []
    for prog, parser in parsers():
        words = prog.split()
        positional = [a for a in parser._actions if not a.option_strings and takes_value(a)]
        positional = [a for a in positional if a.dest not in REMAINDER]
        for action in parser._actions:
            if not takes_value(action) or action.dest in REMAINDER:
                continue
            values = values_for(prog, action) or []
            if action.option_strings:
                flag = max(action.option_strings, key=len)
                good = POSITIONALS.get(prog, [])
                argvs = [[*words, f"{flag}={value}", *good] for value in values]
                if action.dest == "name_template":  # refused as used without --param
                    argvs = [[*words, f"{flag}={value}", "echo"] for value in values]
            else:  # a positional: the others valid
                flag = action.dest.upper()
                index = positional.index(action)
                good = POSITIONALS.get(prog, [])
                argvs = [
                    [*words, "--", *good[:index], value, *good[index + 1 :]]
                    if value.startswith("-")
                    else [*words, *good[:index], value, *good[index + 1 :]]
                    for value in values
                ]
            table.append((prog, flag, argvs))
        # Flags that take no value, given one: --json=yes.
        for action in parser._actions:
            if action.option_strings and action.nargs == 0 and action.dest != "help":
                long = max(action.option_strings, key=len)
                if long.startswith("--") and not isinstance(action, argparse._VersionAction):
                    table.append(
                        (prog, long, [[*words, f"{long}=yes", *POSITIONALS.get(prog, [])]])
                    )
    return table


CASES = cases()


def test_every_flag_is_covered() -> None:
    """Every option that takes a value has malformed values here, or a reason it has none."""
    missing = []
    for prog, parser in parsers():
        for action in parser._actions:
            if not takes_value(action) or action.dest in REMAINDER:
                continue
            if values_for(prog, action) is None and (prog, action.dest) not in FREE_ANY:
                missing.append(f"{prog} {action.option_strings or action.dest}")
    assert not missing, f"flags with no malformed values in this table: {missing}"


@pytest.fixture(scope="module")
def gflow() -> Iterator[Gflow]:
    installation = Gflow()
    try:
        installation.start()
        held = installation.submit("--hold", "--max-concurrent", "2", "true")
        assert held == 1
        yield installation
    finally:
        installation.cleanup()


def state_of(gflow: Gflow) -> tuple[Any, ...]:
    """Everything a bad command must leave alone: jobs, GPU settings, the event history."""
    client = Client(gflow.paths)
    jobs = client.request("GET", "/jobs", query={"all": "1", "user": "all"})["jobs"]
    with sqlite3.connect(f"file:{gflow.paths.state_dir / 'gflow.db'}?mode=ro", uri=True) as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        settings = db.execute("SELECT * FROM settings ORDER BY key").fetchall()
    return jobs, client.gpus(), events, settings


STATS = {"runs": 0}


@pytest.mark.parametrize(("prog", "flag", "argvs"), CASES, ids=[f"{p} {f}" for p, f, _ in CASES])
def test_malformed_value_is_one_line_exit_2_and_changes_nothing(
    gflow: Gflow, prog: str, flag: str, argvs: list[list[str]]
) -> None:
    before = state_of(gflow)
    wrong = []
    for argv in argvs:
        done = gflow.run(*argv, timeout=30)
        STATS["runs"] += 1
        lines = done.stderr.strip().splitlines()
        if (
            done.returncode != 2
            or len(lines) != 1
            or "Traceback" in done.stderr
            or not re.match(rf"{argv[0]}( [a-z-]+)*: ", lines[0])
        ):
            wrong.append(f"{argv!r}: exit {done.returncode}, stderr {done.stderr[-600:]!r}")
        if state_of(gflow) != before:
            wrong.append(f"{argv!r} changed the jobs or the database")
            before = state_of(gflow)
    assert not wrong, "\n".join(wrong)


def test_table_size() -> None:
    commands = {prog.split()[0] for prog, _, _ in CASES}
    values = sum(len(argvs) for _, _, argvs in CASES)
    print(
        f"\nCLI bad-input table: {len(commands)} commands, {len(CASES)} (command, flag) pairs, "
        f"{values} malformed invocations"
    )
    assert commands == set(COMMANDS)


@pytest.mark.parametrize(
    "argv",
    [
        ("gqueue", "-N", "\udcff"),
        ("gqueue", "-N", "a\nb"),
        ("gqueue", "-P", "\udcff"),
        ("gqueue", "-P", "a\nb"),
        ("gcancel", "-n", "\udcff"),
    ],
    ids=repr,
)
def test_odd_text_in_a_filter_matches_nothing_quietly(gflow: Gflow, argv: tuple[str]) -> None:
    """Filters take any text: odd text (not UTF-8, a newline) matches no job, no traceback
    (gcancel says, in one line, that nothing matched: exit 1)."""
    before = state_of(gflow)
    done = gflow.run(*argv)
    assert "Traceback" not in done.stderr
    if argv[0] == "gcancel":
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "no active job matches" in done.stderr
    else:
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert state_of(gflow) == before


def test_after_the_table_good_input_still_works(gflow: Gflow) -> None:
    """The same commands with good values do what they say (last: it changes the job)."""
    assert gflow.run("gctl", "set-limit", "1", "3").returncode == 0
    assert gflow.job(1)["max_concurrent"] == 3
    assert gflow.run("gjob", "update", "1", "--priority", "20").returncode == 0
    assert gflow.job(1)["priority"] == 20
    assert gflow.ok("gqueue", "-s", "H", "-f", "JOBID", "-n", "-1").split() == ["JOBID", "1"]
