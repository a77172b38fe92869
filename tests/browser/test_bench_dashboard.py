"""bench/dashboard.py still runs (tiny sizes): a measurement that rots silently is worthless."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]


def test_the_dashboard_bench_prints_its_figures() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing (scripts/install-browsers.sh installs it as root)")
    pytest.importorskip("playwright", reason="playwright is not installed")
    argv = ["--sizes", "30", "--runs", "1", "--frames", "10"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.dashboard", *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["sizes"]["30"]
    assert figures["first_rows_ms"]["median"] > 0
    assert figures["scroll_frame_ms"]["frames_per_run"] == 10
