"""The Slurm client commands (sbatch, squeue, scontrol, scancel, sacct), each a subprocess
with a timeout, called from a worker thread (never on the daemon's loop: a dead controller
takes ~9 s to fail). In system mode sbatch runs as the job's owner, so Slurm knows the
real user (runner/as_user.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from gflow.core.slurm import (
    SQUEUE_FORMAT,
    SlurmRow,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
)
from gflow.runner.as_user import RunAs

TIMEOUT = 30.0  # seconds any one Slurm command may take
# What sbatch and friends print when the controller cannot be reached (not a refusal).
_UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "communication connection failure",
    "zero bytes were transmitted",
    "slurm_persist_conn_open",
    "unable to establish",
)


class SlurmUnreachable(Exception):
    """The controller did not answer (down, unreachable, or no Slurm installed here)."""


class SlurmRefused(Exception):
    """Slurm answered no (sbatch rejected the request, scontrol refused the change)."""


class SlurmCommands:
    """One place that runs Slurm's commands; `env` carries SLURM_CONF and PATH."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)

    def _run(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        run_as: RunAs | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, object] = run_as.popen_args() if run_as is not None else {}
        # Found on the daemon's PATH, whatever the submitter's environment says.
        program = shutil.which(argv[0], path=self.env.get("PATH", os.defpath)) or argv[0]
        try:
            done: subprocess.CompletedProcess[str] = subprocess.run(
                [program, *argv[1:]],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env=env or self.env,
                **as_user,  # type: ignore[call-overload]
            )
        except subprocess.TimeoutExpired:
            raise SlurmUnreachable(f"{argv[0]} did not answer within {TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise SlurmUnreachable(f"cannot run {argv[0]}: {exc.strerror}") from None
        if done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip()).splitlines()
            line = message[-1] if message else f"{argv[0]} exited {done.returncode}"
            if any(marker in line.lower() for marker in _UNREACHABLE):
                raise SlurmUnreachable(line)
            raise SlurmRefused(line)
        return done

    def sbatch(
        self, options: Sequence[str], script: str, env: dict[str, str], run_as: RunAs | None
    ) -> str:
        """Submit; the Slurm job id (an array's id). The script goes on stdin."""
        # The daemon's SLURM_CONF (where the cluster is) wins over the submitter's.
        # The submitter's own SLURM_* (a gbatch run inside a Slurm job, say) would steer
        # sbatch; the job gets Slurm's real ones inside anyway.
        merged = {k: v for k, v in env.items() if not k.startswith("SLURM_")}
        if "SLURM_CONF" in self.env:
            merged["SLURM_CONF"] = self.env["SLURM_CONF"]
        done = self._run(["sbatch", "--parsable", *options], merged, run_as, script)
        job_id = done.stdout.strip().split(";")[0]  # "123" or "123;cluster"
        if not job_id.isdigit():
            raise SlurmRefused(f"sbatch printed no job id: {done.stdout.strip()!r}")
        return job_id

    def squeue(self, job_ids: Sequence[str] = ()) -> list[SlurmRow]:
        """Every job (and array task, one line each) still in the controller's memory."""
        argv = ["squeue", "-h", "-r", "-t", "all", "-o", SQUEUE_FORMAT]
        if job_ids:
            argv += ["-j", ",".join(sorted(set(job_ids)))]
        return parse_squeue(self._run(argv).stdout)

    def show_job(self, job_id: str) -> list[SlurmRow]:
        """`scontrol show job -o`: [] when the controller has forgotten the job."""
        try:
            return parse_scontrol(self._run(["scontrol", "show", "job", "-o", job_id]).stdout)
        except SlurmRefused:  # "Invalid job id specified"
            return []

    def sacct(self, job_id: str) -> list[SlurmRow]:
        """The accounting record, where the cluster keeps one ([] where it does not)."""
        fields = "jobid,state,exitcode,start,end,nodelist,comment"
        try:
            done = self._run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", fields])
        except SlurmRefused:  # "Slurm accounting storage is disabled"
            return []
        return parse_sacct(done.stdout)

    def scancel(self, job_ids: Sequence[str], signal: str = "") -> None:
        argv = ["scancel", *([f"--signal={signal}", "--full"] if signal else []), *job_ids]
        self._run(argv)

    def scontrol(self, *args: str) -> None:
        self._run(["scontrol", *args])
