"""`gbatch --export-slurm[=FILE] …`: the sbatch script equivalent to the job gbatch would
submit (its directives translated by core/slurm.py, its environment and working directory
captured), written to stdout or FILE; nothing is submitted, and neither a daemon nor Slurm
is needed: the translation is the same pure code the Slurm executor uses, run here."""

from __future__ import annotations

import argparse
import os
import sys
import time

from gflow.cli.common import EXIT_OK
from gflow.core.errors import InvalidInput

TYPE_CHECKING = False  # typing only for mypy: gbatch imports this module on its start path
if TYPE_CHECKING:
    from typing import Any

STDOUT = "-"


def export_target(text: str) -> str:
    """FILE of --export-slurm=FILE ('-' or the bare flag: stdout), checked before anything."""
    if text == STDOUT:
        return text
    if not text or not text.isprintable():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file name")
    parent = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text) or not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"cannot write {text}: not a file in an existing folder")
    return text


def bare_flag_to_stdout(argv: list[str]) -> list[str]:
    """`--export-slurm` alone means stdout: rewritten before parsing, so that argparse never
    takes the command's first word for FILE (`gbatch --export-slurm echo hi`)."""
    out: list[str] = []
    for index, word in enumerate(argv):
        if word == "--":
            return out + argv[index:]
        out.append(f"--export-slurm={STDOUT}" if word == "--export-slurm" else word)
    return out


def export_slurm(specs: list[dict[str, Any]], target: str) -> int:
    from gflow.core.model import display_name
    from gflow.core.slurm import (
        SbatchRequest,
        SlurmSettings,
        command_body,
        export_script,
        sbatch_options,
    )
    from gflow.core.spec import JobSpec
    from gflow.daemon.launcher import conda_prelude

    jobs = [JobSpec.from_dict(spec) for spec in specs]
    first = jobs[0]
    if len(jobs) > 1 and first.array_task_id is None:
        raise InvalidInput(
            f"--export-slurm writes one job's script; this sweep is {len(jobs)} jobs",
            hint="export one --param value at a time, or use --array",
        )
    notes: list[str] = []
    if first.dependencies:
        refs = ",".join(f"{d.kind.value}:{d.job}" for d in first.dependencies)
        notes.append(f"dependencies ({refs}) name gflow jobs: give Slurm's ids with -d")
    tasks = tuple(j.array_task_id or 0 for j in jobs) if first.array_task_id is not None else ()
    request = SbatchRequest(
        name=display_name(first.name, first.command, first.script),
        resources=first.resources,
        workdir=first.workdir,
        time_limit=first.time_limit,
        begin_at=first.begin_at,
        hold=first.hold,
        array_tasks=tasks,
        throttle=first.max_concurrent if tasks else None,
        output=first.batch.output,
        error=first.batch.error,
        append=first.batch.append,
        ntasks=first.batch.ntasks,
        signal=first.batch.warning,
    )
    options, more = sbatch_options(request, SlurmSettings(), time.time())
    batch = first.batch
    env = {k: v for k, v in first.env.items() if k not in ("GFLOW_UMASK", "PWD", "OLDPWD")}
    body = command_body(first.command, first.script_body, batch.args)
    if first.conda_env:
        body = conda_prelude(first.conda_env) + body
    umask = first.env.get("GFLOW_UMASK", "")
    lines = [f"umask {umask}"] if umask.isdigit() else []
    lines += [
        'export GFLOW_JOB_ID="$SLURM_JOB_ID"',
        'export GFLOW_ARRAY_TASK_ID="${SLURM_ARRAY_TASK_ID:-0}"',
        body,
    ]
    text = export_script(options, [*notes, *more], env, "\n".join(lines))
    if target == STDOUT:
        sys.stdout.write(text)
    else:
        try:
            with open(target, "w") as out:
                out.write(text)
        except OSError as exc:
            raise InvalidInput(f"cannot write {target}: {exc.strerror}") from None
        print(f"gbatch: wrote {target} (submit it with: sbatch {target})", file=sys.stderr)
    return EXIT_OK
