"""gflow.core.policy.schedule: one pure scheduling pass (SPEC §4, §5)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gflow.core.dependencies import DependencyKind, DependencyMode
from gflow.core.model import Job
from gflow.core.policy import (
    MAX_RESERVE_TRIES,
    Decision,
    GpuState,
    Machine,
    in_queue_order,
    schedule,
)
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import Resources
from gflow.core.states import ENDED_STATES, JobState

GB = 1024
NOW = 1_000_000.0
OK = DependencyKind.AFTER_OK
ANY_END = DependencyKind.AFTER_ANY
NOT_OK = DependencyKind.AFTER_NOT_OK

Dep = int | tuple[int, DependencyKind]


def make_job(
    job_id: int,
    *,
    priority: int = 10,
    gpus: int = 0,
    shared: bool = False,
    gpu_memory_mb: int | None = None,
    gpu_pin: Sequence[int] = (),
    memory_mb: int | None = None,
    time_limit: int | None = None,
    depends_on: Sequence[Dep] = (),
    mode: DependencyMode = DependencyMode.ALL,
    auto_cancel: bool = True,
    begin_at: float | None = None,
    group_id: int | None = None,
    max_concurrent: int | None = None,
    state: JobState = JobState.QUEUED,
    gpu_ids: Sequence[int] = (),
    started_at: float | None = None,
) -> Job:
    """A Job with every required field filled in with harmless values.

    A dependency is an id (afterok) or an (id, kind) pair; a pin sets the GPU count.
    """
    dependencies = tuple((d, OK) if isinstance(d, int) else d for d in depends_on)
    if gpu_pin:
        gpus = len(gpu_pin)
    if state is JobState.RUNNING and started_at is None:
        started_at = NOW
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
        resources=Resources(gpus, shared, gpu_memory_mb, tuple(gpu_pin), memory_mb),
        time_limit=time_limit,
        dependencies=dependencies,
        dependency_mode=mode,
        auto_cancel=auto_cancel,
        array_task_id=None,
        keep_session=False,
        submitted_at=float(job_id),
        log_path=f"/tmp/logs/{job_id}.log",
        begin_at=begin_at,
        group_id=group_id,
        max_concurrent=max_concurrent,
        gpu_ids=tuple(gpu_ids),
        started_at=started_at,
    )


def running(job_id: int, gpu_ids: Sequence[int] = (), **fields: Any) -> Job:
    """A Running job holding these GPUs (exclusively unless shared=True is given)."""
    fields.setdefault("gpus", len(gpu_ids))
    return make_job(job_id, state=JobState.RUNNING, gpu_ids=gpu_ids, **fields)


def machine(
    *gpus: int | GpuState, indices: Iterable[int] | None = None, host_free_mb: int = 64 * GB
) -> Machine:
    """GPUs given as sizes in GB (indexed 0, 1, … or by `indices`) or as GpuStates."""
    index_list = list(indices) if indices is not None else list(range(len(gpus)))
    states = tuple(
        g if isinstance(g, GpuState) else GpuState(i, g * GB)
        for i, g in zip(index_list, gpus, strict=True)
    )
    return Machine(states, host_free_mb)


def gpus24(n: int, host_free_mb: int = 64 * GB) -> Machine:
    """n idle 24 GB GPUs."""
    return machine(*[24] * n, host_free_mb=host_free_mb)


def decide(
    queued: Sequence[Job],
    on: Machine,
    running_jobs: Sequence[Job] = (),
    states: Mapping[int, JobState] | None = None,
) -> Decision:
    """One pass at NOW; running jobs' states are added to the dependency states."""
    all_states = {job.id: JobState.RUNNING for job in running_jobs}
    all_states.update(states or {})
    return schedule(queued, running_jobs, all_states, on, NOW)


def started_ids(decision: Decision) -> list[int]:
    return [start.job_id for start in decision.starts]


def gpus_of(decision: Decision) -> dict[int, tuple[int, ...]]:
    return {start.job_id: start.gpu_ids for start in decision.starts}


def reasons(mapping: Mapping[int, Reason]) -> dict[int, str]:
    return {job_id: str(reason) for job_id, reason in mapping.items()}


# ---- order and exclusive GPUs --------------------------------------------------------------


def test_empty_queue_decides_nothing() -> None:
    """No queued jobs: no starts, no waits, no cancels."""
    assert decide([], gpus24(2)) == Decision()


def test_higher_priority_starts_first_then_lower_id() -> None:
    """Starts come out in priority order (higher first), ties broken by submission order."""
    queued = [
        make_job(1, priority=5),
        make_job(2, priority=20),
        make_job(3, priority=20),
        make_job(4, priority=255),
        make_job(5, priority=0),
    ]
    assert started_ids(decide(queued, gpus24(0))) == [4, 2, 3, 1, 5]


def test_higher_priority_job_gets_the_only_gpu() -> None:
    """With one GPU, the later but higher-priority job takes it; the other waits for it."""
    queued = [make_job(1, priority=10, gpus=1), make_job(2, priority=50, gpus=1)]
    decision = decide(queued, gpus24(1))
    assert gpus_of(decision) == {2: (0,)}
    assert decision.waiting == {1: Reason(ReasonKind.RESOURCES, "GPU")}


def test_exclusive_gpu_jobs_get_distinct_gpus_and_a_third_waits() -> None:
    """Two 1-GPU jobs on two GPUs get one each; a third waits with 'Resources:GPU'."""
    queued = [make_job(1, gpus=1), make_job(2, gpus=1), make_job(3, gpus=1)]
    decision = decide(queued, gpus24(2))
    assert gpus_of(decision) == {1: (0,), 2: (1,)}
    assert reasons(decision.waiting) == {3: "Resources:GPU"}


