"""daemon/backends/slurm_commands.py against stand-in Slurm commands on PATH: a controller
that cannot be reached is told from a refusal, and ids and rows are read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from gflow.daemon.backends.slurm_commands import SlurmCommands, SlurmRefused, SlurmUnreachable


def _fake(tmp_path: Path, name: str, script: str) -> SlurmCommands:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return SlurmCommands({"PATH": str(tmp_path), "SLURM_CONF": "/etc/x.conf"})


def test_sbatch_id_and_what_it_was_given(tmp_path: Path) -> None:
    """The id (also from 'id;cluster'); options on the command line, the script on stdin,
    the daemon's SLURM_CONF and none of the submitter's SLURM_*."""
    commands = _fake(
        tmp_path, "sbatch",
        f'echo "$@" > {tmp_path}/argv; /bin/cat > {tmp_path}/stdin; /usr/bin/env > {tmp_path}/env; '
        'echo "42;cluster"',
    )  # fmt: skip
    env = {"PATH": "/nowhere", "SLURM_CONF": "/home/me/other.conf", "SLURM_JOB_ID": "7", "A": "1"}
    assert commands.sbatch(["--job-name=x"], "#!/bin/bash\ntrue\n", env, None) == "42"
    assert (tmp_path / "argv").read_text() == "--parsable --job-name=x\n"
    assert (tmp_path / "stdin").read_text() == "#!/bin/bash\ntrue\n"
    seen = (tmp_path / "env").read_text().splitlines()
    assert "SLURM_CONF=/etc/x.conf" in seen and "A=1" in seen
    assert not any(line.startswith("SLURM_JOB_ID=") for line in seen)


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        ("sbatch: error: Batch job submission failed: Unable to contact slurm controller "
         "(connect failure)", SlurmUnreachable),
        ("sbatch: error: Batch job submission failed: Requested node configuration is not "
         "available", SlurmRefused),
    ],
)  # fmt: skip
def test_unreachable_is_told_from_refused(tmp_path: Path, said: str, kind: type) -> None:
    commands = _fake(tmp_path, "sbatch", f"echo '{said}' >&2; exit 1")
    with pytest.raises(kind) as caught:
        commands.sbatch([], "", {}, None)
    assert "Batch job submission failed" in str(caught.value)


def test_missing_command_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(SlurmUnreachable):
        SlurmCommands({"PATH": str(tmp_path)}).squeue()


def test_forgotten_job_is_no_row(tmp_path: Path) -> None:
    """scontrol's 'Invalid job id specified' and sacct without accounting: no rows."""
    commands = _fake(
        tmp_path, "scontrol", "echo 'slurm_load_jobs error: Invalid job id' >&2; exit 1"
    )
    assert commands.show_job("5") == []
    commands = _fake(tmp_path, "sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1")
    assert commands.sacct("5") == []
