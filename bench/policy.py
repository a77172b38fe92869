"""One scheduling pass over a big queue: the SPEC §11 budget is 20 ms for 10,000 queued.

    python -m bench.policy [--queued 10000] [--running 100] [--repeat 30]

Builds a machine of 8 fake 80G GPUs, `--running` running jobs holding some of them (with
time limits, so the head job gets a reservation) and `--queued` queued jobs of mixed
kinds (exclusive and shared GPU jobs, CPU jobs with RAM requests, dependencies, priorities),
then times `gflow.core.policy.schedule` (the pure function the daemon calls on every event).
Prints the median and p90 of the repeats, in milliseconds, as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import replace

from gflow.core.dependencies import DependencyKind, DependencyMode
from gflow.core.model import Job
from gflow.core.policy import GpuState, Machine, schedule
from gflow.core.reservations import Reservation
from gflow.core.sharing import NO_RULES, Quota, SharingRules
from gflow.core.spec import Resources
from gflow.core.states import JobState

NOW = 1_800_000_000.0


def make_job(job_id: int, state: JobState, rng: random.Random, gpus: int) -> Job:
    kind = rng.random()
    if kind < 0.4:
        res = Resources(gpus=rng.choice([1, 1, 2, 4]))
    elif kind < 0.7:
        res = Resources(gpus=1, shared=True, gpu_memory_mb=rng.choice([8192, 16384, 30000]))
    else:
        res = Resources(memory_mb=rng.choice([512, 2048, 8192]))
    deps = ((job_id - 1, DependencyKind.AFTER_OK),) if job_id > 1 and rng.random() < 0.1 else ()
    running = state is JobState.RUNNING
    return Job(
        id=job_id,
        name="",
        user="bench",
        uid=1000,
        command="true",
        script="",
        workdir="/tmp",
        state=state,
        reason=None,
        priority=rng.choice([10, 10, 10, 50, 200]),
        resources=res,
        time_limit=rng.choice([None, 600, 3600]) if not running else 3600,
        dependencies=deps,
        dependency_mode=DependencyMode.ALL,
        auto_cancel=True,
        array_task_id=None,
        keep_session=False,
        submitted_at=NOW - 100,
        log_path="",
        started_at=NOW - rng.randint(0, 3000) if running else None,
        gpu_ids=tuple(rng.sample(range(gpus), min(res.gpus, gpus))) if running else (),
    )


USERS = 20  # with --team: the jobs spread over this many users and their projects


def team_rules(users: int) -> SharingRules:
    """Quotas for every user and project, fair-share, and three reservations."""
    return SharingRules(
        user_quotas={1000 + u: Quota(max_running_jobs=8, max_running_gpus=4) for u in range(users)},
        project_quotas={f"p{u % 5}": Quota(max_running_gpus=6) for u in range(users)},
        fair_share_usage={1000 + u: float(u) for u in range(users)},
        fair_share=True,
        reservations=(
            Reservation(1, "u0", 1000, NOW - 60, NOW + 3600, gpu_ids=(0, 1)),
            Reservation(2, "u1", 1001, NOW + 1800, NOW + 7200, gpus=2),
            Reservation(3, "u2", 1002, NOW + 86400, NOW + 90000, gpu_ids=(7,)),
        ),
    )


def time_passes(
    queued: int, running: int, repeat: int, gpus: int = 8, team: bool = False
) -> list[float]:
    """Seconds taken by each of `repeat` schedule() calls over the same big queue; with
    `team`, from 20 users under quotas, fair-share and reservations."""
    rng = random.Random(42)
    running_jobs = [make_job(i + 1, JobState.RUNNING, rng, gpus) for i in range(running)]
    queued_jobs = [make_job(running + i + 1, JobState.QUEUED, rng, gpus) for i in range(queued)]
    rules = NO_RULES
    if team:
        spread = [
            replace(j, uid=1000 + j.id % USERS, user=f"u{j.id % USERS}", project=f"p{j.id % 5}")
            for j in running_jobs + queued_jobs
        ]
        running_jobs, queued_jobs = spread[:running], spread[running:]
        rules = team_rules(USERS)
    machine = Machine(tuple(GpuState(i, 81920) for i in range(gpus)), host_free_mb=256_000)
    states = {job.id: JobState.RUNNING for job in running_jobs}
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        schedule(queued_jobs, running_jobs, states, machine, NOW, rules)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--team", action="store_true", help="20 users, quotas, reservations")
    args = parser.parse_args()
    passes = time_passes(args.queued, args.running, args.repeat, team=args.team)
    samples = sorted(s * 1000 for s in passes)
    print(
        json.dumps(
            {
                "queued": args.queued,
                "running": args.running,
                "p50_ms": round(statistics.median(samples), 2),
                "p90_ms": round(samples[max(0, int(len(samples) * 0.9) - 1)], 2),
                "budget_ms": 20,
            }
        )
    )


if __name__ == "__main__":
    main()
