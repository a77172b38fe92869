"""What a job can be given is bounded by what the kernel can exec; environments are bytes.

The too-big cases go straight to the API (a script, or a runaway job, can send them): gbatch
itself could not even be started with such an environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gflow.client import Client
from gflow.core.errors import InvalidInput
from tests.helpers import Gflow


def spec(gflow: Gflow, **changes: Any) -> dict[str, Any]:
    return {"command": "true", "workdir": str(gflow.workdir), "env": {"PATH": "/bin"}, **changes}


def refused(gflow: Gflow, job: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        Client(gflow.paths).submit([job])
    assert gflow.ok("gqueue", "-a").strip() == "No jobs found."  # nothing was made
    return caught.value.message


def test_a_variable_too_big_to_exec_is_refused_naming_it(gflow: Gflow) -> None:
    message = refused(gflow, spec(gflow, env={"PATH": "/bin", "HUGE_ONE": "x" * 200_000}))
    assert "HUGE_ONE" in message and "128 KiB" in message


def test_an_environment_too_big_in_all_is_refused(gflow: Gflow) -> None:
    env = {f"BIG_{i}": "y" * 100_000 for i in range(30)}  # 3 MB; each one would be fine
    message = refused(gflow, spec(gflow, env=env))
    assert "the environment is" in message and "at most" in message


def test_a_command_too_long_for_one_argument_is_refused(gflow: Gflow) -> None:
    message = refused(gflow, spec(gflow, command="echo " + "z" * 140_000))
    assert "too long for one argument" in message


def test_a_variable_that_is_not_utf8_reaches_the_job_as_its_bytes(
    gflow: Gflow, tmp_path: Path
) -> None:
    """A variable holding a Latin-1 path (OLDPWD after visiting one, say) blocked every
    submission with "env has a lone surrogate"."""
    out = tmp_path / "latin1"
    env = {**gflow.env, "LATIN1_DIR": os.fsdecode(b"/tmp/caf\xe9")}
    job = gflow.submit("--command", f'printf %s "$LATIN1_DIR" > {out}', env=env)
    assert gflow.wait_state(job)["state"] == "Finished"
    assert out.read_bytes() == b"/tmp/caf\xe9"
