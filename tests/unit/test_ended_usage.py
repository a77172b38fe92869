"""Fair-share's ended GPU-hours, summed by SQLite once and then kept up to date as jobs end
(daemon/sharing.EndedGpuUsage), equal summing every span again at any later time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gflow.core.model import Event, Job
from gflow.core.sharing import decayed_gpu_hours
from gflow.core.states import JobState
from gflow.daemon.sharing import EndedGpuUsage
from gflow.store.db import Store
from tests.unit.test_store import new_job

DAY = 86400.0
NOW = 1_800_000_000.0


def end(store: Store, tmp_path: Path, uid: int, start: float, end: float, gpus: int) -> Job:
    (job,) = store.insert_jobs([replace(new_job(), uid=uid)], start - 60, tmp_path)
    done = replace(
        job,
        state=JobState.FINISHED,
        started_at=start,
        finished_at=end,
        gpu_ids=tuple(range(gpus)),
    )
    store.save([(done, Event(job.id, end, "ended", JobState.FINISHED, ""))])
    return done


def test_kept_up_to_date_as_jobs_end_equals_summing_again(store: Store, tmp_path: Path) -> None:
    half_life = 7 * DAY
    spans = [
        (1000, NOW - 3 * DAY, NOW - 2 * DAY, 2),
        (1001, NOW - 9 * DAY, NOW - 8 * DAY, 1),
        (1000, NOW - 3600, NOW - 60, 1),
        (1002, NOW - 100 * DAY, NOW - 99 * DAY, 4),
    ]
    for uid, start, stop, gpus in spans:
        end(store, tmp_path, uid, start, stop, gpus)
    end(store, tmp_path, 1003, NOW - 3600, NOW - 60, 0)  # no GPU: no GPU-hours
    usage = EndedGpuUsage(half_life)
    within = [s for s in spans if s[2] >= NOW - 8 * half_life]  # the horizon leaves out 1002
    assert usage.as_of(store, NOW) == pytest.approx(decayed_gpu_hours(within, NOW, half_life))
    later = NOW + 2 * DAY
    new = (1001, NOW + DAY, later - 600, 3)
    usage.add(end(store, tmp_path, *new))
    expected = decayed_gpu_hours([*within, new], later, half_life)
    assert usage.as_of(store, later) == pytest.approx(expected, rel=1e-9)
    assert set(usage.as_of(store, later)) == {1000, 1001}
