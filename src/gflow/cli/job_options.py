"""The flags that describe a job, shared by every command that submits one (gbatch, grun)."""

from __future__ import annotations

import argparse
import sys

from gflow.cli.common import usage_value
from gflow.cli.sbatch_options import (
    add_batch_options,
    add_slurm_resources,
    parse_dependency_flag,
    parse_gpus,
    parse_gres,
    parse_mem,
    parse_time_or_none,
    slurm_resources,
)
from gflow.core.dependencies import Dependency, DependencyMode, parse_slurm_dependency
from gflow.core.errors import InvalidInput
from gflow.core.limits import MAX_GPUS, MAX_PRIORITY
from gflow.core.parse import (
    format_duration,
    format_size_mb,
    parse_array,
    parse_begin,
    parse_dependency_list,
    parse_int,
    parse_size_mb,
    parse_time_limit,
)

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

GPU_SLOT_FORMS = "IDX:SIZE or any:SIZE, e.g. 0:10G"


def add_job_options(p: argparse.ArgumentParser, arrays: bool = True) -> None:
    """The job flags; `arrays=False` (grun: one job) keeps --array out of the help (it is
    still parsed, so that grun can refuse it in one line)."""
    p.add_argument("-J", "-n", "--name", "--job-name", dest="name", default="", help="job name")
    p.add_argument(
        "-t",
        "--time",
        "--time-limit",
        dest="time_limit",
        type=usage_value(parse_time_or_none),
        help="time limit: N minutes, MM:SS, HH:MM:SS, D-HH:MM:SS, 2h…; 0 or UNLIMITED: none",
    )
    p.add_argument(
        "-p",
        "--priority",
        "--nice",
        type=usage_value(_priority),
        default=10,
        help="0-255, higher runs first (default 10)",
    )
    res = p.add_argument_group("resources")
    res.add_argument(
        "-g",
        "--gpus",
        "--gpus-per-node",
        dest="gpus",
        type=usage_value(parse_gpus),
        default=None,
        help="number of whole GPUs (or shared ones with --shared); TYPE:N picks a model",
    )
    res.add_argument(
        "--gres", type=usage_value(parse_gres), dest="gpus", help="Slurm form: gpu[:TYPE][:N]"
    )
    res.add_argument(
        "--shared",
        action="store_true",
        help="share GPUs with other shared jobs by declared --gpu-memory",
    )
    res.add_argument(
        "--gpu-memory",
        "--max-gpu-mem",
        "--max-gpu-memory",
        dest="gpu_memory",
        type=usage_value(parse_size_mb),
        help="GPU memory per GPU, e.g. 10G",
    )
    res.add_argument(
        "--gpu",
        dest="gpu_slots",
        action="append",
        default=[],
        type=usage_value(parse_gpu_slot),
        metavar="IDX:SIZE",
        help="Taskflow form: SIZE of GPU memory on GPU IDX (or any:SIZE); repeatable",
    )
    res.add_argument(
        "-m",
        "--mem",
        "--memory",
        "--max-mem",
        "--max-memory",
        dest="memory",
        type=usage_value(parse_mem),
        help="host RAM, e.g. 5G (a bare number is MB; 0: all of it, as in Slurm)",
    )
    add_slurm_resources(res)
    deps = p.add_argument_group("dependencies")
    deps.add_argument(
        "-d",
        "--depends-on",
        "--dependency",
        dest="depends_on",
        action="append",
        default=[],
        type=usage_value(parse_dependency_flag),
        help="ID, FIRST-LAST, @ (every job of your last submission), @~N (N submissions "
        "before it), singleton, or Slurm's afterok:ID[:ID],afterany:ID,afternotok:ID "
        "('?' = any; there an array's id means all its tasks)",
    )
    deps.add_argument(
        "--depends-on-all",
        type=usage_value(parse_dependency_list),
        help="all of these must finish successfully: ids, ranges, @, @~N (comma list)",
    )
    deps.add_argument(
        "--depends-on-any",
        type=usage_value(parse_dependency_list),
        help="any one of these must finish successfully",
    )
    deps.add_argument(
        "--no-auto-cancel",
        action="store_true",
        help="keep waiting when a dependency can no longer be met",
    )
    when = p.add_argument_group("when")
    when.add_argument(
        "--begin",
        type=usage_value(_begin),
        help="do not start before: now+1h, 22:00, 2026-12-01T08:00 …",
    )
    when.add_argument("--hold", action="store_true", help="submit held (gjob release starts it)")
    when.add_argument(
        "--max-concurrent",
        type=usage_value(_concurrency),
        help="at most N of this submission's jobs run at once",
    )
    when.add_argument(
        "-a",
        "--array",
        type=usage_value(parse_array),
        help="one job per task id: 1-10, 1-10:2, 1,3,7, 1-100%%4 (4 at a time); "
        "$GFLOW_ARRAY_TASK_ID holds the task id"
        if arrays
        else argparse.SUPPRESS,
    )
    p.add_argument("-P", "--project", default="", help="a project code (gqueue -P filters)")
    p.add_argument(
        "-c",
        "--conda-env",
        default="",
        help="activate this conda env in the job (command mode: $CONDA_DEFAULT_ENV)",
    )
    p.add_argument(
        "--max-retries",
        type=usage_value(lambda t: parse_int(t, "--max-retries", 0, 100)),
        default=0,
        help="requeue a failed job up to N times, as new attempts",
    )
    p.add_argument(
        "--retry-on",
        choices=["timeout"],
        help="also retry a job that timed out",
    )
    p.add_argument(
        "--keep-session", action="store_true", help="keep the job's tmux session open after it ends"
    )
    mail = p.add_argument_group(
        "notifications (through the daemon's first [[notifications.emails]])"
    )
    mail.add_argument(
        "--notify-email",
        "--mail-user",
        dest="notify_email",
        metavar="ADDR",
        help="e-mail this address about the job",
    )
    mail.add_argument(
        "--notify-on",
        dest="notify_on",
        type=usage_value(notify_on),
        metavar="EVENTS",
        help="started, ended, failed, all (default ended)",
    )
    mail.add_argument(
        "--mail-type",
        dest="mail_type",
        type=usage_value(mail_type),
        metavar="TYPES",
        help="Slurm's BEGIN, END, FAIL, REQUEUE, TIME_LIMIT, ALL",
    )
    add_batch_options(p)
    p.add_argument("--auto-close", action="store_true", help=argparse.SUPPRESS)  # the default


