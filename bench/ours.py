"""Our gflow as a benchmark target: a private daemon and the SPEC §11 workloads against it.

The daemon runs in a fresh, short /tmp/gfb* GFLOW_HOME (the socket path has a 107-byte
limit) with fake GPUs (GFLOW_FAKE_GPUS, "2x24G" unless set). Job latencies use the Python
client (gflow.client.Client), so CLI start-up is not in them; bursts, gqueue and cold
starts use the real CLI, each a fresh process. `OursDaemon` stops the daemon, kills its
tmux server (`tmux -L gflow-<hash>`) and removes the directory, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
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
    percentile,
    wait_printed_time,
    wall_times,
)
from bench.policy import time_passes
from bench.sampling import time_sampling
from gflow.client import Client
from gflow.core.errors import GflowError
from gflow.paths import Paths

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class OursDaemon:
    """A private gflowd for the length of a `with` block."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="gfb", dir="/tmp"))
        env = dict(os.environ)
        env["GFLOW_HOME"] = str(self.home)
        env.setdefault("GFLOW_FAKE_GPUS", "2x24G")
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # let every process use cached bytecode
        self.env = env
        self.paths = Paths.from_env(env)
        self.client = Client(self.paths, timeout=60)

    def __enter__(self) -> OursDaemon:
        try:
            done = self.cli("gflowd", "start")
            if done.returncode != 0:
                raise BenchError(f"gflowd start failed: {(done.stderr or done.stdout).strip()}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def cli(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / name), *args]
        return subprocess.run(
            argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )

    def close(self) -> None:
        """Stop what still runs, stop the daemon, kill its tmux server, remove the directory.
        Waiting jobs are left to go with the directory (the 100,000 held ones, one cancel
        each, would take minutes)."""
        try:
            for job in self.client.list_jobs(states="Running"):
                self.client.job_action(job["id"], "cancel")
        except (GflowError, OSError):
            pass
        try:
            stopped = self.cli("gflowd", "stop", timeout=60)
            if stopped.returncode != 0:
                print(f"warning: gflowd stop: {stopped.stderr.strip()}", file=sys.stderr)
        finally:
            tmux = ["tmux", "-S", str(self.paths.tmux_socket), "kill-server"]
            subprocess.run(tmux, env=self.env, capture_output=True, timeout=30, check=False)
            self._remove_home()

    def _remove_home(self) -> None:
        for _ in range(5):
            shutil.rmtree(self.home, ignore_errors=True)
            if not self.home.exists():
                return
            time.sleep(0.2)
        print(f"warning: could not remove {self.home}", file=sys.stderr)

    def tmux_sessions(self) -> int:
        argv = ["tmux", "-S", str(self.paths.tmux_socket), "list-sessions", "-F", "#S"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        return len(done.stdout.split()) if done.returncode == 0 else 0

    def daemon_pid(self) -> int:
        done = self.cli("gflowd", "status", "--json")
        pid: int = json.loads(done.stdout)["pid"]
        return pid


# ---- one job at a time --------------------------------------------------------------------


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


def wait_job(client: Client, job_id: int, states: frozenset[str], poll: float) -> dict[str, Any]:
    """Poll until the job is in one of `states`; fail if it ended otherwise or took too long."""
    deadline = time.perf_counter() + DEADLINE
    while True:
        shown: dict[str, Any] = client.show_job(job_id)
        state = shown["job"]["state"]
        if state in states:
            return shown
        if state in ENDED:
            raise BenchError(f"job {job_id} ended {state} ({shown['job']['reason']})")
        if time.perf_counter() > deadline:
            raise BenchError(f"job {job_id} still {state} after {DEADLINE:.0f} s")
        time.sleep(poll)


def event_at(shown: dict[str, Any], kind: str) -> float:
    for event in shown["events"]:
        if event["kind"] == kind:
            at: float = event["at"]
            return at
    raise BenchError(f"job {shown['job']['id']} has no {kind!r} event")


def one_start(daemon: OursDaemon) -> tuple[float, float, float]:
    """(client sees Running, daemon started_at - submitted_at, command's own start) in s."""
    client = daemon.client
    wall0, t0 = time.time(), time.perf_counter()
    job_id: int = client.submit([job_spec(START_JOB, daemon.env, gpus=1)])[0]["id"]
    shown = wait_job(client, job_id, frozenset({"Running"}), START_POLL)
    seen = time.perf_counter() - t0
    printed = wait_printed_time(Path(shown["job"]["log_path"]))
    client.job_action(job_id, "cancel")
    job = wait_job(client, job_id, ENDED, EXIT_POLL)["job"]
    return seen, job["started_at"] - job["submitted_at"], printed - wall0


def one_exit(daemon: OursDaemon) -> float:
    """The ended event's time minus the job's last printed time, in s."""
    job_id: int = daemon.client.submit([job_spec(EXIT_JOB, daemon.env)])[0]["id"]
    shown = wait_job(daemon.client, job_id, frozenset({"Finished"}), EXIT_POLL)
    printed = wait_printed_time(Path(shown["job"]["log_path"]))
    return event_at(shown, "ended") - printed


def measure_latency(daemon: OursDaemon, runs: int) -> Figures:
    starts = [one_start(daemon) for _ in range(runs)]
    exits = [one_exit(daemon) for _ in range(runs)]
    how = "Python client over the socket, show_job polled every 1 ms; 1 fake GPU per job"
    return {
        **ms_figures("start", [s[0] for s in starts], how),
        "start_daemon_p50": median_ms([s[1] for s in starts], "daemon clock"),
        "start_command_p50": median_ms([s[2] for s in starts], "job prints time.time()"),
        "exit_p50": median_ms(exits, "`ended` event at − the job's last printed time"),
    }


# ---- bursts, big queue, cold start --------------------------------------------------------


def id_range(parsable: str) -> tuple[int, int]:
    first, _, last = parsable.strip().partition("-")
    return int(first), int(last or first)


def await_burst(daemon: OursDaemon, first: int, last: int, t0: float) -> tuple[float, Counter[str]]:
    """Wait until jobs first..last all ended: (seconds since t0, how many ended in each state)."""
    ids = f"{first}-{last}"
    deadline = time.monotonic() + 600
    while daemon.client.list_jobs(ids=ids, states="Queued,Hold,Running"):
        if time.monotonic() > deadline:
            raise BenchError(f"jobs {ids} not all ended after 600 s")
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    ended = daemon.client.list_jobs(ids=ids, all="1")
    return wall, Counter(str(job["state"]) for job in ended)


def burst(daemon: OursDaemon, size: int, one_array: bool) -> Figures:
    """`size` jobs of `true`, as one array or as separate gbatch processes, until all ended."""
    t0 = time.perf_counter()
    if one_array:
        done = daemon.cli("gbatch", "--parsable", "--array", f"1-{size}", "true")
        first, last = id_range(done.stdout)
    else:
        ids = [id_range(daemon.cli("gbatch", "--parsable", "true").stdout)[0] for _ in range(size)]
        first, last = min(ids), max(ids)
    wall, ended = await_burst(daemon, first, last, t0)
    prefix = "array" if one_array else "cli_burst"
    note = "first submit until the daemon lists none of them active (50 ms poll)"
    return burst_figures(prefix, wall, ended, size, daemon.tmux_sessions(), note)


def measure_cold_cli(daemon: OursDaemon, runs: int) -> Figures:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "src"], cwd=ROOT, check=True, timeout=120
    )
    for _ in range(3):
        daemon.client.submit([job_spec("true", daemon.env, hold=True)])
    commands = {
        "cold_gqueue": [str(BIN / "gqueue")],
        "cold_gbatch": [str(BIN / "gbatch"), "--dry-run", "true"],
        "cold_bare": [sys.executable, "-I", "-S", "-c", "pass"],  # the scripts' interpreter
    }
    samples: dict[str, list[float]] = {key: [] for key in commands}
    for _ in range(runs):  # in turns, so the ratios hold while the machine's speed drifts
        for key, argv in commands.items():
            samples[key] += wall_times(argv, daemon.env, 1, ROOT)
    note = "3 held jobs; fresh process each run, cached bytecode"
    figures = {key: median_ms(times, note) for key, times in samples.items()}
    figures["cold_bare"] = median_ms(samples["cold_bare"], "python -I -S -c pass: no site")
    for command in ("gqueue", "gbatch"):
        cold, bare = figures[f"cold_{command}"].value, figures["cold_bare"].value
        if cold is not None and bare:
            figures[f"cold_{command}_x"] = Figure(cold / bare, note="ratio of the medians")
    return figures


