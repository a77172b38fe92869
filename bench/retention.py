"""The first [history] sweep of a year's store, and the API meanwhile (issue 21).

    python -m bench.retention [--ended 1000000] [--keep 90d]

Builds the big store of bench.scale (ended jobs spread over a year, 10,000 queued), starts
a daemon with `[history] keep`, and asks for /health every 50 ms until the sweep has
forgotten every job past `keep`: prints how many went, how long it took, and the API's
median, p95 and worst answer meanwhile, as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from bench.common import BenchError, wait_until
from bench.ours import OursDaemon
from bench.scale import GPUS, build
from gflow.core.parse import parse_time_limit
from gflow.store.db import Store

ENDED = ("Finished", "Failed", "Cancelled", "Timeout")


def ended_jobs(daemon: OursDaemon) -> int:
    counts = daemon.client.request("GET", "/status")["jobs"]
    return sum(counts.get(state, 0) for state in ENDED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ended", type=int, default=1_000_000)
    parser.add_argument("--keep", default="90d")
    args = parser.parse_args()
    keep = parse_time_limit(args.keep)
    daemon = OursDaemon()
    daemon.env["GFLOW_FAKE_GPUS"] = f"{GPUS}x80G"
    daemon.paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    daemon.paths.config_file.write_text(f'[history]\nkeep = "{args.keep}"\n')
    now = time.time()
    store = Store.open(daemon.paths.database)
    try:
        build(store, daemon.paths.logs_dir, args.ended, now, random.Random(21))
        kept = int(
            store.query(  # what the sweep must leave
                "SELECT COUNT(*) FROM jobs WHERE state IN (?, ?, ?, ?) AND finished_at >= ?",
                (*ENDED, now - keep),
            )[0][0]
        )
    finally:
        store.close()
    latencies: list[float] = []
    with daemon:
        t0 = time.perf_counter()
        before = ended_jobs(daemon)

        def swept() -> bool:
            for _ in range(20):
                start = time.perf_counter()
                daemon.client.health()
                latencies.append(time.perf_counter() - start)
                time.sleep(0.05)
            return ended_jobs(daemon) <= kept

        wait_until("the sweep to finish", swept, 1800, 0)
        took = time.perf_counter() - t0
    latencies.sort()
    print(
        json.dumps(
            {
                "ended": before,
                "forgotten": before - kept,
                "seconds": round(took),
                "health_p50_ms": round(statistics.median(latencies) * 1000, 1),
                "health_p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
                "health_max_ms": round(latencies[-1] * 1000),
                "samples": len(latencies),
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"bench.retention: {exc}")
