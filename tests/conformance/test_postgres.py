"""The PostgreSQL backend against the shared backend contract, each test in a schema of its own."""

import pytest
from postgres_server import with_options

from sitq.testing import BackendConformance
from sitq_postgres import PostgresBackend


class TestPostgresBackend(BackendConformance):
    @pytest.fixture
    def backend(self, postgres_url: str) -> PostgresBackend:
        return PostgresBackend.from_url(postgres_url)


class TestPostgresBackendWithoutListen(BackendConformance):
    """Behind PgBouncer in transaction mode (no LISTEN), every promise must hold all the same."""

    @pytest.fixture
    def backend(self, postgres_url: str) -> PostgresBackend:
        return PostgresBackend.from_url(with_options(postgres_url, listen="false"))
