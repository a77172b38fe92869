"""Fixtures: every test that needs gflow gets its own GFLOW_HOME, daemon and tmux server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Gflow
from tests.users import LocalUser, local_user


@pytest.fixture
def gflow() -> Iterator[Gflow]:
    """A running daemon (tmux executor, no GPUs) in a fresh temp GFLOW_HOME."""
    installation = Gflow()
    try:
        installation.start()
        yield installation
    finally:
        installation.cleanup()


@pytest.fixture
def make_gflow() -> Iterator[type[Gflow]]:
    """For tests that need their own config: call it, then .start() when ready."""
    made: list[Gflow] = []

    def make(config: str = "", fake_gpus: str = "") -> Gflow:
        installation = Gflow(config=config, fake_gpus=fake_gpus)
        made.append(installation)
        return installation

    try:
        yield make  # type: ignore[misc]
    finally:
        for installation in made:
            installation.cleanup()


@pytest.fixture
def eve() -> Iterator[LocalUser]:
    """Another local user, without sudo (for isolation tests, and as the other user)."""
    with local_user("gfeve") as user:
        yield user