def job_options(args: argparse.Namespace) -> dict[str, Any]:
    """The job's fields (as the API takes them) from the parsed flags."""
    deps, mode, singleton = _dependencies(args)
    return {
        "name": args.name,
        "priority": args.priority,
        **_resources(args),
        "time_limit": args.time_limit,
        "dependencies": [d.to_dict() for d in deps],
        "dependency_mode": mode.value,
        "auto_cancel": not args.no_auto_cancel,
        "begin_at": args.begin,
        "max_concurrent": args.max_concurrent,
        "hold": args.hold,
        "keep_session": args.keep_session,
        "conda_env": args.conda_env,
        "max_retries": args.max_retries,
        "retry_on_timeout": args.retry_on == "timeout",
        "project": args.project,
        "singleton": singleton,
        **_notify_fields(args),
    }


# --notify-on words (gflow's) and --mail-type words (Slurm's) as the daemon takes them
NOTIFY_WORDS = ("started", "ended", "failed", "all")
EVENT_NAMES = (
    "job_submitted", "job_started", "job_finished", "job_failed", "job_timeout",
    "job_cancelled", "job_held", "job_released", "job_updated", "job_retried",
)  # fmt: skip
MAIL_TYPES = {
    "NONE": "", "BEGIN": "started", "END": "ended", "FAIL": "failed", "REQUEUE": "job_retried",
    "ALL": "all", "TIME_LIMIT": "job_timeout", "TIME_LIMIT_90": "job_timeout",
    "TIME_LIMIT_80": "job_timeout", "TIME_LIMIT_50": "job_timeout",
    "INVALID_DEPEND": "job_cancelled", "ARRAY_TASKS": "", "STAGE_OUT": "",
}  # fmt: skip


