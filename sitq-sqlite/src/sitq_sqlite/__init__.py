"""The SQLite backend for sitq: one durable file, many producer and worker processes.

`SQLiteBackend` is imported on first use, so that discovering plugins (which imports this package to
reach `sitq_sqlite.plugin`) stays cheap and does not import aiosqlite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sitq_sqlite.backend import SQLiteBackend

__all__ = ["SQLiteBackend"]


def __getattr__(name: str) -> Any:
    if name == "SQLiteBackend":
        from sitq_sqlite.backend import SQLiteBackend

        return SQLiteBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