def test_gpu_jobs_get_distinct_gpu_indices() -> None:
    """Each GPU job gets its own GPUs, from the lowest free index up."""
    queued = [make_job(1, gpus=2), make_job(2, gpus=1), make_job(3, gpus=1)]
    decision = decide(queued, gpus24(4))
    assert gpus_of(decision) == {1: (0, 1), 2: (2,), 3: (3,)}


def test_job_wanting_more_gpus_than_free_waits_for_resources() -> None:
    """A job asking for more GPUs than are free waits with 'Resources:GPU'."""
    queued = [make_job(1, gpus=2), make_job(2, gpus=2)]
    decision = decide(queued, gpus24(3))
    assert gpus_of(decision) == {1: (0, 1)}
    assert reasons(decision.waiting) == {2: "Resources:GPU"}


def test_gpu_job_waits_on_a_machine_without_gpus_while_cpu_jobs_start() -> None:
    """No GPUs at all: GPU jobs wait for resources, GPU-less jobs start with no GPUs."""
    decision = decide([make_job(1, gpus=1), make_job(2)], gpus24(0))
    assert gpus_of(decision) == {2: ()}
    assert decision.waiting == {1: Reason(ReasonKind.RESOURCES, "GPU")}


def test_gpus_held_by_running_jobs_are_not_handed_out() -> None:
    """GPUs a running job holds are busy; only the others are given to queued jobs."""
    queued = [make_job(11, gpus=1), make_job(12, gpus=1), make_job(13, gpus=1)]
    decision = decide(queued, gpus24(4), [running(10, [0, 2])])
    assert gpus_of(decision) == {11: (1,), 12: (3,)}
    assert decision.waiting == {13: Reason(ReasonKind.RESOURCES, "GPU")}


def test_only_allowed_gpu_indices_are_used() -> None:
    """Only the machine's usable GPUs (gctl set-gpus) are handed out, by their own index."""
    decision = decide([make_job(1, gpus=1), make_job(2, gpus=1)], machine(24, indices=[2]))
    assert gpus_of(decision) == {1: (2,)}
    assert set(decision.waiting) == {2}


# ---- shared GPUs ---------------------------------------------------------------------------


def shared_job(job_id: int, gb: int, gpus: int = 1, **fields: Any) -> Job:
    """A job sharing `gpus` GPUs with others, declaring `gb` GB on each."""
    return make_job(job_id, gpus=gpus, shared=True, gpu_memory_mb=gb * GB, **fields)


def test_shared_jobs_share_a_gpu_by_declared_memory() -> None:
    """Three shared 10G jobs on one 24G GPU: two start on it, the third waits for memory."""
    decision = decide([shared_job(1, 10), shared_job(2, 10), shared_job(3, 10)], gpus24(1))
    assert gpus_of(decision) == {1: (0,), 2: (0,)}
    assert reasons(decision.waiting) == {3: "Resources:GPUMemory"}


def test_running_shared_jobs_memory_is_promised() -> None:
    """Declared memory of running shared jobs counts, not what they happen to use now."""
    busy = [running(1, [0], shared=True, gpu_memory_mb=20 * GB)]
    decision = decide([shared_job(2, 5), shared_job(3, 4)], gpus24(1), busy)
    assert gpus_of(decision) == {3: (0,)}
    assert reasons(decision.waiting) == {2: "Resources:GPUMemory"}


def test_shared_job_never_lands_on_a_gpu_held_by_an_exclusive_job() -> None:
    """A running exclusive job's GPU is off limits to shared jobs, whatever its free memory."""
    busy = [running(1, [0])]
    assert gpus_of(decide([shared_job(2, 1)], gpus24(2), busy)) == {2: (1,)}
    decision = decide([shared_job(2, 1)], gpus24(1), busy)
    assert reasons(decision.waiting) == {2: "Resources:GPUMemory"}


def test_exclusive_job_never_lands_on_a_gpu_with_a_shared_job() -> None:
    """A GPU with one of our shared jobs on it is not idle: an exclusive job goes elsewhere."""
    busy = [running(1, [0], shared=True, gpu_memory_mb=1 * GB)]
    assert gpus_of(decide([make_job(2, gpus=1)], gpus24(2), busy)) == {2: (1,)}
    decision = decide([make_job(2, gpus=1)], gpus24(1), busy)
    assert reasons(decision.waiting) == {2: "Resources:GPU"}


def test_exclusive_and_shared_jobs_started_in_one_pass_do_not_mix() -> None:
    """Within one pass too: a shared start and an exclusive start never share a GPU."""
    decision = decide([shared_job(1, 1), make_job(2, gpus=1), shared_job(3, 1)], gpus24(2))
    assert gpus_of(decision) == {1: (0,), 2: (1,), 3: (0,)}


def test_foreign_processes_bar_exclusive_use_but_not_sharing() -> None:
    """Foreign pids on GPU 0 keep exclusive jobs off it; a shared job fits if memory allows."""
    gpu0 = GpuState(0, 24 * GB, foreign_used_mb=10 * GB, foreign_pids=(4242,))
    only_gpu0 = machine(gpu0)
    assert reasons(decide([make_job(1, gpus=1)], only_gpu0).waiting) == {1: "Resources:GPU"}
    assert gpus_of(decide([make_job(1, gpus=1)], machine(gpu0, 24))) == {1: (1,)}
    assert gpus_of(decide([shared_job(1, 14)], only_gpu0)) == {1: (0,)}
    # foreign_used_mb counts against memory: 10G used + 15G asked > 24G
    assert reasons(decide([shared_job(1, 15)], only_gpu0).waiting) == {1: "Resources:GPUMemory"}


