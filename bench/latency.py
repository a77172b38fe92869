"""Latency of gflow against the SPEC §11 budgets: job start, job end, CLI start-up.

Run from the repository root:

    python -m bench.latency [--runs 20] [--out FILE.json]

A private daemon is started for the run (GFLOW_HOME = a fresh, short /tmp/gfb* directory;
fake GPUs, "2x24G" unless GFLOW_FAKE_GPUS is set) and stopped afterwards, with its tmux
server and directory. Submissions and polling use the Python client (gflow.client.Client),
so CLI start-up is not counted in the job figures.

1. submit -> Running, N times: one 1-GPU `sleep 30` job at a time (a fake GPU is free);
   `show_job` is polled every 1 ms until it is Running; then it is cancelled and waited
   out. Three figures:
   - client: perf_counter from before the submit request to the first poll that sees
     Running (HTTP round trips and up to one poll interval included);
   - daemon: the job's started_at - submitted_at, both stamped by the daemon's clock
     (the precise figure);
   - launched: the daemon's "launched" event - submitted_at. Running is recorded before
     the wrapper process exists; this is when it does (tmux session created).
2. job exit -> Finished recorded, N times: the job
   `python3 -c "import time; time.sleep(0.2); print(repr(time.time()))"` prints its own
   end time as its last act. Latency = the "at" of the job's "ended" event (daemon clock,
   stamped just before the end is committed) - that printed time (read from the job's
   log). Split for diagnosis at finished_at, the time the wrapper puts in its exit record:
   before it, the job's interpreter exit and the wrapper noticing; after it, the exit
   record's fsyncs, the wrapper's own exit, the daemon's pidfd wake-up and its handling.
3. CLI cold start, N times each: the wall time of a fresh `gqueue` (3 held jobs queued),
   `gbatch --dry-run true`, `gqueue --help`, and `python -c pass` (the interpreter's own
   floor), after `python -m compileall -q src` and one untimed run each, with
   PYTHONDONTWRITEBYTECODE unset so cached bytecode is used.

Prints a Markdown table (p50, p99 or p90, budget, within budget) and writes every raw
sample (seconds) as JSON to --out (default bench/results/latency-<timestamp>.json).
Only the standard library and gflow are used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.client import Client
from gflow.core.errors import GflowError
from gflow.paths import Paths

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEADLINE = 30.0  # seconds any single wait may take
START_POLL = 0.001
EXIT_POLL = 0.01  # the exit figure uses daemon timestamps; slower polling disturbs it less
ENDED = frozenset({"Finished", "Failed", "Cancelled", "Timeout"})
EXIT_JOB = 'python3 -c "import time; time.sleep(0.2); print(repr(time.time()))"'
Samples = dict[str, list[float]]


class BenchError(Exception):
    """The benchmark could not measure what it meant to (not: a budget was missed)."""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    tail: int  # the tail percentile shown: 99 or 90
    p50_budget_ms: float | None = None
    tail_budget_ms: float | None = None


METRICS = (
    Metric("start_client", "submit → Running (client, 1 ms poll)", 99, 50, 200),
    Metric("start_daemon", "submit → Running (daemon: started_at − submitted_at)", 99, 50, 200),
    Metric("start_launched", "submit → wrapper launched (daemon: launched event)", 99, 50, 200),
    Metric("exit_recorded", "job exit → Finished recorded (ended event − last print)", 99, 50),
    Metric("exit_wrapper", "… job exit until the wrapper stamps finished_at", 99),
    Metric("exit_daemon", "… finished_at until the daemon's ended event", 99),
    Metric("cli_gqueue", "`gqueue` cold start, 3 jobs queued", 90, 80),
    Metric("cli_gbatch", "`gbatch --dry-run true` cold start", 90, 80),
    Metric("cli_gqueue_help", "`gqueue --help` cold start", 90),
    Metric("cli_python", "`python -c pass` (interpreter floor)", 90),
)


# ---- set-up and tear-down ----------------------------------------------------------------


def bench_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["GFLOW_HOME"] = str(home)
    env.setdefault("GFLOW_FAKE_GPUS", "2x24G")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let every process use cached bytecode
    return env


def gflowd(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "gflowd"), action]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def start_daemon(env: dict[str, str]) -> None:
    done = gflowd("start", env)
    if done.returncode != 0:
        raise BenchError(f"gflowd start failed: {(done.stderr or done.stdout).strip()}")


def cancel_active(client: Client) -> None:
    """Cancel what is left, so no job writes into the directory while it is removed."""
    try:
        for job in client.list_jobs():
            client.job_action(job["id"], "cancel")
    except (GflowError, OSError):
        pass


def teardown(env: dict[str, str], home: Path) -> None:
    paths = Paths.from_env(env)
    cancel_active(Client(paths, timeout=10))
    stopped = gflowd("stop", env)
    if stopped.returncode != 0:
        print(f"warning: gflowd stop: {stopped.stderr.strip()}", file=sys.stderr)
    tmux = ["tmux", "-L", paths.tmux_socket_name, "kill-server"]
    subprocess.run(tmux, env=env, capture_output=True, timeout=30, check=False)
    for _ in range(5):
        shutil.rmtree(home, ignore_errors=True)
        if not home.exists():
            return
        time.sleep(0.2)
    print(f"warning: could not remove {home}", file=sys.stderr)


# ---- jobs ----------------------------------------------------------------------------------


def job_spec(
    command: str, env: dict[str, str], hold: bool = False, gpus: int = 0
) -> dict[str, Any]:
    """A submission as gbatch builds it (see gflow.cli.gbatch.build_spec)."""
    return {
        "command": command,
        "workdir": str(ROOT),
        "env": env,
        "name": "bench",
        "priority": 10,
        "gpus": gpus,
        "time_limit": None,
        "dependencies": [],
        "hold": hold,
        "keep_session": False,
    }


def submit(
    client: Client, command: str, env: dict[str, str], hold: bool = False, gpus: int = 0
) -> int:
    job_id: int = client.submit([job_spec(command, env, hold, gpus)])[0]["id"]
    return job_id


def wait_job(client: Client, job_id: int, states: frozenset[str], poll: float) -> dict[str, Any]:
    """Poll until the job is in one of `states`; fail if it ended otherwise or took too long."""
    deadline = time.perf_counter() + DEADLINE
    while True:
        shown: dict[str, Any] = client.show_job(job_id)
        state = shown["job"]["state"]
        if state in states:
            return shown
        if state in ENDED:
            reason = shown["job"]["reason"]
            raise BenchError(f"job {job_id} ended {state} ({reason}), expected {sorted(states)}")
        if time.perf_counter() > deadline:
            raise BenchError(f"job {job_id} still {state} after {DEADLINE:.0f} s")
        time.sleep(poll)


def event_at(shown: dict[str, Any], kind: str) -> float:
    for event in shown["events"]:
        if event["kind"] == kind:
            at: float = event["at"]
            return at
    raise BenchError(f"job {shown['job']['id']} has no {kind!r} event")


def last_printed_time(log_path: str) -> float:
    text = Path(log_path).read_text(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        return float(lines[-1])
    except (IndexError, ValueError):
        raise BenchError(f"no end timestamp in {log_path}: {text[-200:]!r}") from None


# ---- measurements --------------------------------------------------------------------------


def one_start(client: Client, env: dict[str, str]) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    job_id = submit(client, "sleep 30", env, gpus=1)  # a free (fake) GPU
    wait_job(client, job_id, frozenset({"Running"}), START_POLL)
    seen = time.perf_counter() - t0
    client.job_action(job_id, "cancel")
    shown = wait_job(client, job_id, ENDED, EXIT_POLL)
    submitted = shown["job"]["submitted_at"]
    return seen, shown["job"]["started_at"] - submitted, event_at(shown, "launched") - submitted


def measure_start(client: Client, env: dict[str, str], runs: int) -> Samples:
    samples: Samples = {"start_client": [], "start_daemon": [], "start_launched": []}
    for _ in range(runs):
        for key, value in zip(samples, one_start(client, env), strict=True):
            samples[key].append(value)
    return samples


def one_exit(client: Client, env: dict[str, str]) -> tuple[float, float, float]:
    job_id = submit(client, EXIT_JOB, env)
    shown = wait_job(client, job_id, frozenset({"Finished"}), EXIT_POLL)
    printed = last_printed_time(shown["job"]["log_path"])
    ended = event_at(shown, "ended")
    finished = shown["job"]["finished_at"]
    return ended - printed, finished - printed, ended - finished


def measure_exit(client: Client, env: dict[str, str], runs: int) -> Samples:
    samples: Samples = {"exit_recorded": [], "exit_wrapper": [], "exit_daemon": []}
    for _ in range(runs):
        for key, value in zip(samples, one_exit(client, env), strict=True):
            samples[key].append(value)
    return samples


def wall_times(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall time of `argv` as a fresh process, `runs` times, after one untimed run."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=DEADLINE)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr!r}")
        if i:
            times.append(elapsed)
    return times


def measure_cli(client: Client, env: dict[str, str], runs: int) -> Samples:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "src"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    for _ in range(3):
        submit(client, "true", env, hold=True)
    return {
        "cli_gqueue": wall_times([str(BIN / "gqueue")], env, runs),
        "cli_gbatch": wall_times([str(BIN / "gbatch"), "--dry-run", "true"], env, runs),
        "cli_gqueue_help": wall_times([str(BIN / "gqueue"), "--help"], env, runs),
        "cli_python": wall_times([sys.executable, "-c", "pass"], env, runs),
    }


# ---- report --------------------------------------------------------------------------------


def percentile(samples: list[float], pct: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def summarize(metric: Metric, samples: list[float]) -> dict[str, Any]:
    p50 = percentile(samples, 50) * 1000
    tail = percentile(samples, metric.tail) * 1000
    checks = [
        value <= budget
        for value, budget in ((p50, metric.p50_budget_ms), (tail, metric.tail_budget_ms))
        if budget is not None
    ]
    return {
        "label": metric.label,
        "n": len(samples),
        "p50_ms": p50,
        f"p{metric.tail}_ms": tail,
        "max_ms": max(samples) * 1000,
        "budget": budget_text(metric),
        "within_budget": all(checks) if checks else None,
    }


def budget_text(metric: Metric) -> str:
    parts = []
    if metric.p50_budget_ms is not None:
        parts.append(f"p50 ≤ {metric.p50_budget_ms:g} ms")
    if metric.tail_budget_ms is not None:
        parts.append(f"p{metric.tail} ≤ {metric.tail_budget_ms:g} ms")
    return ", ".join(parts) or "—"


def markdown_table(summaries: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| metric | n | p50 (ms) | p99 / p90 (ms) | max (ms) | budget (§11) | within budget |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for metric in METRICS:
        s = summaries[metric.key]
        ok = {True: "yes", False: "**no**", None: "—"}[s["within_budget"]]
        tail = f"{s[f'p{metric.tail}_ms']:.1f} (p{metric.tail})"
        lines.append(
            f"| {s['label']} | {s['n']} | {s['p50_ms']:.1f} | {tail} | "
            f"{s['max_ms']:.1f} | {s['budget']} | {ok} |"
        )
    return "\n".join(lines)


def write_json(out: Path, runs: int, samples: Samples, summaries: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "runs": runs,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "summary": summaries,
        "samples_s": samples,
    }
    out.write_text(json.dumps(data, indent=2) + "\n")


# ---- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=20, help="samples per metric (default 20)")
    parser.add_argument("--out", type=Path, help="JSON file for the raw samples")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def measure(env: dict[str, str], runs: int) -> Samples:
    client = Client(Paths.from_env(env))
    steps: list[Callable[[Client, dict[str, str], int], Samples]] = [
        measure_start,
        measure_exit,
        measure_cli,
    ]
    samples: Samples = {}
    for step in steps:
        samples.update(step(client, env, runs))
    return samples


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or ROOT / "bench" / "results" / f"latency-{stamp}.json"
    home = Path(tempfile.mkdtemp(prefix="gfb", dir="/tmp"))
    env = bench_env(home)
    try:
        start_daemon(env)
        samples = measure(env, args.runs)
    except (BenchError, GflowError, subprocess.SubprocessError) as exc:
        print(f"bench.latency: {exc}", file=sys.stderr)
        return 1
    finally:
        teardown(env, home)
    summaries = {m.key: summarize(m, samples[m.key]) for m in METRICS}
    print(markdown_table(summaries))
    write_json(out, args.runs, samples, summaries)
    print(f"\nraw samples: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
