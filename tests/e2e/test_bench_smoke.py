"""The benchmarks still run (tiny sizes): a measurement that rots silently is worthless."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_policy_bench_runs() -> None:
    """python -m bench.policy prints its JSON figures."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.policy",
            "--queued",
            "200",
            "--running",
            "10",
            "--repeat",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["queued"] == 200 and figures["p50_ms"] > 0


def test_latency_bench_runs(tmp_path: Path) -> None:
    """python -m bench.latency starts its own daemon, measures, and cleans up."""
    out = tmp_path / "latency.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.latency", "--runs", "2", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "submit → Running" in done.stdout
    assert json.loads(out.read_text())
