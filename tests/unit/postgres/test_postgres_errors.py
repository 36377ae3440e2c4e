"""A server that cannot be reached, refused credentials, a missing database and a newer schema each fail
with a `BackendError` that says which, and how to fix it."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from postgres_server import execute, fresh_schema, require_server, with_options

from sitq.errors import BackendError
from sitq_postgres import PostgresBackend
from sitq_postgres.schema import MIGRATIONS

LOCAL_SOCKET = os.path.exists("/var/run/postgresql")


def _replace(url: str, **parts: str) -> str:
    return urlunsplit(urlsplit(url)._replace(**parts))


async def _connect(url: str) -> None:
    backend = PostgresBackend.from_url(url)
    await backend.connect()
    await backend.close()


async def test_an_unreachable_server_says_to_check_host_and_port() -> None:
    with pytest.raises(
        BackendError, match=r"cannot reach the PostgreSQL server.*127.0.0.1:1 .*host and port"
    ):
        await _connect("postgresql://postgres@127.0.0.1:1/test?connect_timeout=3")


async def test_an_unknown_user_is_refused_credentials() -> None:
    url = urlsplit(require_server())
    wrong = _replace(url.geturl(), netloc=f"no_such_user_{os.getpid()}@{url.hostname}:{url.port or 5432}")
    with pytest.raises(BackendError, match=r"refused the credentials .*check the user and password"):
        await _connect(wrong)


async def test_a_missing_database_says_to_create_it() -> None:
    with pytest.raises(BackendError, match=r"no_such_database.*create the database"):
        await _connect(_replace(require_server(), path="/no_such_database"))


async def test_a_schema_from_a_newer_sitq_postgres_is_refused(postgres_url: str) -> None:
    await _connect(postgres_url)  # creates the schema, at this version
    schema = PostgresBackend.from_url(postgres_url).schema
    await execute(f'INSERT INTO "{schema}".migrations (version) VALUES (99)')
    with pytest.raises(BackendError, match=r"schema version 99.*upgrade sitq-postgres"):
        await _connect(postgres_url)


async def test_connecting_twice_at_once_migrates_once(postgres_url: str) -> None:
    await asyncio.gather(*(_connect(postgres_url) for _ in range(4)))
    schema = PostgresBackend.from_url(postgres_url).schema
    rows = await execute(f'SELECT version FROM "{schema}".migrations')
    assert [row["version"] for row in rows] == list(range(1, len(MIGRATIONS) + 1))  # each once


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:///{db}?host=/var/run/postgresql&user={user}",
        "postgresql://{user}@%2Fvar%2Frun%2Fpostgresql/{db}",
    ],
)
async def test_the_local_socket_is_reached_either_way(url: str) -> None:
    server = urlsplit(require_server())
    if not LOCAL_SOCKET or server.hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("no local PostgreSQL socket in /var/run/postgresql")
    socket_url = url.format(db=server.path.lstrip("/"), user=server.username or "postgres")
    with fresh_schema() as schema:
        backend = PostgresBackend.from_url(with_options(socket_url, schema=schema))
        await backend.connect()
        facts = await backend.describe()
        await backend.close()
    assert facts["where"].startswith(f"database {server.path.lstrip('/')!r} at /var/run/postgresql")