def test_foreign_memory_without_pids_limits_an_exclusive_memory_request() -> None:
    """An exclusive job that declares GPU memory needs that much left beside foreign use."""
    gpu0 = GpuState(0, 24 * GB, foreign_used_mb=20 * GB)
    job = make_job(1, gpus=1, gpu_memory_mb=8 * GB)
    assert reasons(decide([job], machine(gpu0)).waiting) == {1: "Resources:GPU"}
    assert gpus_of(decide([job], machine(gpu0, 24))) == {1: (1,)}


# ---- pins ----------------------------------------------------------------------------------


def test_pinned_job_gets_exactly_its_gpus() -> None:
    """A pinned request gets the pinned GPUs even when lower indices are free."""
    decision = decide([make_job(1, gpu_pin=[2, 0]), make_job(2, gpu_pin=[3])], gpus24(4))
    assert {k: sorted(v) for k, v in gpus_of(decision).items()} == {1: [0, 2], 2: [3]}


def test_pinned_job_waits_for_its_gpu_even_when_others_are_free() -> None:
    """A pin on a busy GPU waits, though another GPU is idle; a pin outside the machine too."""
    decision = decide(
        [make_job(2, gpu_pin=[1]), make_job(3, gpu_pin=[7]), shared_job(4, 30, gpu_pin=[0])],
        gpus24(2),
        [running(1, [1])],
    )
    assert decision.starts == []
    assert reasons(decision.waiting) == {
        2: "Resources:GPU",
        3: "Resources:GPU",
        4: "Resources:GPUMemory",
    }


# ---- host memory ---------------------------------------------------------------------------


def test_job_needing_more_host_memory_than_free_waits() -> None:
    """A job whose memory_mb exceeds host_free_mb waits with 'Resources:HostMemory'."""
    decision = decide(
        [make_job(1, memory_mb=9 * GB), make_job(2, memory_mb=8 * GB)], gpus24(0, 8 * GB)
    )
    assert reasons(decision.waiting) == {1: "Resources:HostMemory"}
    assert started_ids(decision) == [2]


def test_two_jobs_that_together_exceed_host_memory_do_not_both_start() -> None:
    """Host memory is booked as jobs start in a pass: 5G + 5G does not fit in 8G."""
    queued = [make_job(1, memory_mb=5 * GB), make_job(2, memory_mb=5 * GB), make_job(3)]
    decision = decide(queued, gpus24(0, 8 * GB))
    assert started_ids(decision) == [1, 3]
    assert reasons(decision.waiting) == {2: "Resources:HostMemory"}


def test_host_memory_is_checked_before_gpus() -> None:
    """A GPU job with too little host RAM waits for HostMemory and takes no GPU."""
    queued = [make_job(1, gpus=1, memory_mb=10 * GB, priority=20), make_job(2, gpus=1)]
    decision = decide(queued, gpus24(1, 4 * GB))
    assert reasons(decision.waiting) == {1: "Resources:HostMemory"}
    assert gpus_of(decision) == {2: (0,)}


# ---- begin times and groups ----------------------------------------------------------------


def test_future_begin_time_waits_and_sets_next_begin() -> None:
    """begin_at in the future: 'BeginTime'; next_begin is the earliest such time."""
    queued = [
        make_job(1, begin_at=NOW + 300),
        make_job(2, begin_at=NOW + 60),
        make_job(3, begin_at=NOW),
        make_job(4, begin_at=NOW - 60),
    ]
    decision = decide(queued, gpus24(0))
    assert reasons(decision.waiting) == {1: "BeginTime", 2: "BeginTime"}
    assert started_ids(decision) == [3, 4]
    assert decision.next_begin == NOW + 60


def test_no_future_begin_time_means_no_next_begin() -> None:
    """Without future begin times there is no timed pass to ask for."""
    assert decide([make_job(1, begin_at=NOW - 1)], gpus24(0)).next_begin is None


def test_group_limit_caps_running_jobs_of_a_group() -> None:
    """A group with max_concurrent 2 and one running: one more starts, then 'GroupLimit'."""
    group: dict[str, Any] = {"group_id": 7, "max_concurrent": 2}
    queued = [make_job(i, **group) for i in (2, 3, 4)]
    queued.append(make_job(5, group_id=8, max_concurrent=2))
    decision = decide(queued, gpus24(0), [running(1, **group)])
    assert started_ids(decision) == [2, 5]
    assert reasons(decision.waiting) == {3: "GroupLimit", 4: "GroupLimit"}


# ---- reservation and backfill --------------------------------------------------------------


def starvation_scene(later: Job) -> Decision:
    """2 GPUs; job 1 runs on GPU 0 until NOW+100; head job 2 wants both GPUs; then `later`."""
    blocker = running(1, [0], time_limit=150, started_at=NOW - 50)
    return decide([make_job(2, gpus=2), later], gpus24(2), [blocker])


def test_head_job_blocked_on_resources_waits_for_them() -> None:
    """The head waits with 'Resources:GPU' while a shorter job backfills beside it."""
    decision = starvation_scene(make_job(3, gpus=1, time_limit=50))
    assert reasons(decision.waiting) == {2: "Resources:GPU"}


def test_backfill_job_ending_before_the_reservation_starts() -> None:
    """A 1-GPU job with time limit 50 ends before the head's reservation (NOW+100): it starts."""
    decision = starvation_scene(make_job(3, gpus=1, time_limit=50))
    assert gpus_of(decision) == {3: (1,)}


def test_backfill_job_ending_exactly_at_the_reservation_starts() -> None:
    """Ending exactly at the shadow time does not delay the head."""
    assert gpus_of(starvation_scene(make_job(3, gpus=1, time_limit=100))) == {3: (1,)}


