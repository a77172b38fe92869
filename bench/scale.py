"""A year on a busy shared machine (issue 21; SPEC §11's scale budgets).

    python -m bench.scale [--ended 1000000] [--runs 7] [--out FILE]

Builds two stores and runs the same measurements against each: a small one (50 ended
jobs) and a big one (`--ended` ended jobs from 50 users and 20 projects over the last
year: arrays of up to 1,000 tasks, retries, the events trimmed as the daemon trims them,
logs purged; plus 10,000 queued GPU jobs, and 100 running ones), then prints each
everyday command's median on both and the ratio (budget: 1.5x), the daemon's start-up,
RSS, the database's size, a scheduling pass with fair-share, quotas and a reservation on,
and cancelling a 20,000-job array.

The history goes straight into SQLite through the store's own insert (Store.insert_jobs),
a submission at a time, and is then ended with one UPDATE per submission (which fires the
same triggers a job's end does); a million launches would take days. The 100 running jobs
are real: `sleep` in tmux, started by the daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench.common import BenchError, wait_until, wall_times
from bench.ours import BIN, ROOT, OursDaemon
from gflow.core.spec import JobSpec
from gflow.store.db import NewJob, Store

USERS = 50
PROJECTS = 20
QUEUED = 10_000
RUNNING = 100
GPUS = 8
DAY = 86400.0
YEAR = 365 * DAY
ENDS = ["Finished"] * 80 + ["Failed"] * 12 + ["Cancelled"] * 5 + ["Timeout"] * 3
CONFIG = """\
[fair_share]
enabled = true
[quota.default_user]
max_running_gpus = 4
max_gpu_hours_per_day = 48
"""


def me() -> tuple[str, int]:
    uid = os.getuid()
    return pwd.getpwuid(uid).pw_name, uid


def owners() -> list[tuple[str, int]]:
    """50 users; the first is whoever runs the bench, so `gqueue` and `gstats` see a
    fiftieth of the history as their own."""
    return [me()] + [(f"user{n:02}", 40_000 + n) for n in range(1, USERS)]


def build(store: Store, logs: Path, ended: int, now: float, rng: random.Random) -> None:
    """`ended` ended jobs over the last year, oldest first, then QUEUED queued ones."""
    people = owners()
    made = 0
    while made < ended:
        size = min(ended - made, rng.choice([1, 1, 1, 1, 5, 20, 100, 1000]))
        user, uid = rng.choice(people)
        project = f"p{rng.randrange(PROJECTS):02}"
        at = now - YEAR + YEAR * made / ended
        env = {"PATH": "/usr/bin:/bin", "HOME": f"/home/{user}", "CUDA_VISIBLE_DEVICES": ""}
        new = [
            NewJob(
                JobSpec.from_dict(
                    {
                        "command": f"python train.py --seed {task}",
                        "workdir": f"/home/{user}/runs",
                        "env": env,
                        "gpus": rng.choice([0, 1, 1, 2]),
                        "project": project,
                        "time_limit": 4 * 3600,
                        "array_task_id": task if size > 1 else None,
                    }
                ),
                user,
                uid,
                (),
                "tmux",
            )
            for task in range(size)
        ]
        jobs = store.insert_jobs(new, at, logs)
        end(store, [j.id for j in jobs], at, rng)
        made += size
    env = {"PATH": "/usr/bin:/bin"}
    queued = [
        NewJob(
            JobSpec.from_dict(
                {"command": "sleep 3600", "workdir": "/tmp", "env": env, "gpus": 1,
                 "project": f"p{n % PROJECTS:02}"}
            ),
            *people[n % USERS],
            (),
            "tmux",
        )
        for n in range(QUEUED)
    ]  # fmt: skip
    store.insert_jobs(queued, now, logs)
    store.trim_events(now)  # as the daemon's hourly trim keeps it


def end(store: Store, ids: list[int], at: float, rng: random.Random) -> None:
    """The jobs of one submission waited, ran and ended; one in twenty was a retry."""
    rows = []
    for job_id in ids:
        state = rng.choice(ENDS)
        wait = rng.expovariate(1 / 600)
        run = None if state == "Cancelled" and rng.random() < 0.5 else rng.expovariate(1 / 3600)
        started = None if run is None else at + wait
        finished = min(at + wait + (run or 0), time.time() - 1)  # none ends in the future
        started = None if started is None else min(started, finished)
        gpus = json.dumps(list(range(rng.choice([0, 1, 1, 2]))) if started else [])
        exit_code = {"Finished": 0, "Failed": 1}.get(state)
        retry_of = job_id - 1 if job_id > ids[0] and rng.random() < 0.05 else None
        rows.append((state, started, finished, gpus, exit_code, retry_of, job_id))
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE jobs SET state = ?, reason = NULL, started_at = ?, finished_at = ?,"
            " gpu_ids = ?, exit_code = ?, first_attempt = ? WHERE id = ?",
            rows,
        )


# ---- measuring --------------------------------------------------------------------------


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def started_in(daemon: OursDaemon, runs: int) -> float:
    """Median seconds from `gflowd start` to the first answer, over `runs` restarts."""
    samples = []
    for _ in range(runs):
        daemon.cli("gflowd", "stop", timeout=120)
        t0 = time.perf_counter()
        daemon.cli("gflowd", "start", timeout=120)
        wait_until("the daemon to answer", lambda: ok(daemon.client.health), 60, 0.005)
        samples.append(time.perf_counter() - t0)
    return round(statistics.median(samples), 2)


def ok(call: Callable[[], object]) -> bool:
    try:
        call()
    except Exception:
        return False
    return True


def first_id(parsable: str) -> int:
    """The first id `gbatch --parsable` printed ('12' or '12-1011')."""
    return int(parsable.strip().split("-")[0])


def pass_ms(daemon: OursDaemon, probe: int, windows: int = 5, seconds: float = 3.0) -> float:
    """The scheduling pass, from the daemon's own histogram: its mean over a few seconds
    of passes (one a second with jobs queued, more with events), median of `windows`."""
    means = []
    for _ in range(windows):
        total0, count0 = pass_histogram(daemon)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            daemon.cli("gjob", "release", str(probe))  # each change asks for a pass
            daemon.cli("gjob", "hold", str(probe))
        total, count = pass_histogram(daemon)
        if count > count0:
            means.append((total - total0) / (count - count0))
    return round(statistics.median(means) * 1000, 1) if means else float("nan")


def pass_histogram(daemon: OursDaemon) -> tuple[float, int]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.paths.socket))
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: gflow\r\nConnection: close\r\n\r\n")
        text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("gflow_scheduling_pass_seconds_"):
            name, value = line.split()
            values[name] = float(value)
    return values["gflow_scheduling_pass_seconds_sum"], int(
        values["gflow_scheduling_pass_seconds_count"]
    )


def everyday(daemon: OursDaemon, runs: int, probe: int) -> dict[str, float]:
    """The everyday commands, each a fresh process as a user types it: medians in ms."""
    user, _ = me()
    job = str(probe)

    def cli(*argv: str) -> float:
        return median_ms(wall_times([str(BIN / argv[0]), *argv[1:]], daemon.env, runs, ROOT))

    figures = {
        "gqueue": cli("gqueue"),
        "gqueue -a -n 50": cli("gqueue", "-a", "-n", "50"),
        "gqueue -u all": cli("gqueue", "-u", "all"),
        "gstats": cli("gstats"),
        "gstats --since 7d --user U": cli("gstats", "--since", "7d", "--user", user),
        "gjob show": cli("gjob", "show", job),
        "gbatch (one job)": cli("gbatch", "--hold", "true"),
    }
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = daemon.cli("gbatch", "--hold", "--parsable", "--array", "1-1000", "true")
        samples.append(time.perf_counter() - t0)
        first = first_id(done.stdout)
        daemon.cli("gcancel", f"{first}-{first + 999}", timeout=300)
    figures["gbatch (1,000-job array)"] = median_ms(samples)
    return figures


def cancel_array(daemon: OursDaemon, size: int = 20_000) -> float:
    done = daemon.cli("gbatch", "--hold", "--parsable", "--array", f"1-{size}", "true")
    first = first_id(done.stdout)
    t0 = time.perf_counter()
    cancelled = daemon.cli("gcancel", f"{first}-{first + size - 1}", timeout=600)
    elapsed = time.perf_counter() - t0
    if cancelled.returncode != 0:
        raise BenchError(f"gcancel failed: {cancelled.stderr.strip()[:300]}")
    return round(elapsed, 2)


def measure(ended: int, runs: int, log: Callable[[str], None]) -> dict[str, object]:
    rng = random.Random(21)
    daemon = OursDaemon()
    daemon.env["GFLOW_FAKE_GPUS"] = f"{GPUS}x80G"
    daemon.paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    daemon.paths.config_file.write_text(CONFIG)
    t0 = time.perf_counter()
    store = Store.open(daemon.paths.database)
    try:
        build(store, daemon.paths.logs_dir, ended, time.time(), rng)
    finally:
        store.close()
    built = time.perf_counter() - t0
    log(f"built {ended:,} ended + {QUEUED:,} queued jobs in {built:.0f} s")
    with daemon:
        running = daemon.cli("gbatch", "--parsable", "--array", f"1-{RUNNING - GPUS}", "sleep 3600")
        if running.returncode != 0:
            raise BenchError(f"starting the running jobs failed: {running.stderr.strip()}")
        wait_until("100 running jobs", lambda: count(daemon, "Running") >= RUNNING, 300, 0.5)
        probe = first_id(daemon.cli("gbatch", "--parsable", "--hold", "true").stdout)
        reserve = ["gctl", "reserve", "create", "--user", me()[0], "--gpus", "2"]
        daemon.cli(*reserve, "--start", "now", "--duration", "2h")
        figures: dict[str, object] = {"built_seconds": round(built, 1)}
        log("everyday commands")
        figures["commands_ms"] = everyday(daemon, runs, probe)
        log("scheduling pass")
        figures["pass_ms"] = pass_ms(daemon, probe)
        log("cancelling a 20,000-job array")
        figures["cancel_20k_array_s"] = cancel_array(daemon)
        log("daemon start")
        figures["daemon_start_s"] = started_in(daemon, 3)
        wait_until("100 running jobs", lambda: count(daemon, "Running") >= RUNNING, 120, 0.5)
        figures["rss_mb"] = round(psutil.Process(daemon.daemon_pid()).memory_info().rss / 2**20)
        db = daemon.paths.database
        wal = db.with_name(db.name + "-wal")
        size = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        figures["database_mb"] = round(size / 2**20)
    return figures


def count(daemon: OursDaemon, state: str) -> int:
    return len(daemon.client.list_fields(["id"], states=state, user="all"))


def measure_scale(ended: int, runs: int, log: Callable[[str], None]) -> dict[str, object]:
    """Both stores, measured the same way: the figures of each, as JSON."""
    log("scale: small store, 50 ended jobs")
    small = measure(50, runs, log)
    log(f"scale: big store, {ended:,} ended jobs")
    big = measure(ended, runs, log)
    return {"small": small, "big": big, "ended": ended, "users": USERS, "projects": PROJECTS}


# (figure, label, unit, budget as text, within budget given small and big)
Check = Callable[[float, float], bool]
BUDGETS: tuple[tuple[str, str, str, str, Check], ...] = (
    ("pass_ms", "the daemon's scheduling pass (fair-share, quotas, a reservation on)", "ms",
     "≤ 1.5×", lambda small, big: big <= 1.5 * small),
    ("cancel_20k_array_s", "`gcancel` of a 20,000-job array", "s", "≤ 5 s",
     lambda small, big: big <= 5),
    ("daemon_start_s", "`gflowd start` until it answers", "s", "≤ 2 s",
     lambda small, big: big <= 2),
    ("rss_mb", "daemon RSS", "MB", "independent of ended history (+10 MB at most)",
     lambda small, big: big - small <= 10),
    ("database_mb", "database on disk", "MB", "—", lambda small, big: True),
)  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """The scale table: each figure on the small and the big store, and its budget."""
    small, big = result["small"], result["big"]
    lines = [
        f"| on a store of … | 50 ended jobs | {result['ended']:,} ended jobs | big / small "
        "| budget | within budget |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name, ms in small["commands_ms"].items():
        other = big["commands_ms"][name]
        ok = "yes" if other <= 1.5 * ms else "**no**"
        lines.append(
            f"| `{name}` | {ms:.0f} ms | {other:.0f} ms | {other / ms:.2f} | ≤ 1.5× | {ok} |"
        )
    for key, label, unit, budget, check in BUDGETS:
        mine, theirs = small[key], big[key]
        ok = "yes" if check(mine, theirs) else "**no**"
        ok = "—" if budget == "—" else ok
        lines.append(f"| {label} | {mine} {unit} | {theirs} {unit} | — | {budget} | {ok} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ended", type=int, default=1_000_000, help="ended jobs, big store")
    parser.add_argument("--runs", type=int, default=7, help="samples per command")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    result = measure_scale(args.ended, args.runs, log)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    try:
        main()
    except (BenchError, subprocess.SubprocessError) as exc:
        sys.exit(f"bench.scale: {exc}")
