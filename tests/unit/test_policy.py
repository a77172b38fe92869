"""gflow.core.policy.schedule: one pure scheduling pass (SPEC §5)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gflow.core.model import Job
from gflow.core.policy import Decision, schedule
from gflow.core.states import JobState, Reason, ReasonKind


def make_job(
    job_id: int,
    *,
    priority: int = 10,
    gpus: int = 0,
    depends_on: Sequence[int] = (),
    state: JobState = JobState.QUEUED,
    gpu_ids: Sequence[int] = (),
) -> Job:
    """A Job with every required field filled in with harmless values."""
    return Job(
        id=job_id,
        name=f"job{job_id}",
        user="alice",
        uid=1000,
        command="true",
        script="",
        workdir="/tmp",
        state=state,
        reason=None,
        priority=priority,
        gpus=gpus,
        time_limit=None,
        depends_on=tuple(depends_on),
        array_task_id=None,
        keep_session=False,
        submitted_at=float(job_id),
        log_path=f"/tmp/logs/{job_id}.log",
        gpu_ids=tuple(gpu_ids),
    )


def started_ids(decision: Decision) -> list[int]:
    return [start.job_id for start in decision.starts]


def gpus_of(decision: Decision) -> dict[int, tuple[int, ...]]:
    return {start.job_id: start.gpu_ids for start in decision.starts}


# ---- examples ------------------------------------------------------------------------------


def test_empty_queue_decides_nothing() -> None:
    """No queued jobs: no starts, no waits, no cancels."""
    decision = schedule([], [], {}, [0, 1])
    assert decision == Decision()


def test_higher_priority_starts_first_then_lower_id() -> None:
    """Starts come out in priority order (higher first), ties broken by submission order."""
    queued = [
        make_job(1, priority=5),
        make_job(2, priority=20),
        make_job(3, priority=20),
        make_job(4, priority=255),
        make_job(5, priority=0),
    ]
    decision = schedule(queued, [], {}, [])
    assert started_ids(decision) == [4, 2, 3, 1, 5]


def test_higher_priority_job_gets_the_only_gpu() -> None:
    """With one GPU, the later but higher-priority job takes it; the other waits for it."""
    queued = [make_job(1, priority=10, gpus=1), make_job(2, priority=50, gpus=1)]
    decision = schedule(queued, [], {}, [0])
    assert gpus_of(decision) == {2: (0,)}
    assert decision.waiting == {1: Reason(ReasonKind.RESOURCES, "GPU")}


def test_job_whose_dependency_finished_starts() -> None:
    """A dependency in state Finished is satisfied."""
    decision = schedule([make_job(2, depends_on=[1])], [], {1: JobState.FINISHED}, [])
    assert started_ids(decision) == [2]
    assert decision.waiting == {} and decision.cancels == {}


@pytest.mark.parametrize("dep_state", [JobState.RUNNING, JobState.HOLD])
def test_job_whose_dependency_is_active_waits_with_reason_dependency(dep_state: JobState) -> None:
    """A dependency still Running (or on Hold) makes the job wait with reason Dependency."""
    decision = schedule([make_job(2, depends_on=[1])], [], {1: dep_state}, [])
    assert decision.starts == []
    assert decision.waiting == {2: Reason(ReasonKind.DEPENDENCY)}
    assert decision.cancels == {}


def test_job_depending_on_a_job_in_the_same_queue_waits() -> None:
    """A dependency that is itself queued (and starts in this pass) is not yet Finished."""
    decision = schedule([make_job(1), make_job(2, depends_on=[1])], [], {}, [])
    assert started_ids(decision) == [1]
    assert decision.waiting == {2: Reason(ReasonKind.DEPENDENCY)}


def test_job_waits_until_all_its_dependencies_finished() -> None:
    """With several dependencies, one unfinished one is enough to wait."""
    states = {1: JobState.FINISHED, 2: JobState.RUNNING}
    decision = schedule([make_job(3, depends_on=[1, 2])], [], states, [])
    assert decision.waiting == {3: Reason(ReasonKind.DEPENDENCY)}


@pytest.mark.parametrize("dep_state", [JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT])
def test_job_whose_dependency_failed_is_cancelled(dep_state: JobState) -> None:
    """A dependency that ended without success cancels the job: 'DependencyFailed:<id>'."""
    decision = schedule([make_job(2, depends_on=[1])], [], {1: dep_state}, [])
    assert decision.starts == []
    assert decision.waiting == {}
    assert {k: str(v) for k, v in decision.cancels.items()} == {2: "DependencyFailed:1"}


def test_dependency_failure_cancels_transitively_within_the_queue() -> None:
    """The cancelled job's own queued dependents are cancelled too, each naming its dependency."""
    queued = [
        make_job(3, depends_on=[1]),
        make_job(4, depends_on=[3]),
        make_job(5, depends_on=[4]),
        make_job(6),
    ]
    decision = schedule(queued, [], {1: JobState.FAILED}, [])
    assert {k: str(v) for k, v in decision.cancels.items()} == {
        3: "DependencyFailed:1",
        4: "DependencyFailed:3",
        5: "DependencyFailed:4",
    }
    assert started_ids(decision) == [6]
    assert decision.waiting == {}


def test_transitive_cancel_does_not_depend_on_queue_order() -> None:
    """A dependent listed before its failing dependency is still cancelled."""
    queued = [make_job(5, depends_on=[4], priority=255), make_job(4, depends_on=[1])]
    decision = schedule(queued, [], {1: JobState.TIMEOUT}, [])
    assert set(decision.cancels) == {4, 5}
    assert str(decision.cancels[5]) == "DependencyFailed:4"


