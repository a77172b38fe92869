"""The SPEC §11 workloads against gflow 0.4, as close as it allows to what bench.ours does.

Differences, each stated in the row's note:
- gflow has no fake GPUs and this machine has none, so job-latency jobs ask for 0 GPUs,
  and the big queue is filled with 1-GPU jobs (they stay Queued, reason Resources), since
  gflow has no --hold on submit.
- gflow's tmux executor launches jobs one at a time with a 1 s pause each, so a burst of
  1,000 would take over half an hour: a burst is cut off after `peer_cap` seconds and the
  row says how many had ended (the wall figure is then a lower bound).
- Each group of workloads gets a fresh daemon (a cut-off burst would keep the next busy).
- The scheduling pass is an in-process Rust function with no outside entry point.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    DEADLINE,
    ENDED,
    EXIT_JOB,
    EXIT_POLL,
    START_JOB,
    START_POLL,
    BenchError,
    Figure,
    Figures,
    Sizes,
    burst_figures,
    median_ms,
    ms_figures,
    wait_printed_time,
    wall_times,
)
from bench.peer import PeerDaemon, PeerInstall, unix_time

BURST_POLL = 0.25
_SUBMITTED = re.compile(r"Submitted batch job (\d+)")


def submit_api(peer: PeerDaemon, command: str) -> int:
    body = {"command": command, "run_dir": str(peer.dir), "submitted_by": peer.env["USER"]}
    job_id: int = peer.api("POST", "/jobs", body)["id"]
    return job_id


def wait_state(peer: PeerDaemon, job_id: int, states: frozenset[str], poll: float) -> Any:
    deadline = time.perf_counter() + DEADLINE
    while True:
        job = peer.api("GET", f"/jobs/{job_id}")
        if job["state"] in states:
            return job
        if job["state"] in ENDED:
            raise BenchError(f"gflow 0.4 job {job_id} ended {job['state']} ({job['reason']})")
        if time.perf_counter() > deadline:
            raise BenchError(f"gflow 0.4 job {job_id} still {job['state']} after {DEADLINE} s")
        time.sleep(poll)


def one_start(peer: PeerDaemon) -> tuple[float, float, float]:
    """(client sees Running, daemon started_at - submitted_at, command's own start) in s."""
    wall0, t0 = time.time(), time.perf_counter()
    job_id = submit_api(peer, START_JOB)
    job = wait_state(peer, job_id, frozenset({"Running"}), START_POLL)
    seen = time.perf_counter() - t0
    printed = wait_printed_time(peer.logs / f"{job_id}.log")
    peer.api("POST", f"/jobs/{job_id}/cancel")
    wait_state(peer, job_id, ENDED, EXIT_POLL)
    peer.tmux("kill-session", "-t", job["run_name"])
    daemon = unix_time(job["started_at"]) - unix_time(job["submitted_at"])
    return seen, daemon, printed - wall0


def one_exit(peer: PeerDaemon) -> float:
    """finished_at minus the job's last printed time, in s."""
    job_id = submit_api(peer, EXIT_JOB)
    job = wait_state(peer, job_id, frozenset({"Finished"}), EXIT_POLL)
    printed = wait_printed_time(peer.logs / f"{job_id}.log")
    peer.tmux("kill-session", "-t", job["run_name"])
    return unix_time(job["finished_at"]) - printed


def measure_latency(peer: PeerDaemon, runs: int) -> Figures:
    starts = [one_start(peer) for _ in range(runs)]
    exits = [one_exit(peer) for _ in range(runs)]
    how = "HTTP API (GET /jobs/{id}) polled every 1 ms; 0 GPUs (gflow has no fake GPUs)"
    return {
        **ms_figures("start", [s[0] for s in starts], how),
        "start_daemon_p50": median_ms([s[1] for s in starts], "daemon clock"),
        "start_command_p50": median_ms([s[2] for s in starts], "job prints time.time()"),
        "exit_p50": median_ms(exits, "finished_at − the job's last printed time"),
    }


def submitted_ids(output: str) -> list[int]:
    return [int(m) for m in _SUBMITTED.findall(output)]


def states_of(peer: PeerDaemon, ids: set[int], timeout: float) -> Counter[str] | None:
    """How many of `ids` are in each state; None if its API did not answer within `timeout`."""
    try:
        jobs = peer.api("GET", "/jobs?limit=100000", timeout=timeout)
    except TimeoutError:
        return None
    return Counter(str(job["state"]) for job in jobs if job["id"] in ids)


def count_active(peer: PeerDaemon, ids: set[int], timeout: float) -> int | None:
    counts = states_of(peer, ids, timeout)
    return None if counts is None else sum(n for s, n in counts.items() if s not in ENDED)


def wait_burst(peer: PeerDaemon, ids: set[int], t0: float, cap: float) -> tuple[float, int | None]:
    """Poll until none of `ids` is active or `cap` s after t0: (seconds, active then)."""
    active: int | None = len(ids)
    while active:
        left = cap - (time.perf_counter() - t0)
        if left <= 0:
            break
        time.sleep(min(BURST_POLL, left))
        active = count_active(peer, ids, max(left, 1.0))
    return time.perf_counter() - t0, active


def burst(peer: PeerDaemon, sizes: Sizes, one_array: bool) -> Figures:
    """`burst` jobs of `true` via the CLI; wait for all to end or the cap."""
    t0 = time.perf_counter()
    if one_array:
        ids = submitted_ids(peer.cli("gbatch", "--array", f"1-{sizes.burst}", "true").stdout)
    else:
        calls = (peer.cli("gbatch", "true").stdout for _ in range(sizes.burst))
        ids = [job_id for output in calls for job_id in submitted_ids(output)]
    if len(ids) != sizes.burst:
        raise BenchError(f"gflow 0.4 accepted {len(ids)} of {sizes.burst} jobs")
    wall, active = wait_burst(peer, set(ids), t0, sizes.peer_cap)
    ended = states_of(peer, set(ids), 60)
    prefix = "array" if one_array else "cli_burst"
    figures = burst_figures(prefix, wall, ended, sizes.burst, peer.tmux_sessions())
    if active != 0:
        still = "its API did not answer in time" if active is None else f"{active} still active"
        note = (
            f"cut off at {wall:.0f} s ({still}); it launches about one job a second and"
            " answers its API late meanwhile; states counted by one more query after that"
        )
        figures[f"{prefix}_wall"] = Figure(wall, at_least=True, note=note)
        ok = figures[f"{prefix}_ok"]
        figures[f"{prefix}_ok"] = Figure(text=f"{ok.text} (cut off)", ok=False, note=note)
    return figures


def measure_cold_cli(peer: PeerDaemon, runs: int) -> Figures:
    for _ in range(3):
        peer.cli("gbatch", "--gpus", "1", "true")  # no GPUs here: stays Queued
    note = "3 queued jobs; fresh process each run"
    gqueue, gbatch = str(peer.install.bin / "gqueue"), str(peer.install.bin / "gbatch")
    return {
        "cold_gqueue": median_ms(wall_times([gqueue], peer.env, runs, peer.dir), note),
        "cold_gbatch": median_ms(
            wall_times([gbatch, "--dry-run", "true"], peer.env, runs, peer.dir), note
        ),
    }


def measure_big(peer: PeerDaemon, sizes: Sizes) -> Figures:
    """`big` queued 1-GPU jobs (arrays of ≤ 1,000, its batch limit), then gqueue and RSS."""
    left = sizes.big
    while left:
        chunk = min(left, 1000)
        done = peer.cli("gbatch", "--gpus", "1", "--array", f"1-{chunk}", "true", timeout=600)
        if len(submitted_ids(done.stdout)) != chunk:
            raise BenchError(f"gflow 0.4: filling the queue failed: {done.stderr.strip()}")
        left -= chunk
    note = f"{sizes.big} queued 1-GPU jobs (no GPUs here), fresh process each run"
    bin_dir, cwd = peer.install.bin, peer.dir
    plain = wall_times([str(bin_dir / "gqueue")], peer.env, sizes.big_runs, cwd)
    every = wall_times([str(bin_dir / "gqueue"), "-a"], peer.env, sizes.big_runs, cwd)
    rss = psutil.Process(peer.pid).memory_info().rss / 2**20
    return {
        "gqueue_big": median_ms(plain, note),
        "gqueue_big_all": median_ms(every, note),
        "rss_big": Figure(rss, note="psutil RSS of its gflowd pid"),
    }


def measure_peer(
    install: PeerInstall, root: Path, sizes: Sizes, log: Callable[[str], None]
) -> Figures:
    """Every row for gflow 0.4; one fresh daemon per group of workloads."""
    figures: Figures = {}
    with PeerDaemon(install, root) as peer:
        log("gflow 0.4: job start and exit latency")
        figures.update(measure_latency(peer, sizes.runs))
    with PeerDaemon(install, root) as peer:
        log("gflow 0.4: cold CLI starts, then gqueue and RSS with a big queue")
        figures.update(measure_cold_cli(peer, sizes.cli_runs))
        figures.update(measure_big(peer, sizes))
    for one_array in (True, False):
        with PeerDaemon(install, root) as peer:
            how = "one array" if one_array else "separate gbatch calls"
            log(f"gflow 0.4: {sizes.burst} jobs as {how} (cut off at {sizes.peer_cap:.0f} s)")
            figures.update(burst(peer, sizes, one_array))
    figures["policy_pass"] = Figure.missing("n/a: an in-process Rust function, no outside entry")
    return figures
