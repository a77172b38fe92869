"""CPU cores, --exclusive and --mem=0 in the scheduling pass (SPEC §4)."""

from __future__ import annotations

from dataclasses import replace

from gflow.core.model import Job
from gflow.core.policy import GpuState, Machine, earliest_start, schedule
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.spec import ALL_MEMORY, Resources
from gflow.core.states import JobState
from tests.unit.test_policy import NOW, make_job

CORES = (0, 1, 2, 3)
MACHINE = Machine((GpuState(0, 24_000), GpuState(1, 24_000)), 64_000, CORES)


def asking(job_id: int, **res: object) -> Job:
    return replace(make_job(job_id), resources=Resources(**res))  # type: ignore[arg-type]


def running(job: Job, gpus: tuple[int, ...] = (), cpus: tuple[int, ...] = ()) -> Job:
    return replace(job, state=JobState.RUNNING, gpu_ids=gpus, cpu_ids=cpus, started_at=NOW)


def test_cpu_jobs_get_distinct_cores_and_the_rest_wait() -> None:
    """Cores are booked like RAM: 2 + 2 fit on 4, the third waits with Resources:CPU."""
    jobs = [asking(1, cpus=2), asking(2, cpus=2), asking(3, cpus=1)]
    decision = schedule(jobs, [], {}, MACHINE, NOW)
    assert [(s.job_id, s.cpu_ids) for s in decision.starts] == [(1, (0, 1)), (2, (2, 3))]
    assert decision.waiting[3] == Reason(ReasonKind.RESOURCES, "CPU")


def test_running_jobs_keep_their_cores() -> None:
    """A running job's cores are not given again; jobs without a CPU request are unbooked."""
    holder = running(asking(1, cpus=3), cpus=(0, 1, 2))
    decision = schedule([asking(2, cpus=1), asking(3)], [holder], {}, MACHINE, NOW)
    assert [(s.job_id, s.cpu_ids) for s in decision.starts] == [(2, (3,)), (3, ())]


def test_exclusive_waits_for_an_empty_machine_then_holds_everything() -> None:
    """Nothing beside an exclusive job, in either direction."""
    other = running(asking(1))
    decision = schedule([asking(2, exclusive=True)], [other], {}, MACHINE, NOW)
    assert decision.waiting[2] == Reason(ReasonKind.RESOURCES, "Exclusive")
    decision = schedule([asking(2, exclusive=True), asking(3)], [], {}, MACHINE, NOW)
    assert [(s.job_id, s.gpu_ids, s.cpu_ids) for s in decision.starts] == [(2, (0, 1), CORES)]
    assert decision.waiting[3] == Reason(ReasonKind.RESOURCES, "Exclusive")


def test_all_memory_runs_beside_jobs_without_memory_but_not_with() -> None:
    """--mem=0 holds all the RAM: jobs that ask for RAM wait, others still start."""
    whole = running(asking(1, memory_mb=ALL_MEMORY))
    decision = schedule([asking(2, memory_mb=100), asking(3)], [whole], {}, MACHINE, NOW)
    assert [s.job_id for s in decision.starts] == [3]
    assert decision.waiting[2] == Reason(ReasonKind.RESOURCES, "HostMemory")


def test_gpu_type_selects_that_model() -> None:
    """gpu:a100:1 gets GPU 1 when GPU 0 is another model."""
    machine = Machine(
        (GpuState(0, 24_000, name="NVIDIA L4"), GpuState(1, 80_000, name="NVIDIA A100-SXM4")),
        64_000,
        CORES,
    )
    decision = schedule([asking(1, gpus=1, gpu_model="a100")], [], {}, machine, NOW)
    assert decision.starts[0].gpu_ids == (1,)


def test_earliest_start_is_when_a_time_limit_frees_the_cores() -> None:
    """sbatch --test-only's estimate: now if it fits, else when a running limit ends."""
    assert earliest_start(asking(5, cpus=4), [], MACHINE, NOW) == (NOW, None)
    holder = replace(running(asking(1, cpus=4), cpus=CORES), time_limit=600)
    at, reason = earliest_start(asking(5, cpus=1), [holder], MACHINE, NOW)
    assert at == NOW + 600 and reason == Reason(ReasonKind.RESOURCES, "CPU")
    endless = running(asking(1, cpus=4), cpus=CORES)
    assert earliest_start(asking(5, cpus=1), [endless], MACHINE, NOW)[0] is None
