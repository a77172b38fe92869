"""core/slurm.py: a request as sbatch options, marks, and Slurm's rows as our states."""

from __future__ import annotations

import signal

import pytest

from gflow.core.dependencies import DependencyKind, DependencyMode
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.sbatch import Warning_
from gflow.core.slurm import (
    Phase,
    SbatchRequest,
    SlurmRow,
    SlurmSettings,
    WrapperEnd,
    compress_ids,
    ended_outcome,
    mark,
    parse_exit_code,
    parse_mark,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    phase_of,
    sbatch_options,
    slurm_minutes,
    wait_reason,
)
from gflow.core.spec import Resources
from gflow.core.states import JobState

NOW = 1_000_000.0


def _row(state: str, reason: str = "None", exit_code: str = "") -> SlurmRow:
    return SlurmRow("12", state, reason, "", "", "n1", "gflow:s:1", exit_code)


def test_whole_request_translates_to_sbatch_options() -> None:
    """GPUs (with a type) as GRES, CPUs, memory, minutes, begin, hold, array with throttle,
    dependencies by Slurm id, the mark, and the [slurm] settings."""
    req = SbatchRequest(
        name="train", resources=Resources(gpus=2, memory_mb=2048, cpus=4, gpu_model="a100"),
        workdir="/w", time_limit=3600, begin_at=NOW + 90.5, hold=True, array_tasks=(1, 2, 3, 7),
        throttle=2, dependencies=((DependencyKind.AFTER_OK, "5"),
                                  (DependencyKind.AFTER_ANY, "6_2")),
        comment=mark("abc", 9),
    )  # fmt: skip
    settings = SlurmSettings("gpu", "lab", "high", ("--constraint=x",))
    opts, notes = sbatch_options(req, settings, NOW)
    assert opts == [
        "--job-name=train", "--chdir=/w", "--gres=gpu:a100:2", "--cpus-per-task=4",
        "--mem=2048M", "--time=60", "--begin=now+91", "--hold", "--array=1-3,7%2",
        "--dependency=afterok:5,afterany:6_2", "--comment=gflow:abc:9", "--no-requeue",
        "--partition=gpu", "--account=lab", "--qos=high", "--constraint=x",
    ]  # fmt: skip
    assert notes == []


def test_output_files_tasks_and_signal() -> None:
    """--error only when apart from --output; --signal in sbatch's own B:SIG@TIME form."""
    req = SbatchRequest(name="n", resources=Resources(), workdir="/w", output="o.%j",
                        error="e.%j", append=True, ntasks=4,
                        signal=Warning_(signal.SIGUSR1, 90, True))  # fmt: skip
    opts, _ = sbatch_options(req, SlurmSettings(), NOW)
    for opt in ("--output=o.%j", "--error=e.%j", "--open-mode=append", "--ntasks=4",
                "--signal=B:10@90"):  # fmt: skip
        assert opt in opts
    same = SbatchRequest(name="n", resources=Resources(), workdir="/w", output="o", error="o",
                         signal=Warning_(signal.SIGTERM, 60, False))  # fmt: skip
    opts, _ = sbatch_options(same, SlurmSettings(), NOW)
    assert "--error=o" not in opts and "--signal=15@60" in opts


def test_any_mode_dependencies_and_whole_memory() -> None:
    req = SbatchRequest(
        "j", Resources(memory_mb=0, exclusive=True), "/w",
        dependencies=((DependencyKind.AFTER_OK, "1"), (DependencyKind.AFTER_NOT_OK, "2")),
        dependency_mode=DependencyMode.ANY,
    )  # fmt: skip
    opts, _ = sbatch_options(req, SlurmSettings(), NOW)
    assert "--mem=0" in opts and "--exclusive" in opts
    assert "--dependency=afterok:1?afternotok:2" in opts


@pytest.mark.parametrize(
    ("seconds", "minutes", "noted"),
    [(30, 1, True), (60, 1, False), (61, 2, True), (7200, 120, False)],
)
def test_time_limit_rounds_up_to_minutes_with_a_note(
    seconds: int, minutes: int, noted: bool
) -> None:
    got, note = slurm_minutes(seconds)
    assert got == minutes and bool(note) is noted


def test_shared_gpus_and_pins_are_noted_not_passed() -> None:
    req = SbatchRequest("j", Resources(gpus=1, shared=True, gpu_memory_mb=1000, gpu_pin=(1,)), "/w")
    opts, notes = sbatch_options(req, SlurmSettings(), NOW)
    assert "--gres=gpu:1" in opts and len(notes) == 2


def test_compress_ids() -> None:
    assert compress_ids([3, 1, 2, 7, 9, 10]) == "1-3,7,9-10"
    assert compress_ids([5]) == "5"


def test_mark_is_this_stores_only() -> None:
    """Another store's mark, or a comment of nobody's, is never taken for ours."""
    assert parse_mark(mark("s1", 42), "s1") == 42
    assert parse_mark(mark("s2", 42), "s1") is None
    assert parse_mark("gflow:s1:x", "s1") is None
    assert parse_mark("my own comment", "s1") is None


