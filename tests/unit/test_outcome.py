"""gflow.core.outcome.job_outcome: how a Running job ended (SPEC §2, §4, §6)."""

from __future__ import annotations

import signal

from gflow.core.outcome import job_outcome, signal_name
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.states import JobState


def test_cancel_wins_over_exit_code() -> None:
    """An ordered cancel ends Cancelled/CancelledByUser even if the program exited 0."""
    outcome = job_outcome(ReasonKind.CANCELLED_BY_USER, 0, None, True)
    assert outcome == (JobState.CANCELLED, Reason(ReasonKind.CANCELLED_BY_USER))


def test_cancel_wins_over_a_signal() -> None:
    """An ordered cancel also wins when the program died of the signal we sent."""
    outcome = job_outcome(ReasonKind.CANCELLED_BY_USER, None, signal.SIGTERM, True)
    assert outcome == (JobState.CANCELLED, Reason(ReasonKind.CANCELLED_BY_USER))


def test_time_limit_gives_timeout() -> None:
    """A stop ordered for the time limit ends Timeout/TimeLimit, whatever the exit."""
    for exit_code, signum in ((None, signal.SIGKILL), (1, None), (0, None)):
        outcome = job_outcome(ReasonKind.TIME_LIMIT, exit_code, signum, True)
        assert outcome == (JobState.TIMEOUT, Reason(ReasonKind.TIME_LIMIT))


def test_missing_exit_record_gives_failed_lost() -> None:
    """No exit record (the process vanished) ends Failed/Lost."""
    outcome = job_outcome(None, None, None, False)
    assert outcome == (JobState.FAILED, Reason(ReasonKind.LOST))


def test_signal_gives_failed_with_the_signal_name() -> None:
    """Death by signal ends Failed with reason 'Signal:SIGKILL'."""
    state, reason = job_outcome(None, None, signal.SIGKILL, True)
    assert state is JobState.FAILED
    assert str(reason) == "Signal:SIGKILL"


def test_exit_0_gives_finished_completed() -> None:
    """Exit code 0 ends Finished/Completed."""
    state, reason = job_outcome(None, 0, None, True)
    assert state is JobState.FINISHED
    assert str(reason) == "Completed"


def test_nonzero_exit_gives_failed_with_the_code() -> None:
    """Exit code 7 ends Failed with reason 'NonZeroExit:7'."""
    state, reason = job_outcome(None, 7, None, True)
    assert state is JobState.FAILED
    assert str(reason) == "NonZeroExit:7"


def test_unknown_signal_number_still_gets_a_name() -> None:
    """A signal number Python has no name for is shown as 'SIG<n>'."""
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(999) == "SIG999"


def test_hangup_that_ended_the_job_is_a_node_failure() -> None:
    """The wrapper's terminal went away (tmux killed): a failure is NodeFail, not the job's."""
    for exit_code, signum in ((None, signal.SIGHUP), (1, None)):
        outcome = job_outcome(None, exit_code, signum, True, hangup=True)
        assert outcome == (JobState.FAILED, Reason(ReasonKind.NODE_FAIL))


def test_hangup_does_not_hide_success_or_an_ordered_stop() -> None:
    assert job_outcome(None, 0, None, True, hangup=True)[0] is JobState.FINISHED
    cancelled = job_outcome(ReasonKind.CANCELLED_BY_USER, None, signal.SIGHUP, True, hangup=True)
    assert cancelled[0] is JobState.CANCELLED


def test_a_job_that_never_started_is_launch_failed() -> None:
    """The wrapper could not start the command (no working directory): LaunchFailed."""
    assert job_outcome(None, None, None, True, launch_failed=True) == (
        JobState.FAILED,
        Reason(ReasonKind.LAUNCH_FAILED),
    )
