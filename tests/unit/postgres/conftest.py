"""A connected PostgreSQL backend in a schema of its own, for the PostgreSQL backend's own tests."""

from collections.abc import AsyncIterator

import pytest

from sitq_postgres import PostgresBackend


@pytest.fixture
async def backend(postgres_url: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend.from_url(postgres_url)
    await backend.connect()
    yield backend
    await backend.close()
