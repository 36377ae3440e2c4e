"""The SQLite backend against the shared backend contract, on a real database file, with both of its
capabilities: other objects and processes share the file, and an application's own `sqlite3` connection
to it enqueues in its transaction."""

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sitq import SQLiteBackend
from sitq.testing import BackendConformance
from sitq.testing.conformance import ApplicationTransaction


class TestSQLiteBackend(BackendConformance):
    @pytest.fixture
    def backend_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'tasks.db'}"

    @pytest.fixture
    def backend(self, backend_url: str) -> SQLiteBackend:
        return SQLiteBackend.from_url(backend_url)

    @pytest.fixture
    def application_transaction(self, backend: SQLiteBackend) -> ApplicationTransaction:
        @contextlib.asynccontextmanager
        async def transaction() -> AsyncIterator[sqlite3.Connection]:
            # isolation_level=None: the transaction is begun and ended here, not by the sqlite3 module.
            with contextlib.closing(sqlite3.connect(backend.path, isolation_level=None)) as connection:
                connection.execute("BEGIN")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")

        return transaction


class TestSQLiteBackendNormalSync(TestSQLiteBackend):
    """The faster durability setting must keep every other promise."""

    @pytest.fixture
    def backend_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'tasks.db'}?synchronous=normal"
