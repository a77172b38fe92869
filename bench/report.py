"""The rows of the comparison (SPEC §11 and a few more), the Markdown table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import Figure, Figures, Sizes


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str  # "ms", "s", "MB", or "" for a row shown as text
    budget: float | None = None  # the SPEC §11 budget in `unit` (value ≤ budget)
    budget_text: str = "—"


ROWS = (
    Row("start_p50", "submit → Running, p50 (client poll)", "ms", 50, "p50 ≤ 50 ms"),
    Row("start_p99", "submit → Running, p99 (client poll)", "ms", 200, "p99 ≤ 200 ms"),
    Row("start_daemon_p50", "… started_at − submitted_at (daemon clock), p50", "ms"),
    Row("start_command_p50", "… submit → the command's first line runs, p50", "ms"),
    Row("exit_p50", "job exit → Finished recorded, p50", "ms", 50, "p50 ≤ 50 ms"),
    Row("array_wall", "{burst} × `true` as one array: submit → all ended", "s", 20, "≤ 20 s"),
    Row("array_ok", "… ended right, tmux sessions left", "", None, "all Finished"),
    Row("cli_burst_wall", "{burst} × `true` as separate `gbatch` calls: → all ended", "s"),
    Row("cli_burst_ok", "… ended right, tmux sessions left", "", None, "all Finished"),
    Row("gqueue_big", "`gqueue` with {big} jobs in the database", "ms", 150, "≤ 150 ms"),
    Row("gqueue_big_all", "`gqueue -a` with {big} jobs in the database", "ms", 150, "≤ 150 ms"),
    Row("cold_gqueue", "`gqueue` cold start, small queue", "ms", 80, "≤ 80 ms"),
    Row("cold_gbatch", "`gbatch --dry-run true` cold start", "ms", 80, "≤ 80 ms"),
    Row("cold_bare", "… the bare interpreter, `python -I -S -c pass`", "ms"),
    Row("cold_gqueue_x", "… cold `gqueue` / the bare interpreter", "×", 2, "≤ 2×"),
    Row("cold_gbatch_x", "… cold `gbatch --dry-run` / the bare interpreter", "×", 2, "≤ 2×"),
    Row("policy_pass", "one scheduling pass, {big} queued", "ms", 20, "≤ 20 ms"),
    Row(
        "policy_pass_team",
        "… from 20 users, with quotas, fair-share, reservations",
        "ms",
        20,
        "≤ 20 ms",
    ),
    Row("rss_big", "daemon RSS with {big} jobs", "MB", 80, "≤ 80 MB"),
    Row(
        "api_during_huge_p95",
        "the API while a {huge}-job array is submitted, p95",
        "ms",
        200,
        "p95 ≤ 200 ms",
    ),
    Row("huge_submit", "… that `gbatch --array` submission, wall", "s"),
    Row(
        "sampling_tick",
        "watching {sampled} running jobs' usage: one tick (1 s)",
        "ms",
        10,
        "≤ 10 ms (1 % of a core)",
    ),
)


def within(row: Row, figure: Figure | None) -> bool | None:
    if figure is None:
        return None
    if row.budget is not None and figure.value is not None:
        return figure.value <= row.budget and not figure.at_least
    return figure.ok


def cell(row: Row, figure: Figure | None) -> str:
    if figure is None:
        return "not run"
    if figure.text is not None:
        return figure.text
    if figure.value is None:
        return figure.note or "—"
    digits = 0 if row.unit == "ms" and figure.value >= 100 else 1
    number = f"{figure.value:.{digits}f} {row.unit}"
    return f"> {number}" if figure.at_least else number


def ratio(ours: Figure | None, theirs: Figure | None) -> str:
    if ours is None or theirs is None or ours.value is None or theirs.value is None:
        return "—"
    if theirs.value == 0:
        return "—"
    value = ours.value / theirs.value
    return f"< {value:.2g}" if theirs.at_least else f"{value:.2g}"


def markdown_table(sizes: Sizes, ours: Figures, theirs: Figures | None) -> str:
    lines = [
        "| row | ours | gflow 0.4 | ours / gflow | budget (§11) | ours within budget |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    names = {
        "burst": f"{sizes.burst:,}",
        "big": f"{sizes.big:,}",
        "huge": f"{sizes.huge:,}",
        "sampled": f"{sizes.sampled:,}",
    }
    for row in ROWS:
        mine = ours.get(row.key)
        peer = theirs.get(row.key) if theirs is not None else None
        peer_cell = cell(row, peer) if theirs is not None else "not run (--peer gflow)"
        ok = {True: "yes", False: "**no**", None: "—"}[within(row, mine)]
        lines.append(
            f"| {row.label.format(**names)} | {cell(row, mine)} | {peer_cell} | "
            f"{ratio(mine, peer)} | {row.budget_text} | {ok} |"
        )
    return "\n".join(lines)


def notes_text(ours: Figures, theirs: Figures | None) -> str:
    """How each figure was measured (or why it is missing); a note repeated row after row
    is given once."""
    lines = []
    for who, figures in (("ours", ours), ("gflow 0.4", theirs or {})):
        last = ""
        for row in ROWS:
            figure = figures.get(row.key)
            if figure is not None and figure.note and figure.note != last:
                lines.append(f"- {who}, {row.key}: {figure.note}")
            last = figure.note if figure is not None else ""
    return "\n".join(lines)


def write_json(out: Path, sizes: Sizes, ours: Figures, theirs: Figures | None, peer: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sizes": asdict(sizes),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "peer": peer,
        },
        "rows": [asdict(row) for row in ROWS],
        "ours": {key: asdict(fig) for key, fig in ours.items()},
        "gflow": {key: asdict(fig) for key, fig in (theirs or {}).items()},
    }
    out.write_text(json.dumps(data, indent=2) + "\n")
