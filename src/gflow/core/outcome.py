"""How a job ended, decided from what was ordered (cancel, time limit) and what the wrapper saw."""

from __future__ import annotations

import signal

from gflow.core.reasons import Reason, ReasonKind
from gflow.core.states import JobState


def job_outcome(
    stop_reason: ReasonKind | None,
    exit_code: int | None,
    signum: int | None,
    recorded: bool,
    hangup: bool = False,
    launch_failed: bool = False,
) -> tuple[JobState, Reason]:
    """The final state and reason of a Running job whose wrapper has gone.

    `hangup`: the wrapper's terminal went away (its tmux server or session was killed), so
    a failure is the machine's doing (NodeFail), not the job's; a job that shrugged off the
    hangup and succeeded is still Finished. `launch_failed`: the command never started.
    """
    if launch_failed:
        return JobState.FAILED, Reason(ReasonKind.LAUNCH_FAILED)
    if stop_reason is ReasonKind.CANCELLED_BY_USER:
        return JobState.CANCELLED, Reason(ReasonKind.CANCELLED_BY_USER)
    if stop_reason is ReasonKind.TIME_LIMIT:
        return JobState.TIMEOUT, Reason(ReasonKind.TIME_LIMIT)
    if stop_reason is ReasonKind.MEMORY_LIMIT:
        return JobState.FAILED, Reason(ReasonKind.MEMORY_LIMIT)
    if not recorded:
        return JobState.FAILED, Reason(ReasonKind.LOST)
    if hangup and exit_code != 0:
        return JobState.FAILED, Reason(ReasonKind.NODE_FAIL)
    if signum is not None:
        return JobState.FAILED, Reason(ReasonKind.SIGNAL, signal_name(signum))
    if exit_code == 0:
        return JobState.FINISHED, Reason(ReasonKind.COMPLETED)
    return JobState.FAILED, Reason(ReasonKind.NON_ZERO_EXIT, str(exit_code))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"
