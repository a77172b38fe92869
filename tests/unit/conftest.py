"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gflow.store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh database in the test's temp dir, closed afterwards."""
    opened = Store.open(tmp_path / "gflow.db")
    try:
        yield opened
    finally:
        opened.close()
