"""What every benchmark target shares: the figure record, sizes, statistics, timing helpers.

A *target* is one scheduler under test (ours: bench.ours; gflow 0.4: bench.peer). Each
measures the same workloads and answers a `Figure` per row key (see bench.report.ROWS);
a workload it cannot run answers `Figure.missing(why)`.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ENDED = frozenset({"Finished", "Failed", "Cancelled", "Timeout"})
DEADLINE = 30.0  # seconds any single wait for one job may take
START_POLL = 0.001  # seconds between polls while waiting for Running
EXIT_POLL = 0.01
# The job of the start figures prints its own start time, then idles until cancelled.
START_JOB = 'python3 -c "import time; print(repr(time.time()), flush=True); time.sleep(60)"'
# The job of the exit figure prints its own end time as its last act.
EXIT_JOB = 'python3 -c "import time; time.sleep(0.2); print(repr(time.time()))"'
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FLOAT_LINE = re.compile(r"^\d{9,11}\.\d+$")


class BenchError(Exception):
    """The benchmark could not measure what it meant to (not: a budget was missed)."""


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does (full run or --quick)."""

    runs: int  # samples for the latency rows
    cli_runs: int  # cold CLI runs per command
    burst: int  # jobs per burst
    big: int  # jobs in the database for the gqueue / RSS rows
    big_runs: int  # gqueue runs with the big queue
    policy_repeat: int  # scheduling passes timed
    peer_cap: float  # seconds a peer burst may take before it is cut off
    huge: int = 100_000  # jobs in the array submitted while the API is timed
    sampled: int = 100  # running jobs whose processes one tick looks at


def sizes_for(runs: int, quick: bool, peer_cap: float) -> Sizes:
    if quick:
        return Sizes(runs, runs, 20, 200, 2, 3, peer_cap, huge=5_000, sampled=10)
    # gqueue and cold starts are short and noisy on a shared machine: more samples, steadier
    # medians.
    return Sizes(runs, max(5, runs), 1000, 10_000, 15, 30, peer_cap)


@dataclass(frozen=True)
class Figure:
    """One target's answer for one row: a number (in the row's unit) or why there is none."""

    value: float | None = None
    text: str | None = None  # shown instead of the number (e.g. "1000/1000 Finished")
    ok: bool | None = None  # pass/fail of a row that has no numeric budget
    note: str = ""  # how it was measured, or why it could not be
    at_least: bool = False  # the run was cut off: the true value is larger
    samples: tuple[float, ...] = field(default=())

    @classmethod
    def missing(cls, why: str) -> Figure:
        return cls(note=why)


Figures = dict[str, Figure]


def percentile(samples: Sequence[float], pct: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def ms_figures(prefix: str, samples: Sequence[float], note: str = "") -> Figures:
    """`<prefix>_p50` and `<prefix>_p99` in milliseconds from samples in seconds."""
    kept = tuple(samples)
    return {
        f"{prefix}_p50": Figure(percentile(kept, 50) * 1000, note=note, samples=kept),
        f"{prefix}_p99": Figure(percentile(kept, 99) * 1000, note=note, samples=kept),
    }


def median_ms(samples: Sequence[float], note: str = "") -> Figure:
    return Figure(statistics.median(samples) * 1000, note=note, samples=tuple(samples))


def wall_times(
    argv: list[str], env: Mapping[str, str], runs: int, cwd: Path, check: bool = True
) -> list[float]:
    """Wall time (s) of `argv` as a fresh process, `runs` times, after one untimed run."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        done = subprocess.run(
            argv, env=dict(env), cwd=cwd, capture_output=True, timeout=120, check=False
        )
        elapsed = time.perf_counter() - t0
        if check and done.returncode != 0:
            raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]!r}")
        if i:
            times.append(elapsed)
    return times


def wait_until(what: str, ready: Callable[[], bool], timeout: float, poll: float) -> float:
    """Poll `ready` until it is true; the time.time() it was first seen true."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not after {timeout:.0f} s")
        time.sleep(poll)
    return time.time()


def printed_times(log: Path) -> list[float]:
    """The Unix times a job printed on lines of their own (terminal escapes removed)."""
    try:
        text = _ANSI.sub("", log.read_text(errors="replace"))
    except FileNotFoundError:
        return []
    lines = (line.strip() for line in re.split(r"[\r\n]+", text))
    return [float(line) for line in lines if _FLOAT_LINE.match(line)]


def wait_printed_time(log: Path, timeout: float = DEADLINE) -> float:
    """The first time the job printed, waiting for it to reach the log."""
    found: list[float] = []

    def ready() -> bool:
        found[:] = printed_times(log)
        return bool(found)

    wait_until(f"a printed time in {log}", ready, timeout, EXIT_POLL)
    return found[0]


def burst_figures(
    prefix: str,
    wall: float,
    ended: Counter[str] | None,
    total: int,
    left: int,
    note: str = "",
) -> Figures:
    """The two rows of a burst: the wall time, and how its jobs ended (by state) with how
    many tmux sessions were left; None: the daemon did not say."""
    finished = None if ended is None else ended["Finished"]
    ok = finished == total and left == 0
    text = f"{'?' if finished is None else finished}/{total} Finished"
    others = [f"{n} {s}" for s, n in sorted((ended or Counter()).items()) if s != "Finished"]
    if others:
        text += f" ({', '.join(others)})"
    text += f", {left} tmux sessions left"
    return {f"{prefix}_wall": Figure(wall, note=note), f"{prefix}_ok": Figure(text=text, ok=ok)}
