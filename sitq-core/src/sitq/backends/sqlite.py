"""`from sitq.backends.sqlite import SQLiteBackend`, as the seed documents spell it: served by sitq-sqlite."""

from typing import TYPE_CHECKING

from sitq.plugins import lazy_exports

if TYPE_CHECKING:
    from sitq_sqlite import SQLiteBackend as SQLiteBackend

__getattr__ = lazy_exports(__name__, {"SQLiteBackend"})