def measure_big(daemon: OursDaemon, sizes: Sizes) -> Figures:
    """Fill the database with `big` held jobs (one array request), then gqueue and RSS."""
    done = daemon.cli("gbatch", "--parsable", "--hold", "--array", f"1-{sizes.big}", "true")
    if done.returncode != 0:
        raise BenchError(f"filling the queue failed: {done.stderr.strip()}")
    note = f"{sizes.big} held jobs (one `gbatch --hold --array` request), fresh process each run"
    plain = wall_times([str(BIN / "gqueue")], daemon.env, sizes.big_runs, ROOT)
    every = wall_times([str(BIN / "gqueue"), "-a"], daemon.env, sizes.big_runs, ROOT)
    rss = psutil.Process(daemon.daemon_pid()).memory_info().rss / 2**20
    return {
        "gqueue_big": median_ms(plain, note),
        "gqueue_big_all": median_ms(every, note + "; -a also lists the bursts' ended jobs"),
        "rss_big": Figure(rss, note="psutil RSS of the gflowd pid"),
    }


def measure_huge_submission(daemon: OursDaemon, huge: int) -> Figures:
    """`gbatch --hold --array 1-HUGE` as a user types it, while another client asks for
    /health every 20 ms: how long the API keeps anyone else waiting meanwhile."""
    latencies: list[float] = []
    done = threading.Event()

    def ping() -> None:
        client = Client(daemon.paths)
        while not done.is_set():
            t0 = time.perf_counter()
            client.health()
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.02)

    pinger = threading.Thread(target=ping)
    pinger.start()
    t0 = time.perf_counter()
    try:
        submitted = daemon.cli("gbatch", "--hold", "--array", f"1-{huge}", "true", timeout=600)
    finally:
        wall = time.perf_counter() - t0
        done.set()
        pinger.join()
    if submitted.returncode != 0:
        raise BenchError(f"the {huge}-job array failed: {submitted.stderr.strip()}")
    note = f"GET /health every 20 ms from a second client, {len(latencies)} samples"
    return {
        "api_during_huge_p95": Figure(
            percentile(latencies, 95) * 1000, note=note, samples=tuple(latencies)
        ),
        "huge_submit": Figure(wall, note="one request; the jobs held"),
    }


