"""The PostgreSQL server the tests use, and fixtures giving each test a schema of its own.

`SITQ_TEST_POSTGRES_URL` names the server (by default the local one, user postgres, database test).
Without a reachable server the PostgreSQL tests skip, saying how to point them at one; under CI
(``CI=true``) they fail instead, since CI must run them. Every test gets a fresh schema, dropped after,
so tests never see each other's tasks. Registered for every test directory by tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

URL_VARIABLE = "SITQ_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
_T = TypeVar("_T")


def server_url() -> str:
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def with_options(url: str, **options: str) -> str:
    """`url` with sitq options added to its query."""
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to its end on a loop of its own, from sync code or from inside a running loop."""
    result: list[_T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


async def execute(statement: str, *args: object, url: str | None = None) -> Any:
    """Run one statement on a connection of its own (administration, outside the code under test)."""
    import asyncpg

    connection = await asyncpg.connect(url or server_url(), timeout=5)
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


@functools.cache
def _unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    try:
        import asyncpg  # noqa: F401 - is the driver installed?

        import sitq_postgres  # noqa: F401 - and the backend?
    except ImportError as exc:
        return f"sitq-postgres is not installed ({exc}): pip install ./sitq-postgres"
    try:
        run(execute("SELECT 1"))
    except Exception as exc:
        return (
            f"no PostgreSQL server at {server_url()} ({type(exc).__name__}: {exc}); set {URL_VARIABLE} "
            "to the URL of one (a database the tests may create schemas in) to run these tests"
        )
    return None


def require_server() -> str:
    """The server's URL; skip the test without one, or fail it under CI."""
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    return server_url()


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """The name of a schema no one uses, dropped with everything in it on exit."""
    name = f"sitq_test_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        run(execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A URL of a database of the test's own on the test server, dropped after (skips without a server)."""
    url = require_server()
    name = f"sitq_test_{uuid.uuid4().hex[:16]}"
    run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL of the test server whose sitq schema is the test's own (skips without a server)."""
    url = require_server()
    with fresh_schema() as name:
        yield with_options(url, schema=name)