@pytest.mark.parametrize("time_limit", [101, 500, None])
def test_job_that_would_delay_the_reservation_waits_with_priority(time_limit: int | None) -> None:
    """A later job still running at the shadow time (or without a limit) waits 'Priority'."""
    decision = starvation_scene(make_job(3, gpus=1, time_limit=time_limit))
    assert decision.starts == []
    assert reasons(decision.waiting) == {2: "Resources:GPU", 3: "Priority"}


def test_job_needing_nothing_starts_beside_the_reservation() -> None:
    """A 0-GPU, 0-memory job without a time limit never delays anyone: it starts."""
    decision = starvation_scene(make_job(3))
    assert gpus_of(decision) == {3: ()}


def test_job_fitting_beside_the_reservation_starts_without_a_time_limit() -> None:
    """A job on the GPU the reservation leaves spare starts even without a limit; others wait."""
    blocker = running(1, [0, 1], time_limit=100)
    queued = [make_job(2, gpus=3), make_job(3, gpu_pin=[3]), make_job(4, gpus=1)]
    decision = decide(queued, gpus24(4), [blocker])
    # At NOW+100 all four GPUs are free; the head takes 0-2, GPU 3 is spare.
    assert gpus_of(decision) == {3: (3,)}
    assert reasons(decision.waiting) == {2: "Resources:GPU", 4: "Priority"}


def test_backfill_respects_reserved_host_memory() -> None:
    """The head waits for host RAM; a later job keeping RAM it needs past the shadow time waits."""
    blocker = running(1, memory_mb=6 * GB, time_limit=100)
    queued = [
        make_job(2, memory_mb=8 * GB),
        make_job(3, memory_mb=3 * GB),
        make_job(4, memory_mb=3 * GB, time_limit=60),
        make_job(5, gpus=1),
    ]
    decision = decide(queued, gpus24(1, 4 * GB), [blocker])
    # At NOW+100 there will be 10G free: 8G for the head and 2G to spare. Job 3 (3G, no limit)
    # would keep too much; job 4 (3G) is done by NOW+60; job 5 needs no host RAM.
    assert gpus_of(decision) == {4: (), 5: (0,)}
    assert reasons(decision.waiting) == {2: "Resources:HostMemory", 3: "Priority"}


def test_blocker_without_time_limit_no_limit_job_does_not_jump_the_head() -> None:
    """Head blocked by a job without a time limit: a later job without one may not jump it."""
    # SPEC §5: "Jobs without a time limit never jump it", even when the shadow time is unknown.
    blocker = running(1, [0])  # no time limit: the shadow time is unknown (infinite)
    decision = decide([make_job(2, gpus=2), make_job(3, gpus=1)], gpus24(2), [blocker])
    assert decision.starts == []
    assert reasons(decision.waiting) == {2: "Resources:GPU", 3: "Priority"}


def test_reservation_counts_gpus_of_jobs_started_earlier_in_the_pass() -> None:
    """GPUs of a job started ahead of the head in this pass are reserved for it at that limit."""
    queued = [
        make_job(1, priority=20, gpus=1, time_limit=10),
        make_job(2, gpus=2),
        make_job(3, gpus=1),
        make_job(4, gpus=1, time_limit=5),
    ]
    decision = decide(queued, gpus24(2))
    assert gpus_of(decision) == {1: (0,), 4: (1,)}
    assert reasons(decision.waiting) == {2: "Resources:GPU", 3: "Priority"}


def test_head_that_can_never_fit_does_not_block_others() -> None:
    """A job pinned outside the machine cannot reserve; the next blocked job reserves instead."""
    blocker = running(1, [0], time_limit=100)
    queued = [make_job(2, gpu_pin=[5]), make_job(3, gpus=2), make_job(4, gpus=1)]
    decision = decide(queued, gpus24(2), [blocker])
    assert reasons(decision.waiting) == {
        2: "Resources:GPU",
        3: "Resources:GPU",
        4: "Priority",
    }


# ---- dependencies --------------------------------------------------------------------------


def test_job_whose_dependency_finished_starts() -> None:
    """A dependency in state Finished is satisfied."""
    decision = decide([make_job(2, depends_on=[1])], gpus24(0), states={1: JobState.FINISHED})
    assert started_ids(decision) == [2]
    assert decision.waiting == {} and decision.cancels == {}


@pytest.mark.parametrize("dep_state", [JobState.RUNNING, JobState.HOLD])
def test_job_whose_dependency_is_active_waits_with_reason_dependency(dep_state: JobState) -> None:
    """A dependency still Running (or on Hold) makes the job wait with reason Dependency."""
    decision = decide([make_job(2, depends_on=[1])], gpus24(0), states={1: dep_state})
    assert decision.starts == []
    assert decision.waiting == {2: Reason(ReasonKind.DEPENDENCY)}
    assert decision.cancels == {}


def test_job_depending_on_a_job_in_the_same_queue_waits() -> None:
    """A dependency that is itself queued (and starts in this pass) is not yet Finished."""
    decision = decide([make_job(1), make_job(2, depends_on=[1])], gpus24(0))
    assert started_ids(decision) == [1]
    assert decision.waiting == {2: Reason(ReasonKind.DEPENDENCY)}


def test_job_waits_until_all_its_dependencies_finished() -> None:
    """With several dependencies, one unfinished one is enough to wait."""
    states = {1: JobState.FINISHED, 2: JobState.RUNNING}
    decision = decide([make_job(3, depends_on=[1, 2])], gpus24(0), states=states)
    assert decision.waiting == {3: Reason(ReasonKind.DEPENDENCY)}


