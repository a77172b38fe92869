"""gflow.core.dependencies: Slurm dependency strings and the dependency verdict (SPEC §5)."""

from __future__ import annotations

import pytest

from gflow.core.dependencies import (
    Dependency,
    DependencyKind,
    DependencyMode,
    Verdict,
    dependency_verdict,
    parse_slurm_dependency,
)
from gflow.core.errors import InvalidInput
from gflow.core.states import JobState

OK = DependencyKind.AFTER_OK
ANY_END = DependencyKind.AFTER_ANY
NOT_OK = DependencyKind.AFTER_NOT_OK
ALL = DependencyMode.ALL
ANY = DependencyMode.ANY


def whole(job: int, kind: DependencyKind) -> Dependency:
    """A Slurm-form reference: an array's id there stands for all its tasks."""
    return Dependency(job, kind, whole_array=True)


# ---- parse_slurm_dependency ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "deps", "mode"),
    [
        ("3", [Dependency(3, OK)], ALL),
        (" 3 ", [Dependency(3, OK)], ALL),
        ("1,2", [Dependency(1, OK), Dependency(2, OK)], ALL),
        ("@", [Dependency("@", OK)], ALL),
        ("@~2", [Dependency("@~2", OK)], ALL),
        ("1,@~2", [Dependency(1, OK), Dependency("@~2", OK)], ALL),
        (
            "afterok:1:2,afterany:3,afternotok:4",
            [whole(1, OK), whole(2, OK), whole(3, ANY_END), whole(4, NOT_OK)],
            ALL,
        ),
        ("afterok:1?afterok:2", [whole(1, OK), whole(2, OK)], ANY),
        ("afternotok:@", [Dependency("@", NOT_OK)], ALL),
        ("AfterAny:5", [whole(5, ANY_END)], ALL),
        ("3-5", [Dependency(3, OK), Dependency(4, OK), Dependency(5, OK)], ALL),
        ("afterok:3-4:7", [whole(3, OK), whole(4, OK), whole(7, OK)], ALL),
    ],
)
def test_parse_slurm_dependency_accepts_ids_and_slurm_forms(
    text: str, deps: list[Dependency], mode: DependencyMode
) -> None:
    """Bare ids mean afterok; ',' joins with all, '?' with any; kinds are Slurm's; ids may
    be ranges; in Slurm's kind:ID forms an id may be an array's (all of its tasks)."""
    assert parse_slurm_dependency(text) == (deps, mode)


@pytest.mark.parametrize(
    "text",
    [
        "afterfoo:1",
        "afterok:",
        "afterok:x",
        "afterok:0",
        "afterok:1:",
        "1,2?3",
        "",
        "x",
        "1,,2",
        "singleton",
        "after:1",
    ],
)
def test_parse_slurm_dependency_rejects_malformed(text: str) -> None:
    """Unknown kinds, missing or bad ids, and a mix of ',' and '?' are InvalidInput."""
    with pytest.raises(InvalidInput):
        parse_slurm_dependency(text)


# ---- dependency_verdict --------------------------------------------------------------------

ENDED_OK: list[JobState | None] = [JobState.FINISHED]
ENDED_NOT_OK: list[JobState | None] = [JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT]
NOT_ENDED: list[JobState | None] = [
    JobState.RUNNING,
    JobState.QUEUED,
    JobState.HOLD,
    None,
]  # None: unknown to the pass


def expected(kind: DependencyKind, state: JobState | None) -> Verdict:
    """The table of SPEC §5 / Slurm, written out separately from the code under test."""
    if state in NOT_ENDED:
        return Verdict.WAITING
    if kind is OK:
        return Verdict.READY if state in ENDED_OK else Verdict.IMPOSSIBLE
    if kind is NOT_OK:
        return Verdict.READY if state in ENDED_NOT_OK else Verdict.IMPOSSIBLE
    return Verdict.READY


@pytest.mark.parametrize("mode", list(DependencyMode))
@pytest.mark.parametrize("state", ENDED_OK + ENDED_NOT_OK + NOT_ENDED)
@pytest.mark.parametrize("kind", list(DependencyKind))
def test_dependency_verdict_for_one_parent(
    kind: DependencyKind, state: JobState | None, mode: DependencyMode
) -> None:
    """Each kind against each parent state, in both modes (one parent: the modes agree)."""
    states = {} if state is None else {7: state}
    verdict, blocker = dependency_verdict(((7, kind),), mode, states)
    assert verdict is expected(kind, state)
    assert blocker == (7 if verdict is Verdict.IMPOSSIBLE else None)


@pytest.mark.parametrize("mode", list(DependencyMode))
def test_no_dependencies_is_ready(mode: DependencyMode) -> None:
    """A job without dependencies is ready in either mode."""
    assert dependency_verdict((), mode, {}) == (Verdict.READY, None)


@pytest.mark.parametrize(
    ("states", "verdict", "blocker"),
    [
        ({1: JobState.FINISHED, 2: JobState.FAILED}, Verdict.READY, None),
        ({1: JobState.FINISHED, 2: JobState.RUNNING}, Verdict.WAITING, None),
        ({1: JobState.FINISHED, 2: JobState.FINISHED}, Verdict.IMPOSSIBLE, 2),
        ({1: JobState.FAILED, 2: JobState.FAILED}, Verdict.IMPOSSIBLE, 1),
        ({1: JobState.RUNNING, 2: JobState.FINISHED}, Verdict.IMPOSSIBLE, 2),
        ({1: JobState.RUNNING, 2: JobState.HOLD}, Verdict.WAITING, None),
        ({1: JobState.QUEUED}, Verdict.WAITING, None),
    ],
)
def test_dependency_verdict_all_needs_every_parent(
    states: dict[int, JobState], verdict: Verdict, blocker: int | None
) -> None:
    """All: ready when every parent is satisfied; impossible, naming it, once one cannot be."""
    deps = ((1, OK), (2, NOT_OK))
    assert dependency_verdict(deps, ALL, states) == (verdict, blocker)


@pytest.mark.parametrize(
    ("states", "verdict"),
    [
        ({1: JobState.FINISHED, 2: JobState.RUNNING}, Verdict.READY),
        ({1: JobState.RUNNING, 2: JobState.FAILED}, Verdict.READY),
        ({1: JobState.FAILED, 2: JobState.RUNNING}, Verdict.WAITING),
        ({1: JobState.RUNNING, 2: JobState.FINISHED}, Verdict.WAITING),
        ({1: JobState.QUEUED, 2: JobState.HOLD}, Verdict.WAITING),
        ({1: JobState.FAILED, 2: JobState.FINISHED}, Verdict.IMPOSSIBLE),
        ({1: JobState.CANCELLED, 2: JobState.FINISHED}, Verdict.IMPOSSIBLE),
    ],
)
def test_dependency_verdict_any_needs_one_parent(
    states: dict[int, JobState], verdict: Verdict
) -> None:
    """Any: ready when one parent is satisfied; impossible only when none still can be."""
    got, blocker = dependency_verdict(((1, OK), (2, NOT_OK)), ANY, states)
    assert got is verdict
    if verdict is Verdict.IMPOSSIBLE:
        assert blocker in (1, 2)
    else:
        assert blocker is None
