"""Fixtures for the tests of the `sitq` command: a runner of the installed executable per backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitq_command import SITQ, Sitq


@pytest.fixture
def sitq(tmp_path: Path) -> Sitq:
    """The command against a SQLite file of this test's own."""
    return Sitq(tmp_path, f"sqlite:///{tmp_path / 'tasks.db'}")


@pytest.fixture
def sitq_memory(tmp_path: Path) -> Sitq:
    """The command against `memory://`, which lives and dies with each command's process."""
    return Sitq(tmp_path, "memory://")


@pytest.fixture(autouse=True)
def _the_executable_is_installed() -> None:
    if not SITQ.exists():
        pytest.fail(f"{SITQ} does not exist: install sitq-core with its cli extra (tox does)")
