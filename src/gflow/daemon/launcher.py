"""Launching a job, in a launcher thread: its files, its cgroup, its wrapper (in system
mode as its submitter: their uid, gid, groups, umask and environment; runner/as_user.py).

The supervisor hands a `PreparedLaunch` (what it read from the store on the loop's
thread) and gets back `Launched`: the wrapper's processes as seen right after the start.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.config import Config
from gflow.core.batch import NO_BATCH, BatchOptions
from gflow.core.errors import Forbidden
from gflow.core.model import Job, JobProcesses
from gflow.daemon.slurm_launch import script_argv
from gflow.paths import Paths
from gflow.resources.cgroups import CgroupMemory
from gflow.runner.as_user import (
    RunAs,
    ensure_user_dir,
    hand_over,
    job_env,
    runs_as,
    submitted_umask,
)
from gflow.runner.control import identify
from gflow.runner.executors import Launch, LaunchError, ProcessExecutor, TmuxExecutor
from gflow.runner.jobfiles import LaunchSpec, make_jobdir, write_script, write_spec
from gflow.safefs import remove_entry

BASH = "/bin/bash" if Path("/bin/bash").exists() else "bash"


@dataclass(frozen=True)
class Launched:
    """What a launcher thread hands back: the wrapper as seen right after its start."""

    processes: JobProcesses
    session: str
    at: float


@dataclass(frozen=True)
class PreparedLaunch:
    job: Job
    env: dict[str, str]
    script_body: str
    batch: BatchOptions = NO_BATCH
    wrapper_extra: dict[str, Any] | None = None  # pinning, output files, --signal


class Launcher:
    """Starts jobs' wrappers (called from the supervisor's launcher threads)."""

    def __init__(
        self,
        paths: Paths,
        config: Config,
        executor: TmuxExecutor | ProcessExecutor,
        memory: CgroupMemory | None,
        job_umask: int,
        boot: str,
        clock: Callable[[], float],
    ) -> None:
        self.paths = paths
        self.config = config
        self.executor = executor
        self.memory = memory
        self.job_umask = job_umask
        self.boot = boot
        self.clock = clock

    def run_as(self, job: Job) -> RunAs | None:
        """System mode: who the job runs as (its submitter); personal mode: the daemon's
        own user, as before."""
        if not self.paths.system:
            return None
        try:
            return RunAs.of_uid(job.uid)
        except Forbidden:
            return None

    def launch(self, prepared: PreparedLaunch) -> Launched:
        """In a launcher thread: write the job's files and start its wrapper (in system
        mode as the job's submitter: its uid, gid, groups and umask)."""
        job = prepared.job
        # The wrapper enforces the time limit itself too: it holds while no daemon runs.
        extra: dict[str, Any] = {
            "time_limit": job.time_limit,
            "kill_grace": float(self.config.kill_grace),
        }
        if self.memory is not None:  # every job in a cgroup of its own, its --mem the limit
            self.memory.create(job.id, job.resources.memory_mb)
            extra["cgroup"] = self.memory.member_name(job.id)  # the wrapper waits for it
        jobdir, run_as = self.write_files(prepared, extra)
        pid, session = self.executor.start(Launch(job.id, jobdir, job.keep_session, run_as))
        # Read at once, while the pid is surely the wrapper tmux just reported.
        processes = identify(pid, self.boot)
        if run_as is not None and not runs_as(pid, run_as.uid):
            # The pane pid comes from the user's own tmux server: a claim, checked.
            raise LaunchError(f"the reported wrapper pid {pid} is not {run_as.name}'s process")
        if self.memory is not None:
            self.memory.add(job.id, pid)
        return Launched(processes, session, self.clock())

    def write_files(
        self, prepared: PreparedLaunch, extra: dict[str, Any]
    ) -> tuple[Path, RunAs | None]:
        """The job's directory (in system mode handed to its user) with its spec and its
        script: all the wrapper needs, wherever it runs (here, or in a Slurm job)."""
        job = prepared.job
        run_as = RunAs.of_uid(job.uid) if self.paths.system else None
        env, umask = prepared.env, self.job_umask
        if run_as is not None:
            env = job_env(env, run_as)
            umask = submitted_umask(env)
            remove_entry(self.paths.jobs_dir, str(job.id))  # a fresh one, root's until handed over
            log_dir = Path(job.log_path).parent
            if log_dir.parent == self.paths.logs_dir and log_dir.name == str(job.uid):
                ensure_user_dir(self.paths.logs_dir, log_dir.name, run_as)
        jobdir = make_jobdir(self.paths.jobs_dir, job.id)
        if job.script:
            script = write_script(jobdir, prepared.script_body)
            argv = script_argv(script, prepared.script_body, prepared.batch.args, BASH)
        else:
            argv = [BASH, "-c", job.command]
        if job.conda_env:
            body = f"exec {shlex.join(argv)}" if job.script else job.command
            argv = [BASH, "-c", conda_prelude(job.conda_env) + body]
        spec = LaunchSpec(
            argv, env, job.workdir, job.log_path, umask, {**(prepared.wrapper_extra or {}), **extra}
        )
        write_spec(jobdir, spec)
        if run_as is not None:
            hand_over(jobdir, run_as)
        return jobdir, run_as


def conda_prelude(env: str) -> str:
    """Shell lines that activate a conda env in a non-interactive shell (conda's own hook),
    or end the job with a clear line when conda is missing. The env reaches the shell only
    as one quoted word: a value holding `$(…)` or `"` stays literal."""
    name = shlex.quote(env)
    return (
        "if ! command -v conda >/dev/null 2>&1; then\n"
        f"  printf 'gflow: conda is not on PATH; cannot activate %s\\n' {name} >&2; exit 127\n"
        "fi\n"
        'eval "$(conda shell.bash hook)" || exit 1\n'
        f"conda activate {name} || "
        f"{{ printf 'gflow: conda activate %s failed\\n' {name} >&2; exit 1; }}\n"
    )
