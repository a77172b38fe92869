"""`python -m bench`: every SPEC §11 figure of our gflow, optionally beside the Rust gflow 0.4.

    python -m bench [--runs N] [--quick] [--peer gflow] [--peer-cap S] [--scale]
                    [--out FILE.json]

Starts a private daemon (fresh short /tmp/gfb* GFLOW_HOME, fake GPUs 2x24G) and measures:
job start and exit latency (--runs samples each), 1,000 `true` jobs as one array and as
1,000 separate gbatch calls, gqueue / gqueue -a with 10,000 jobs in the database, cold
gqueue / gbatch starts, one scheduling pass over 10,000 queued jobs, and the daemon's RSS
with 10,000 jobs. --quick shrinks every size (a smoke test); --peer gflow also installs
PyPI's runqd (gflow 0.4) into a venv under a temp dir and runs the same workloads against
it with a private HOME, XDG dirs and tmux server (see bench.peer, bench.peer_work).

--scale adds a year of history (bench.scale: 1,000,000 ended jobs, 50 users, the everyday
commands against a store of 50; --quick: 20,000), in a second table and FILE.scale.json.

Prints a Markdown table (row, ours, gflow 0.4, ratio, budget, within budget) and notes on
how each figure was measured; writes everything to --out (default
bench/results/<timestamp>.json). Every process started is stopped at the end, also on
Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench.common import BenchError, Figures, Sizes, sizes_for
from bench.ours import ROOT, measure_ours
from bench.peer import install_peer
from bench.peer_work import measure_peer
from bench.report import markdown_table, notes_text, write_json
from bench.scale import markdown as scale_table
from bench.scale import measure_scale
from gflow.core.errors import GflowError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, help="samples per latency row (default 20, quick 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--peer", choices=["gflow"], help="also measure the Rust gflow 0.4")
    parser.add_argument(
        "--peer-cap",
        type=float,
        default=60.0,
        help="seconds a gflow 0.4 burst may take before it is cut off (default 60)",
    )
    parser.add_argument("--scale", action="store_true", help="also a year of history")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/<time>.json)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 20)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stop_on_sigterm() -> None:
    """SIGTERM, SIGHUP and SIGINT (even where a shell started us ignoring it) unwind like
    Ctrl-C, so every `finally` cleans up."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_peer(sizes: Sizes) -> tuple[Figures, str]:
    root = Path(tempfile.mkdtemp(prefix="gfbpeer", dir="/tmp"))
    try:
        log(f"gflow 0.4: installing runqd into a venv under {root}")
        install = install_peer(root)
        log(f"gflow 0.4: {install.version}")
        return measure_peer(install, root, sizes, log), install.version
    finally:
        for _ in range(5):  # a job shell may still be exiting
            shutil.rmtree(root, ignore_errors=True)
            if not root.exists():
                break
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    sizes = sizes_for(args.runs, args.quick, args.peer_cap)
    out: Path = args.out or ROOT / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    theirs: Figures | None = None
    peer = ""
    scale: dict[str, Any] | None = None
    try:
        ours = measure_ours(sizes, log)
        if args.peer == "gflow":
            theirs, peer = run_peer(sizes)
        if args.scale:
            scale = measure_scale(20_000 if args.quick else 1_000_000, 7, log)
    except (BenchError, GflowError, subprocess.SubprocessError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print(markdown_table(sizes, ours, theirs))
    print("\nHow each figure was measured:\n" + notes_text(ours, theirs))
    write_json(out, sizes, ours, theirs, peer)
    print(f"\nJSON: {out}")
    if scale is not None:
        print("\nA year of history:\n\n" + scale_table(scale))
        out.with_suffix(".scale.json").write_text(json.dumps(scale, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