@pytest.mark.parametrize("dep_state", [JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT])
def test_job_whose_dependency_failed_is_cancelled(dep_state: JobState) -> None:
    """A dependency that ended without success cancels the job: 'DependencyFailed:<id>'."""
    decision = decide([make_job(2, depends_on=[1])], gpus24(0), states={1: dep_state})
    assert decision.starts == []
    assert decision.waiting == {}
    assert reasons(decision.cancels) == {2: "DependencyFailed:1"}


def test_afternotok_starts_after_a_failed_parent_and_is_cancelled_after_a_finished_one() -> None:
    """afternotok: runs when the parent Failed; cancelled 'DependencyFailed:<id>' if it Finished."""
    job = make_job(5, depends_on=[(4, NOT_OK)])
    assert started_ids(decide([job], gpus24(0), states={4: JobState.FAILED})) == [5]
    decision = decide([job], gpus24(0), states={4: JobState.FINISHED})
    assert decision.starts == []
    assert reasons(decision.cancels) == {5: "DependencyFailed:4"}


@pytest.mark.parametrize("parent", [JobState.FINISHED, JobState.FAILED, JobState.TIMEOUT])
def test_afterany_starts_after_any_end(parent: JobState) -> None:
    """afterany: runs once the parent ended, however it ended."""
    job = make_job(5, depends_on=[(4, ANY_END)])
    assert started_ids(decide([job], gpus24(0), states={4: parent})) == [5]


def test_any_mode_starts_when_one_parent_is_satisfied() -> None:
    """Mode any: one satisfied parent is enough; all impossible cancels."""
    job = make_job(5, depends_on=[1, 2], mode=DependencyMode.ANY)
    states = {1: JobState.RUNNING, 2: JobState.FINISHED}
    assert started_ids(decide([job], gpus24(0), states=states)) == [5]
    states = {1: JobState.FAILED, 2: JobState.RUNNING}
    assert reasons(decide([job], gpus24(0), states=states).waiting) == {5: "Dependency"}
    states = {1: JobState.FAILED, 2: JobState.CANCELLED}
    assert set(decide([job], gpus24(0), states=states).cancels) == {5}


def test_no_auto_cancel_keeps_the_job_waiting_on_its_dependency() -> None:
    """auto_cancel=False: an impossible dependency leaves the job waiting with 'Dependency'."""
    job = make_job(2, depends_on=[1], auto_cancel=False)
    decision = decide([job], gpus24(0), states={1: JobState.FAILED})
    assert decision.cancels == {}
    assert reasons(decision.waiting) == {2: "Dependency"}


def test_dependency_failure_cancels_transitively_within_the_queue() -> None:
    """The cancelled job's own queued dependents are cancelled too, each naming its dependency."""
    queued = [
        make_job(3, depends_on=[1]),
        make_job(4, depends_on=[3]),
        make_job(5, depends_on=[4]),
        make_job(6),
    ]
    decision = decide(queued, gpus24(0), states={1: JobState.FAILED})
    assert reasons(decision.cancels) == {
        3: "DependencyFailed:1",
        4: "DependencyFailed:3",
        5: "DependencyFailed:4",
    }
    assert started_ids(decision) == [6]
    assert decision.waiting == {}


def test_transitive_cancel_does_not_depend_on_queue_order() -> None:
    """A dependent listed before its failing dependency is still cancelled."""
    queued = [make_job(5, depends_on=[4], priority=255), make_job(4, depends_on=[1])]
    decision = decide(queued, gpus24(0), states={1: JobState.TIMEOUT})
    assert set(decision.cancels) == {4, 5}
    assert str(decision.cancels[5]) == "DependencyFailed:4"


def test_afternotok_on_a_job_cancelled_in_the_same_pass_starts() -> None:
    """A job cancelled in this pass counts as Cancelled: its afternotok dependent starts."""
    queued = [make_job(3, depends_on=[1]), make_job(4, depends_on=[(3, NOT_OK)])]
    decision = decide(queued, gpus24(0), states={1: JobState.FAILED})
    assert set(decision.cancels) == {3}
    assert started_ids(decision) == [4]


# ---- properties ----------------------------------------------------------------------------
#
# A small reference model of the machine, written independently of the policy's own pool:
# who holds which GPU, how much memory is promised, and whether a request fits.

GROUP_LIMITS = {101: 1, 102: 2}
ENDED_OK = frozenset({JobState.FINISHED})


@dataclass
class Holding:
    """A job that holds resources (running, or started in this pass) and when it ends."""

    job: Job
    gpu_ids: tuple[int, ...]
    ends: float  # math.inf without a time limit
    counted_in_host_free: bool  # running jobs' RAM is already out of host_free_mb


def holding_running(job: Job) -> Holding:
    return Holding(job, job.gpu_ids, job.ends_by() or math.inf, True)


def holding_started(job: Job, gpu_ids: tuple[int, ...]) -> Holding:
    ends = NOW + job.time_limit if job.time_limit is not None else math.inf
    return Holding(job, gpu_ids, ends, False)


def fits(res: Resources, on: Machine, holders: Sequence[Holding], host_free_mb: int) -> bool:
    """Could a job with these resources start beside `holders`, with this much host RAM?"""
    if res.memory_mb and res.memory_mb > host_free_mb:
        return False
    gpus = {g.index: g for g in on.gpus}
    exclusive = {i for h in holders if not h.job.resources.shared for i in h.gpu_ids}
    with_shared = {i for h in holders if h.job.resources.shared for i in h.gpu_ids}
    promised = {
        i: sum(
            h.job.resources.gpu_memory_mb or 0
            for h in holders
            if h.job.resources.shared and i in h.gpu_ids
        )
        for i in gpus
    }
    need = res.gpu_memory_mb or 0
    candidates = [i for i in res.gpu_pin if i in gpus] if res.gpu_pin else list(gpus)
    if res.shared:
        usable = [
            i
            for i in candidates
            if i not in exclusive
            and gpus[i].total_mb - gpus[i].foreign_used_mb - promised[i] >= need
        ]
    else:
        usable = [
            i
            for i in candidates
            if i not in exclusive
            and i not in with_shared
            and not gpus[i].foreign_pids
            and gpus[i].total_mb - gpus[i].foreign_used_mb >= need
        ]
    return len(usable) >= res.gpus


