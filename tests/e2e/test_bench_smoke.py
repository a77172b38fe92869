"""The benchmarks still run (tiny sizes): a measurement that rots silently is worthless."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_policy_bench_runs() -> None:
    """python -m bench.policy prints its JSON figures."""
    argv = ["--queued", "200", "--running", "10", "--repeat", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.policy", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["queued"] == 200 and figures["p50_ms"] > 0


def test_bench_quick_runs(tmp_path: Path) -> None:
    """python -m bench --quick starts its own daemon, measures every row, and cleans up."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--runs", "2", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| submit → Running, p50 (client poll) |" in done.stdout
    data = json.loads(out.read_text())
    keys = {row["key"] for row in data["rows"]}
    assert keys == set(data["ours"])  # every row measured
    for key in ("array_ok", "cli_burst_ok"):
        assert data["ours"][key]["text"].startswith("20/20 Finished"), data["ours"][key]
    home = [line for line in done.stderr.splitlines() if "/tmp/gfb" in line]
    assert not home, home  # no "could not remove" warning
