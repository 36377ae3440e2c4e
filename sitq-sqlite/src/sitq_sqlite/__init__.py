"""The SQLite backend for sitq: one durable file, many producer and worker processes.

`SQLiteBackend` is imported on first use, so that discovering plugins (which imports this package to
reach `sitq_sqlite.plugin`) stays cheap and does not import aiosqlite.
"""

from typing import TYPE_CHECKING

from sitq.plugins import lazy_imports

if TYPE_CHECKING:
    from sitq_sqlite.backend import SQLiteBackend as SQLiteBackend

__all__ = ["SQLiteBackend"]

__getattr__ = lazy_imports(__name__, {"SQLiteBackend": "sitq_sqlite.backend"})