def measure_ours(sizes: Sizes, log: Callable[[str], None]) -> Figures:
    """Every row for our gflow, one private daemon for all of them."""
    figures: Figures = {}
    with OursDaemon() as daemon:
        log("ours: job start and exit latency")
        figures.update(measure_latency(daemon, sizes.runs))
        log("ours: cold CLI starts")
        figures.update(measure_cold_cli(daemon, sizes.cli_runs))
        log(f"ours: {sizes.burst} jobs as one array")
        figures.update(burst(daemon, sizes.burst, one_array=True))
        log(f"ours: {sizes.burst} separate gbatch calls")
        figures.update(burst(daemon, sizes.burst, one_array=False))
        log(f"ours: gqueue and RSS with {sizes.big} jobs")
        figures.update(measure_big(daemon, sizes))
        log(f"ours: the API while a {sizes.huge}-job array is submitted")
        figures.update(measure_huge_submission(daemon, sizes.huge))
    passes = time_passes(sizes.big, 100, sizes.policy_repeat)
    figures["policy_pass"] = median_ms(passes, "core.policy.schedule, 100 running, in-process")
    team = time_passes(sizes.big, 100, sizes.policy_repeat, team=True)
    note = "20 users, quotas per user and project, fair-share, 3 reservations"
    figures["policy_pass_team"] = median_ms(team, note)
    looks = time_sampling(sizes.sampled, sizes.policy_repeat)
    note = "runner.sampling.sample_all, shells with a child each, 2 fake GPUs, in-process"
    figures["sampling_tick"] = median_ms(looks, note)
    return figures
