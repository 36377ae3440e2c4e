"""The PostgreSQL backend for sitq: one database, workers and producers on any number of hosts.

`PostgresBackend` is imported on first use, so that discovering plugins (which imports this package to
reach `sitq_postgres.plugin`) stays cheap and does not import asyncpg.
"""

from typing import TYPE_CHECKING

from sitq.plugins import lazy_imports

if TYPE_CHECKING:
    from sitq_postgres.backend import PostgresBackend as PostgresBackend

__all__ = ["PostgresBackend"]

__getattr__ = lazy_imports(__name__, {"PostgresBackend": "sitq_postgres.backend"})
