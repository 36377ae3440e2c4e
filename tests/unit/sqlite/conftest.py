"""A connected SQLite backend on a fresh file, for the SQLite backend's own tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sitq_sqlite import SQLiteBackend


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    """`synchronous="normal"` keeps the tests fast; the durability setting itself is tested on its own."""
    backend = SQLiteBackend(tmp_path / "tasks.db", synchronous="normal")
    await backend.connect()
    yield backend
    await backend.close()
