"""What watching running jobs costs the daemon: one tick's look at N jobs' process trees.

    python -m bench.sampling [--jobs 100] [--repeat 30]

Starts N process trees shaped like jobs (a shell standing for the wrapper, with one child
sleeping), then times `runner.sampling.sample_all` over all of them with two fake GPUs,
as the daemon's 1 s tick does. Prints the median and p90 in milliseconds as JSON; at one
tick a second, the median in ms divided by 10 is the percent of one core it costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

from gflow.core.model import GpuInfo, JobProcesses
from gflow.runner.control import boot_id
from gflow.runner.sampling import sample_all
from gflow.runner.wrapper import start_ticks


def time_sampling(jobs: int, repeat: int) -> list[float]:
    """Seconds per look at `jobs` running jobs, `repeat` times."""
    shells = [
        subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
        for _ in range(jobs)
    ]
    try:
        boot = boot_id()
        time.sleep(0.2)  # let each shell fork its child
        watched = {
            n: (JobProcesses(boot, p.pid, start_ticks(p.pid)), (n % 2,))
            for n, p in enumerate(shells)
        }
        gpus = [GpuInfo(i, "Fake GPU", 24576, processes=((999999, 100),)) for i in range(2)]
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            looked = sample_all(watched, gpus, boot)
            samples.append(time.perf_counter() - t0)
            assert len(looked) == jobs
        return samples
    finally:
        for shell in shells:
            subprocess.run(["pkill", "-KILL", "-s", str(shell.pid)], capture_output=True)
            shell.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sampling", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    samples = sorted(s * 1000 for s in time_sampling(args.jobs, args.repeat))
    print(
        json.dumps(
            {
                "jobs": args.jobs,
                "median_ms": statistics.median(samples),
                "p90_ms": samples[int(len(samples) * 0.9)],
            }
        )
    )


if __name__ == "__main__":
    main()