def notify_on(text: str) -> str:
    words = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in words if w not in NOTIFY_WORDS and w not in EVENT_NAMES]
    if bad or not words:
        raise InvalidInput(
            f"invalid --notify-on {text!r}", hint="started, ended, failed, all or event names"
        )
    return ",".join(words)


def mail_type(text: str) -> str:
    words = [w.strip().upper() for w in text.split(",") if w.strip()]
    bad = [w for w in words if w not in MAIL_TYPES]
    if bad or not words:
        raise InvalidInput(
            f"invalid --mail-type {text!r}", hint=", ".join(MAIL_TYPES) + " (comma-separated)"
        )
    return ",".join(w for w in dict.fromkeys(MAIL_TYPES[w] for w in words) if w)


def _notify_fields(args: argparse.Namespace) -> dict[str, str]:
    email = getattr(args, "notify_email", None) or ""
    on = getattr(args, "notify_on", None) or ""
    slurm = getattr(args, "mail_type", None) or ""
    if on and not email:
        raise InvalidInput("--notify-on needs --notify-email (or --mail-user)")
    if slurm and not email:  # Slurm would mail the submitter's local mailbox; there is none
        prog = sys.argv[0].rsplit("/", 1)[-1]
        sys.stderr.write(f"{prog}: --mail-type without --mail-user: no mail is sent\n")
    if not email:
        return {}
    return {"notify_email": email, "notify_on": ",".join(w for w in (on, slurm) if w)}


def _resources(args: argparse.Namespace) -> dict[str, Any]:
    res = slurm_resources(args)
    gpus = res["gpus"] if args.gpus is not None else None
    if args.gpu_slots:  # Taskflow's --gpu IDX:SIZE … : shared GPUs by memory
        if gpus is not None or args.gpu_memory is not None:
            raise InvalidInput("--gpu IDX:SIZE replaces --gpus/--gpu-memory; give one form")
        indices = [index for index, _ in args.gpu_slots]
        if None in indices and len(indices) > 1:
            raise InvalidInput("--gpu any:SIZE cannot be combined with other --gpu flags")
        if len(set(indices)) != len(indices):
            raise InvalidInput("the same GPU is named twice in --gpu")
        res.update(
            gpus=len(indices),
            shared=True,
            # One size per job: the largest asked for (a GPU asked for less gets more).
            gpu_memory_mb=max(size for _, size in args.gpu_slots),
            gpu_pin=[] if None in indices else indices,
        )
        return res
    if args.shared and not (gpus and args.gpu_memory):
        raise InvalidInput("--shared needs --gpus N and --gpu-memory SIZE")
    res.update(shared=args.shared, gpu_memory_mb=args.gpu_memory)
    return res


def _dependencies(args: argparse.Namespace) -> tuple[list[Dependency], DependencyMode, bool]:
    deps: list[Dependency] = []
    modes: set[DependencyMode] = set()
    singleton = False
    for found, mode, alone in args.depends_on:
        deps += found
        singleton = singleton or alone
        if len(found) > 1:
            modes.add(mode)
    if args.depends_on_all:
        deps += [Dependency(ref) for ref in args.depends_on_all]
        modes.add(DependencyMode.ALL)
    if args.depends_on_any:
        deps += [Dependency(ref) for ref in args.depends_on_any]
        modes.add(DependencyMode.ANY)
    if len(modes) > 1:
        raise InvalidInput("dependencies mix 'all' and 'any'; use one or the other")
    return deps, (modes.pop() if modes else DependencyMode.ALL), singleton


def _priority(text: str) -> int:
    return parse_int(text, "priority", 0, MAX_PRIORITY)


def _gpu_count(text: str) -> int:
    return parse_int(text, "GPU count", 0, MAX_GPUS)


def _concurrency(text: str) -> int:
    return parse_int(text, "--max-concurrent", 1, 1_000_000)


