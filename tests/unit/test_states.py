"""gflow.core.states: the seven states, gflow's nine transitions, and reasons (SPEC §2)."""

from __future__ import annotations

import itertools

import pytest

from gflow.core.errors import InvalidInput
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.states import ACTIVE_STATES, ENDED_STATES, JobState, can_transition

Q, H, R = JobState.QUEUED, JobState.HOLD, JobState.RUNNING
CD, F, CA, TO = JobState.FINISHED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT

EXPECTED_TRANSITIONS = {
    (Q, R),
    (Q, H),
    (Q, CA),
    (H, Q),
    (H, CA),
    (R, CD),
    (R, F),
    (R, CA),
    (R, TO),
}


def test_there_are_exactly_seven_states() -> None:
    """Queued, Hold, Running, Finished, Failed, Cancelled, Timeout and nothing else."""
    assert {s.value for s in JobState} == {
        "Queued",
        "Hold",
        "Running",
        "Finished",
        "Failed",
        "Cancelled",
        "Timeout",
    }


def test_exactly_the_nine_gflow_transitions_are_allowed() -> None:
    """Of all 49 (from, to) pairs, can_transition allows exactly gflow's nine."""
    pairs = list(itertools.product(JobState, repeat=2))
    assert len(pairs) == 49
    allowed = {(src, dst) for src, dst in pairs if can_transition(src, dst)}
    assert allowed == EXPECTED_TRANSITIONS


@pytest.mark.parametrize("ended", sorted(ENDED_STATES))
def test_ended_states_are_terminal(ended: JobState) -> None:
    """No transition leaves Finished, Failed, Cancelled or Timeout."""
    assert not any(can_transition(ended, dst) for dst in JobState)


def test_active_and_ended_partition_the_states() -> None:
    """Every state is either active (Queued/Hold/Running) or ended, never both."""
    assert set(JobState) == ACTIVE_STATES | ENDED_STATES
    assert not ACTIVE_STATES & ENDED_STATES
    assert {s for s in JobState if s.is_active} == {Q, H, R}
    assert {s for s in JobState if s.is_ended} == {CD, F, CA, TO}


@pytest.mark.parametrize(
    ("state", "short"),
    [(Q, "PD"), (H, "H"), (R, "R"), (CD, "CD"), (F, "F"), (CA, "CA"), (TO, "TO")],
)
def test_short_codes_match_slurm(state: JobState, short: str) -> None:
    """Each state has Slurm's short code (PD, H, R, CD, F, CA, TO)."""
    assert state.short == short


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Running", R),
        ("running", R),
        ("RUNNING", R),
        (" running ", R),
        ("queued", Q),
        ("hold", H),
        ("Finished", CD),
        ("failed", F),
        ("cancelled", CA),
        ("TIMEOUT", TO),
        ("PD", Q),
        ("pd", Q),
        ("H", H),
        ("r", R),
        ("CD", CD),
        ("f", F),
        ("CA", CA),
        ("to", TO),
    ],
)
def test_state_parse_is_case_insensitive_and_accepts_short_codes(
    text: str, state: JobState
) -> None:
    """JobState.parse takes full names and short codes in any case."""
    assert JobState.parse(text) is state


@pytest.mark.parametrize("text", ["runing", "", "done", "P", "Queued,Running"])
def test_state_parse_rejects_unknown_names_listing_valid_states(text: str) -> None:
    """A mistyped state raises InvalidInput naming it and listing every valid state."""
    with pytest.raises(InvalidInput) as caught:
        JobState.parse(text)
    assert repr(text) in caught.value.message
    for state in JobState:
        assert state.value in caught.value.hint
        assert state.short in caught.value.hint


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("DependencyFailed:3", Reason(ReasonKind.DEPENDENCY_FAILED, "3")),
        ("Completed", Reason(ReasonKind.COMPLETED)),
        ("Resources:GPU", Reason(ReasonKind.RESOURCES, "GPU")),
        ("Signal:SIGKILL", Reason(ReasonKind.SIGNAL, "SIGKILL")),
        ("NonZeroExit:7", Reason(ReasonKind.NON_ZERO_EXIT, "7")),
        ("Lost", Reason(ReasonKind.LOST)),
    ],
)
def test_reason_str_and_parse_round_trip(text: str, reason: Reason) -> None:
    """str(Reason) is 'Kind' or 'Kind:detail', and Reason.parse reads it back."""
    assert str(reason) == text
    assert Reason.parse(text) == reason
    assert Reason.parse(str(reason)) == reason


@pytest.mark.parametrize("kind", list(ReasonKind))
def test_every_reason_kind_round_trips_with_and_without_detail(kind: ReasonKind) -> None:
    """Each reason kind survives str -> parse, bare and with a detail."""
    for reason in (Reason(kind), Reason(kind, "x")):
        assert Reason.parse(str(reason)) == reason


def test_spec_reasons_exist() -> None:
    """The extra reasons SPEC §2 names (MemoryLimit, Lost, NodeFail) are reason kinds."""
    assert {"MemoryLimit", "Lost", "NodeFail"} <= {k.value for k in ReasonKind}