def test_gpu_jobs_get_distinct_gpu_indices() -> None:
    """Each GPU job gets its own GPUs, from the lowest free index up."""
    queued = [make_job(1, gpus=2), make_job(2, gpus=1), make_job(3, gpus=1)]
    decision = schedule(queued, [], {}, [0, 1, 2, 3])
    assert gpus_of(decision) == {1: (0, 1), 2: (2,), 3: (3,)}


def test_job_wanting_more_gpus_than_free_waits_for_resources() -> None:
    """A job asking for more GPUs than are free waits with 'Resources:GPU'."""
    queued = [make_job(1, gpus=2), make_job(2, gpus=2)]
    decision = schedule(queued, [], {}, [0, 1, 2])
    assert gpus_of(decision) == {1: (0, 1)}
    assert {k: str(v) for k, v in decision.waiting.items()} == {2: "Resources:GPU"}


def test_gpu_job_waits_on_a_machine_without_gpus_while_cpu_jobs_start() -> None:
    """No GPUs at all: GPU jobs wait for resources, GPU-less jobs start with no GPUs."""
    decision = schedule([make_job(1, gpus=1), make_job(2)], [], {}, [])
    assert gpus_of(decision) == {2: ()}
    assert decision.waiting == {1: Reason(ReasonKind.RESOURCES, "GPU")}


def test_gpus_held_by_running_jobs_are_not_handed_out() -> None:
    """GPUs a running job holds are busy; only the others are given to queued jobs."""
    running = [make_job(10, state=JobState.RUNNING, gpus=2, gpu_ids=[0, 2])]
    queued = [make_job(11, gpus=1), make_job(12, gpus=1), make_job(13, gpus=1)]
    decision = schedule(queued, running, {}, [0, 1, 2, 3])
    assert gpus_of(decision) == {11: (1,), 12: (3,)}
    assert decision.waiting == {13: Reason(ReasonKind.RESOURCES, "GPU")}


def test_only_allowed_gpu_indices_are_used() -> None:
    """GPUs not in gpu_indices (e.g. excluded by set-gpus) are never handed out."""
    decision = schedule([make_job(1, gpus=1), make_job(2, gpus=1)], [], {}, [2])
    assert gpus_of(decision) == {1: (2,)}
    assert set(decision.waiting) == {2}


# ---- property ------------------------------------------------------------------------------


@st.composite
def scheduling_inputs(
    draw: st.DrawFn,
) -> tuple[list[Job], list[Job], dict[int, JobState], list[int]]:
    """Random jobs 1..n in random states with dependencies on lower ids, and 0-4 GPUs."""
    n_gpus = draw(st.integers(0, 4))
    gpu_indices = list(range(n_gpus))
    unheld = draw(st.permutations(gpu_indices))
    queued: list[Job] = []
    running: list[Job] = []
    states: dict[int, JobState] = {}
    for job_id in range(1, draw(st.integers(0, 30)) + 1):
        state = draw(st.sampled_from(list(JobState)))
        gpus = draw(st.integers(0, 3))
        deps: list[int] = []
        if job_id > 1:
            deps = draw(st.lists(st.integers(1, job_id - 1), max_size=3, unique=True))
        held: list[int] = []
        if state is JobState.RUNNING:
            take = min(gpus, len(unheld))
            held, unheld = list(unheld[:take]), unheld[take:]
        job = make_job(
            job_id,
            priority=draw(st.integers(0, 255)),
            gpus=gpus,
            depends_on=deps,
            state=state,
            gpu_ids=held,
        )
        if state is JobState.QUEUED:
            queued.append(job)
        else:
            states[job_id] = state
            if state is JobState.RUNNING:
                running.append(job)
    return queued, running, states, gpu_indices


@settings(max_examples=200, deadline=None)
@given(scheduling_inputs())
def test_schedule_invariants_hold_for_random_queues(
    inputs: tuple[list[Job], list[Job], dict[int, JobState], list[int]],
) -> None:
    """No GPU twice or held by a running job; no unfinished dependency; each job decided once."""
    queued, running, states, gpu_indices = inputs
    decision = schedule(queued, running, states, gpu_indices)
    by_id = {job.id: job for job in queued}

    # Every queued job is exactly one of started / waiting / cancelled.
    started = started_ids(decision)
    assert len(started) == len(set(started))
    groups = [set(started), set(decision.waiting), set(decision.cancels)]
    assert sum(len(g) for g in groups) == len(by_id)
    assert set().union(*groups) == set(by_id)

    # No GPU to two jobs, none held by a running job, only allowed ones, as many as asked.
    held = {gpu for job in running for gpu in job.gpu_ids}
    given_out = [gpu for start in decision.starts for gpu in start.gpu_ids]
    assert len(given_out) == len(set(given_out))
    assert not set(given_out) & held
    assert set(given_out) <= set(gpu_indices)
    for start in decision.starts:
        assert len(start.gpu_ids) == by_id[start.job_id].gpus

    # No started job has an unfinished dependency.
    for job_id in started:
        for dep in by_id[job_id].depends_on:
            assert states.get(dep) is JobState.FINISHED

    # Cancels name a dependency that failed, or one that is cancelled in this same pass.
    for job_id, reason in decision.cancels.items():
        assert reason.kind is ReasonKind.DEPENDENCY_FAILED
        dep = int(reason.detail)
        assert dep in by_id[job_id].depends_on
        dep_state = states.get(dep)
        assert dep in decision.cancels or (
            dep_state is not None and dep_state.is_ended and dep_state is not JobState.FINISHED
        )

    # A GPU-less job whose dependencies all finished always starts.
    for job in queued:
        if job.gpus == 0 and all(states.get(d) is JobState.FINISHED for d in job.depends_on):
            assert job.id in started
