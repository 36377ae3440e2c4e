"""What the PostgreSQL section shares: a fresh database per measure, and the server's durability.

Every measure of the PostgreSQL section runs in a database of its own, created from the server URL
given to ``bench/run.py`` and dropped afterwards, so that no measure sees another's rows, indexes or
statistics, and every peer starts from the same empty catalog. The peer scripts get that database's
URL as ``--pg-url``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

SETTINGS = (
    "SELECT current_setting('synchronous_commit') AS synchronous_commit,"
    " current_setting('fsync') AS fsync, current_setting('server_version') AS server_version"
)
"""What every peer reads on its own connection: the durability of its commits, and the server."""


def with_database(url: str, name: str) -> str:
    """`url` pointing at the database `name` instead (host, port, user and options kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def with_query(url: str, **params: str) -> str:
    """`url` with ``key=value`` options added to its query string."""
    extra = "&".join(f"{key}={value}" for key, value in params.items())
    return url + ("&" if urlsplit(url).query else "?") + extra


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """Create an empty database on the server of `url`, yield its URL, and drop it afterwards
    (``WITH (FORCE)``: a worker a measure failed to stop must not keep it alive)."""
    name = f"sitq_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def durability(row: Any, distribution: str) -> dict[str, str]:
    """The `SETTINGS` row, by name, as the report prints it, with the version of the peer's
    `distribution` installed."""
    synchronous_commit, fsync, server = row
    return {
        "version": f"{distribution} {metadata.version(distribution)}",
        "synchronous_commit": str(synchronous_commit),
        "fsync": str(fsync),
        "server": str(server),
    }


def fetch_row(url: str, query: str) -> Any:
    """One row from the database, read on a connection of its own (off the clock)."""
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()


def scalar(url: str, query: str) -> Any:
    row = fetch_row(url, query)
    return None if row is None else row[0]