def earliest_fit(head: Job, on: Machine, holders: Sequence[Holding]) -> float:
    """The first end time at which `head` fits once the holders ended by then are gone."""
    for t in sorted({h.ends for h in holders if h.ends < math.inf}):
        left = [h for h in holders if h.ends > t]
        host = on.host_free_mb
        host += sum(h.job.resources.memory_mb or 0 for h in holders if h.counted_in_host_free)
        host -= sum(h.job.resources.memory_mb or 0 for h in left)
        if fits(head.resources, on, left, host):
            return t
    return math.inf


def satisfied(kind: DependencyKind, state: JobState | None) -> bool:
    if state is None or state not in ENDED_STATES:
        return False
    if kind is OK:
        return state in ENDED_OK
    if kind is NOT_OK:
        return state not in ENDED_OK
    return True


def impossible(kind: DependencyKind, state: JobState | None) -> bool:
    return state in ENDED_STATES and not satisfied(kind, state)


def deps_met(job: Job, states: Mapping[int, JobState | None]) -> bool:
    met = [satisfied(kind, states.get(dep)) for dep, kind in job.dependencies]
    return not met or (all(met) if job.dependency_mode is DependencyMode.ALL else any(met))


def deps_impossible(job: Job, states: Mapping[int, JobState | None]) -> bool:
    dead = [impossible(kind, states.get(dep)) for dep, kind in job.dependencies]
    return bool(dead) and (any(dead) if job.dependency_mode is DependencyMode.ALL else all(dead))


@dataclass
class Scene:
    machine: Machine
    queued: list[Job]
    running: list[Job]
    states: dict[int, JobState]  # of every non-queued job (running ones included)

    def __repr__(self) -> str:
        """Short enough to read in a falsifying example: only the fields that matter."""
        lines = [f"Scene(now={NOW}, machine={self.machine!r}, states={self.states!r})"]
        lines += [f"  {brief(job)}" for job in self.running + self.queued]
        return "\n".join(lines)


def brief(job: Job) -> str:
    fields = {
        "state": job.state.value,
        "prio": job.priority,
        "res": tuple(job.resources),
        "gpu_ids": job.gpu_ids,
        "limit": job.time_limit,
        "started": job.started_at,
        "deps": [(d, k.value) for d, k in job.dependencies],
        "mode": job.dependency_mode.value,
        "auto_cancel": job.auto_cancel,
        "begin": job.begin_at,
        "group": job.group_id,
    }
    return f"{job.id}: " + ", ".join(f"{k}={v}" for k, v in fields.items() if v not in ((), []))


sizes_mb = st.integers(1, 24).map(lambda gb: gb * GB)


