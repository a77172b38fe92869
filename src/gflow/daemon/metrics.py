"""`GET /metrics`: the Prometheus exposition from the daemon's own registry.

Gauges are read from the daemon at scrape time (active jobs by state and user from memory,
GPUs and host RAM from the machine view). Counters and the wait/run-time histograms count
jobs from the event history: at each scrape the events committed since the last one are
read (the one event source; nothing is counted twice or on another path), so an array of N
is N submissions. API request durations come from a middleware, scheduling passes from the
service's `on_pass` hook. Counters start at zero with the daemon, as Prometheus expects.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator

import psutil
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gflow.core.states import JobState
from gflow.daemon.service import Service
from gflow.store.events import EventFilter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WAIT_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, float("inf"))
RUN_BUCKETS = (1, 10, 60, 300, 900, 3600, 7200, 14400, 28800, 86400, 259200, float("inf"))
PASS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, float("inf"))
MAX_CATCH_UP = 200  # pages of events one scrape reads at most (then the next goes on)


class DaemonCollector(Collector):
    """The gauges, read from the daemon when scraped."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "gflow_jobs", "Jobs in an active state, by state and user", labels=["state", "user"]
        )
        tally = Tally((j.state.value, j.user) for j in self.service.jobs.values())
        for state in (JobState.QUEUED, JobState.HOLD, JobState.RUNNING):
            users = sorted({u for s, u in tally if s == state.value})
            for user in users:
                jobs.add_metric([state.value, user], tally[(state.value, user)])
        yield jobs
        ended = GaugeMetricFamily(
            "gflow_jobs_in_history", "Jobs in the store by state (ended ones included)",
            labels=["state"],
        )  # fmt: skip
        for name, count in sorted(self.service.store.count_by_state().items()):
            ended.add_metric([name], count)
        yield ended
        yield from self._gpus()
        memory = psutil.virtual_memory()
        host = GaugeMetricFamily("gflow_host_memory_bytes", "Host RAM", labels=["kind"])
        host.add_metric(["total"], memory.total)
        host.add_metric(["available"], memory.available)
        declared = sum(
            (j.resources.memory_mb or 0) * 2**20
            for j in self.service.jobs.values()
            if j.state is JobState.RUNNING
        )
        host.add_metric(["declared"], declared)
        yield host
        yield from self._usage()

    def _usage(self) -> Iterator[Metric]:
        """What each running job used so far (core/usage.py), by job and user."""
        labels = ["job", "user"]
        rss = GaugeMetricFamily(
            "gflow_job_max_rss_bytes", "A running job's peak RSS", labels=labels
        )
        cpu = GaugeMetricFamily(
            "gflow_job_cpu_seconds", "A running job's CPU time so far", labels=labels
        )
        gpu = GaugeMetricFamily(
            "gflow_job_gpu_memory_peak_bytes", "A running job's peak memory on a GPU",
            labels=[*labels, "gpu"],
        )  # fmt: skip
        for job in self.service.jobs.values():
            if job.state is not JobState.RUNNING:
                continue
            who = [str(job.id), job.user]
            rss.add_metric(who, job.usage.max_rss_mb * 2**20)
            cpu.add_metric(who, job.usage.cpu_seconds)
            for use in job.usage.gpus:
                gpu.add_metric([*who, str(use.index)], use.peak_mb * 2**20)
        yield rss
        yield cpu
        yield gpu

    def _gpus(self) -> Iterator[Metric]:
        described = self.service.gpu_status()
        gpus = GaugeMetricFamily("gflow_gpus", "GPUs by what holds them", labels=["kind"])
        gpus.add_metric(["total"], len(described))
        gpus.add_metric(["allocated"], sum(1 for g in described if g["jobs"]))
        gpus.add_metric(
            ["blocked"], sum(1 for g in described if g["foreign_pids"] and not g["jobs"])
        )
        gpus.add_metric(["usable"], sum(1 for g in described if g["allowed"]))
        yield gpus
        memory = GaugeMetricFamily(
            "gflow_gpu_memory_bytes", "GPU memory per GPU", labels=["gpu", "kind"]
        )
        running = [j for j in self.service.jobs.values() if j.state is JobState.RUNNING]
        for gpu in described:
            index = str(gpu["index"])
            mb = 2**20
            promised = sum(
                j.resources.gpu_memory_mb or 0 for j in running if gpu["index"] in j.gpu_ids
            )
            memory.add_metric([index, "total"], gpu.get("total_mb", 0) * mb)
            memory.add_metric([index, "declared"], promised * mb)
            memory.add_metric([index, "foreign"], gpu.get("foreign_used_mb", 0) * mb)
            memory.add_metric([index, "free"], max(0, gpu.get("free_mb", 0)) * mb)
        yield memory


class Metrics:
    """The daemon's own registry (never the process-global one)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(DaemonCollector(service))
        self.cursor = service.store.event_head  # count what happens from now on
        r = self.registry
        self.submitted = Counter(
            "gflow_jobs_submitted", "Jobs submitted (retries included)", ["user"], registry=r
        )
        self.ended = Counter(
            "gflow_jobs_ended", "Jobs ended, by final state and reason", ["state", "reason"],
            registry=r,
        )  # fmt: skip
        self.wait = Histogram(
            "gflow_job_queue_wait_seconds", "From submission to start", buckets=WAIT_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.run = Histogram(
            "gflow_job_run_seconds", "From start to end", buckets=RUN_BUCKETS, registry=r
        )
        self.passes = Histogram(
            "gflow_scheduling_pass_seconds", "One scheduling pass", buckets=PASS_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.requests = Histogram(
            "gflow_api_request_seconds", "API requests, by method and route",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip

    def catch_up(self) -> None:
        """Count the events committed since the last scrape."""
        store = self.service.store
        for _ in range(MAX_CATCH_UP):
            events, scanned = store.events_after(self.cursor, EventFilter())
            self.cursor = scanned
            if not events:
                return
            ids = [e.job_id for e in events if e.kind in ("started", "ended")]
            jobs = {j.id: j for j in store.get_jobs(ids)} if ids else {}
            for event in events:
                if event.kind == "submitted":
                    self.submitted.labels(event.user or "").inc()
                elif event.kind == "started" and (job := jobs.get(event.job_id)):
                    self.wait.observe(max(0.0, event.at - job.submitted_at))
                elif event.kind in ("ended", "cancelled") and event.state:
                    job = jobs.get(event.job_id)
                    reason = str(job.reason.kind.value) if job and job.reason else ""
                    self.ended.labels(event.state, reason).inc()
                    if job is not None and job.started_at is not None:
                        self.run.observe(max(0.0, event.at - job.started_at))

    def exposition(self) -> bytes:
        self.catch_up()
        return generate_latest(self.registry)

    def middleware(self) -> Middleware:
        @web.middleware
        async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
            start = time.perf_counter()
            response = await handler(request)
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            if route != "/api/v1/events":  # a stream lasts as long as its client
                self.requests.labels(request.method, route, str(response.status)).observe(
                    time.perf_counter() - start
                )
            return response

        return timed


METRICS = web.AppKey("metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