def parse_gpu_slot(text: str) -> tuple[int | None, int]:
    index, colon, size = text.strip().partition(":")
    if not colon:
        raise InvalidInput(f"invalid --gpu {text!r}", hint=f"use {GPU_SLOT_FORMS}")
    gpu = None if index.lower() == "any" else parse_int(index, "GPU index", 0, MAX_GPUS - 1)
    return gpu, parse_size_mb(size)


def _begin(text: str) -> float:
    from datetime import datetime

    return parse_begin(text, datetime.now().astimezone())


def add_update_options(p: argparse.ArgumentParser) -> None:
    """`gjob update`: the request fields a waiting job may change."""
    p.add_argument("-g", "--gpus", type=usage_value(_gpu_count))
    p.add_argument("--gpu-memory", "--max-gpu-mem", dest="gpu_memory",
                   type=usage_value(parse_size_mb), help="e.g. 10G")  # fmt: skip
    p.add_argument("-t", "--time", "--time-limit", dest="time_limit",
                   type=usage_value(parse_time_limit))  # fmt: skip
    p.add_argument("--clear-time-limit", action="store_true", help="no time limit")
    p.add_argument("-p", "--priority", type=usage_value(_priority))
    p.add_argument("-m", "--mem", "--memory", dest="memory", type=usage_value(parse_size_mb))
    p.add_argument("--clear-memory", action="store_true", help="no host RAM request")
    p.add_argument("-d", "--depends-on", "--dependency", dest="depends_on",
                   type=usage_value(parse_slurm_dependency),
                   help="replace the dependencies: ID, @, afterok:ID…")  # fmt: skip
    p.add_argument("--clear-dependencies", "--clear-deps", action="store_true")
    p.add_argument("-c", "-e", "--conda-env", help="conda env ('' for none)")
    p.add_argument(
        "--max-retries", type=usage_value(lambda t: parse_int(t, "--max-retries", 0, 100))
    )


def update_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The API's update body from `gjob update` flags: only what was given."""
    fields: dict[str, Any] = {}
    for flag, key in (("gpus", "gpus"), ("gpu_memory", "gpu_memory_mb"),
                      ("time_limit", "time_limit"), ("priority", "priority"),
                      ("memory", "memory_mb"), ("conda_env", "conda_env"),
                      ("max_retries", "max_retries")):  # fmt: skip
        if getattr(args, flag) is not None:
            fields[key] = getattr(args, flag)
    if args.clear_time_limit:
        fields["time_limit"] = None
    if args.clear_memory:
        fields["memory_mb"] = None
    if args.depends_on is not None:
        deps, mode = args.depends_on
        fields["dependencies"] = [d.to_dict() for d in deps]
        fields["dependency_mode"] = mode.value
    if args.clear_dependencies:
        fields["dependencies"] = []
    return fields


def describe_update(fields: dict[str, Any]) -> str:
    """What an update (or redo's overrides) changed, in the words of the flags:
    'priority 50, time limit 2:00:00, memory 100M'."""
    said = []
    for key, value in sorted(fields.items(), key=lambda kv: _UPDATE_ORDER.index(kv[0])):
        if key == "dependency_mode":
            continue  # said with the dependencies
        words, shown = _UPDATE_WORDS[key]
        if key == "dependencies":
            joiner = " or " if fields.get("dependency_mode") == "any" else ", "
            text = joiner.join(f"{d['kind']}:{d['job']}" for d in value) if value else "none"
            said.append(f"{words} {text}")
        else:
            said.append(f"{words} {'none' if value in (None, '') else shown(value)}")
    return ", ".join(said)


_UPDATE_WORDS: dict[str, tuple[str, Any]] = {
    "gpus": ("GPUs", str),
    "gpu_memory_mb": ("GPU memory", format_size_mb),
    "time_limit": ("time limit", format_duration),
    "priority": ("priority", str),
    "memory_mb": ("memory", format_size_mb),
    "conda_env": ("conda env", str),
    "max_retries": ("max retries", str),
    "dependencies": ("dependencies", str),
    "dependency_mode": ("", str),
}
_UPDATE_ORDER = list(_UPDATE_WORDS)
