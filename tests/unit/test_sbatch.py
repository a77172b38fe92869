"""core/sbatch.py and core/batch.py: sbatch's reading of options, and what a job sees."""

from __future__ import annotations

import pytest

from gflow.core.batch import BatchOptions, RunningAs, expand_filename, slurm_environment
from gflow.core.errors import InvalidInput
from gflow.core.sbatch import (
    ArrayInfo,
    Option,
    Warning_,
    array_info,
    getopt_long,
    parse_signal,
    slurm_begin,
    split_directive,
    to_gbatch,
)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (" --gres=gpu:2   # GPUs per node", ["--gres=gpu:2"]),
        (" -J 'my job' --x=\"a b\"", ["-J", "my job", "--x=a b"]),
        (r" --comment=a\ b\#c", ["--comment=a b#c"]),
        (" --comment='a # b' # c", ["--comment=a # b"]),
        (r" -J 'it\'s'", ["-J", "it's"]),
        ("#no space", []),
        ("", []),
    ],
)
def test_split_directive_reads_as_sbatch(line: str, words: list[str]) -> None:
    """Quotes group and go, backslash escapes, an unescaped '#' ends the line."""
    assert split_directive(line) == words


def test_split_directive_refuses_an_unmatched_quote() -> None:
    with pytest.raises(InvalidInput, match="unmatched"):
        split_directive(" -J 'oops")


def test_getopt_long_forms() -> None:
    """Attached and separate short values, bundled flags, --opt value, prefixes, '--'."""
    options, rest = getopt_long(["-Jname", "-t", "30", "-HQ", "--out", "o.txt", "--exclusive",
                                 "--tasks=4", "--", "x"])  # fmt: skip
    assert options == [
        Option("job-name", "name"), Option("time", "30"), Option("hold", None),
        Option("quiet", None), Option("output", "o.txt"), Option("exclusive", None),
        Option("tasks-per-node", "4"),
    ]  # fmt: skip
    assert rest == ["x"]
    assert getopt_long(["-c4", "script.sh", "-x"]) == ([Option("cpus-per-task", "4")],
                                                       ["script.sh", "-x"])  # fmt: skip


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--hold=yes"], "takes no value"),
        (["--time"], "needs a value"),
        (["-Z"], "invalid option -Z"),
        (["--mem-per"], "ambiguous"),
    ],
)
def test_getopt_long_errors(words: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        getopt_long(words)


def test_translation_keeps_what_we_honour_and_notes_the_rest_once() -> None:
    """Honoured options become gbatch's; each other one gets one note saying what happens."""
    options = [Option("partition", "gpu"), Option("partition", "big"), Option("cpus-per-task", "4"),
               Option("mail-type", "END"), Option("begin", "now+90")]  # fmt: skip
    done = to_gbatch(options)
    assert done.args == ["--cpus-per-task=4", "--mail-type=END", "--begin=now+90s"]
    assert done.notes == ["--partition: one machine, no partitions; ignored"]
    assert not any("not used" in note for note in done.notes)


@pytest.mark.parametrize(
    ("slurm", "ours"),
    [("now+60", "now+60s"), ("now+10minutes", "now+10m"), ("now+1hour", "now+1h"),
     ("now+2weeks", "now+14d"), ("noon", "12:00"), ("2026-12-01T08:00", "2026-12-01T08:00")],
)  # fmt: skip
def test_slurm_begin_units(slurm: str, ours: str) -> None:
    """A bare now+N is seconds in Slurm (minutes in gflow's own --begin)."""
    assert slurm_begin(slurm) == ours


@pytest.mark.parametrize(
    ("text", "warning"),
    [("USR1@90", Warning_(10, 90, False)), ("B:SIGTERM@300", Warning_(15, 300, True)),
     ("10", Warning_(10, 60, False)), ("R:USR2", Warning_(12, 60, False))],
)  # fmt: skip
def test_parse_signal(text: str, warning: Warning_) -> None:
    assert parse_signal(text) == warning


def test_parse_signal_refuses_nonsense() -> None:
    with pytest.raises(InvalidInput, match="invalid"):
        parse_signal("NOPE@1")


def test_array_info() -> None:
    assert array_info([1, 3, 5, 7]) == ArrayInfo(1, 7, 4, 2)
    assert array_info([1, 2, 7]) == ArrayInfo(1, 7, 3, 1)


JOB = RunningAs(job_id=42, name="train", user="ann", uid=1000, host="box", array_job_id=40,
                array_task_id=2, cpus=2, cpus_on_node=2, gpu_ids=(0, 1), memory_mb=2048,
                started_at=1000.0, time_limit=60, attempt=1)  # fmt: skip


def test_expand_filename_patterns() -> None:
    """%j %x %A %a %u %N %% and zero padding, as Slurm expands them."""
    assert expand_filename("%x-%j_%A_%a.%u.%N.%%.%3a", JOB) == "train-42_40_2.ann.box.%.002"
    plain = RunningAs(**{**JOB.__dict__, "array_job_id": None, "array_task_id": None})
    assert expand_filename("slurm-%A_%a.out", plain) == "slurm-42_4294967294.out"


def test_slurm_environment() -> None:
    batch = BatchOptions(ntasks=2, cpus_per_task=1, submit_dir="/w", array=ArrayInfo(0, 4, 5, 1))
    env = slurm_environment(JOB, batch)
    assert env["SLURM_ARRAY_JOB_ID"] == "40" and env["SLURM_ARRAY_TASK_ID"] == "2"
    assert env["SLURM_ARRAY_TASK_COUNT"] == "5" and env["SLURM_NTASKS"] == "2"
    assert env["SLURM_GPUS_ON_NODE"] == "2" and env["SLURM_JOB_GPUS"] == "0,1"
    assert env["SLURM_MEM_PER_NODE"] == "2048" and env["SLURM_JOB_END_TIME"] == "1060"
    assert env["SLURM_SUBMIT_DIR"] == "/w" and env["SLURM_CPUS_PER_TASK"] == "1"


def test_batch_options_round_trip() -> None:
    batch = BatchOptions(("a",), "o", "e", True, Warning_(10, 5, True), 3, 2, "/w",
                         ArrayInfo(1, 3, 3, 1))  # fmt: skip
    assert BatchOptions.from_dict(batch.to_dict()) == batch
