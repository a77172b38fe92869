"""What a job gets at launch to run as a Slurm batch job would: its script run by its own
shebang, the SLURM_* variables, `srun` first on its PATH, its cores, its --output/--error
files and its --signal."""

from __future__ import annotations

import os
import shlex
import socket
import sys
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from gflow.core.batch import BatchOptions, RunningAs, expand_filename, slurm_environment
from gflow.core.model import Job
from gflow.core.spec import ALL_MEMORY
from gflow.resources import host
from gflow.safefs import ensure_private_subdir, read_small_file, write_private_file

SRUN_SOURCE = Path(__file__).resolve().parent.parent / "runner" / "srun.py"
BASH_ENV_FILE = "bash_env"


def script_argv(script: Path, body: str, args: tuple[str, ...], bash: str) -> list[str]:
    """As the kernel would run it: by its shebang line (flags and all); no shebang, bash."""
    if body.startswith("#!"):
        return [str(script), *args]
    return [bash, str(script), *args]


def prepare_batch(
    job: Job,
    batch: BatchOptions,
    env: dict[str, str],
    bin_dir: Path,
    now: float,
    python: str = "",
) -> dict[str, Any]:
    """Add the Slurm variables and the srun shim to `env`; return what the wrapper also
    needs (cores to pin to, output files, the --signal time)."""
    hostname = socket.gethostname().split(".")[0]
    memory = job.resources.memory_mb
    running = RunningAs(
        job_id=job.id,
        name=job.display_name,
        user=job.user,
        uid=job.uid,
        host=hostname,
        array_job_id=job.array_job_id,
        array_task_id=job.array_task_id,
        cpus=len(job.cpu_ids),
        cpus_on_node=len(job.cpu_ids) or len(os.sched_getaffinity(0)),
        gpu_ids=job.gpu_ids,
        memory_mb=host.total_memory_mb() if memory == ALL_MEMORY else memory,
        started_at=now,
        time_limit=job.time_limit,
        attempt=job.attempt,
    )
    env.update(slurm_environment(running, _with_dir(batch, job)))
    shims = ensure_srun(bin_dir, python)
    env["PATH"] = f"{shims}:{env.get('PATH', os.defpath)}"
    # A login shell (#!/bin/bash -l) resets PATH from /etc/profile; bash reads BASH_ENV
    # after that, and it puts srun back first (then runs the user's own BASH_ENV, if any).
    if "BASH_ENV" in env:
        env["GFLOW_USER_BASH_ENV"] = env["BASH_ENV"]
    env["BASH_ENV"] = os.path.join(shims, BASH_ENV_FILE)
    extra: dict[str, Any] = {"cpus": list(job.cpu_ids), "append": batch.append}
    for key, pattern in (("output", batch.output), ("error", batch.error)):
        if pattern:
            path = expand_filename(pattern, running)
            extra[key] = os.path.join(job.workdir, path)
    if batch.warning is not None and job.time_limit is not None:
        w = batch.warning
        extra["warning_after"] = (max(0, job.time_limit - w.seconds), w.signum, w.batch_only)
    return extra


def _with_dir(batch: BatchOptions, job: Job) -> BatchOptions:
    """A job submitted through the API alone has no submit directory: its workdir is."""
    return batch if batch.submit_dir else replace(batch, submit_dir=job.workdir)


@lru_cache(maxsize=4)
def ensure_srun(bin_dir: Path, python: str = "") -> str:
    """<state>/bin/srun: gflow's srun, run by this interpreter, needing nothing on PATH.
    Checked once per daemon (cached): a launch costs no file reads for it. `python`: the
    system daemon's wrapper interpreter, which every user can run; the directory and the
    shims are then every user's to run (0755), still root's to change."""
    text = f"#!{python or sys.executable} -IS\n"  # one shebang argument: -I and -S together
    text += SRUN_SOURCE.read_text()
    shared = 0o755 if python else 0o700
    ensure_private_subdir(bin_dir.parent, bin_dir.name, mode=shared)  # a real directory of ours
    here = shlex.quote(str(bin_dir))
    bash_env = (
        "# gflow: srun first on PATH, even after a login shell's /etc/profile reset PATH\n"
        f'case ":$PATH:" in *:{here}:*) ;; *) PATH={here}:"$PATH" ;; esac\n'
        'if [ -n "${GFLOW_USER_BASH_ENV:-}" ]; then . "$GFLOW_USER_BASH_ENV"; fi\n'
    )
    # one source for srun and scontrol: it looks at the name it was run by
    for name, content in (("srun", text), ("scontrol", text), (BASH_ENV_FILE, bash_env)):
        shim = bin_dir / name
        mode = shared if name != BASH_ENV_FILE else shared & 0o644
        if read_small_file(shim, 1 << 20) != content.encode():
            write_private_file(shim, content.encode(), mode=mode)
        os.chmod(shim, mode)  # what the daemon's umask 077 took off a shared one
    return str(bin_dir)
