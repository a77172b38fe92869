"""Eight clients submit, cancel, hold, release and list at once, against two fake GPUs.

Afterwards, from the daemon's own event log: no GPU was ever given to an exclusive job and
another job at the same time, nor promised beyond its memory; no job started twice (nor ran
twice: each run appends a line to its own file); every acknowledged action is in the record.
Seeded: GFLOW_SOAK_SEED and GFLOW_SOAK_SECONDS reproduce or lengthen a run.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gflow.client import Client
from gflow.core.errors import InvalidState
from tests.helpers import Gflow, wait_for

CLIENTS = 8
SECONDS = float(os.environ.get("GFLOW_SOAK_SECONDS", "30"))
SEED = int(os.environ.get("GFLOW_SOAK_SEED", "20261123"))
GPU_MB = 24 * 1024
MAX_SUBMITS = 40  # per client: bounds the queue, so draining it stays quick


@dataclass
class Record:
    """What one client was told "ok" to."""

    submitted: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> spec sent
    acked: list[tuple[str, int]] = field(default_factory=list)  # (action, job id)
    errors: Counter[str] = field(default_factory=Counter)


def _spec(rng: random.Random, runs: Path) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "command": f'echo run >> {runs}/"$GFLOW_JOB_ID"; sleep 0.{rng.randint(0, 4)}',
        "workdir": str(runs),
        "env": {"PATH": "/usr/bin:/bin"},
        "hold": rng.random() < 0.2,
    }
    kind = rng.random()
    if kind < 0.4:
        spec["gpus"] = 1
    elif kind < 0.55:
        spec["gpus"] = 2
    elif kind < 0.85:
        spec.update(gpus=1, shared=True, gpu_memory_mb=rng.choice((4096, 8192, 12288)))
    return spec


def _client_loop(gflow: Gflow, n: int, runs: Path, until: float, record: Record) -> None:
    rng = random.Random(SEED + n)
    client = Client(gflow.paths, timeout=30)
    while time.monotonic() < until:
        roll = rng.random()
        mine = list(record.submitted)
        try:
            if (roll < 0.4 and len(mine) < MAX_SUBMITS) or not mine:
                spec = _spec(rng, runs)
                (job,) = client.submit([spec])
                record.submitted[job["id"]] = spec
            elif roll < 0.55:
                action = rng.choice(("cancel", "hold", "release"))
                job_id = rng.choice(mine)
                client.job_action(job_id, action)
                record.acked.append((action, job_id))
            else:
                client.list_jobs(all="1")
                _check_gpus_now(client.gpus())
        except InvalidState as exc:  # e.g. releasing a job that is not held: refused
            record.errors[type(exc).__name__] += 1


def _check_gpus_now(gpus: list[dict[str, Any]]) -> None:
    for gpu in gpus:
        if gpu["exclusive"]:
            assert len(gpu["jobs"]) == 1, f"GPU {gpu['index']} double-booked: {gpu}"
        assert gpu["free_mb"] >= 0, f"GPU {gpu['index']} promised beyond its memory: {gpu}"


@pytest.mark.timeout(int(SECONDS) + 240)
def test_eight_clients_never_double_book_a_gpu_or_lose_an_action(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    runs = gflow.workdir / "runs"
    runs.mkdir()
    records = [Record() for _ in range(CLIENTS)]
    until = time.monotonic() + SECONDS
    threads = [
        threading.Thread(target=_client_loop, args=(gflow, n, runs, until, records[n]))
        for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 60)
    client = Client(gflow.paths)
    for job in client.list_jobs(states="Hold"):  # let the held ones run, so all can end
        client.job_action(job["id"], "release")
    wait_for(lambda: not client.list_jobs(), 180, "every job to end")

    submitted = {i: s for r in records for i, s in r.submitted.items()}
    events = _events(gflow.paths.database)
    _assert_no_gpu_double_booked(submitted, events)
    _assert_each_job_ran_at_most_once(events, runs)
    _assert_every_ack_is_recorded(client, records, events)
    acks = sum(len(r.acked) for r in records)
    refused = sum(sum(r.errors.values()) for r in records)
    print(
        f"\nconcurrency (seed {SEED}, {SECONDS:.0f} s): {len(submitted)} jobs submitted, "
        f"{acks} actions acknowledged, {refused} refused as invalid for the job's state"
    )


Events = dict[int, list[tuple[float, str, str, str]]]  # job id -> (at, kind, state, detail)


def _events(database: Path) -> Events:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT job_id, at, kind, state, detail FROM events ORDER BY id")
        found: Events = {}
        for job_id, at, kind, state, detail in rows:
            found.setdefault(job_id, []).append((at, kind, state, detail))
        return found
    finally:
        conn.close()


def _assert_no_gpu_double_booked(submitted: dict[int, dict[str, Any]], events: Events) -> None:
    """From each "started" event (the decision) to the job's end being recorded, it holds
    its GPUs; exclusive holders never overlap anyone, shared ones stay within memory."""
    holds: list[tuple[float, float, int, int | None]] = []  # start, end, gpu, MB (None: all)
    for job_id, spec in submitted.items():
        history = events.get(job_id, [])
        starts = [(at, detail) for at, kind, _, detail in history if kind == "started"]
        if not starts:
            continue
        (start, gpus), *_ = starts
        end = next(at for at, kind, *_ in history if kind in ("ended", "launch failed"))
        memory = spec.get("gpu_memory_mb") if spec.get("shared") else None
        holds += [(start, end, int(g), memory) for g in gpus.split(",") if g]
    for start, _, gpu, _ in holds:  # at every start, who holds that GPU
        here = [h for h in holds if h[2] == gpu and h[0] <= start < h[1]]
        exclusive = [h for h in here if h[3] is None]
        assert not exclusive or len(here) == 1, f"GPU {gpu} double-booked at {start}: {here}"
        assert sum(h[3] or 0 for h in here) <= GPU_MB, f"GPU {gpu} over-promised: {here}"


def _assert_each_job_ran_at_most_once(events: Events, runs: Path) -> None:
    for job_id, history in events.items():
        starts = sum(1 for _, kind, *_ in history if kind == "started")
        assert starts <= 1, f"job {job_id} started {starts} times"
    for run_file in runs.iterdir():
        assert run_file.read_text().count("run") == 1, f"job {run_file.name} ran twice"


def _assert_every_ack_is_recorded(client: Client, records: list[Record], events: Events) -> None:
    final = {job["id"]: job for job in client.list_jobs(all="1")}
    for record in records:
        for job_id in record.submitted:
            assert job_id in final, f"acknowledged job {job_id} is missing"
        for action, job_id in record.acked:
            kinds = [kind for _, kind, *_ in events[job_id]]
            wanted = {"cancel": ("cancelled", "stop"), "hold": ("held",), "release": ("released",)}
            assert any(k in kinds for k in wanted[action]), f"{action} {job_id}: {kinds}"
            if action == "cancel":
                assert final[job_id]["state"] == "Cancelled", final[job_id]