@st.composite
def gpu_states(draw: st.DrawFn, index: int) -> GpuState:
    total = draw(st.integers(8, 80)) * GB
    if draw(st.integers(0, 4)) == 0:  # some GPUs run foreign processes
        used = draw(st.integers(0, total // 2))
        return GpuState(index, total, used, (draw(st.integers(100, 99999)),))
    if draw(st.integers(0, 5)) == 0:  # memory used but no compute process (e.g. a display)
        return GpuState(index, total, draw(st.integers(0, total // 4)))
    return GpuState(index, total)


@st.composite
def resources(draw: st.DrawFn, n_gpus: int) -> Resources:
    memory = draw(st.one_of(st.none(), st.none(), st.integers(1, 32 * GB)))
    kind = draw(st.sampled_from(["none", "exclusive", "exclusive", "shared", "shared"]))
    if kind == "none":
        return Resources(memory_mb=memory)
    pin: tuple[int, ...] = ()
    if draw(st.integers(0, 5)) == 0:  # pins, sometimes on GPUs the machine lacks
        pin = tuple(draw(st.lists(st.integers(0, n_gpus), min_size=1, max_size=2, unique=True)))
    gpus = len(pin) or draw(st.sampled_from([1, 1, 1, 2, 2, 3]))
    if not pin and n_gpus and draw(st.booleans()):  # mostly requests the machine can meet
        gpus = min(gpus, n_gpus)
    if kind == "shared":
        return Resources(gpus, True, draw(sizes_mb), pin, memory)
    gpu_memory = draw(st.one_of(st.none(), sizes_mb))
    return Resources(gpus, False, gpu_memory, pin, memory)


@st.composite
def scenes(draw: st.DrawFn, max_jobs: int = 25) -> Scene:
    """A machine, jobs 1..n in random roles, running jobs placed where they may really run."""
    n_gpus = draw(st.sampled_from([0, 1, 2, 2, 3, 4]))
    on = Machine(tuple(draw(gpu_states(i)) for i in range(n_gpus)), draw(st.integers(0, 64)) * GB)
    queued: list[Job] = []
    running_jobs: list[Job] = []
    states: dict[int, JobState] = {}
    holders: list[Holding] = []
    # Per-scene mixes: from an idle machine to a full one, from free jobs to long chains.
    # Half the scenes are only about resources (no dependencies, begin times or groups), so
    # that blocked jobs, reservations and backfill come up often.
    resources_only = draw(st.booleans())
    roles = ["queued"] * 6 + ["running"] * draw(st.integers(int(resources_only), 3))
    roles += [] if resources_only else ["ended", "hold"]
    dependency_odds = 0 if resources_only else draw(st.sampled_from([0, 1, 2]))  # in 4
    for job_id in range(1, draw(st.integers(0, max_jobs)) + 1):
        role = draw(st.sampled_from(roles))
        if role in ("ended", "hold"):
            states[job_id] = (
                JobState.HOLD if role == "hold" else draw(st.sampled_from(sorted(ENDED_STATES)))
            )
            continue
        res = draw(resources(n_gpus))
        time_limit = draw(st.sampled_from([None, 10, 50, 100, 100, 300, 500, 1000]))
        group = None if resources_only else draw(st.sampled_from([None] * 6 + [*GROUP_LIMITS]))
        common: dict[str, Any] = {
            "priority": draw(st.sampled_from([0, 10, 10, 20, 50])),
            "time_limit": time_limit,
            "group_id": group,
            "max_concurrent": GROUP_LIMITS.get(group) if group else None,
        }
        if role == "running":
            # Place it GPU by GPU where it may be, or give up on its GPUs (a GPU-less job).
            order = draw(st.permutations(range(n_gpus)))
            chosen: list[int] = []
            for index in order:
                probe = res._replace(gpus=1, gpu_pin=(index,))
                if len(chosen) < res.gpus and fits(probe, on, holders, 1 << 40):
                    chosen.append(index)
            if len(chosen) < res.gpus:
                res = Resources(memory_mb=res.memory_mb)
                chosen = []
            job = make_job(
                job_id,
                state=JobState.RUNNING,
                gpus=res.gpus,
                shared=res.shared,
                gpu_memory_mb=res.gpu_memory_mb if res.gpus else None,
                memory_mb=res.memory_mb,
                gpu_ids=chosen,
                started_at=NOW - draw(st.sampled_from([0, 0, 20, 100, 400])),  # some overdue
                **common,
            )
            holders.append(holding_running(job))
            running_jobs.append(job)
            states[job_id] = JobState.RUNNING
            continue
        deps = []
        if job_id > 1 and draw(st.integers(0, 3)) < dependency_odds:
            parents = draw(
                st.lists(st.integers(1, job_id - 1), min_size=1, max_size=2, unique=True)
            )
            deps = [(p, draw(st.sampled_from(list(DependencyKind)))) for p in parents]
        begin = draw(st.sampled_from([None] * 6 + [NOW - 5, NOW, NOW + 30, NOW + 600]))
        if resources_only:
            begin = None
        queued.append(
            make_job(
                job_id,
                gpus=res.gpus,
                shared=res.shared,
                gpu_memory_mb=res.gpu_memory_mb,
                gpu_pin=res.gpu_pin,
                memory_mb=res.memory_mb,
                depends_on=deps,
                mode=draw(st.sampled_from(list(DependencyMode))),
                auto_cancel=draw(st.sampled_from([True, True, True, False])),
                begin_at=begin,
                **common,
            )
        )
    if draw(st.booleans()):
        # A big job at the head of the queue: whole machine, a full GPU's memory, or much RAM.
        # It is likely blocked, so the rest of the queue exercises reservation and backfill.
        clean = sum(not g.foreign_pids for g in on.gpus)
        roomy = min([g.total_mb - g.foreign_used_mb for g in on.gpus] or [GB])
        big = draw(
            st.sampled_from(
                [
                    Resources(gpus=max(1, clean)),
                    Resources(max(1, n_gpus), True, roomy),
                    Resources(memory_mb=on.host_free_mb + draw(st.integers(1, 16)) * GB),
                ]
            )
        )
        queued.append(
            make_job(
                len(states) + len(queued) + 1,
                priority=255,
                gpus=big.gpus,
                shared=big.shared,
                gpu_memory_mb=big.gpu_memory_mb,
                memory_mb=big.memory_mb,
            )
        )
    return Scene(on, queued, running_jobs, states)


def check_occupancy(on: Machine, holders: Sequence[Holding]) -> None:
    """(a) no GPU memory over-promised; (c) exclusive jobs alone and away from foreign pids."""
    for gpu in on.gpus:
        here = [h for h in holders if gpu.index in h.gpu_ids]
        shared_mb = sum(h.job.resources.gpu_memory_mb or 0 for h in here if h.job.resources.shared)
        if any(h.job.resources.shared for h in here):
            assert shared_mb + gpu.foreign_used_mb <= gpu.total_mb, (gpu, here)
        if any(not h.job.resources.shared for h in here):
            assert len(here) == 1, (gpu, here)
            assert not gpu.foreign_pids, (gpu, here)


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_schedule_invariants_hold_for_random_scenes(scene: Scene) -> None:
    """Resources never over-committed, rules never broken, every queued job decided once."""
    on, queued = scene.machine, scene.queued
    check_occupancy(on, [holding_running(job) for job in scene.running])  # the scene is sane
    decision = schedule(queued, scene.running, scene.states, on, NOW)
    by_id = {job.id: job for job in queued}
    started = {start.job_id: start.gpu_ids for start in decision.starts}

    # (e) Every queued job is exactly one of started / waiting / cancelled.
    assert len(started) == len(decision.starts)
    parts = [set(started), set(decision.waiting), set(decision.cancels)]
    assert sum(map(len, parts)) == len(by_id)
    assert set().union(*parts) == set(by_id)

    # Each start gets as many distinct, existing GPUs as asked; a pin gets exactly its GPUs.
    indices = {gpu.index for gpu in on.gpus}
    for job_id, gpu_ids in started.items():
        res = by_id[job_id].resources
        assert len(set(gpu_ids)) == len(gpu_ids) == res.gpus
        assert set(gpu_ids) <= indices
        if res.gpu_pin:
            assert set(gpu_ids) == set(res.gpu_pin)

    # (a) and (c) over running plus started jobs.
    holders = [holding_running(job) for job in scene.running]
    holders += [holding_started(by_id[i], gpu_ids) for i, gpu_ids in started.items()]
    check_occupancy(on, holders)

    # (b) Host RAM of the jobs started in this pass fits in what is free.
    assert sum(by_id[i].resources.memory_mb or 0 for i in started) <= on.host_free_mb

    # (d) No start with unmet dependencies, a future begin time, or past its group's limit.
    # A job cancelled in this pass counts as Cancelled for its dependents (afterany/afternotok).
    after: dict[int, JobState | None] = {**scene.states}
    after.update(dict.fromkeys(decision.cancels, JobState.CANCELLED))
    for job_id in started:
        job = by_id[job_id]
        assert deps_met(job, after)
        assert job.begin_at is None or job.begin_at <= NOW
    for group, limit in GROUP_LIMITS.items():
        in_group = [job for job in scene.running if job.group_id == group]
        new = [i for i in started if by_id[i].group_id == group]
        assert not new or len(in_group) + len(new) <= limit

    # Cancels are exactly the auto-cancel jobs whose dependencies can no longer be met,
    # counting this pass's cancels as Cancelled (transitively); each names such a parent.
    for job in queued:
        should = job.auto_cancel and deps_impossible(job, after)
        assert (job.id in decision.cancels) == should, job
    for job_id, reason in decision.cancels.items():
        assert reason.kind is ReasonKind.DEPENDENCY_FAILED
        parent = int(reason.detail)
        kinds = [kind for dep, kind in by_id[job_id].dependencies if dep == parent]
        assert kinds and any(impossible(kind, after.get(parent)) for kind in kinds)

    # Waiting reasons are right: Dependency / BeginTime / GroupLimit when that rule holds the
    # job back, and a job waiting on Resources really does not fit (even after this pass).
    for job_id, reason in decision.waiting.items():
        job = by_id[job_id]
        if reason.kind is ReasonKind.DEPENDENCY:
            assert not deps_met(job, after)
        elif reason.kind is ReasonKind.BEGIN_TIME:
            assert job.begin_at is not None and job.begin_at > NOW
        elif reason.kind is ReasonKind.GROUP_LIMIT:
            assert job.group_id is not None
        elif reason.kind is ReasonKind.RESOURCES:
            host_left = on.host_free_mb - sum(by_id[i].resources.memory_mb or 0 for i in started)
            assert not fits(job.resources, on, holders, host_left)
        else:
            assert reason.kind is ReasonKind.PRIORITY
    future = [
        job.begin_at
        for job in queued
        if job.begin_at is not None and reason_is(decision, job.id, ReasonKind.BEGIN_TIME)
    ]
    assert decision.next_begin == min(future, default=None)

    # No Priority waits without a job blocked on resources ahead of them.
    order = [job.id for job in in_queue_order(queued)]
    blocked = [i for i in order if reason_is(decision, i, ReasonKind.RESOURCES)]
    for job_id in order:
        if reason_is(decision, job_id, ReasonKind.PRIORITY):
            assert blocked and order.index(blocked[0]) < order.index(job_id)


def reason_is(decision: Decision, job_id: int, kind: ReasonKind) -> bool:
    reason = decision.waiting.get(job_id)
    return reason is not None and reason.kind is kind


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_starts_never_delay_the_reserved_head_job(scene: Scene) -> None:
    """(f) The job holding the reservation can start no later than without this pass's backfill.

    H is the first job in queue order that waits on Resources and could fit at all once every
    job of ours has ended (the one the policy reserves for; earlier ones can never run, and only
    the first MAX_RESERVE_TRIES blocked jobs try). T0: the earliest time H fits when only the
    running jobs and the starts ahead of H in queue order hold resources (those have precedence
    over H); T1: the same with every start of this pass added. Jobs without a limit never end.
    """
    on, queued = scene.machine, scene.queued
    decision = schedule(queued, scene.running, scene.states, on, NOW)
    by_id = {job.id: job for job in queued}
    started = {start.job_id: start.gpu_ids for start in decision.starts}
    order = in_queue_order(queued)
    running_holders = [holding_running(job) for job in scene.running]
    all_host = on.host_free_mb + sum(job.resources.memory_mb or 0 for job in scene.running)

    head: Job | None = None
    ahead: list[Holding] = []
    tries = MAX_RESERVE_TRIES
    for job in order:
        if job.id in started:
            ahead.append(holding_started(job, started[job.id]))
        elif reason_is(decision, job.id, ReasonKind.RESOURCES) and tries > 0:
            tries -= 1
            if fits(job.resources, on, [], all_host):
                head = job
                break
    if head is None:
        return
    t0 = earliest_fit(head, on, running_holders + ahead)
    everything = running_holders + [holding_started(by_id[i], g) for i, g in started.items()]
    t1 = earliest_fit(head, on, everything)
    assert t1 <= t0, f"head {brief(head)}: T0={t0}, T1={t1}\n{scene!r}\n{decision}"


def test_backfill_prefers_gpus_the_reservation_leaves_spare() -> None:
    """A backfilled job takes a GPU outside the head's reservation when one is free."""
    blocker = running(1, [0, 1], time_limit=100)
    decision = decide([make_job(2, gpus=3), make_job(3, gpus=1)], gpus24(4), [blocker])
    assert [(s.job_id, s.gpu_ids) for s in decision.starts] == [(3, (3,))]
    assert reasons(decision.waiting) == {2: "Resources:GPU"}