def test_squeue_scontrol_and_sacct_rows() -> None:
    rows = parse_squeue("7_2|RUNNING|None|2026-01-01T00:00:00|NONE|n1|gflow:s:7\n\nbad line\n")
    assert rows == [SlurmRow("7_2", "RUNNING", "None", "2026-01-01T00:00:00", "NONE", "n1",
                             "gflow:s:7")]  # fmt: skip
    shown = parse_scontrol(
        "JobId=20 ArrayJobId=19 ArrayTaskId=2 JobName=a b JobState=FAILED Reason=NonZeroExitCode "
        "ExitCode=3:0 StartTime=S EndTime=E NodeList=n1 Comment=gflow:s:1 x  StdErr=/dev/null\n"
    )
    assert shown == [SlurmRow("19_2", "FAILED", "NonZeroExitCode", "S", "E", "n1",
                              "gflow:s:1 x ", "3:0")]  # fmt: skip
    acct = parse_sacct("5|CANCELLED by 0|0:15|S|E|n1|c\n5.batch|CANCELLED|0:15|S|E|n1|\n")
    assert [(r.slurm_id, r.state, r.exit_code) for r in acct] == [("5", "CANCELLED", "0:15")]


@pytest.mark.parametrize(
    ("state", "reason", "phase", "ours"),
    [
        ("PENDING", "Resources", Phase.PENDING, Reason(ReasonKind.RESOURCES)),
        ("PENDING", "Priority", Phase.PENDING, Reason(ReasonKind.PRIORITY)),
        ("PENDING", "Dependency", Phase.PENDING, Reason(ReasonKind.DEPENDENCY)),
        ("PENDING", "BeginTime", Phase.PENDING, Reason(ReasonKind.BEGIN_TIME)),
        ("PENDING", "JobArrayTaskLimit", Phase.PENDING, Reason(ReasonKind.GROUP_LIMIT)),
        ("PENDING", "QOSMaxJobsPerUserLimit", Phase.PENDING,
         Reason(ReasonKind.QUOTA, "QOSMaxJobsPerUserLimit")),
        ("PENDING", "PartitionConfig", Phase.PENDING, Reason(ReasonKind.SLURM, "PartitionConfig")),
        ("PENDING", "JobHeldUser", Phase.HELD, Reason(ReasonKind.HELD)),
        ("PENDING", "None", Phase.PENDING, None),
        ("RUNNING", "None", Phase.RUNNING, None),
        ("COMPLETING", "None", Phase.RUNNING, None),
        ("TIMEOUT", "TimeLimit", Phase.ENDED, Reason(ReasonKind.SLURM, "TimeLimit")),
    ],
)  # fmt: skip
def test_states_and_reasons(state: str, reason: str, phase: Phase, ours: Reason | None) -> None:
    row = _row(state, reason)
    assert phase_of(row) is phase
    assert wait_reason(row) == ours


def test_exit_code_text() -> None:
    assert parse_exit_code("3:0") == (3, None)
    assert parse_exit_code("0:9") == (None, 9)
    assert parse_exit_code("") == (None, None)


@pytest.mark.parametrize(
    ("state", "record", "stop", "expected"),
    [
        ("COMPLETED", WrapperEnd(0, None), None, (JobState.FINISHED, "Completed", 0, None)),
        ("FAILED", WrapperEnd(3, None), None, (JobState.FAILED, "NonZeroExit:3", 3, None)),
        ("FAILED", WrapperEnd(None, 9), None, (JobState.FAILED, "Signal:SIGKILL", None, 9)),
        ("TIMEOUT", WrapperEnd(None, 15), None, (JobState.TIMEOUT, "TimeLimit", None, 15)),
        ("CANCELLED", WrapperEnd(None, 15), None,
         (JobState.CANCELLED, "CancelledByUser", None, 15)),
        ("OUT_OF_MEMORY", WrapperEnd(None, 9), None, (JobState.FAILED, "MemoryLimit", None, 9)),
        ("NODE_FAIL", None, None, (JobState.FAILED, "NodeFail:node_fail", None, None)),
        ("COMPLETED", WrapperEnd(0, None), ReasonKind.CANCELLED_BY_USER,
         (JobState.FINISHED, "Completed", 0, None)),  # it ended before the cancel reached it
        ("FAILED", None, None, (JobState.FAILED, "NonZeroExit:2", 2, None)),  # no record
        ("COMPLETED", None, None, (JobState.FINISHED, "Completed", 0, None)),
    ],
)  # fmt: skip
def test_ended_outcome(
    state: str,
    record: WrapperEnd | None,
    stop: ReasonKind | None,
    expected: tuple[JobState, str, int | None, int | None],
) -> None:
    """Slurm says why it stopped; our wrapper's record how the command ended."""
    row = _row(state, exit_code="2:0")
    ended, reason, code, signum = ended_outcome(row, record, stop)
    assert (ended, str(reason), code, signum) == expected
