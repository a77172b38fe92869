"""kill -9 of the daemon in the middle of a burst of submissions loses nothing it acknowledged.

Four client threads submit requests of three held jobs each (names say who sent what);
the daemon is killed once 120 requests were acknowledged, and restarted. Then: every
acknowledged job exists exactly once and whole, every request is all or nothing, and
ids are dense and unique, also for the next submission.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from gflow.client import Client
from gflow.core.errors import GflowError
from tests.helpers import Gflow, wait_for

THREADS = 4
PER_REQUEST = 3
KILL_AFTER = 120  # acknowledged requests


@dataclass
class Acks:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids_by_name: dict[str, int] = field(default_factory=dict)
    requests: int = 0


def _spec(gflow: Gflow, name: str) -> dict[str, object]:
    return {
        "command": f"echo {name}",
        "workdir": str(gflow.workdir),
        "env": {"PATH": "/usr/bin:/bin", "WHO": name},
        "name": name,
        "hold": True,
    }


def _submitter(gflow: Gflow, thread: int, acks: Acks, stop: threading.Event) -> None:
    client = Client(gflow.paths, timeout=10)
    for n in range(100_000):
        if stop.is_set():
            return
        names = [f"t{thread}-{n}-{k}" for k in range(PER_REQUEST)]
        try:
            jobs = client.submit([_spec(gflow, name) for name in names])
        except GflowError:  # the daemon is gone: this request may or may not have landed
            return
        with acks.lock:
            acks.requests += 1
            for job in jobs:
                acks.ids_by_name[job["name"]] = job["id"]


@pytest.mark.timeout(180)
def test_acknowledged_submissions_survive_kill_9_mid_burst(gflow: Gflow) -> None:
    acks, stop = Acks(), threading.Event()
    threads = [
        threading.Thread(target=_submitter, args=(gflow, t, acks, stop)) for t in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: acks.requests >= KILL_AFTER, 60, f"{KILL_AFTER} acknowledged requests")
        gflow.kill_daemon()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    acknowledged = dict(acks.ids_by_name)
    gflow.start()

    client = Client(gflow.paths)
    found = client.list_jobs(all="1", user="all")
    by_name: dict[str, list[dict[str, object]]] = {}
    for job in found:
        by_name.setdefault(str(job["name"]), []).append(job)

    for name, job_id in acknowledged.items():
        copies = by_name.get(name, [])
        assert [j["id"] for j in copies] == [job_id], f"{name}: acknowledged as {job_id}"
    for name, copies in by_name.items():
        assert len(copies) == 1, f"{name} stored {len(copies)} times"
        (job,) = copies
        assert job["state"] == "Hold" and job["command"] == f"echo {name}", job
    requests = {name.rsplit("-", 1)[0] for name in by_name}
    for request in requests:  # one request, one transaction: all of it or none
        assert all(f"{request}-{k}" in by_name for k in range(PER_REQUEST)), request
    ids = sorted(int(str(j["id"])) for j in found)
    assert ids == list(range(1, len(ids) + 1)), "ids must be dense and unique"
    assert gflow.submit("--hold", "true") == len(ids) + 1
    print(
        f"\ncrash during burst: {len(acknowledged)} jobs acknowledged in {acks.requests} "
        f"requests, {len(found)} found after restart, all acknowledged present once"
    )
