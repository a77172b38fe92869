"""`gbatch --dry-run`, as `sbatch --test-only`: every field of every job that would be
submitted, and the daemon's answer to whether it could ever run and when it would start."""

from __future__ import annotations

import sys
import time

from gflow.cli.common import EXIT_OK, print_json
from gflow.client import Client
from gflow.core.errors import Unavailable
from gflow.core.parse import format_duration, format_size_mb

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

FIELDS = ("name", "gpus", "cpus", "memory", "time", "dependencies", "throttle", "begin",
          "output", "error", "array task", "command")  # fmt: skip


def describe(spec: dict[str, Any]) -> dict[str, str]:
    """One job as the lines a user checks."""
    batch = spec.get("batch", {})
    gpus = str(spec["gpus"]) + (f" ({spec['gpu_model']})" if spec.get("gpu_model") else "")
    if spec.get("exclusive"):
        gpus, cpus = "all (--exclusive)", "all (--exclusive)"
    else:
        cpus = str(spec.get("cpus") or "-")
    memory = spec.get("memory_mb")
    deps = ",".join(f"{d['kind']}:{d['job']}" for d in spec["dependencies"])
    if spec.get("singleton"):
        deps = ",".join(filter(None, [deps, "singleton"]))
    begin = spec.get("begin_at")
    return {
        "name": spec["name"] or "-",
        "gpus": gpus,
        "cpus": cpus,
        "memory": "all" if memory == 0 else format_size_mb(memory),
        "time": format_duration(spec["time_limit"]) if spec["time_limit"] else "unlimited",
        "dependencies": deps or "-",
        "throttle": str(spec.get("max_concurrent") or "-"),
        "begin": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(begin)) if begin else "now",
        "output": batch.get("output") or "(gjob log only)",
        "error": batch.get("error") or "(with output)",
        "array task": "-" if spec.get("array_task_id") is None else str(spec["array_task_id"]),
        "command": spec.get("command") or " ".join([spec["script"], *batch.get("args", [])]),
    }


def dry_run(client: Client, specs: list[dict[str, Any]], as_json: bool) -> int:
    try:
        answer: dict[str, Any] | None = client.request("POST", "/jobs/test", {"jobs": specs})
    except Unavailable as exc:  # no daemon: still show what would be sent
        print(f"gbatch: {exc.message}; not checked against the machine", file=sys.stderr)
        answer = None
    shown = [{k: v for k, v in spec.items() if k not in ("env", "script_body")} for spec in specs]
    if as_json:
        print_json({"jobs": shown, "test": answer})
        return EXIT_OK
    first = specs[0]
    print(f"Would submit {len(specs)} batch job(s): {first.get('command') or first.get('script')}")
    print(f"  workdir: {first['workdir']}  priority: {first['priority']}")
    rows = [describe(spec) for spec in specs]
    widths = {f: max(len(f), *(len(r[f]) for r in rows)) for f in FIELDS}
    print("  " + "  ".join(f.upper().ljust(widths[f]) for f in FIELDS).rstrip())
    for row in rows:
        print("  " + "  ".join(row[f].ljust(widths[f]) for f in FIELDS).rstrip())
    if answer is not None:
        for note in answer.get("notes", []):
            print(f"gbatch: note: {note}", file=sys.stderr)
        print(test_line(answer))
    return EXIT_OK


def test_line(answer: dict[str, Any]) -> str:
    """sbatch --test-only's answer: when the first job would start."""
    at = answer.get("start_at")
    if at is None:
        when = "once running jobs end (one has no time limit, so no time can be given)"
    elif at <= answer["now"] + 1:
        when = "as soon as jobs queued ahead of it have started" if answer["waits_for"] else "now"
    else:
        when = time.strftime("at %Y-%m-%dT%H:%M:%S", time.localtime(at))
    waits = f" (waits for {answer['waits_for']})" if answer.get("waits_for") else ""
    ahead = answer.get("queued_ahead", 0)
    queue = f"; {ahead} queued job(s) of equal or higher priority wait ahead" if ahead else ""
    deps = "; once its dependencies are met" if answer.get("has_dependencies") else ""
    return f"It could run here: it would start {when}{waits}{deps}{queue}."
