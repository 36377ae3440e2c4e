"""The SQLite backend against the shared backend contract, on a real database file."""

from pathlib import Path

import pytest

from sitq import SQLiteBackend
from sitq.testing import BackendConformance


class TestSQLiteBackend(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> SQLiteBackend:
        return SQLiteBackend(tmp_path / "tasks.db")


class TestSQLiteBackendNormalSync(BackendConformance):
    """The faster durability setting must keep every other promise."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> SQLiteBackend:
        return SQLiteBackend.from_url(f"sqlite:///{tmp_path / 'tasks.db'}?synchronous=normal")
