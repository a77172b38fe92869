"""GET /api/v1/stats/timeline?window=day|week: the dashboard's plots, from the store
(drawn as SVG by the page; the numbers by core/plots.py)."""

from __future__ import annotations

import json

from aiohttp import web

from gflow.core.errors import InvalidInput
from gflow.core.plots import WINDOWS, JobTimes, timeline
from gflow.core.states import ACTIVE_STATES
from gflow.daemon.requests import SERVICE
from gflow.store.db import JobFilter

FIELDS = ["id", "submitted_at", "started_at", "finished_at", "gpu_ids", "gpus", "user", "project"]


async def stats_timeline(request: web.Request) -> web.Response:
    name = request.query.get("window", "day")
    if name not in WINDOWS:
        raise InvalidInput(f"unknown window {name[:20]!r}", hint="day or week")
    window, buckets = WINDOWS[name]
    service = request.app[SERVICE]
    now = service.clock()
    # Jobs submitted in the window, and older ones still queued or running.
    recent = service.list_fields_json(JobFilter(submitted_since=now - window), FIELDS)
    active = service.list_fields_json(JobFilter(states=ACTIVE_STATES), FIELDS)
    rows = {row[0]: row for text in (recent, active) for row in json.loads(text)["rows"]}
    jobs = [
        JobTimes(sub, start, end, len(ids) or gpus, user, proj, tuple(ids))
        for _, sub, start, end, ids, gpus, user, proj in rows.values()
    ]
    shown = timeline(jobs, now, window, buckets).to_dict()
    return web.json_response({"window": name, "now": now, **shown})
