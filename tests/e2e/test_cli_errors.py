"""What a tired user types: bad values, wrong states, no daemon. One line, right exit code."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import BIN, Gflow

BAD_INPUT = [
    ("gbatch", "--time", "abc", "true"),
    ("gbatch", "--time", "1:90:00", "true"),
    ("gbatch", "--time", "-5", "true"),  # 0 is Slurm's "no limit"
    ("gbatch", "--cpus-per-task", "99999", "true"),
    ("gbatch", "--nodes", "2", "true"),
    ("gbatch", "--signal", "NOPE@5", "true"),
    ("gbatch", "--output", "no/such/dir/%j.out", "true"),
    ("gbatch", "--priority", "256", "true"),
    ("gbatch", "--priority", "high", "true"),
    ("gbatch", "--gpus", "-1", "true"),
    ("gbatch", "--gpus", "two", "true"),
    ("gbatch", "--gres", "gpu", "true"),
    ("gbatch", "--depends-on", "abc", "true"),
    ("gbatch", "--depends-on", "@~0", "true"),
    ("gbatch", "--depends-on", "999", "true"),
    ("gbatch", "--gpus", "3", "true"),
    ("gbatch", "--command", "echo hi", "echo", "again"),
    ("gbatch", "--bogus-flag", "true"),
    ("gbatch",),
    ("gqueue", "-s", "runing"),
    ("gqueue", "-f", "JOBID,NMAE"),
    ("gqueue", "-j", "1-x"),
    ("gqueue", "-u", "no_such_user_hopefully"),
    ("gcancel", "abc"),
    ("gcancel", "0"),
    ("gcancel",),
    ("gjob", "show", "x"),
    ("gjob", "log", "1", "--last", "0"),
    ("gjob", "log", "1", "--first", "2", "--last", "2"),
    ("gjob", "frobnicate", "1"),
    ("gjob", "hold", "1-"),
    ("gflowd", "explode"),
    ("grun",),
    ("grun", "--time", "soon", "true"),
    ("grun", "--gpus", "1", "true"),
    ("taskflow", "run", "-p", "high", "true"),
    ("taskflow", "run", "--gpu", "zero:10G", "true"),
    ("taskflow", "ps", "-o", "yaml"),
    ("gctl", "set-gpus", "0-x"),
    ("gctl", "set-limit", "1", "0"),
]


@pytest.mark.parametrize("argv", BAD_INPUT, ids=" ".join)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(gflow: Gflow, argv: tuple[str]) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback, no job created."""
    done = gflow.run(*argv)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert re.match(rf"{argv[0]}( [a-z-]+)?: ", lines[0]), lines[0]
    assert gflow.ok("gqueue", "-a") == "No jobs found.\n"


def test_accepted_forms_are_named_in_the_message(gflow: Gflow) -> None:
    """The error says which value is wrong and what would be right."""
    err = gflow.run("gbatch", "--time", "abc", "true").stderr
    assert "'abc'" in err and "HH:MM:SS" in err
    err = gflow.run("gqueue", "-s", "runing").stderr
    assert "'runing'" in err and "Running" in err
    err = gflow.run("gqueue", "-f", "NMAE").stderr
    assert "NMAE" in err and "JOBID" in err


def test_wrong_state_actions_are_refused_naming_the_state(gflow: Gflow) -> None:
    """Cancel a Finished job, hold a Running one, release a Queued one: exit 1, no change."""
    finished = gflow.submit("true")
    gflow.wait_state(finished, "Finished")
    gate = gflow.workdir / "gate"
    running = gflow.submit("bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    gflow.wait_state(running, "Running")
    queued = gflow.submit("--depends-on", str(running), "true")
    cases = [
        (("gcancel", str(finished)), "Finished"),
        (("gjob", "hold", str(running)), "Running"),
        (("gjob", "release", str(queued)), "Queued"),
        (("gcancel", "4242"), "does not exist"),
        (("gjob", "show", "4242"), "does not exist"),
    ]
    for argv, words in cases:
        done = gflow.run(*argv)
        assert done.returncode == 1, (argv, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr, done.stderr
    assert gflow.job(finished)["state"] == "Finished"
    assert gflow.job(running)["state"] == "Running"
    assert gflow.job(queued)["state"] == "Queued"
    gate.touch()


CLIENT_COMMANDS = [
    ("gqueue",),
    ("gbatch", "true"),
    ("gcancel", "1"),
    ("gjob", "show", "1"),
    ("ginfo",),
    ("gstats",),
    ("gctl", "show-gpus"),
    ("grun", "true"),
    ("taskflow", "ps"),
]


@pytest.mark.parametrize("argv", CLIENT_COMMANDS, ids=" ".join)
def test_every_command_says_when_the_daemon_is_not_running(
    make_gflow: type[Gflow], argv: tuple[str]
) -> None:
    """One line naming the command that starts it; exit 1."""
    gflow = make_gflow()
    done = gflow.run(*argv)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"{argv[0]}: gflowd is not running (no daemon at {gflow.paths.socket}); "
        "start it with: gflowd start"
    ]


def test_malformed_config_stops_gflowd_start_naming_file_line_and_key(
    make_gflow: type[Gflow],
) -> None:
    """A typo in gflow.toml: gflowd start refuses with the file, the line and the key."""
    gflow = make_gflow(config='[daemon]\nexecutor = "tmux"\nkill_grase = 3\n')
    done = gflow.run("gflowd", "start")
    assert done.returncode != 0
    assert f"{gflow.paths.config_file}:3" in done.stderr and "kill_grase" in done.stderr
    assert "Traceback" not in done.stderr


def test_gqueue_imports_no_daemon_side_library() -> None:
    """The CLI start path is stdlib-only: gqueue --help loads none of the heavy modules."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "gqueue"), "--help"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert "gflow" in imported  # the measurement itself works
    assert not imported & {"aiohttp", "pydantic", "psutil", "pynvml", "sqlite3"}


def test_version_and_help_for_every_command() -> None:
    """--version and --help work everywhere and exit 0."""
    commands = (
        "gflowd",
        "gbatch",
        "gqueue",
        "gcancel",
        "gjob",
        "gctl",
        "ginfo",
        "gstats",
        "grun",
        "taskflow",
    )
    for command in commands:
        for flag in ("--help", "--version"):
            done = subprocess.run([str(BIN / command), flag], capture_output=True, text=True)
            assert done.returncode == 0, (command, flag, done.stderr)
            assert done.stdout.strip()
