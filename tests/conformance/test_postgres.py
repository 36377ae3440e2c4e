"""The PostgreSQL backend against the shared backend contract, each test in a schema of its own, with both
of its capabilities: every process (on any host) opening the URL shares the schema, and an application's
own asyncpg connection enqueues in its transaction."""

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from postgres_server import require_server, with_options

from sitq.testing import BackendConformance
from sitq.testing.conformance import ApplicationTransaction
from sitq_postgres import PostgresBackend


class TestPostgresBackend(BackendConformance):
    @pytest.fixture
    def backend_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def backend(self, backend_url: str) -> PostgresBackend:
        return PostgresBackend.from_url(backend_url)

    @pytest.fixture
    def application_transaction(self) -> ApplicationTransaction:
        async def transaction() -> AsyncIterator[asyncpg.Connection]:
            connection = await asyncpg.connect(require_server())
            try:
                async with connection.transaction():
                    yield connection
            finally:
                await connection.close()

        return contextlib.asynccontextmanager(transaction)


class TestPostgresBackendWithoutListen(TestPostgresBackend):
    """Behind PgBouncer in transaction mode (no LISTEN), every promise must hold all the same."""

    @pytest.fixture
    def backend_url(self, postgres_url: str) -> str:
        return with_options(postgres_url, listen="false")
