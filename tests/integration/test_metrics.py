"""GET /metrics: Prometheus exposition from the daemon's own registry, checked against the
queue with prometheus_client's own parser; over the Unix socket and `[web] listen`."""

from __future__ import annotations

import getpass
import socket
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gflow.client import Client, parse_response
from tests.helpers import Gflow, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(gflow: Gflow) -> str:
    raw = Client(gflow.paths)._exchange(
        b"GET /metrics HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    )
    status, body = parse_response(raw)
    assert status == 200
    return body.decode()


def test_metrics_count_jobs_and_match_the_queue(make_gflow: type[Gflow]) -> None:
    """An array of 3 is 3 submissions and 3 ends; gauges say what is held and the GPUs."""
    port = free_port()
    gflow = make_gflow(config=f'[web]\nlisten = "127.0.0.1:{port}"\n', fake_gpus="2x24G")
    gflow.start()
    me = getpass.getuser()
    array = int(gflow.ok("gbatch", "--parsable", "--array", "1-3", "true").split("-")[0])
    held = gflow.submit("--hold", "true")
    for job_id in range(array, array + 3):
        gflow.wait_state(job_id)
    found = samples(scrape(gflow))
    assert found[("gflow_jobs_submitted_total", (("user", me),))] == 4
    ended = {k: v for k, v in found.items() if k[0] == "gflow_jobs_ended_total"}
    assert sum(ended.values()) == 3
    assert all(dict(labels)["state"] == "Finished" for _, labels in ended)
    assert found[("gflow_jobs", (("state", "Hold"), ("user", me)))] == 1
    assert found[("gflow_gpus", (("kind", "total"),))] == 2
    assert found[("gflow_gpus", (("kind", "allocated"),))] == 0
    assert found[("gflow_gpu_memory_bytes", (("gpu", "0"), ("kind", "total")))] == 24 * 2**30
    assert found[("gflow_job_queue_wait_seconds_count", ())] == 3
    assert found[("gflow_job_run_seconds_count", ())] == 3
    assert found[("gflow_scheduling_pass_seconds_count", ())] > 0
    assert found[("gflow_host_memory_bytes", (("kind", "total"),))] > 0
    assert any(k[0] == "gflow_api_request_seconds_count" for k in found)
    assert held

    # Over TCP: the same exposition; without a dashboard session nothing changes state.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        over_tcp = samples(answer.read().decode())
    assert over_tcp[("gflow_jobs_submitted_total", (("user", me),))] == 4
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/jobs/{held}/release", data=b"{}", method="POST"
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a POST over TCP was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403  # the dashboard's gate: no session (daemon/web/app.py)
    assert gflow.job(held)["state"] == "Hold"


def test_a_bad_listen_address_stops_gflowd_start(make_gflow: type[Gflow]) -> None:
    """One line naming the file, line and key; no daemon."""
    gflow = make_gflow(config='[web]\nlisten = "localhost"\n')
    done = gflow.run("gflowd", "start")
    assert done.returncode != 0
    assert "web.listen" in done.stderr and "HOST:PORT" in done.stderr
    wait_for(lambda: not gflow.paths.socket.exists(), 5, "no socket")


def test_a_running_jobs_usage_is_a_metric(gflow: Gflow, tmp_path: Path) -> None:
    """What a running job used so far, per job (issue: what each job really used)."""
    script = tmp_path / "hold.py"
    script.write_text(
        "import time\nb = bytearray(100 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        "time.sleep(120)\n"
    )
    job = gflow.submit("python3", str(script))
    wait_for(lambda: gflow.job(job)["max_rss_mb"] >= 80, timeout=30, what="the job's RSS")
    found = samples(scrape(gflow))
    me = getpass.getuser()
    assert found[("gflow_job_max_rss_bytes", (("job", str(job)), ("user", me)))] >= 80 * 2**20
    assert ("gflow_job_cpu_seconds", (("job", str(job)), ("user", me))) in found
    gflow.ok("gcancel", str(job))
